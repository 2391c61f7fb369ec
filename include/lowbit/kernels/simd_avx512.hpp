// 16 lanes of 32 bits with AVX-512 (F/BW/VL/DQ): the operations the kernels are written in.
#pragma once

#include <cstdint>

#include "lowbit/kernels/target.hpp"

LOWBIT_TARGET_AVX512_BEGIN
namespace lowbit::simd {

struct Avx512 {
  static constexpr int N = 16;
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;

  static M tail(int n) { return static_cast<M>(n >= 16 ? 0xFFFF : ((1u << n) - 1u)); }
  // Masked memory operations only for tails: full vectors use plain loads and stores (masked
  // stores are slow on some cores).
  static F load(const float* p, int n) { return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(tail(n), p); }
  static void store(float* p, F v, int n) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, tail(n), v);
  }
  static I load_u32(const std::uint32_t* p, int n) {
    return n >= 16 ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(tail(n), p);
  }
  // Lane j at p[2j] and zero at p[2j + 1], for all N lanes.
  static void store_u32_spaced(std::uint32_t* p, I v) {
    _mm512_storeu_si512(p, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v)));
    _mm512_storeu_si512(p + 16, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1)));
  }
  static void store_u32(std::uint32_t* p, I v, int n) {
    if (n >= 16) _mm512_storeu_si512(p, v);
    else _mm512_mask_storeu_epi32(p, tail(n), v);
  }

  // Narrowing stores of codes: the low byte of each of n lanes; and lanes (2j, 2j+1), each
  // under 16, as byte j = lane 2j | lane 2j+1 << 4 ((n + 1) / 2 bytes; lanes past n are 0).
  static void store_u8(std::uint8_t* p, I v, int n) {
    if (n < 16) return _mm512_mask_cvtepi32_storeu_epi8(p, tail(n), v);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(v));
  }
  // The 4N lanes of a, b, c, d (each within -128..127) as bytes in that order, in one store:
  // two saturating packs (per 128-bit quarter), then one permute to undo their interleave.
  static void store_i8x4(std::uint8_t* p, I a, I b, I c, I d) {
    const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
    // dword 4q + v holds lanes 4q..4q+3 of vector v
    _mm512_storeu_si512(p, _mm512_permutexvar_epi32(
                               _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes));
  }
  static void store_u4_pairs(std::uint8_t* p, I v, int n) {
    const __m512i q = _mm512_or_si512(v, _mm512_srli_epi64(v, 28));
    if (n >= 16) _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm512_cvtepi64_epi8(q));
    else _mm512_mask_cvtepi64_storeu_epi8(p, static_cast<__mmask8>((1u << ((n + 1) / 2)) - 1u), q);
  }
  // Rounding to integral floats (ties to even; toward zero), whatever MXCSR says.
  static F round_even_f(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F trunc_f(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  // a - round_even(a), exactly, in one instruction (vreduceps); and round_even(a) as integers
  static F frac_even_f(F a) { return _mm512_reduce_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I round_even_i(F a) { return _mm512_cvt_roundps_epi32(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // max(|a|, |b|) for numbers, in one instruction (vrangeps: largest magnitude, sign cleared)
  static F abs_max_f(F a, F b) { return _mm512_range_ps(a, b, 0x0B); }

  static I bits(F v) { return _mm512_castps_si512(v); }
  static F flt(I v) { return _mm512_castsi512_ps(v); }
  static I set(std::int32_t x) { return _mm512_set1_epi32(x); }
  static F setf(float x) { return _mm512_set1_ps(x); }
  static I iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

  static I and_(I a, I b) { return _mm512_and_si512(a, b); }
  static I or_(I a, I b) { return _mm512_or_si512(a, b); }
  static I xor_(I a, I b) { return _mm512_xor_si512(a, b); }
  static I andnot(I a, I b) { return _mm512_andnot_si512(a, b); }  // ~a & b
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  template <int K> static I srl(I a) { return _mm512_srli_epi32(a, K); }
  static I sllv(I a, I n) { return _mm512_sllv_epi32(a, n); }  // counts >= 32 give 0
  static I srlv(I a, I n) { return _mm512_srlv_epi32(a, n); }
  static I max_i(I a, I b) { return _mm512_max_epi32(a, b); }
  static I min_i(I a, I b) { return _mm512_min_epi32(a, b); }
  static I max_u(I a, I b) { return _mm512_max_epu32(a, b); }

  static M eq(I a, I b) { return _mm512_cmpeq_epi32_mask(a, b); }
  static M gt(I a, I b) { return _mm512_cmpgt_epi32_mask(a, b); }
  static M gt_u(I a, I b) { return _mm512_cmpgt_epu32_mask(a, b); }
  static M lt_u(I a, I b) { return _mm512_cmplt_epu32_mask(a, b); }
  static M m_and(M a, M b) { return static_cast<M>(a & b); }
  static M m_or(M a, M b) { return static_cast<M>(a | b); }
  static M m_not(M a) { return static_cast<M>(~a); }
  static bool any(M a) { return a != 0; }
  static I select(M m, I yes, I no) { return _mm512_mask_blend_epi32(m, no, yes); }

  static I f2i(F a) { return _mm512_cvttps_epi32(a); }  // exact for integral values
  static F i2f(I a) { return _mm512_cvtepi32_ps(a); }
  static F add_f(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub_f(F a, F b) { return _mm512_sub_ps(a, b); }
  static I min_u(I a, I b) { return _mm512_min_epu32(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F min_f(F a, F b) { return _mm512_min_ps(a, b); }
  static F max_f(F a, F b) { return _mm512_max_ps(a, b); }

  static std::uint32_t reduce_max_u(I a) { return _mm512_reduce_max_epu32(a); }
  template <int K> static I sll(I a) { return _mm512_slli_epi32(a, K); }

  // Doubles, for block scales: the 16 lanes as two vectors of 8.
  using D = __m512d;
  static D lo_d(I a) { return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_castsi512_ps(a))); }
  static D hi_d(I a) { return _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(a, 1))); }
  static D set_d(double x) { return _mm512_set1_pd(x); }
  static D div_d(D a, D b) { return _mm512_div_pd(a, b); }
  static D min_d(D a, D b) { return _mm512_min_pd(a, b); }
  // Nearest-even to a multiple of 2^drop on the bits of positive doubles.
  static D round_bits_d(D a, int drop) {
    const __m512i b = _mm512_castpd_si512(a);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi64(b, static_cast<unsigned>(drop)), _mm512_set1_epi64(1));
    const __m512i sum = _mm512_add_epi64(_mm512_add_epi64(b, _mm512_set1_epi64((1ll << (drop - 1)) - 1)), odd);
    return _mm512_castsi512_pd(_mm512_andnot_si512(_mm512_set1_epi64((1ll << drop) - 1), sum));
  }
  // whether a lane's `drop` low bits lie within `margin` of half their range: a tie, or
  // nearly, of round_bits_d
  static bool any_near_tie_d(D a, int drop, int margin) {
    const __m512i low = _mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64((1ll << drop) - 1));
    const __m512i t = _mm512_sub_epi64(low, _mm512_set1_epi64((1ll << (drop - 1)) - margin));
    return _mm512_cmple_epu64_mask(t, _mm512_set1_epi64(2 * margin)) != 0;
  }
  static D mul_d(D a, D b) { return _mm512_mul_pd(a, b); }
  static D max_d(D a, D b) { return _mm512_max_pd(a, b); }
  static D sub_d(D a, D b) { return _mm512_sub_pd(a, b); }
  static D round_even_d(D a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I to_int_d(D lo, D hi) {  // exact for integral values
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(lo)), _mm512_cvttpd_epi32(hi), 1);
  }
  static D from_f_lo(F a) { return _mm512_cvtps_pd(_mm512_castps512_ps256(a)); }
  static D from_f_hi(F a) { return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1))); }
  static bool any_below_d(D a, D lim) { return _mm512_cmp_pd_mask(a, lim, _CMP_NGE_UQ) != 0; }
  static I from_d(D lo, D hi) {  // exact when the values are floats
    return _mm512_castps_si512(
        _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1));
  }
  static I broadcast_lane(I v, int j) { return _mm512_permutexvar_epi32(_mm512_set1_epi32(j), v); }
  // Lane j of the result = the largest (unsigned) lane of m[j], for 16 vectors m[0..15]: a
  // reduction tree over 128-bit quarters, 64-bit pairs and lanes, then one permute to
  // put block j in lane j.
  LOWBIT_ALWAYS_INLINE static I transpose_max_u(const I* m) {
    I u[8], w[4], z[2];
    for (int k = 0; k < 8; ++k)
      u[k] = _mm512_max_epu32(_mm512_shuffle_i32x4(m[2 * k], m[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_i32x4(m[2 * k], m[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int k = 0; k < 4; ++k)
      w[k] = _mm512_max_epu32(_mm512_shuffle_i32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_i32x4(u[2 * k], u[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    for (int k = 0; k < 2; ++k)
      z[k] = _mm512_max_epu32(_mm512_unpacklo_epi64(w[2 * k], w[2 * k + 1]), _mm512_unpackhi_epi64(w[2 * k], w[2 * k + 1]));
    const __m512 a = _mm512_castsi512_ps(z[0]), b = _mm512_castsi512_ps(z[1]);
    const I f = _mm512_max_epu32(_mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
                                 _mm512_castps_si512(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
    // lane 4q + i holds block 4i + q
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), f);
  }
  static float reduce_min_f(F a) { return _mm512_reduce_min_ps(a); }
  static float reduce_max_f(F a) { return _mm512_reduce_max_ps(a); }

  // 64-bit lanes for the stochastic-rounding generator: 16 indices as two halves.
  using Q = __m512i;
  static Q mul64(Q a, Q b) { return _mm512_mullo_epi64(a, b); }
  static Q add64(Q a, Q b) { return _mm512_add_epi64(a, b); }
  static Q xor64(Q a, Q b) { return _mm512_xor_si512(a, b); }
  template <int K> static Q srl64(Q a) { return _mm512_srli_epi64(a, K); }
  static Q set64(std::uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  static Q iota64(std::uint64_t base) {
    return _mm512_add_epi64(set64(base), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static constexpr int N64 = 8;
  // High 32 bits of each 64-bit lane of lo (lanes 0..7) and hi (lanes 8..15), in lane order.
  static I high_halves(Q lo, Q hi) {
    const __m256i a = _mm512_cvtepi64_epi32(_mm512_srli_epi64(lo, 32));
    const __m256i b = _mm512_cvtepi64_epi32(_mm512_srli_epi64(hi, 32));
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  }
};

}  // namespace lowbit::simd
LOWBIT_TARGET_END
