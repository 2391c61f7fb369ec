// The standard formats: constexpr factories for each family and alias types for the
// formats people name. Every one is a BlockFormat; nothing here has code of its own.
#pragma once

#include <cstdint>

#include "lowbit/formats/block_format.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/fixed_point.hpp"
#include "lowbit/formats/log_element.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/formats/scale.hpp"
#include "lowbit/formats/student_float.hpp"

namespace lowbit {

using MinifloatFormat = BlockFormat<MinifloatSpec>;
using FixedPointFormat = BlockFormat<FixedPointSpec>;
using CodebookFormat = BlockFormat<CodebookSpec>;
using LogFormat = BlockFormat<LogSpec>;

// ---- factories ------------------------------------------------------------------------------

// One minifloat per value, no scale.
constexpr MinifloatFormat element_format(MinifloatSpec e) { return {e, kNoScale, 1}; }
// One fixed-point number per value, no scale (the paper's per-tensor fixed-point baseline).
constexpr FixedPointFormat element_format(FixedPointSpec e) { return {e, kNoScale, 1}; }

constexpr MinifloatSpec saturating(MinifloatSpec e) {
  e.overflow = Overflow::Saturate;
  return e;
}

// OCP MX: block 32, E8M0 scale, elements saturate; rule Floor is the spec's.
constexpr MinifloatFormat mx_format(MinifloatSpec elem, ScaleRule rule = ScaleRule::Floor, std::int64_t block = 32) {
  return {saturating(elem), pow2_scale(rule), block};
}
// MXINT (microxcaling): W-bit symmetric integer with W-2 fraction bits (MXINT2: 0).
constexpr FixedPointFormat mxint_format(int bits, ScaleRule rule = ScaleRule::Floor, std::int64_t block = 32) {
  return {FixedPointSpec{bits, bits >= 3 ? bits - 2 : 0, IntRange::Symmetric}, pow2_scale(rule), block};
}
// Block floating point: W bits (sign + W-1 magnitude bits) sharing an 8-bit exponent, the
// smallest that holds the block maximum without clipping.
constexpr FixedPointFormat bfp_format(int bits, std::int64_t block) {
  return {FixedPointSpec{bits, 0, IntRange::Symmetric}, pow2_scale(ScaleRule::Fit), block};
}
// Integers with a float absmax scale per block (symmetric, -(2^(W-1)-1) .. 2^(W-1)-1).
constexpr FixedPointFormat int_block_format(int bits, std::int64_t block, MinifloatSpec scale_format) {
  return {FixedPointSpec{bits, 0, IntRange::Symmetric}, float_scale(scale_format), block};
}
// Integers with a power-of-two (E8M0) scale per block, chosen so the maximum never clips.
constexpr FixedPointFormat int_block_e8m0_format(int bits, std::int64_t block) {
  return {FixedPointSpec{bits, 0, IntRange::Symmetric}, pow2_scale(ScaleRule::Fit), block};
}
// Unsigned integers with a float scale and an integer zero point per block (asymmetric).
constexpr FixedPointFormat uint_block_format(int bits, std::int64_t block, MinifloatSpec scale_format) {
  return {FixedPointSpec{bits, 0, IntRange::Unsigned}, float_scale(scale_format, ScaleRule::MinMax), block};
}
// A minifloat with a float absmax scale per block (per tensor: block = kPerTensor).
constexpr MinifloatFormat scaled_minifloat_format(MinifloatSpec elem, std::int64_t block,
                                                  MinifloatSpec scale_format = FP32::spec) {
  return {saturating(elem), float_scale(scale_format), block};
}
// NVFP4: FP4 E2M1 elements, block 16, FP8 E4M3 block scale times a per-tensor fp32 scale.
constexpr MinifloatFormat nvfp4_format() {
  ScaleSpec s = float_scale(FP8_E4M3::spec);
  s.tensor_scale = true;
  return {FP4_E2M1::spec, s, 16};
}
// Codebook with an fp32 absmax scale per block (NF4, SF4).
constexpr CodebookFormat codebook_format(const CodebookSpec& cb, std::int64_t block) {
  return {cb, float_scale(FP32::spec), block};
}
// Block minifloat (Fox et al.; the paper's BM): an E/M minifloat without Inf/NaN sharing an
// 8-bit exponent bias per block; the top binade sits at the block maximum (Floor rule).
constexpr MinifloatFormat block_minifloat_format(int e, int m, std::int64_t block) {
  return {MinifloatSpec{e, m, MinifloatSpec::default_bias(e), true, Specials::FiniteOnly, Overflow::Saturate},
          pow2_scale(ScaleRule::Floor), block};
}
// Block logarithm (the paper's BL): sign + (W-1)-bit exponent sharing an 8-bit bias per
// block; the top power is ceil(log2 max), so nothing clips.
constexpr LogFormat block_log_format(int bits, std::int64_t block) {
  return {LogSpec{bits - 1}, pow2_scale(ScaleRule::Ceil), block};
}

// ---- alias types ---------------------------------------------------------------------------
// Each names one format: lowbit::fake_quant(lowbit::MXFP4{}, in, out).
#define LOWBIT_FORMAT_ALIAS(Name, ...) \
  struct Name {                        \
    static constexpr auto format = __VA_ARGS__; \
  }

LOWBIT_FORMAT_ALIAS(MXFP8_E4M3, mx_format(FP8_E4M3::spec));
LOWBIT_FORMAT_ALIAS(MXFP8_E5M2, mx_format(FP8_E5M2::spec));
LOWBIT_FORMAT_ALIAS(MXFP6_E3M2, mx_format(FP6_E3M2::spec));
LOWBIT_FORMAT_ALIAS(MXFP6_E2M3, mx_format(FP6_E2M3::spec));
LOWBIT_FORMAT_ALIAS(MXFP4, mx_format(FP4_E2M1::spec));
LOWBIT_FORMAT_ALIAS(MXINT8, mxint_format(8));
LOWBIT_FORMAT_ALIAS(MXINT4, mxint_format(4));
LOWBIT_FORMAT_ALIAS(MXINT2, mxint_format(2));
LOWBIT_FORMAT_ALIAS(NVFP4, nvfp4_format());
LOWBIT_FORMAT_ALIAS(NF4, codebook_format(kNF4, 64));
LOWBIT_FORMAT_ALIAS(SF4, codebook_format(kSF4, 64));
LOWBIT_FORMAT_ALIAS(BFP8_B16, bfp_format(8, 16));
LOWBIT_FORMAT_ALIAS(BFP6_B16, bfp_format(6, 16));
LOWBIT_FORMAT_ALIAS(BFP4_B16, bfp_format(4, 16));
LOWBIT_FORMAT_ALIAS(INT8_B32_FP16, int_block_format(8, 32, FP16::spec));  // ggml Q8_0's shape
LOWBIT_FORMAT_ALIAS(INT4_B32_FP16, int_block_format(4, 32, FP16::spec));
LOWBIT_FORMAT_ALIAS(UINT4_B32_FP16, uint_block_format(4, 32, FP16::spec));
LOWBIT_FORMAT_ALIAS(FP8_E4M3_PER_TENSOR, scaled_minifloat_format(FP8_E4M3::spec, kPerTensor));
LOWBIT_FORMAT_ALIAS(BM8_E4M3_B16, block_minifloat_format(4, 3, 16));
LOWBIT_FORMAT_ALIAS(BL8_B16, block_log_format(8, 16));

#undef LOWBIT_FORMAT_ALIAS

}  // namespace lowbit
