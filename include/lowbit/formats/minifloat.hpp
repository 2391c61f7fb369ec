// Minifloats of any split: sign + E exponent bits (1..8) + M mantissa bits (0..23), any
// bias, subnormals on or off, three special-value policies and two overflow policies.
//
// MinifloatSpec is the format as a value (the runtime registry builds these from names);
// Minifloat<...> is the same format as a type whose static functions forward to the spec, so
// one implementation serves compile-time and run-time use. fp32, fp16 and bf16 are instances.
//
// Conversion from double is exact: the magnitude is rounded once, with integer arithmetic on
// the double's bits (round_to_grid), so converting a float or double never rounds twice.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"

namespace lowbit {

enum class Specials {
  IEEE,        // top exponent field holds Inf (mantissa 0) and NaN (mantissa != 0)
  FiniteNaN,   // all codes finite except S.1111.111 = NaN (OCP FP8 E4M3, max 448)
  FiniteOnly,  // every code is a finite number (OCP FP6, FP4)
};

enum class Overflow {
  Saturate,  // finite overflow and infinities become +-max (NaN stays NaN where encodable)
  Infinity,  // overflow becomes Inf (IEEE) or NaN (FiniteNaN); round-toward-zero gives max
};

struct MinifloatSpec {
  int exp_bits = 8;
  int man_bits = 23;
  int bias = 127;
  bool subnormals = true;
  Specials specials = Specials::IEEE;
  Overflow overflow = Overflow::Infinity;

  constexpr bool operator==(const MinifloatSpec&) const = default;

  static constexpr int default_bias(int e) { return (1 << (e - 1)) - 1; }

  constexpr int bits() const { return 1 + exp_bits + man_bits; }
  constexpr std::uint32_t sign_mask() const { return 1u << (exp_bits + man_bits); }
  constexpr std::uint32_t man_mask() const { return (1u << man_bits) - 1u; }
  constexpr int top_field() const { return (1 << exp_bits) - 1; }
  constexpr int emin() const { return 1 - bias; }  // exponent of the smallest normal

  constexpr bool has_inf() const { return specials == Specials::IEEE; }
  constexpr bool has_nan() const {
    return specials == Specials::FiniteNaN || (specials == Specials::IEEE && man_bits > 0);
  }

  // Largest exponent field that holds finite numbers, and its largest mantissa.
  constexpr int max_field() const {
    if (specials == Specials::IEEE) return top_field() - 1;
    if (specials == Specials::FiniteNaN && man_bits == 0) return top_field() - 1;
    return top_field();
  }
  constexpr std::uint32_t max_mantissa() const {
    if (specials == Specials::FiniteNaN && man_bits > 0) return man_mask() - 1u;
    return man_mask();
  }
  constexpr std::uint32_t max_code() const {
    return (static_cast<std::uint32_t>(max_field()) << man_bits) | max_mantissa();
  }

  void validate() const {
    const char* where = "MinifloatSpec";
    detail::require(exp_bits >= 1 && exp_bits <= 8, where, "exponent bits must be 1..8, got ", exp_bits);
    detail::require(man_bits >= 0 && man_bits <= 23, where, "mantissa bits must be 0..23, got ", man_bits);
    detail::require(bias >= -300 && bias <= 300, where, "bias must be within -300..300, got ", bias);
    detail::require(!(specials == Specials::IEEE && exp_bits < 2), where,
                    "an IEEE-like format needs at least 2 exponent bits (the top field is reserved)");
    detail::require(!(specials == Specials::FiniteNaN && exp_bits == 1 && man_bits == 0), where,
                    "a 1-bit exponent without mantissa cannot reserve a NaN code");
    detail::require(!(specials == Specials::FiniteOnly && overflow == Overflow::Infinity), where,
                    "a finite-only format has no Inf or NaN to overflow to; use Overflow::Saturate");
    detail::require(subnormals || exp_bits >= 2 || specials != Specials::IEEE, where,
                    "format has no normal numbers");
  }

  // ---- decoding -------------------------------------------------------------------------
  bool is_nan(std::uint32_t code) const {
    const std::uint32_t mag = code & (sign_mask() - 1u);
    if (specials == Specials::IEEE)
      return (mag >> man_bits) == static_cast<std::uint32_t>(top_field()) && (mag & man_mask()) != 0;
    if (specials == Specials::FiniteNaN)
      return mag == ((static_cast<std::uint32_t>(top_field()) << man_bits) | man_mask());
    return false;
  }
  bool is_inf(std::uint32_t code) const {
    const std::uint32_t mag = code & (sign_mask() - 1u);
    return specials == Specials::IEEE && mag == (static_cast<std::uint32_t>(top_field()) << man_bits);
  }
  // Without subnormals, codes with a zero exponent field and a non-zero mantissa are never
  // produced (they read as zero, like a CPU with denormals-are-zero).
  bool is_canonical(std::uint32_t code) const {
    if (code >> bits() != 0) return false;
    const std::uint32_t mag = code & (sign_mask() - 1u);
    if (!subnormals && (mag >> man_bits) == 0 && (mag & man_mask()) != 0) return false;
    return true;
  }

  // Exact value of a code; NaN codes keep their payload in the top mantissa bits.
  double decode(std::uint32_t code) const {
    const bool neg = (code & sign_mask()) != 0;
    const std::uint32_t mag = code & (sign_mask() - 1u);
    const int field = static_cast<int>(mag >> man_bits);
    const std::uint32_t man = mag & man_mask();
    double v;
    if (is_nan(code)) {
      // quiet NaN with the stored mantissa as the top payload bits (as CPUs widen NaNs)
      std::uint64_t payload = man_bits > 0 ? static_cast<std::uint64_t>(man) << (52 - man_bits) : 0;
      v = bits_double(0x7FF8000000000000ull | payload);
    } else if (is_inf(code)) {
      v = std::numeric_limits<double>::infinity();
    } else if (field == 0) {
      v = subnormals ? scale2(static_cast<double>(man), emin() - man_bits) : 0.0;
    } else {
      v = scale2(static_cast<double>(man | (1u << man_bits)), field - bias - man_bits);
    }
    return neg ? -v : v;
  }

  double max_value() const { return decode(max_code()); }
  double min_normal() const { return pow2(emin()); }
  double min_subnormal() const { return subnormals ? pow2(emin() - man_bits) : min_normal(); }
  // floor(log2(max)): the element "emax" of the OCP MX scale rule.
  int emax() const { return floor_log2(max_value()); }

  // ---- encoding -------------------------------------------------------------------------
  // Code of an exact grid value 0 <= v <= max (v on this format's grid).
  std::uint32_t code_of_grid_value(double v) const {
    if (v == 0.0) return 0;
    const int e = floor_log2(v);
    if (e < emin()) {  // subnormal
      return static_cast<std::uint32_t>(scale2(v, man_bits - emin()));
    }
    const std::uint32_t field = static_cast<std::uint32_t>(e + bias);
    const std::uint32_t man = static_cast<std::uint32_t>(scale2(v, man_bits - e)) - (1u << man_bits);
    return (field << man_bits) | man;
  }

  std::uint32_t nan_code(bool neg, std::uint64_t payload52) const {
    const std::uint32_t sign = neg ? sign_mask() : 0u;
    if (specials == Specials::FiniteNaN)
      return sign | (static_cast<std::uint32_t>(top_field()) << man_bits) | man_mask();
    // IEEE: quiet bit set, the payload's top bits kept (what vcvtps2ph / vcvtneps2bf16 do)
    const std::uint32_t quiet = man_bits > 0 ? 1u << (man_bits - 1) : 0u;  // e*m0: no mantissa, no quiet bit
    const std::uint32_t keep = static_cast<std::uint32_t>(payload52 >> (52 - man_bits)) & man_mask();
    return sign | (static_cast<std::uint32_t>(top_field()) << man_bits) | quiet | keep;
  }

  // Rounds y to this format. `random` feeds Stochastic rounding. NaN into a format without
  // NaN throws Error; Inf into a format without Inf saturates.
  std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    const bool neg = std::signbit(y);
    const std::uint32_t sign = neg ? sign_mask() : 0u;
    if (std::isnan(y)) {
      if (!has_nan())
        detail::fail("minifloat encode", "NaN has no encoding in e", exp_bits, "m", man_bits,
                     " (finite-only format)");
      return nan_code(neg, double_bits(y) & ((1ull << 52) - 1));
    }
    const double a = std::fabs(y);
    const std::uint32_t inf_or_nan =
        specials == Specials::IEEE ? sign | (static_cast<std::uint32_t>(top_field()) << man_bits)
                                   : nan_code(neg, 0);
    if (std::isinf(a)) {
      if (overflow == Overflow::Saturate || specials == Specials::FiniteOnly) return sign | max_code();
      return inf_or_nan;
    }
    if (a == 0.0) return sign;
    // Grid step at a's binade: 2^(e - M) for normals, the subnormal step below emin, and
    // without subnormals one step of 2^emin between 0 and the smallest normal.
    const int e = floor_log2(a);
    const int q = e >= emin() ? e - man_bits : (subnormals ? emin() - man_bits : emin());
    const std::uint64_t k = round_to_grid(a, q, mode, random);
    const double v = k >= kGridHuge ? std::numeric_limits<double>::infinity() : scale2(static_cast<double>(k), q);
    const double vmax = max_value();
    if (v > vmax) {
      if (mode == Rounding::TowardZero || overflow == Overflow::Saturate) return sign | max_code();
      return inf_or_nan;
    }
    return sign | code_of_grid_value(v);
  }

  // Round-trip through the format: the representable value nearest y under `mode`.
  double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    return decode(encode(y, mode, random));
  }
};

// A minifloat as a type. Everything is forwarded to the constexpr spec.
template <int E, int M, int Bias = MinifloatSpec::default_bias(E), Specials S = Specials::IEEE,
          Overflow O = Overflow::Infinity, bool Subnormals = true>
struct Minifloat {
  static constexpr MinifloatSpec spec{E, M, Bias, Subnormals, S, O};
  static constexpr int bits = spec.bits();
  static std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) {
    return spec.encode(y, mode, random);
  }
  static double decode(std::uint32_t code) { return spec.decode(code); }
  static double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) {
    return spec.quantize(y, mode, random);
  }
  static double max_value() { return spec.max_value(); }
};

// The standard formats, all instances of the one template.
using FP32 = Minifloat<8, 23>;
using FP16 = Minifloat<5, 10>;
using BF16 = Minifloat<8, 7>;
// OCP 8-bit floats (OFP8). As quantisation targets they saturate (the OCP "SAT" mode, what
// MX and every per-tensor FP8 recipe use); the *_OVF types follow the non-saturating mode.
using FP8_E4M3 = Minifloat<4, 3, 7, Specials::FiniteNaN, Overflow::Saturate>;
using FP8_E5M2 = Minifloat<5, 2, 15, Specials::IEEE, Overflow::Saturate>;
using FP8_E4M3_OVF = Minifloat<4, 3, 7, Specials::FiniteNaN, Overflow::Infinity>;
using FP8_E5M2_OVF = Minifloat<5, 2, 15, Specials::IEEE, Overflow::Infinity>;
// OCP 6- and 4-bit floats: finite only, saturating.
using FP6_E3M2 = Minifloat<3, 2, 3, Specials::FiniteOnly, Overflow::Saturate>;
using FP6_E2M3 = Minifloat<2, 3, 1, Specials::FiniteOnly, Overflow::Saturate>;
using FP4_E2M1 = Minifloat<2, 1, 1, Specials::FiniteOnly, Overflow::Saturate>;

}  // namespace lowbit
