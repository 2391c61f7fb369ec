// E4M3 codes through binary16 (F16C), for the AVX2 and AVX-512 kernels alike: an E4M3 code
// becomes a binary16 of its value times 2^-8 in three integer instructions, and vcvtph2ps
// decodes it exactly, normal and subnormal codes with no cases (NaN codes aside). For NVFP4's
// block scales the 2^-8 is undone inside the tensor-scale multiply the table's values already
// carry; element codes are multiplied by 2^8, or the activations are where the kernels are
// given a copy of them times 2^8 (FloatActArgs::x256). The AVX-512 float kernel converts 32
// lanes at once, in fp8_column_pair.
#pragma once

#include <cmath>
#include <cstdint>

#include "lowbit/kernels/panel_args.hpp"
#include "lowbit/kernels/target.hpp"

namespace lowbit::kernels {

LOWBIT_TARGET_AVX2_BEGIN

// E4M3 codes, each in the top byte of a 16-bit lane, as binary16s of their values times 2^-8:
// an E4M3 code's exponent and mantissa moved into a binary16's (c << 7) and its sign left at
// bit 15 give exactly that, normal and subnormal codes alike (not the NaN codes S.1111.111),
// so vcvtph2ps decodes them with no cases. One arithmetic shift moves them; it copies the sign
// into bit 14, which the mask clears.
LOWBIT_ALWAYS_INLINE __m256i e4m3_as_half(__m256i top) {
  return _mm256_and_si256(_mm256_srai_epi16(top, 1), _mm256_set1_epi16(static_cast<std::int16_t>(0xBFFF)));
}

// Sixteen E4M3 codes, one a byte, as e4m3_as_half's binary16s in the same order.
LOWBIT_ALWAYS_INLINE __m256i e4m3_bytes_as_half(__m128i codes) {
  return e4m3_as_half(_mm256_slli_epi16(_mm256_cvtepu8_epi16(codes), 8));
}

// Whether any of sixteen E4M3 codes is a NaN code (S.1111.111), which e4m3_as_half does not
// decode.
LOWBIT_ALWAYS_INLINE bool any_e4m3_nan(__m128i codes) {
  const __m128i low7 = _mm_set1_epi8(0x7F);
  return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(codes, low7), low7)) != 0;
}

LOWBIT_TARGET_END

LOWBIT_TARGET_AVX512_BEGIN

// e4m3_as_half on 32 lanes.
LOWBIT_ALWAYS_INLINE __m512i e4m3_as_half(__m512i top) {
  return _mm512_and_si512(_mm512_srai_epi16(top, 1), _mm512_set1_epi16(static_cast<std::int16_t>(0xBFFF)));
}

LOWBIT_TARGET_END

// What the binary16s above are multiplied by to give the table's values (before the unit):
// 2^8 times the tensor scale. v * (2^8 * ts) == (v * 2^8) * ts bit for bit, one rounding of the
// same product, since 2^8 * ts is exact whenever it is finite.
inline float e4m3_half_factor(const PanelScale& s) { return 256.0f * (s.has_tensor_scale ? s.tensor_scale : 1.0f); }

// Whether a panel's block scales can be decoded this way: one-byte codes whose table is E4M3's
// (NVFP4) and a finite factor.
inline bool e4m3_scales_through_half(const PanelScale& s) {
  return s.kind == PanelScaleKind::Lut8 && s.lut_is_e4m3 && s.bytes == 1 && std::isfinite(e4m3_half_factor(s));
}

}  // namespace lowbit::kernels
