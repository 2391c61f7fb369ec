// Block scales: what a block shares and how it is chosen from the block's values.
//
// Three kinds: none (per-element formats), a power of two stored as E8M0 (MX, BFP, block
// minifloat, block log), or a float of some minifloat format (fp32/fp16/bf16/FP8 E4M3:
// integer-per-block, NVFP4, codebooks). Power-of-two scales are chosen by a rule from the
// block's absolute maximum; float scales are absmax / element max, rounded to nearest-even
// in the scale format and saturating; asymmetric blocks add an integer zero point.
#pragma once

#include <cstdint>
#include <string_view>

#include "lowbit/formats/minifloat.hpp"

namespace lowbit {

enum class ScaleKind { None, E8M0, Float };

// How a power-of-two scale 2^se is chosen from the block absmax a (element emax = floor(log2
// of the element's largest value), element max = that largest value).
enum class ScaleRule {
  Floor,   // OCP MX v1.0 §6.3: se = floor(log2 a) - emax; the largest elements may saturate
  Ceil,    // se = ceil(log2 a) - emax (torchao CEIL): never saturates, coarser grid
  Even,    // a rounded (ties away) to the element's top-binade precision, then Floor (torchao EVEN)
  Fit,     // smallest se with a <= element max * 2^se (RCEIL / cuBLAS; BFP: never clips)
  Absmax,  // float scales: s = a / element max, rounded to the scale format (symmetric)
  MinMax,  // float scales with a zero point: s = (max - min) / (2^W - 1), min/max widened to 0
};

inline std::string_view to_string(ScaleRule r) {
  switch (r) {
    case ScaleRule::Floor: return "floor";
    case ScaleRule::Ceil: return "ceil";
    case ScaleRule::Even: return "even";
    case ScaleRule::Fit: return "rceil";
    case ScaleRule::Absmax: return "absmax";
    case ScaleRule::MinMax: return "minmax";
  }
  return "?";
}

struct ScaleSpec {
  ScaleKind kind = ScaleKind::None;
  ScaleRule rule = ScaleRule::Floor;
  MinifloatSpec format{};     // for ScaleKind::Float (always used saturating)
  bool tensor_scale = false;  // NVFP4: a second, per-tensor fp32 scale above the block scales
  bool zero_point = false;    // asymmetric: an integer zero point per block (element width)

  constexpr bool operator==(const ScaleSpec&) const = default;

  constexpr int bits() const {
    switch (kind) {
      case ScaleKind::None: return 0;
      case ScaleKind::E8M0: return 8;
      case ScaleKind::Float: return format.bits();
    }
    return 0;
  }
};

inline constexpr ScaleSpec kNoScale{};
inline constexpr ScaleSpec pow2_scale(ScaleRule rule) { return {ScaleKind::E8M0, rule, {}, false, false}; }
inline constexpr ScaleSpec float_scale(MinifloatSpec f, ScaleRule rule = ScaleRule::Absmax) {
  f.overflow = Overflow::Saturate;
  return {ScaleKind::Float, rule, f, false, rule == ScaleRule::MinMax};
}

}  // namespace lowbit
