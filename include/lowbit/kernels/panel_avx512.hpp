// The packed-matmul kernels on the AVX-512 path: one panel's 16 rows are the 16 lanes, so a
// lane accumulates one output and no horizontal sums are needed. Bit-identical to
// kernels/panel_scalar.hpp (same operations per lane in the same order).
//   integer kernel (AVX512-VNNI): weights become u8 = w + 128 through a vpshufb table (4-bit)
//     or an xor (8-bit), vpdpbusd multiplies them by four int8 activations broadcast to all
//     lanes, and 128 * sum(q) per granule takes the offset back out: exact int32 dots.
//   float kernel: codes become floats through vpermps (4-bit), a shift (8-bit integers) or a
//     gather (other 8-bit elements), then FMAs with broadcast activations.
#pragma once

#include <cstdint>
#include <cstring>

#include "lowbit/kernels/panel_args.hpp"
#include "lowbit/kernels/target.hpp"

namespace lowbit::kernels::avx512 {

LOWBIT_TARGET_AVX512_BEGIN

inline __mmask64 panel_byte_mask(int rows, int bytes_per_row) {
  const int n = rows * bytes_per_row;
  return n >= 64 ? ~__mmask64{0} : ((__mmask64{1} << n) - 1);
}

// The 16 block scales of a panel (lanes past `rows` are don't-care).
inline __m512 panel_scales(const PanelScale& s, const std::uint8_t* p, int rows) {
  const __mmask16 m = static_cast<__mmask16>((1u << rows) - 1);
  __m512 v;
  switch (s.kind) {
    case PanelScaleKind::None: return _mm512_set1_ps(s.constant);
    case PanelScaleKind::Lut8: {
      const __m512i idx = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
      return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, s.lut, 4);
    }
    case PanelScaleKind::E8M0: {
      const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
      __m512i bits = _mm512_slli_epi32(c, 23);
      bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(c, _mm512_setzero_si512()), _mm512_set1_epi32(0x00400000));
      bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(255)), _mm512_set1_epi32(0x7FC00000));
      v = _mm512_castsi512_ps(bits);
      break;
    }
    case PanelScaleKind::F16: v = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); break;
    case PanelScaleKind::BF16:
      v = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
      break;
    case PanelScaleKind::F32: v = _mm512_maskz_loadu_ps(m, p); break;
    default: v = _mm512_set1_ps(1.0f);
  }
  if (s.has_tensor_scale) v = _mm512_mul_ps(v, _mm512_set1_ps(s.tensor_scale));
  return _mm512_mul_ps(v, _mm512_set1_ps(s.unit));
}

inline constexpr int kPrefetchBytes = 1024;

inline __m512i broadcast4(const std::int8_t* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

inline const std::uint8_t* block_scales(const PanelArgs& w, std::int64_t b) {
  return w.scales + b * w.rows * w.scale.bytes;
}

// ---- float kernel ------------------------------------------------------------------------
template <int NR>
inline void panel_float_nr(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, PanelOut out) {
  const int rows = w.rows;
  const __mmask64 bm = panel_byte_mask(rows, 4);
  const float* x[NR];
  for (int n = 0; n < NR; ++n) x[n] = a.x + (n0 + n) * w.padded_cols;
  __m512 lut16 = _mm512_setzero_ps();
  if (w.bits == 4) lut16 = _mm512_loadu_ps(w.fvalue);
  const __m512 unit = _mm512_set1_ps(w.code_unit);
  const __m512i low4 = _mm512_set1_epi32(0xF), low8 = _mm512_set1_epi32(0xFF);
  __m512 y[NR];
  for (int n = 0; n < NR; ++n) y[n] = _mm512_setzero_ps();
  for (std::int64_t k0 = 0; k0 < w.padded_cols; k0 += w.block) {
    const std::int64_t k1 = std::min(k0 + w.block, w.padded_cols);
    __m512 p[NR][4];
    for (int n = 0; n < NR; ++n)
      for (int t = 0; t < 4; ++t) p[n][t] = _mm512_setzero_ps();
#define LOWBIT_PANEL_STEP(wv, k)                                                                   \
  do {                                                                                               \
    const __m512 w_ = (wv);                                                                          \
    const std::int64_t k_ = (k);                                                                     \
    for (int n = 0; n < NR; ++n) p[n][k_ & 3] = _mm512_fmadd_ps(w_, _mm512_set1_ps(x[n][k_]), p[n][k_ & 3]); \
  } while (0)
    for (std::int64_t o = k0 >> 3; o < (k1 >> 3); ++o) {
      const std::int64_t k = o << 3;
      _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * w.bits + kPrefetchBytes), _MM_HINT_T0);
      if (w.bits == 4) {
        const __m512i v = _mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 4);
        for (int j = 0; j < 4; ++j)
          LOWBIT_PANEL_STEP(_mm512_permutexvar_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * j), low4), lut16), k + j);
        for (int j = 0; j < 4; ++j)
          LOWBIT_PANEL_STEP(_mm512_permutexvar_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * j + 4), low4), lut16), k + 4 + j);
        continue;
      }
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8 + h * rows * 4);
        for (int j = 0; j < 4; ++j) {
          __m512 wv;
          if (w.identity8)
            wv = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * j), 24)), unit);
          else
            wv = _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(v, 8 * j), low8), w.fvalue, 4);
          LOWBIT_PANEL_STEP(wv, k + 4 * h + j);
        }
      }
    }
#undef LOWBIT_PANEL_STEP
    const __m512 ws = panel_scales(w.scale, block_scales(w, k0 / w.block), rows);
    for (int n = 0; n < NR; ++n) {
      const __m512 b = _mm512_add_ps(_mm512_add_ps(p[n][0], p[n][1]), _mm512_add_ps(p[n][2], p[n][3]));
      y[n] = _mm512_fmadd_ps(b, ws, y[n]);
    }
  }
  const __mmask16 lm = static_cast<__mmask16>((1u << rows) - 1);
  for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(out.y + n * out.stride, lm, y[n]);
}

inline void panel_float(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  for (; nr >= 4; nr -= 4, n0 += 4, out.y += 4 * out.stride) panel_float_nr<4>(w, a, n0, out);
  switch (nr) {
    case 3: panel_float_nr<3>(w, a, n0, out); break;
    case 2: panel_float_nr<2>(w, a, n0, out); break;
    case 1: panel_float_nr<1>(w, a, n0, out); break;
    default: break;
  }
}

LOWBIT_TARGET_END

// ---- integer kernel (VNNI) ---------------------------------------------------------------
LOWBIT_TARGET_AVX512VNNI_BEGIN

template <int NR>
inline void panel_int_nr(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  constexpr int A = NR == 1 ? 4 : 2;  // independent vpdpbusd chains per activation row
  const int rows = w.rows;
  const __mmask64 bm = panel_byte_mask(rows, 4);
  alignas(16) std::uint8_t lut_u8[16] = {};
  if (w.bits == 4)
    for (int c = 0; c < 16; ++c) lut_u8[c] = static_cast<std::uint8_t>(w.ivalue[c] + 128);
  const __m512i lut = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(lut_u8)));
  const __m512i low4 = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const std::int8_t* q[NR];
  for (int n = 0; n < NR; ++n) q[n] = a.q + (n0 + n) * w.padded_cols;
  __m512 y[NR];
  for (int n = 0; n < NR; ++n) y[n] = _mm512_setzero_ps();
  for (std::int64_t g = 0; g < a.granules; ++g) {
    const std::int64_t k0 = g * a.granule, k1 = std::min(k0 + a.granule, w.padded_cols);
    __m512i acc[NR][A];
    for (int n = 0; n < NR; ++n)
      for (int t = 0; t < A; ++t) acc[n][t] = _mm512_setzero_si512();
    for (std::int64_t o = k0 >> 3; o < (k1 >> 3); ++o) {
      __m512i w0, w1;
      // Weights stream from memory once: ask for them a few cache lines ahead.
      _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * w.bits + kPrefetchBytes), _MM_HINT_T0);
      if (w.bits == 8) _mm_prefetch(reinterpret_cast<const char*>(w.codes + o * rows * 8 + 64 + kPrefetchBytes), _MM_HINT_T0);
      if (w.bits == 4) {
        const __m512i v = _mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 4);
        w0 = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low4));
        w1 = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      } else {
        w0 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8), flip);
        w1 = _mm512_xor_si512(_mm512_maskz_loadu_epi8(bm, w.codes + o * rows * 8 + rows * 4), flip);
      }
      const int t = A == 4 ? 2 * static_cast<int>(o & 1) : 0;
      for (int n = 0; n < NR; ++n) {
        acc[n][t] = _mm512_dpbusd_epi32(acc[n][t], w0, broadcast4(q[n] + 8 * o));
        acc[n][t + 1] = _mm512_dpbusd_epi32(acc[n][t + 1], w1, broadcast4(q[n] + 8 * o + 4));
      }
    }
    const __m512 ws = panel_scales(w.scale, block_scales(w, k0 / w.block), rows);
    for (int n = 0; n < NR; ++n) {
      __m512i dot = _mm512_add_epi32(acc[n][0], acc[n][1]);
      if constexpr (A == 4) dot = _mm512_add_epi32(dot, _mm512_add_epi32(acc[n][2], acc[n][3]));
      const std::int64_t row = n0 + n;
      dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(a.sum128[row * a.granules + g]));
      const __m512 s = _mm512_mul_ps(ws, _mm512_set1_ps(a.scale[row * a.act_blocks + k0 / a.act_block]));
      y[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, y[n]);
    }
  }
  const __mmask16 lm = static_cast<__mmask16>((1u << rows) - 1);
  for (int n = 0; n < NR; ++n) _mm512_mask_storeu_ps(out.y + n * out.stride, lm, y[n]);
}

inline void panel_int(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  for (; nr >= 4; nr -= 4, n0 += 4, out.y += 4 * out.stride) panel_int_nr<4>(w, a, n0, out);
  switch (nr) {
    case 3: panel_int_nr<3>(w, a, n0, out); break;
    case 2: panel_int_nr<2>(w, a, n0, out); break;
    case 1: panel_int_nr<1>(w, a, n0, out); break;
    default: break;
  }
}

LOWBIT_TARGET_END

}  // namespace lowbit::kernels::avx512
