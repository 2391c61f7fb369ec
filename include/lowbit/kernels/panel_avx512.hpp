// The packed-matmul kernels on the AVX-512 path: one panel's 16 rows are the 16 lanes, so a
// lane accumulates one output and no horizontal sums are needed. Bit-identical to
// kernels/panel_scalar.hpp (same operations per lane in the same order).
//   integer kernel (AVX512-VNNI): weights become u8 = w + 128 through a vpermb table (4-bit)
//     or an xor (8-bit), vpdpbusd multiplies them by four int8 activations broadcast to all
//     lanes, and 128 * sum(q) per granule takes the offset back out: exact int32 dots.
//   float kernel: codes become floats through vpermps (4- and 6-bit), a shift (8-bit
//     integers), binary16 conversions (E4M3, E5M2) or a gather (other 8-bit elements), then
//     FMAs with broadcast activations; from 8 or 16 activation rows on, into a tile of decoded
//     columns that all the rows read.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "lowbit/kernels/e4m3_half.hpp"
#include "lowbit/kernels/panel_args.hpp"
#include "lowbit/kernels/panel_scalar.hpp"
#include "lowbit/kernels/target.hpp"

namespace lowbit::kernels::avx512 {

LOWBIT_TARGET_AVX512_BEGIN

inline __mmask64 panel_byte_mask(int rows, int bytes_per_row) {
  const int n = rows * bytes_per_row;
  return n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
}

// The 16 block scales of a panel for one kind of scale code, before the tensor scale and the
// unit (lanes past `rows` are don't-care).
template <PanelScaleKind K>
inline __m512 panel_scale_codes(const PanelScale& s, const std::uint8_t* p, __mmask16 m) {
  if constexpr (K == PanelScaleKind::Lut8) {
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, s.lut, 4);
  } else if constexpr (K == PanelScaleKind::E8M0) {
    const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
    __m512i bits = _mm512_slli_epi32(c, 23);
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(c, _mm512_setzero_si512()), _mm512_set1_epi32(0x00400000));
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(255)), _mm512_set1_epi32(0x7FC00000));
    return _mm512_castsi512_ps(bits);
  } else if constexpr (K == PanelScaleKind::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
  } else if constexpr (K == PanelScaleKind::BF16) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  } else if constexpr (K == PanelScaleKind::F32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else {
    return _mm512_set1_ps(s.constant);
  }
}

// Block b's 16 scales of a panel with scale codes of kind K: times the tensor scale, then the
// unit (the scalar path's order; a multiply by 1 is exact and skipped). Lut8 and None values
// are final.
template <PanelScaleKind K>
struct ScaleDecoder {
  static constexpr bool kFinal = K == PanelScaleKind::Lut8 || K == PanelScaleKind::None;
  const PanelScale& s;
  const std::uint8_t* codes;
  std::int64_t stride;
  __mmask16 m;
  bool tensor, unit_one;
  __m512 ts, unit;
  explicit ScaleDecoder(const PanelArgs& w)
      : s(w.scale), codes(w.scales), stride(w.rows * w.scale.bytes), m(static_cast<__mmask16>((1u << w.rows) - 1)),
        tensor(!kFinal && w.scale.has_tensor_scale), unit_one(kFinal || w.scale.unit == 1.0f),
        ts(_mm512_set1_ps(w.scale.tensor_scale)), unit(_mm512_set1_ps(w.scale.unit)) {}
  __m512 operator()(std::int64_t b) const {
    __m512 v = panel_scale_codes<K>(s, codes + b * stride, m);
    if (tensor) v = _mm512_mul_ps(v, ts);
    if (!unit_one) v = _mm512_mul_ps(v, unit);
    return v;
  }
};

// E8M0 scales for the 4- and 6-bit kernels of one activation row: codes u+1 .. 254 (unit =
// 2^-u) give normal floats 2^(c-127-u), whose bits are (c - u) << 23, exactly ScaleDecoder's
// product; a block with any other code (NaN, a result below the normal range) takes
// ScaleDecoder's route. MXFP4 x MXINT8 at N = 1 from L3: +10%. (The 8-bit kernel measured 15%
// slower with it and keeps ScaleDecoder.)
struct E8M0Decoder : ScaleDecoder<PanelScaleKind::E8M0> {
  int unit_exp;
  explicit E8M0Decoder(const PanelArgs& w) : ScaleDecoder(w), unit_exp(-std::ilogb(w.scale.unit)) {}
  __m512 operator()(std::int64_t b) const {
    const __m128i c8 = _mm_maskz_loadu_epi8(m, codes + b * stride);
    const __mmask16 normal = _mm_mask_cmp_epu8_mask(m, c8, _mm_set1_epi8(static_cast<char>(unit_exp)), _MM_CMPINT_NLE) &
                             _mm_cmp_epu8_mask(c8, _mm_set1_epi8(static_cast<char>(255)), _MM_CMPINT_NE);
    if (!tensor && normal == m)
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_cvtepu8_epi32(c8), _mm512_set1_epi32(unit_exp)), 23));
    return ScaleDecoder::operator()(b);
  }
};

// E4M3 codes (one per 32-bit lane) to their values, as e4m3_value does with the NaNs of `table`.
struct E4M3Values {
  __m512 nan_pos, nan_neg;
  explicit E4M3Values(const float* table) : nan_pos(_mm512_set1_ps(table[0x7F])), nan_neg(_mm512_set1_ps(table[0xFF])) {}
  // The values of codes that are not NaN (NaN codes give +-480).
  LOWBIT_ALWAYS_INLINE static __m512 finite(__m512i c) {
    const __m512i mag = _mm512_and_si512(c, _mm512_set1_epi32(0x7F));
    __m512 v = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(mag, 20), _mm512_set1_epi32(120 << 23)));
    v = _mm512_mask_mul_ps(v, _mm512_cmplt_epu32_mask(mag, _mm512_set1_epi32(8)), _mm512_cvtepi32_ps(mag), _mm512_set1_ps(0x1p-9f));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), _mm512_slli_epi32(_mm512_srli_epi32(c, 7), 31)));
  }
  LOWBIT_ALWAYS_INLINE __m512 with_nans(__m512 v, __m512i c) const {
    v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(0x7F)), nan_pos);
    return _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(0xFF)), nan_neg);
  }
  LOWBIT_ALWAYS_INLINE __m512 operator()(__m512i c) const { return with_nans(finite(c), c); }
};

// Lut8 scales whose table is E4M3's (NVFP4, checked by table_is_e4m3): decoded
// arithmetically, then times the tensor scale and the unit, the table's own products, with
// the table's NaNs. A gather of 16 table entries per block was most of NVFP4's time at N = 1.
struct E4M3Decoder {
  const std::uint8_t* codes;
  std::int64_t stride;
  __mmask16 m;
  bool tensor, unit_one;
  __m512 ts, unit;
  E4M3Values values;
  explicit E4M3Decoder(const PanelArgs& w)
      : codes(w.scales), stride(w.rows * w.scale.bytes), m(static_cast<__mmask16>((1u << w.rows) - 1)),
        tensor(w.scale.has_tensor_scale), unit_one(w.scale.unit == 1.0f), ts(_mm512_set1_ps(w.scale.tensor_scale)),
        unit(_mm512_set1_ps(w.scale.unit)), values(w.scale.lut) {}
  LOWBIT_ALWAYS_INLINE __m128i load(std::int64_t b) const { return _mm_maskz_loadu_epi8(m, codes + b * stride); }
  // Block b's scales from its 16 codes c8.
  LOWBIT_ALWAYS_INLINE __m512 decode(__m128i c8) const {
    const __m512i c = _mm512_cvtepu8_epi32(c8);
    __m512 v = E4M3Values::finite(c);
    if (any_e4m3_nan(c8)) v = values.with_nans(v, c);
    if (tensor) v = _mm512_mul_ps(v, ts);
    if (!unit_one) v = _mm512_mul_ps(v, unit);
    return v;
  }
  __m512 operator()(std::int64_t b) const { return decode(load(b)); }
};

// E4M3Decoder where the factor allows (e4m3_scales_through_half, i.e. nearly always): a
// block's 16 codes go through binary16 (kernels/e4m3_half.hpp), 5 instructions in place of
// 12; NVFP4 x int8 at N = 1 with W in cache, 63 -> 73 GFLOP/s on one thread (from DRAM
// 1.00-1.03x). Blocks holding a NaN code take E4M3Decoder's route. Chosen per call
// (with_e4m3_decoder), as the AVX2 path chooses E4M3RowScales.
struct E4M3HalfDecoder {
  E4M3Decoder exact;
  __m512 half_factor;
  explicit E4M3HalfDecoder(const PanelArgs& w) : exact(w), half_factor(_mm512_set1_ps(e4m3_half_factor(w.scale))) {}
  __m512 operator()(std::int64_t b) const {
    const __m128i c8 = exact.load(b);
    if (!any_e4m3_nan(c8)) [[likely]]
      return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtph_ps(e4m3_bytes_as_half(c8)), half_factor), exact.unit);
    return exact.decode(c8);
  }
};

// Calls f(decoder) with the decoder of w's E4M3 block scales.
template <class F>
inline void with_e4m3_decoder(const PanelArgs& w, F&& f) {
  if (e4m3_scales_through_half(w.scale)) f(E4M3HalfDecoder(w));
  else f(E4M3Decoder(w));
}

// Scales decoded beforehand, 16 floats per block.
struct DecodedScales {
  const float* f;
  __m512 operator()(std::int64_t b) const { return _mm512_loadu_ps(f + b * kPanelRows); }
};


inline __m512i broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Every block scale of the panel as 16 floats per block, decoded once per kernel call: a
// kernel walks a panel once per group of activation rows (64 times at N = 512), and decoding
// in the loop measured 10% of the integer kernel's time. One buffer per thread, reused.
inline const float* decoded_panel_scales(const PanelArgs& w) {
  thread_local std::vector<float> buf;
  const std::int64_t blocks = (w.padded_cols + w.block - 1) / w.block;
  buf.resize(static_cast<std::size_t>(blocks * kPanelRows));
  float* out = buf.data();
  auto decode_all = [&](const auto& decode) {
    for (std::int64_t b = 0; b < blocks; ++b) _mm512_storeu_ps(out + b * kPanelRows, decode(b));
  };
  if (w.scale.kind == PanelScaleKind::Lut8 && w.scale.lut_is_e4m3) with_e4m3_decoder(w, decode_all);
  else with_scale_kind(w.scale.kind, [&](auto kind) { decode_all(ScaleDecoder<decltype(kind)::value>(w)); });
  return out;
}

// ---- float kernel ------------------------------------------------------------------------
// Code width and decoding are template parameters so the inner loop has no branches, and the
// four partial sums p[n][j] have compile-time indices (k & 3 == j: octets start on multiples
// of 8), so they stay in registers.
//
// How 8-bit codes become floats. E4M3: the codes of the octet half hold no NaN code (checked
// once per 64 bytes); E4M3Nan: some do, and NaN lanes take the table's NaNs. E4M3Half and
// E4M3NanHalf: the same, as values times 2^-8, for activations times 2^8 (FloatActArgs::x256).
enum class Decode8 { None, Integer, E4M3, E4M3Nan, E4M3Half, E4M3NanHalf, E5M2, Gather };

// The code values of 4- and 6-bit codes as registers: 16 entries (vpermps) or 64 in four
// registers (two vpermt2ps and a blend on bit 5), in place of a 16-lane gather per column
// (MXFP6 weight-only, one activation row: 5 -> 14 GFLOP/s); E4M3 codes decoded arithmetically.
// An index's bits above 3 (4-bit codes) or 5 (6-bit) are not read.
template <int BITS>
struct FloatCodeTable {
  __m512 t[BITS == 6 ? 4 : 1];
  E4M3Values e4m3;  // 8-bit codes with E4M3's values (PanelArgs::fvalue_is_e4m3)
  explicit FloatCodeTable(const PanelArgs& w) : e4m3(w.fvalue) {
    if constexpr (BITS == 4 || BITS == 6)
      for (int i = 0; i < (BITS == 6 ? 4 : 1); ++i) t[i] = _mm512_loadu_ps(w.fvalue + 16 * i);
    else
      t[0] = _mm512_setzero_ps();
  }
  LOWBIT_ALWAYS_INLINE __m512 operator()(__m512i idx) const {
    if constexpr (BITS == 4) return _mm512_permutexvar_ps(idx, t[0]);
    else
      return _mm512_mask_blend_ps(_mm512_test_epi32_mask(idx, _mm512_set1_epi32(32)), _mm512_permutex2var_ps(t[0], idx, t[1]),
                                  _mm512_permutex2var_ps(t[2], idx, t[3]));
  }
};

// FP8 codes (E4M3 without NaN codes, E5M2) of columns J and J + 1 of a half octet (v: the 16
// rows' four codes per 32-bit lane) as 32 binary16 lanes, column J in the low 256 bits. A
// vpshufb puts each code in a lane's top byte with zeros below, columns J and J + 1 of each
// 128-bit lane's four rows in its two halves, and a vpermq gathers the halves; a column at a
// time had taken a shift, a mask and a vpmovdw. An E5M2 code is then the binary16 of its
// value; an E4M3 code becomes that of its value times 2^-8 (e4m3_as_half's shift and mask).
// MXFP8 at N = 1, one thread: E4M3 13.0 -> 21.0 GFLOP/s with W in cache over both steps (its
// float-bit decoding before), E5M2 24.3 -> 29.7; from DRAM 1.11-1.14x over the column at a time.
template <Decode8 D8, int J>
LOWBIT_ALWAYS_INLINE __m512i fp8_column_pair(__m512i v) {
  static constexpr auto kBytes = [] {
    std::array<std::uint8_t, 64> idx{};
    for (int b = 0; b < 64; ++b)  // slot b / 2 of a 128-bit lane: row slot % 4, column J + slot / 4
      idx[b] = b % 2 == 0 ? 0x80 : static_cast<std::uint8_t>(4 * ((b % 16) / 2 % 4) + J + (b % 16) / 8);
    return idx;
  }();
  const __m512i top = _mm512_shuffle_epi8(v, _mm512_loadu_si512(kBytes.data()));
  const __m512i pair = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), top);
  if constexpr (D8 == Decode8::E5M2) return pair;
  else return e4m3_as_half(pair);
}

// The 16 floats of one column from fp8_column_pair's binary16s (times 2^8 for E4M3: exact;
// E4M3Half keeps them as they are).
template <Decode8 D8>
LOWBIT_ALWAYS_INLINE __m512 fp8_column(__m256i h) {
  if constexpr (D8 == Decode8::E4M3) return _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
  else return _mm512_cvtph_ps(h);
}

// The 16 values of column 8o + 4H + J from one 32-bit lane of v per row (bits 8J .. 8J+7, or
// the nibble at 8J + 4H for 4-bit codes). A template, so that H and J are constants and the
// shifts immediates. FloatCodeTable reads only the index bits it needs (bits 0-3 for 4-bit
// codes, 0-5 for 6-bit), so the bits above are left as they fall: a 4-bit column is a shift
// and a vpermps, and a 6-bit index one vpternlogd of the nibble and the top bits (it took
// five instructions). At N = 1 the float kernel is bound by these instructions.
template <int BITS, Decode8 D8, int H, int J>
LOWBIT_ALWAYS_INLINE __m512 column_values(__m512i v, const PanelArgs& w, const FloatCodeTable<BITS>& lut, __m512i hi6) {
  if constexpr (BITS == 4) {
    return lut(_mm512_srli_epi32(v, 8 * J + 4 * H));
  } else if constexpr (BITS == 6) {  // v: the low nibbles; hi6: the top bits already shifted to bits 0-1 of each byte
    __m512i top = _mm512_slli_epi32(hi6, 4);  // column J's top bits to bits 4-5
    if constexpr (J > 0) top = _mm512_srli_epi32(hi6, 8 * J - 4);
    // bits 0-3 from the nibble, the rest from top: (a & c) | (b & ~c)
    return lut(_mm512_ternarylogic_epi32(_mm512_srli_epi32(v, 8 * J + 4 * H), top, _mm512_set1_epi32(0x0F), 0xE4));
  } else if constexpr (D8 == Decode8::Integer) {
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * J), 24)), _mm512_set1_ps(w.code_unit));
  } else if constexpr (D8 == Decode8::E4M3Nan || D8 == Decode8::E4M3NanHalf) {
    const __m512 values = lut.e4m3(_mm512_and_si512(_mm512_srli_epi32(v, 8 * J), _mm512_set1_epi32(0xFF)));
    if constexpr (D8 == Decode8::E4M3Nan) return values;
    else return _mm512_mul_ps(values, _mm512_set1_ps(0x1p-8f));  // exact: E4M3 values are 2^-9 .. 448
  } else {
    return _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * J), _mm512_set1_epi32(0xFF)), w.fvalue, 4);
  }
}

// The eight columns of octet o of the panel, in order: f.template operator()<C>(values) for
// C = 0..7, the 16 rows' values of column 8o + C.
template <int BITS, Decode8 D8, class F>
LOWBIT_ALWAYS_INLINE void decode_float_octet(const PanelArgs& w, const FloatCodeTable<BITS>& lut, __mmask64 bm, std::int64_t o, F&& f) {
  const int rows = w.rows;
  const auto four = [&]<Decode8 D, int H>(__m512i v, __m512i hi6) {
    if constexpr (D == Decode8::E4M3 || D == Decode8::E4M3Half || D == Decode8::E5M2) {
      const __m512i c01 = fp8_column_pair<D, 0>(v), c23 = fp8_column_pair<D, 2>(v);
      f.template operator()<4 * H + 0>(fp8_column<D>(_mm512_castsi512_si256(c01)));
      f.template operator()<4 * H + 1>(fp8_column<D>(_mm512_extracti64x4_epi64(c01, 1)));
      f.template operator()<4 * H + 2>(fp8_column<D>(_mm512_castsi512_si256(c23)));
      f.template operator()<4 * H + 3>(fp8_column<D>(_mm512_extracti64x4_epi64(c23, 1)));
    } else {
      f.template operator()<4 * H + 0>(column_values<BITS, D, H, 0>(v, w, lut, hi6));
      f.template operator()<4 * H + 1>(column_values<BITS, D, H, 1>(v, w, lut, hi6));
      f.template operator()<4 * H + 2>(column_values<BITS, D, H, 2>(v, w, lut, hi6));
      f.template operator()<4 * H + 3>(column_values<BITS, D, H, 3>(v, w, lut, hi6));
    }
  };
  const __m512i none = _mm512_setzero_si512();
  _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * BITS + kPrefetchBytes), _MM_HINT_T1);
  if constexpr (BITS == 8)
    _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * 8 + 64 + kPrefetchBytes), _MM_HINT_T1);
  if constexpr (BITS == 4) {
    const __m512i v = _mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 4);
    four.template operator()<D8, 0>(v, none);
    four.template operator()<D8, 1>(v, none);
  } else if constexpr (BITS == 6) {
    const std::uint8_t* pair = w.codes + (o >> 1) * rows * 12;
    const int odd = static_cast<int>(o & 1);
    const __m512i v = _mm512_maskz_loadu_epi8(bm, pair + odd * rows * 4);
    const __m512i hi = _mm512_maskz_loadu_epi8(bm, pair + rows * 8);
    four.template operator()<D8, 0>(v, _mm512_srl_epi32(hi, _mm_cvtsi32_si128(panel_high_shift(odd, 0))));
    four.template operator()<D8, 1>(v, _mm512_srl_epi32(hi, _mm_cvtsi32_si128(panel_high_shift(odd, 1))));
  } else if constexpr (D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half) {
    constexpr Decode8 kNan = D8 == Decode8::E4M3 ? Decode8::E4M3Nan : Decode8::E4M3NanHalf;
    const __m512i nan = _mm512_set1_epi8(0x7F);
    const auto half = [&]<int H>() {
      const __m512i v = _mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8 + H * rows * 4);
      if (_mm512_cmpeq_epi8_mask(_mm512_and_si512(v, nan), nan)) four.template operator()<kNan, H>(v, none);
      else four.template operator()<D8, H>(v, none);
    };
    half.template operator()<0>();
    half.template operator()<1>();
  } else {
    four.template operator()<D8, 0>(_mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8), none);
    four.template operator()<D8, 1>(_mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8 + rows * 4), none);
  }
}

// The end of a weight block for NR rows: y += ((p0 + p1) + (p2 + p3)) * ws, then p is cleared
// for the next block. panel_float_nr and tile_float_nr both end their blocks here, so their
// bits agree.
template <int NR>
LOWBIT_ALWAYS_INLINE void add_float_block(__m512 (&p)[NR][4], __m512 ws, __m512 (&y)[NR]) {
  for (int n = 0; n < NR; ++n) {
    const __m512 b = _mm512_add_ps(_mm512_add_ps(p[n][0], p[n][1]), _mm512_add_ps(p[n][2], p[n][3]));
    y[n] = _mm512_fmadd_ps(b, ws, y[n]);
    for (int t = 0; t < 4; ++t) p[n][t] = _mm512_setzero_ps();
  }
}

// NR activation rows, the codes decoded in the loop (fewer rows than kTileRows<BITS, D8>).
template <int NR, int BITS, Decode8 D8>
inline void panel_float_nr(const PanelArgs& w, const float* scales, const FloatActArgs& a, std::int64_t n0, PanelOut out) {
  const int rows = w.rows;
  const __mmask64 bm = panel_byte_mask(rows, 4);
  const float* x[NR];
  for (int n = 0; n < NR; ++n) x[n] = a.x + (n0 + n) * w.padded_cols;
  const FloatCodeTable<BITS> lut(w);
  __m512 y[NR];
  for (int n = 0; n < NR; ++n) y[n] = _mm512_setzero_ps();
  __m512 p[NR][4];
  for (int n = 0; n < NR; ++n)
    for (int t = 0; t < 4; ++t) p[n][t] = _mm512_setzero_ps();
  for (std::int64_t k0 = 0, blk = 0; k0 < w.padded_cols; k0 += w.block, ++blk) {
    const std::int64_t k1 = std::min(k0 + w.block, w.padded_cols);
    for (std::int64_t o = k0 >> 3; o < (k1 >> 3); ++o) {
      const std::int64_t k = o << 3;
      decode_float_octet<BITS, D8>(w, lut, bm, o, [&]<int C>(__m512 wv) {
        for (int n = 0; n < NR; ++n) p[n][C & 3] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[n][k + C]), p[n][C & 3]);
      });
    }
    add_float_block<NR>(p, _mm512_loadu_ps(scales + blk * kPanelRows), y);
  }
  const __mmask16 lm = static_cast<__mmask16>((1u << rows) - 1);
  for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(out.y + n * out.stride, lm, y[n]);
}

// From kTileRows<BITS, D8> activation rows on, the panel is decoded once per chunk of whole
// blocks (about kTileColumns columns: 16 KiB of floats, in L1) into a tile of 16 floats per
// column, and every group of rows reads it: one decode for all the rows, and an inner loop of
// a load and NR multiply-adds per column. The totals y stay in registers through a chunk
// (1.05-1.2x over a load and a store per block) and in the output rows between chunks; each
// lane takes the same operations in the same order as panel_float_nr (partial sum c & 3
// of column c, then (p0 + p1) + (p2 + p3) times the block scale), so the bits are the same.
// 4-bit codes (one vpermps a column) and 8-bit integers (a shift, a convert and a multiply)
// decode cheaply, so the tile pays from 16 rows on (at 8 it lost 15-20%); the other codes from
// 8 (E4M3 1.3x, E5M2 1.2x, E3M2 and BFP6 1.2-1.3x at N = 8).
template <int BITS, Decode8 D8>
inline constexpr int kTileRows = BITS == 4 || D8 == Decode8::Integer ? 16 : 8;
inline constexpr std::int64_t kTileColumns = 256;

// NR rows over the tile of columns [c0, c1), whole blocks from c0.
template <int NR>
inline void tile_float_nr(const PanelArgs& w, const float* tile, const float* scales, const FloatActArgs& a, std::int64_t n0,
                          std::int64_t c0, std::int64_t c1, PanelOut out) {
  const __mmask16 lm = static_cast<__mmask16>((1u << w.rows) - 1);
  const float* x[NR];
  for (int n = 0; n < NR; ++n) x[n] = a.x + (n0 + n) * w.padded_cols;
  __m512 y[NR];  // the first chunk starts the totals, the others continue them from the output
  for (int n = 0; n < NR; ++n) y[n] = c0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lm, out.y + n * out.stride);
  __m512 p[NR][4];
  for (int n = 0; n < NR; ++n)
    for (int t = 0; t < 4; ++t) p[n][t] = _mm512_setzero_ps();
  for (std::int64_t k0 = c0, blk = c0 / w.block; k0 < c1; k0 += w.block, ++blk) {
    const std::int64_t k1 = std::min(k0 + w.block, c1);
    for (std::int64_t k = k0; k < k1; k += 4) {
      const float* col = tile + (k - c0) * kPanelRows;
      const auto column = [&]<int J>() {
        __m512 wv = _mm512_loadu_ps(col + J * kPanelRows);
        asm("" : "+v"(wv));  // one load per column, not one folded into each row's multiply-add
        for (int n = 0; n < NR; ++n) p[n][J] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[n][k + J]), p[n][J]);
      };
      column.template operator()<0>();
      column.template operator()<1>();
      column.template operator()<2>();
      column.template operator()<3>();
    }
    add_float_block<NR>(p, _mm512_loadu_ps(scales + blk * kPanelRows), y);
  }
  for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(out.y + n * out.stride, lm, y[n]);
}

template <int BITS, Decode8 D8>
inline void panel_float_tiled(const PanelArgs& w, const float* scales, const FloatActArgs& a, std::int64_t n0, int nr,
                              PanelOut out) {
  const std::int64_t chunk = std::max<std::int64_t>(w.block, kTileColumns / w.block * w.block);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<std::size_t>(std::min(chunk, w.padded_cols) * kPanelRows));
  float* tile = buf.data();
  const __mmask64 bm = panel_byte_mask(w.rows, 4);
  const FloatCodeTable<BITS> lut(w);
  for (std::int64_t c0 = 0; c0 < w.padded_cols; c0 += chunk) {
    const std::int64_t c1 = std::min(c0 + chunk, w.padded_cols);
    for (std::int64_t o = c0 >> 3; o < (c1 >> 3); ++o)
      decode_float_octet<BITS, D8>(w, lut, bm, o, [&]<int C>(__m512 wv) {
        _mm512_storeu_ps(tile + ((o << 3) + C - c0) * kPanelRows, wv);
      });
    // Six rows: 24 partial sums and the column in registers.
    for_row_groups<6, 0>(n0, nr, out, [&]<int R>(std::int64_t m, PanelOut o) { tile_float_nr<R>(w, tile, scales, a, m, c0, c1, o); });
  }
}

template <int BITS, Decode8 D8>
inline void panel_float_rows(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  const float* s = decoded_panel_scales(w);
  if (nr >= kTileRows<BITS, D8>) return panel_float_tiled<BITS, D8>(w, s, a, n0, nr, out);
  if constexpr (D8 == Decode8::E4M3)
    if (a.x256) {
      const FloatActArgs a256{a.x256};
      return for_row_groups<4, 0>(n0, nr, out, [&]<int R>(std::int64_t m, PanelOut o) {
        panel_float_nr<R, BITS, Decode8::E4M3Half>(w, s, a256, m, o);
      });
    }
  for_row_groups<4, 0>(n0, nr, out, [&]<int R>(std::int64_t m, PanelOut o) { panel_float_nr<R, BITS, D8>(w, s, a, m, o); });
}

inline void panel_float(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  if (w.bits == 4) return panel_float_rows<4, Decode8::None>(w, a, n0, nr, out);
  if (w.bits == 6) return panel_float_rows<6, Decode8::None>(w, a, n0, nr, out);
  if (w.identity8) return panel_float_rows<8, Decode8::Integer>(w, a, n0, nr, out);
  if (w.fvalue_is_e4m3) return panel_float_rows<8, Decode8::E4M3>(w, a, n0, nr, out);
  if (w.fvalue_is_e5m2) return panel_float_rows<8, Decode8::E5M2>(w, a, n0, nr, out);
  panel_float_rows<8, Decode8::Gather>(w, a, n0, nr, out);
}

LOWBIT_TARGET_END

// ---- integer kernel (VNNI; VBMI for the 6-bit table) -----------------------------------------
LOWBIT_TARGET_AVX512VNNI_BEGIN

// 64 bytes of a panel's codes: a full panel (16 rows, FULL) reads whole vectors; a short one
// only its rows' bytes (mask bm).
template <bool FULL>
LOWBIT_ALWAYS_INLINE __m512i load_panel_bytes(__mmask64 bm, const std::uint8_t* p) {
  if constexpr (FULL) return _mm512_loadu_si512(p);
  else return _mm512_maskz_loadu_epi8(bm, p);
}

// The float step that ends a granule in the integer kernels: y + dot times (weight scales
// times the activation scale), in the scalar path's order (its bits).
LOWBIT_ALWAYS_INLINE __m512 add_granule(__m512 y, __m512i dot, __m512 ws, float x) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(ws, _mm512_set1_ps(x)), y);
}

// Octet o as two vectors of u8 = w + 128 (columns 8o..8o+3 and 8o+4..8o+7 of the 16 rows).
// FULL: the panel has all 16 rows, so offsets are constants times o.
template <int BITS, bool FULL = false>
LOWBIT_ALWAYS_INLINE void decode_octet_u8(const PanelArgs& w, __mmask64 bm, __m512i lut, std::int64_t o, __m512i& w0,
                                          __m512i& w1) {
  const int rows = FULL ? kPanelRows : w.rows;
  _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * BITS + kPrefetchBytes), _MM_HINT_T1);
  if constexpr (BITS == 4) {
    // vpermb reads the low six bits of each index byte and the table repeats its 16 entries
    // four times, so the bits above the nibble need no masking.
    const __m512i v = load_panel_bytes<FULL>(bm, w.codes + o * rows * 4);
    w0 = _mm512_permutexvar_epi8(v, lut);
    w1 = _mm512_permutexvar_epi8(_mm512_srli_epi16(v, 4), lut);
  } else if constexpr (BITS == 6) {
    // Six-bit index = low nibble | top two bits << 4, looked up in a 64-byte table (vpermb).
    const __m512i low4 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    const std::uint8_t* pair = w.codes + (o >> 1) * rows * 12;
    const int odd = static_cast<int>(o & 1);
    const __m512i v = load_panel_bytes<FULL>(bm, pair + odd * rows * 4);
    const __m512i hi = load_panel_bytes<FULL>(bm, pair + rows * 8);
    // Bits 2(2 odd + g) .. +1 of each byte moved to bits 4-5 (shifts stay inside a byte after the mask).
    const __m512i h0 = odd ? hi : _mm512_slli_epi16(hi, 4);
    const __m512i h1 = odd ? _mm512_srli_epi16(hi, 2) : _mm512_slli_epi16(hi, 2);
    w0 = _mm512_permutexvar_epi8(_mm512_or_si512(_mm512_and_si512(v, low4), _mm512_and_si512(h0, top)), lut);
    w1 = _mm512_permutexvar_epi8(_mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4), _mm512_and_si512(h1, top)), lut);
  } else {
    _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * 8 + 64 + kPrefetchBytes), _MM_HINT_T1);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    w0 = _mm512_xor_si512(load_panel_bytes<FULL>(bm, w.codes + o * rows * 8), flip);
    w1 = _mm512_xor_si512(load_panel_bytes<FULL>(bm, w.codes + o * rows * 8 + rows * 4), flip);
  }
}

// The codes' u8 values (w + 128) as a 64-entry vpermb table: 6-bit codes index it directly,
// 4-bit codes see their 16 entries repeated four times (8-bit codes need no table).
template <int BITS>
inline __m512i u8_code_table(const PanelArgs& w) {
  alignas(64) std::uint8_t lut_u8[64] = {};
  if constexpr (BITS != 8)
    for (int c = 0; c < 64; ++c) lut_u8[c] = static_cast<std::uint8_t>(w.ivalue[c & ((1 << BITS) - 1)] + 128);
  return _mm512_load_si512(lut_u8);
}

// O octets (one or two: 8 or 16 columns) of the panel times NR activation rows: product j of
// row n goes to chain j % A.
template <int NR, int A, int BITS, bool FULL, int O = 2>
LOWBIT_ALWAYS_INLINE void int_octets(const PanelArgs& w, __mmask64 bm, __m512i lut, const std::int8_t* const* q,
                                     std::int64_t o, __m512i (&acc)[NR][A]) {
  __m512i u[2 * O];
  LOWBIT_UNROLL
  for (int i = 0; i < O; ++i) decode_octet_u8<BITS, FULL>(w, bm, lut, o + i, u[2 * i], u[2 * i + 1]);
  LOWBIT_UNROLL
  for (int n = 0; n < NR; ++n)
    LOWBIT_UNROLL
    for (int j = 0; j < 2 * O; ++j) acc[n][j % A] = _mm512_dpbusd_epi32(acc[n][j % A], u[j], broadcast4(q[n] + 8 * o + 4 * j));
}

// NR activation rows share each decoded weight vector. A few rows get four vpdpbusd chains
// each so one row's dot products do not wait on each other's latency; eight rows have enough
// independent chains with two each, which leaves registers for them. A granule of 16 has only
// four products a row, so from six rows on one chain each saves the add that joins them
// (+2-6% for BFP8 and NVFP4; for granules of 32 one chain measured even).
// - FULL: the panel has all 16 rows, so codes load unmasked at offsets that are constants
//   times the octet.
// - G > 0: every granule is G columns (16 or 32; whole_granule), so its octets are straight-
//   line code; in a loop of two or four octets GCC copied every row's chains at each turn
//   (1 thread, N = 128 and 512: +8-16% for MXFP4, int4/int8 per 32 and MXFP6, +26-36% for BFP
//   per 16).
// Integer sums are exact in any order, so the bits are those of the scalar path.
template <int NR, int BITS, int G, bool FULL, class Scales>
inline void panel_int_nr(const PanelArgs& w, const Scales& scales, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  constexpr int A = G == 16 ? (NR >= 6 ? 1 : 2) : (NR >= 6 ? 2 : 4);
  const int rows = w.rows;
  const __mmask64 bm = panel_byte_mask(rows, 4);
  const __m512i lut = u8_code_table<BITS>(w);
  const std::int8_t* q[NR];
  LOWBIT_UNROLL
  for (int n = 0; n < NR; ++n) q[n] = a.q + (n0 + n) * w.padded_cols;
  __m512 y[NR];
  LOWBIT_UNROLL
  for (int n = 0; n < NR; ++n) y[n] = _mm512_setzero_ps();
  auto float_step = [&](const __m512i (&dot)[NR], __m512 ws, const float* xs) LOWBIT_LAMBDA_INLINE {
    LOWBIT_UNROLL
    for (int n = 0; n < NR; ++n) y[n] = add_granule(y[n], dot[n], ws, xs[n]);
  };
  // 8-bit codes in granules of 16, eight rows: a granule's float step runs after the next
  // granule's products in program order, so it does not hold the scheduler while their
  // chains (four vpdpbusd deep) fill. BFP8 per 16 at N = 128 and 512, W in cache, one
  // thread: 1.09-1.11x (five same-run rounds); for the 4-bit codes (NVFP4, BFP4) it measured
  // 0.95-1.05x, so they keep the plain order. y still takes the granules in order (the same
  // bits).
  constexpr bool kDelayFloatStep = G == 16 && NR == 8 && BITS == 8;
  struct Held {  // the previous granule's dots and scales
    __m512i dot[NR];
    __m512 ws;
    const float* xs;
  };
  struct Nothing {};
  std::conditional_t<kDelayFloatStep, Held, Nothing> held{};
  BlockCursor wblock(w.block), ablock(a.act_block);
  for (std::int64_t g = 0; g < a.granules; ++g) {
    const std::int64_t k0 = g * a.granule;
    const std::int64_t wb = wblock.at(k0), ab = ablock.at(k0);
    const std::int32_t* neg_sum128 = a.neg_sum128 + g * a.rows + n0;  // this granule's, from row n0
    const float* xs = a.scale + ab * a.rows + n0;
    __m512i acc[NR][A];
    LOWBIT_UNROLL
    for (int n = 0; n < NR; ++n) {
      acc[n][0] = _mm512_set1_epi32(neg_sum128[n]);
      LOWBIT_UNROLL
      for (int t = 1; t < A; ++t) acc[n][t] = _mm512_setzero_si512();
    }
    std::int64_t o = k0 >> 3;
    if constexpr (G > 0) {
      LOWBIT_UNROLL
      for (int p = 0; p < G / 16; ++p) int_octets<NR, A, BITS, FULL>(w, bm, lut, q, o + 2 * p, acc);
    } else {
      const std::int64_t o1 = std::min(k0 + a.granule, w.padded_cols) >> 3;  // the last granule may be short
      for (; o + 2 <= o1; o += 2) int_octets<NR, A, BITS, FULL>(w, bm, lut, q, o, acc);
      if (o < o1) int_octets<NR, A, BITS, FULL, 1>(w, bm, lut, q, o, acc);
    }
    __m512i dot[NR];
    LOWBIT_UNROLL
    for (int n = 0; n < NR; ++n) {
      dot[n] = acc[n][0];
      LOWBIT_UNROLL
      for (int t = 1; t < A; ++t) dot[n] = _mm512_add_epi32(dot[n], acc[n][t]);
    }
    if constexpr (kDelayFloatStep) {
      if (g > 0) float_step(held.dot, held.ws, held.xs);
      held.ws = scales(wb);
      held.xs = xs;
      LOWBIT_UNROLL
      for (int n = 0; n < NR; ++n) held.dot[n] = dot[n];
    } else {
      float_step(dot, scales(wb), xs);
    }
  }
  if constexpr (kDelayFloatStep)
    if (a.granules > 0) float_step(held.dot, held.ws, held.xs);
  const __mmask16 lm = static_cast<__mmask16>((1u << rows) - 1);
  LOWBIT_UNROLL
  for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(out.y + n * out.stride, lm, y[n]);
}

// One activation row against a full panel when the weight blocks, and so the granules, are
// G = 16 or 32 columns, the activation blocks G or 2G, and K a multiple of 32 (MXFP4 x MXINT8,
// int4 / int8 per 32 x int8 per 32, NVFP4 and BFP per 16: the decode shapes). Granule g is
// octets (G/8)g .. at fixed offsets and its weight scales are those of block g, so the loop
// carries no block counters and no inner loop; the arithmetic per granule is panel_int_nr's,
// in the same order (the same bits).
template <int BITS, int G, class Scales>
inline void panel_int_row(const PanelArgs& w, const Scales& scales, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  constexpr int kOctets = G / 8;
  const __m512i lut = u8_code_table<BITS>(w);
  const std::int8_t* q = a.q + n0 * w.padded_cols;
  const std::int32_t* neg_sum128 = a.neg_sum128 + n0;
  const float* xs = a.scale + n0;
  const int act_shift = a.act_block == 2 * G ? 1 : 0;
  __m512 y = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < a.granules; ++g, q += G) {
    // Four chains; -128 * sum(q) starts the first (exact integers, any order).
    __m512i d[4] = {_mm512_set1_epi32(neg_sum128[g * a.rows]), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    LOWBIT_UNROLL
    for (int j = 0; j < kOctets; ++j) {
      __m512i u0, u1;
      decode_octet_u8<BITS, true>(w, 0, lut, kOctets * g + j, u0, u1);
      d[(2 * j) & 3] = _mm512_dpbusd_epi32(d[(2 * j) & 3], u0, broadcast4(q + 8 * j));
      d[(2 * j + 1) & 3] = _mm512_dpbusd_epi32(d[(2 * j + 1) & 3], u1, broadcast4(q + 8 * j + 4));
    }
    const __m512i dot = _mm512_add_epi32(_mm512_add_epi32(d[0], d[1]), _mm512_add_epi32(d[2], d[3]));
    y = add_granule(y, dot, scales(g), xs[(g >> act_shift) * a.rows]);
  }
  _mm512_storeu_ps(out.y, y);
}

// 4- and 6-bit codes take panel_int_row where it applies: at N = 1, MXFP4 x MXINT8 went
// from 103 to 149 GFLOP/s with W in L3 and from 74-81 to 95-99 with W streamed from DRAM
// (int4 per 32: 102 -> 168 and 68-73 -> 78-86). 8-bit codes stay on panel_int_nr: it gained
// in L3 (92 -> 113) but lost a fifth streaming from DRAM (52 -> 41, five same-run rounds,
// with masked loads, a prefetch twice as far ahead or one into L1 alike), and decoding streams.
template <int BITS, class Scales>
inline void panel_int_one(const PanelArgs& w, const Scales& scales, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  if constexpr (BITS != 8) {
    const int g = one_row_granule(w, a);
    if (g == 32) return panel_int_row<BITS, 32>(w, scales, a, n0, out);
    if (g == 16) return panel_int_row<BITS, 16>(w, scales, a, n0, out);
  }
  panel_int_nr<1, BITS, 0, false>(w, scales, a, n0, out);
}

template <int BITS>
inline void panel_int_rows(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  // One activation row walks the panel once: its scales are decoded as the walk reaches them,
  // among the dot products, rather than stored to a buffer first (whose lines the code stream
  // has pushed out of L1). For the scales of MX and fp16-scaled formats: +5-15% at N = 1 with
  // the weights from DRAM, no clear change from L3.
  if (nr == 1 && w.scale.kind == PanelScaleKind::E8M0) {
    if constexpr (BITS == 8) return panel_int_one<BITS>(w, ScaleDecoder<PanelScaleKind::E8M0>(w), a, n0, out);
    else return panel_int_one<BITS>(w, E8M0Decoder(w), a, n0, out);
  }
  if (nr == 1 && w.scale.kind == PanelScaleKind::F16)
    return panel_int_one<BITS>(w, ScaleDecoder<PanelScaleKind::F16>(w), a, n0, out);
  if (nr == 1 && w.scale.kind == PanelScaleKind::Lut8 && w.scale.lut_is_e4m3)
    return with_e4m3_decoder(w, [&](const auto& scales) { panel_int_one<BITS>(w, scales, a, n0, out); });
  const DecodedScales s{decoded_panel_scales(w)};
  auto groups = [&]<int G, bool FULL>() {
    for_row_groups<8, 4>(n0, nr, out, [&]<int R>(std::int64_t m, PanelOut o) {
      if constexpr (R == 1) panel_int_one<BITS>(w, s, a, m, o);
      else panel_int_nr<R, BITS, G, FULL>(w, s, a, m, o);
    });
  };
  // The unrolled kernels need whole granules of 16 or 32 columns, and take full panels only.
  // Anything else (other granules; the last panel of M, if partial) runs the one general
  // kernel: an unmasked instance of it as well added code to this function and measured 4-5%
  // slower for BFP per 16 at N = 128.
  const int g = w.rows == kPanelRows ? whole_granule(w, a) : 0;
  with_granule(g, [&](auto G) { groups.template operator()<G(), G() != 0>(); });
}

inline void panel_int(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  if (w.bits == 4) return panel_int_rows<4>(w, a, n0, nr, out);
  if (w.bits == 6) return panel_int_rows<6>(w, a, n0, nr, out);
  panel_int_rows<8>(w, a, n0, nr, out);
}

LOWBIT_TARGET_END

}  // namespace lowbit::kernels::avx512
