// BlockFormat<Element>: the one generic format. A block of values shares a scale (or none),
// each value is an element code. Every lowbit format is an instance: per-element minifloats
// and integers (no scale), OCP MX (E8M0 scale, Floor rule), BFP (E8M0, Fit rule, symmetric
// integers), integer-per-block (float scale, Absmax / MinMax), NVFP4 (E4M3 block scale plus
// fp32 tensor scale), codebooks (fp32 absmax), block minifloat and block log.
//
// Arithmetic, written once here for every format (the SIMD paths must reproduce it):
//   scale s        chosen from the block's values by the ScaleSpec (exact: computed in
//                  double from float inputs, rounded once into the scale format)
//   element y      fl32(x / s)  (IEEE float division; exact when s is a power of two)
//   code           element.encode(y) under the rounding mode, saturating at the element max
//   value          fl32(element.decode(code) * s)  (asymmetric: (k - zero_point) * s)
// A block holding NaN or +-Inf gets a NaN scale when the scale format has one (E8M0, fp32,
// fp16, bf16, E4M3 all do): every value of the block decodes as NaN, as in the OCP MX
// reference. A block whose scale is zero (all zeros, or underflow) decodes to zeros.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/e8m0.hpp"
#include "lowbit/formats/fixed_point.hpp"
#include "lowbit/formats/log_element.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/formats/scale.hpp"

namespace lowbit {

// Precision of an element's top binade, for ScaleRule::Even.
inline int top_binade_mantissa_bits(const MinifloatSpec& e) { return e.man_bits; }
inline int top_binade_mantissa_bits(const FixedPointSpec& e) { return e.frac_bits + e.emax(); }
inline int top_binade_mantissa_bits(const CodebookSpec&) { return 0; }
inline int top_binade_mantissa_bits(const LogSpec&) { return 0; }
inline int element_bits(const MinifloatSpec& e) { return e.bits(); }
inline int element_bits(const FixedPointSpec& e) { return e.bits; }
inline int element_bits(const CodebookSpec& e) { return e.bits(); }
inline int element_bits(const LogSpec& e) { return e.bits(); }

// What one block stores besides its element codes.
struct BlockHeader {
  std::uint32_t scale = 0;       // scale code (E8M0 byte or the scale format's bits)
  std::uint32_t zero_point = 0;  // asymmetric formats only
};

// Values computed once per tensor before its blocks (NVFP4's second-level scale).
struct TensorParams {
  float tensor_scale = 1.0f;
};

// Special block sizes: one block per line along the blocking axis, or per tensor.
inline constexpr std::int64_t kPerChannel = -1;
inline constexpr std::int64_t kPerTensor = -2;

template <class Element>
struct BlockFormat {
  using element_type = Element;

  Element element{};
  ScaleSpec scale{};
  std::int64_t block_size = 1;  // default block length along the blocking axis (or kPer*)

  // ---- description ---------------------------------------------------------------------
  int element_bits() const { return lowbit::element_bits(element); }
  int scale_bits() const { return scale.bits() + (scale.zero_point ? element_bits() : 0); }
  // Storage per element, block scale (and zero point) included; the tensor scale of NVFP4
  // (32 bits per tensor) is not counted.
  double bits_per_element(std::int64_t block) const {
    if (scale.kind == ScaleKind::None || block <= 0) return element_bits();
    return element_bits() + static_cast<double>(scale_bits()) / static_cast<double>(block);
  }
  double bits_per_element() const { return bits_per_element(block_size); }
  bool has_scale() const { return scale.kind != ScaleKind::None; }

  void validate() const {
    element.validate();
    detail::require(block_size >= 1 || block_size == kPerChannel || block_size == kPerTensor, "BlockFormat",
                    "block size must be >= 1, got ", block_size);
    if (scale.kind == ScaleKind::Float) scale.format.validate();
    if (scale.zero_point)
      detail::require(scale.rule == ScaleRule::MinMax, "BlockFormat", "a zero point needs the MinMax rule");
  }

  // ---- the tensor-level pass ------------------------------------------------------------
  bool needs_tensor_pass() const { return scale.tensor_scale; }

  // NVFP4: s_t = fl32(amax_t / (element max * scale-format max)) over the finite values, so
  // the largest block scale lands at the top of the scale format; an all-zero tensor uses 1.
  TensorParams tensor_params(float finite_amax) const {
    TensorParams p;
    if (!scale.tensor_scale) return p;
    const double denom = element.max_value() * scale.format.max_value();
    const float st = static_cast<float>(static_cast<double>(finite_amax) / denom);
    p.tensor_scale = (st > 0.0f && std::isfinite(st)) ? st : 1.0f;
    return p;
  }

  // ---- the scale of one block -----------------------------------------------------------
  // se for a power-of-two scale from the block absmax a (finite).
  int pow2_scale_exponent(double a) const {
    if (a == 0.0) return E8M0::min_exponent;
    const int emax = element.emax();
    int se = 0;
    switch (scale.rule) {
      case ScaleRule::Floor: se = floor_log2(a) - emax; break;
      case ScaleRule::Ceil: se = floor_log2(a) + (is_power_of_two(a) ? 0 : 1) - emax; break;
      case ScaleRule::Even: {
        const int e = floor_log2(a);
        const int mb = top_binade_mantissa_bits(element);
        const double r = scale2(static_cast<double>(round_to_grid(a, e - mb, Rounding::NearestAway)), e - mb);
        se = floor_log2(r) - emax;
        break;
      }
      case ScaleRule::Fit: {
        const double m = element.max_value();
        se = floor_log2(a) - floor_log2(m);
        if (a > scale2(m, se)) ++se;
        break;
      }
      default: detail::fail("BlockFormat", "rule ", to_string(scale.rule), " does not apply to E8M0 scales");
    }
    return std::clamp(se, E8M0::min_exponent, E8M0::max_exponent);
  }

  // Chooses the header for a block from its range; `finite` is false when the block holds
  // NaN or Inf. Returns the scale value s as a float (NaN for a NaN scale).
  float choose_header(double amax, double lo, double hi, bool finite, const TensorParams& tp,
                      BlockHeader& h) const {
    switch (scale.kind) {
      case ScaleKind::None: return 1.0f;
      case ScaleKind::E8M0: {
        if (!finite) { h.scale = E8M0::nan_code; return std::numeric_limits<float>::quiet_NaN(); }
        h.scale = E8M0::from_exponent(pow2_scale_exponent(amax));
        return static_cast<float>(E8M0::decode(h.scale));
      }
      case ScaleKind::Float: {
        const MinifloatSpec& f = scale.format;
        if (!finite) { h.scale = f.encode(std::numeric_limits<double>::quiet_NaN()); return std::numeric_limits<float>::quiet_NaN(); }
        double want;
        if (scale.zero_point) {
          lo = std::min(lo, 0.0);
          hi = std::max(hi, 0.0);
          want = (hi - lo) / static_cast<double>(element.max_value());
        } else {
          want = amax / element.max_value();
        }
        if (scale.tensor_scale) want /= static_cast<double>(tp.tensor_scale);
        h.scale = f.encode(want, Rounding::NearestEven);
        const double sd = f.decode(h.scale);
        float s = scale.tensor_scale ? static_cast<float>(sd) * tp.tensor_scale : static_cast<float>(sd);
        if (scale.zero_point) {
          h.zero_point = 0;
          if (s > 0.0f) {
            const double z = std::nearbyint(-lo / static_cast<double>(s));  // round-half-even
            h.zero_point = static_cast<std::uint32_t>(std::clamp(z, 0.0, element.max_value()));
          }
        }
        return s;
      }
    }
    return 1.0f;
  }

  // Scale value of a stored header (what choose_header returned).
  float scale_value(const BlockHeader& h, const TensorParams& tp) const {
    switch (scale.kind) {
      case ScaleKind::None: return 1.0f;
      case ScaleKind::E8M0: return static_cast<float>(E8M0::decode(h.scale));
      case ScaleKind::Float: {
        const float sd = static_cast<float>(scale.format.decode(h.scale));
        return scale.tensor_scale ? sd * tp.tensor_scale : sd;
      }
    }
    return 1.0f;
  }

  // ---- one block ------------------------------------------------------------------------
  // Quantises n values x[0..n) into codes; index[i] is the element's logical index in the
  // tensor (the key of its stochastic-rounding bits).
  BlockHeader quantize_block(const float* x, const std::uint64_t* index, std::size_t n, Rounding mode,
                             std::uint64_t seed, const TensorParams& tp, std::uint32_t* codes) const {
    BlockHeader h;
    auto rnd = [&](std::size_t i) {
      return mode == Rounding::Stochastic ? stochastic_bits(seed, index[i]) : 0u;
    };
    if (scale.kind == ScaleKind::None) {
      for (std::size_t i = 0; i < n; ++i) codes[i] = element.encode(static_cast<double>(x[i]), mode, rnd(i));
      return h;
    }
    double amax = 0.0, lo = 0.0, hi = 0.0;
    bool finite = true;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = x[i];
      if (!std::isfinite(v)) { finite = false; continue; }
      amax = std::max(amax, std::fabs(v));
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const float s = choose_header(amax, lo, hi, finite, tp, h);
    if (!(s > 0.0f)) {  // NaN scale or zero scale: codes carry nothing
      const std::uint32_t zero = scale.zero_point ? h.zero_point : element.encode(0.0);
      std::fill(codes, codes + n, zero);
      return h;
    }
    if (scale.zero_point) {
      const FixedPointSpec wide{32, 0, IntRange::TwosComplement};
      const auto qmax = static_cast<std::int64_t>(element.max_value());
      for (std::size_t i = 0; i < n; ++i) {
        const float y = x[i] / s;
        const std::int64_t k = wide.round_int(y, mode, rnd(i)) + h.zero_point;
        codes[i] = static_cast<std::uint32_t>(std::clamp<std::int64_t>(k, 0, qmax));
      }
      return h;
    }
    for (std::size_t i = 0; i < n; ++i) {
      // x and s are finite and s > 0, so y is NaN only where the CPU reads a subnormal x and a
      // subnormal s as zeros (MXCSR's DAZ, set by the caller): x is zero then
      const float y = x[i] / s;
      codes[i] = element.encode(std::isnan(y) ? std::copysign(0.0, static_cast<double>(x[i])) : static_cast<double>(y),
                                mode, rnd(i));
    }
    return h;
  }

  void dequantize_block(const std::uint32_t* codes, std::size_t n, const BlockHeader& h, const TensorParams& tp,
                        float* out) const {
    if (scale.kind == ScaleKind::None) {
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(element.decode(codes[i]));
      return;
    }
    const float s = scale_value(h, tp);
    if (std::isnan(s)) { std::fill(out, out + n, std::numeric_limits<float>::quiet_NaN()); return; }
    if (scale.zero_point) {
      for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(static_cast<std::int64_t>(codes[i]) - static_cast<std::int64_t>(h.zero_point)) * s;
      return;
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(element.decode(codes[i])) * s;
  }
};

}  // namespace lowbit
