// ElementRounding: a minifloat or fixed-point element format reduced to the constants the
// SIMD kernels need to round a float32 to it, bit for bit as the scalar encode/decode does.
//
// The kernels round magnitudes on the float's bits: the grid step at |y| is 2^q with
//   q = e - man            if e >= emin   (e = floor(log2 |y|))
//   q = emin - man         below emin, with subnormals
//   q = emin               below emin, without subnormals (0 or the smallest normal)
// A fixed-point element is the same rule with emin so large that q = -frac_bits always.
// Formats outside what the float-bit kernels cover (emin below float's -126, values above
// FLT_MAX, codebooks, logs) report eligible = false and run the scalar reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/bits.hpp"
#include "lowbit/formats/fixed_point.hpp"
#include "lowbit/formats/minifloat.hpp"

namespace lowbit {

struct ElementRounding {
  bool eligible = false;
  std::int32_t emin = 0;
  std::int32_t man = 0;
  bool subnormals = true;
  std::uint32_t max_bits = 0;      // float bits of the largest positive value
  std::uint32_t neg_max_bits = 0;  // float bits of the largest negative magnitude
  bool saturate = true;            // finite overflow gives the limit (else ovf_bits)
  std::uint32_t ovf_bits = 0;      // magnitude bits of a non-saturating overflow (Inf or NaN)
  std::uint32_t inf_bits = 0;      // magnitude bits for +-Inf input (0: the limit by sign)
  bool nan_encodable = false;      // false: NaN input must throw (the scalar path does)
  std::uint32_t nan_or = 0;        // NaN result = sign | nan_or | (input & nan_keep)
  std::uint32_t nan_keep = 0;
  bool zero_keeps_sign = true;     // -0 results stay -0 (minifloats) or become +0 (integers)
  // Nearest-even by float addition (see the kernel): usable when every grid step of a value
  // below add_clamp_bits is at most 2^104; larger inputs are clamped to add_clamp_bits, which
  // overflows (or saturates) exactly as they would.
  bool add_rounding = false;
  std::uint32_t add_clamp_bits = 0;
};

inline ElementRounding element_rounding(const MinifloatSpec& s) {
  ElementRounding r;
  const double mx = s.max_value();
  if (s.emin() < -126 || !(mx <= static_cast<double>(std::numeric_limits<float>::max()))) return r;
  r.eligible = true;
  r.emin = s.emin();
  r.man = s.man_bits;
  r.subnormals = s.subnormals;
  r.max_bits = r.neg_max_bits = float_bits(static_cast<float>(mx));
  const bool sat = s.overflow == Overflow::Saturate || s.specials == Specials::FiniteOnly;
  r.saturate = sat;
  const std::uint32_t nan_mag = s.has_nan() ? float_bits(static_cast<float>(s.decode(s.nan_code(false, 0)))) & 0x7FFFFFFFu : 0u;
  if (s.specials == Specials::IEEE) r.ovf_bits = 0x7F800000u;
  else if (s.specials == Specials::FiniteNaN) r.ovf_bits = nan_mag;
  r.inf_bits = sat ? r.max_bits : r.ovf_bits;
  r.nan_encodable = s.has_nan();
  if (s.specials == Specials::IEEE && s.man_bits > 0) {
    r.nan_or = 0x7FC00000u;
    r.nan_keep = ((1u << s.man_bits) - 1u) << (23 - s.man_bits);
  } else if (s.specials == Specials::FiniteNaN) {
    r.nan_or = nan_mag;
  }
  r.zero_keeps_sign = true;
  const int top = floor_log2(mx) + 1;  // every value at or above 2^top overflows
  // (a + c) - c with c = 1.5 * 2^(q + 23) rounds at step 2^q while a + c stays below 2^(q + 24),
  // that is for a < 2^(q + 22): values of exponent q + M need M <= 21 (e2m22 once rounded
  // 4.04 at twice its step)
  r.add_rounding = s.man_bits <= 21 && top - s.man_bits <= 104 && top <= 127;
  r.add_clamp_bits = r.add_rounding ? static_cast<std::uint32_t>(top + 127) << 23 : 0u;
  return r;
}

inline ElementRounding element_rounding(const FixedPointSpec& s) {
  ElementRounding r;
  if (s.frac_bits < -60 || s.frac_bits > 126) return r;
  r.eligible = true;
  r.emin = 1 << 20;  // never reached: the step is 2^-frac_bits everywhere
  r.man = (1 << 20) + s.frac_bits;
  r.subnormals = true;
  r.max_bits = float_bits(static_cast<float>(s.max_value()));
  r.neg_max_bits = float_bits(static_cast<float>(std::fabs(s.min_value())));
  r.saturate = true;
  r.inf_bits = 0;
  r.nan_encodable = false;
  r.zero_keeps_sign = false;
  // the step is 2^-frac_bits, exact by addition below 2^(22 - frac_bits) (see above); at most
  // 16 bits, every value from there up saturates
  r.add_rounding = -s.frac_bits <= 104 && 22 - s.frac_bits <= 127;
  r.add_clamp_bits = r.add_rounding ? static_cast<std::uint32_t>(22 - s.frac_bits + 127) << 23 : 0u;
  return r;
}

}  // namespace lowbit
