// 8 lanes of 32 bits with AVX2 (+FMA, F16C): the operations the kernels are written in.
// Masks are vectors of all-ones / all-zero lanes.
#pragma once

#include <cstdint>

#include "lowbit/kernels/target.hpp"

LOWBIT_TARGET_AVX2_BEGIN
namespace lowbit::simd {

struct Avx2 {
  static constexpr int N = 8;
  using F = __m256;
  using I = __m256i;
  using M = __m256i;

  static M tail(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static F load(const float* p, int n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail(n));
  }
  static void store(float* p, F v, int n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, tail(n), v);
  }
  static I load_u32(const std::uint32_t* p, int n) {
    const int* q = reinterpret_cast<const int*>(p);
    return n >= 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskload_epi32(q, tail(n));
  }
  // Lane j at p[2j] and zero at p[2j + 1], for all N lanes.
  static void store_u32_spaced(std::uint32_t* p, I v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_cvtepu32_epi64(_mm256_castsi256_si128(v)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 8), _mm256_cvtepu32_epi64(_mm256_extracti128_si256(v, 1)));
  }
  static void store_u32(std::uint32_t* p, I v, int n) {
    if (n >= 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
    else _mm256_maskstore_epi32(reinterpret_cast<int*>(p), tail(n), v);
  }

  // Narrowing stores of codes: the low byte of each of n lanes; and lanes (2j, 2j+1), each
  // under 16, as byte j = lane 2j | lane 2j+1 << 4 ((n + 1) / 2 bytes; lanes past n are 0).
  static void store_u8(std::uint8_t* p, I v, int n) {
    const __m256i lo = _mm256_shuffle_epi8(v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1,
                                                                -1, -1, -1, -1, -1));
    const __m128i b = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(lo, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1)));
    store_bytes(p, b, n);
  }
  // The 4N lanes of a, b, c, d (each within -128..127) as bytes in that order, in one store:
  // two saturating packs (per 128-bit half), then one permute to undo their interleave.
  static void store_i8x4(std::uint8_t* p, I a, I b, I c, I d) {
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    // dword 4h + v holds lanes 4h..4h+3 of vector v
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  static void store_u4_pairs(std::uint8_t* p, I v, int n) {
    const __m256i q = _mm256_or_si256(v, _mm256_srli_epi64(v, 28));
    const __m256i lo = _mm256_shuffle_epi8(q, _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                -1, -1, 0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                                                -1, -1, -1, -1));
    const __m128i b = _mm_unpacklo_epi16(_mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1));
    store_bytes(p, b, (n + 1) / 2);
  }
  static void store_bytes(std::uint8_t* p, __m128i b, int n) {  // the low n <= 8 bytes of b
    if (n >= 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p), b);
      return;
    }
    alignas(16) std::uint8_t t[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(t), b);
    for (int i = 0; i < n; ++i) p[i] = t[i];
  }
  // Rounding to integral floats (ties to even; toward zero), whatever MXCSR says.
  static F round_even_f(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F trunc_f(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC); }
  static F frac_even_f(F a) { return _mm256_sub_ps(a, round_even_f(a)); }  // exact
  static I round_even_i(F a) { return _mm256_cvttps_epi32(round_even_f(a)); }
  static F abs_max_f(F a, F b) {  // max(|a|, |b|) for numbers
    const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    return _mm256_max_ps(_mm256_and_ps(a, m), _mm256_and_ps(b, m));
  }

  static I bits(F v) { return _mm256_castps_si256(v); }
  static F flt(I v) { return _mm256_castsi256_ps(v); }
  static I set(std::int32_t x) { return _mm256_set1_epi32(x); }
  static F setf(float x) { return _mm256_set1_ps(x); }
  static I iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

  static I and_(I a, I b) { return _mm256_and_si256(a, b); }
  static I or_(I a, I b) { return _mm256_or_si256(a, b); }
  static I xor_(I a, I b) { return _mm256_xor_si256(a, b); }
  static I andnot(I a, I b) { return _mm256_andnot_si256(a, b); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static I sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  template <int K> static I srl(I a) { return _mm256_srli_epi32(a, K); }
  static I sllv(I a, I n) { return _mm256_sllv_epi32(a, n); }  // counts >= 32 give 0
  static I srlv(I a, I n) { return _mm256_srlv_epi32(a, n); }
  static I max_i(I a, I b) { return _mm256_max_epi32(a, b); }
  static I min_i(I a, I b) { return _mm256_min_epi32(a, b); }
  static I max_u(I a, I b) { return _mm256_max_epu32(a, b); }

  static M eq(I a, I b) { return _mm256_cmpeq_epi32(a, b); }
  static M gt(I a, I b) { return _mm256_cmpgt_epi32(a, b); }
  static M gt_u(I a, I b) {
    const I s = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    return _mm256_cmpgt_epi32(_mm256_xor_si256(a, s), _mm256_xor_si256(b, s));
  }
  static M lt_u(I a, I b) { return gt_u(b, a); }
  static M m_and(M a, M b) { return _mm256_and_si256(a, b); }
  static M m_or(M a, M b) { return _mm256_or_si256(a, b); }
  static M m_not(M a) { return _mm256_xor_si256(a, _mm256_set1_epi32(-1)); }
  static bool any(M a) { return !_mm256_testz_si256(a, a); }
  static I select(M m, I yes, I no) { return _mm256_blendv_epi8(no, yes, m); }

  static I f2i(F a) { return _mm256_cvttps_epi32(a); }  // exact for integral values
  static F i2f(I a) { return _mm256_cvtepi32_ps(a); }
  static F add_f(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub_f(F a, F b) { return _mm256_sub_ps(a, b); }
  static I min_u(I a, I b) { return _mm256_min_epu32(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F min_f(F a, F b) { return _mm256_min_ps(a, b); }
  static F max_f(F a, F b) { return _mm256_max_ps(a, b); }

  static std::uint32_t reduce_max_u(I a) {
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    return static_cast<std::uint32_t>(_mm_cvtsi128_si32(m));
  }
  template <int K> static I sll(I a) { return _mm256_slli_epi32(a, K); }

  // Doubles, for block scales: the 8 lanes as two vectors of 4.
  using D = __m256d;
  static D lo_d(I a) { return _mm256_cvtps_pd(_mm256_castps256_ps128(_mm256_castsi256_ps(a))); }
  static D hi_d(I a) { return _mm256_cvtps_pd(_mm256_extractf128_ps(_mm256_castsi256_ps(a), 1)); }
  static D set_d(double x) { return _mm256_set1_pd(x); }
  static D div_d(D a, D b) { return _mm256_div_pd(a, b); }
  static D min_d(D a, D b) { return _mm256_min_pd(a, b); }
  // Nearest-even to a multiple of 2^drop on the bits of positive doubles.
  static D round_bits_d(D a, int drop) {
    const __m256i b = _mm256_castpd_si256(a);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi64(b, drop), _mm256_set1_epi64x(1));
    const __m256i sum = _mm256_add_epi64(_mm256_add_epi64(b, _mm256_set1_epi64x((1ll << (drop - 1)) - 1)), odd);
    return _mm256_castsi256_pd(_mm256_andnot_si256(_mm256_set1_epi64x((1ll << drop) - 1), sum));
  }
  static bool any_near_tie_d(D a, int drop, int margin) {  // see Avx512
    const __m256i low = _mm256_and_si256(_mm256_castpd_si256(a), _mm256_set1_epi64x((1ll << drop) - 1));
    const __m256i t = _mm256_sub_epi64(low, _mm256_set1_epi64x((1ll << (drop - 1)) - margin));
    const __m256i in = _mm256_andnot_si256(_mm256_cmpgt_epi64(t, _mm256_set1_epi64x(2 * margin)),
                                           _mm256_cmpgt_epi64(t, _mm256_set1_epi64x(-1)));
    return _mm256_movemask_pd(_mm256_castsi256_pd(in)) != 0;
  }
  static D mul_d(D a, D b) { return _mm256_mul_pd(a, b); }
  static D max_d(D a, D b) { return _mm256_max_pd(a, b); }
  static D sub_d(D a, D b) { return _mm256_sub_pd(a, b); }
  static D round_even_d(D a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I to_int_d(D lo, D hi) {  // exact for integral values
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm256_cvttpd_epi32(lo)), _mm256_cvttpd_epi32(hi), 1);
  }
  static D from_f_lo(F a) { return _mm256_cvtps_pd(_mm256_castps256_ps128(a)); }
  static D from_f_hi(F a) { return _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)); }
  static bool any_below_d(D a, D lim) { return _mm256_movemask_pd(_mm256_cmp_pd(a, lim, _CMP_NGE_UQ)) != 0; }
  static I from_d(D lo, D hi) {  // exact when the values are floats
    return _mm256_castps_si256(_mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1));
  }
  static I broadcast_lane(I v, int j) { return _mm256_permutevar8x32_epi32(v, _mm256_set1_epi32(j)); }
  // Lane j of the result = the largest (unsigned) lane of m[j], for 8 vectors m[0..7].
  static I transpose_max_u(const I* m) {
    I u[4], z[2];
    for (int k = 0; k < 4; ++k)
      u[k] = _mm256_max_epu32(_mm256_permute2x128_si256(m[2 * k], m[2 * k + 1], 0x20),
                              _mm256_permute2x128_si256(m[2 * k], m[2 * k + 1], 0x31));
    for (int k = 0; k < 2; ++k)
      z[k] = _mm256_max_epu32(_mm256_unpacklo_epi64(u[2 * k], u[2 * k + 1]), _mm256_unpackhi_epi64(u[2 * k], u[2 * k + 1]));
    const __m256 a = _mm256_castsi256_ps(z[0]), b = _mm256_castsi256_ps(z[1]);
    const I f = _mm256_max_epu32(_mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))),
                                 _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))));
    // lane 4h + i holds block 2i + h
    return _mm256_permutevar8x32_epi32(f, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  static float reduce_min_f(F a) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_min_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtss_f32(m);
  }
  static float reduce_max_f(F a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_max_ps(m, _mm_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtss_f32(m);
  }

  // 64-bit lanes for the stochastic-rounding generator (AVX2 has no 64-bit multiply:
  // built from 32 x 32 -> 64 products).
  using Q = __m256i;
  static constexpr int N64 = 4;
  static Q mul64(Q a, Q b) {
    const Q lo = _mm256_mul_epu32(a, b);
    const Q c1 = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), b);
    const Q c2 = _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(_mm256_add_epi64(c1, c2), 32));
  }
  static Q add64(Q a, Q b) { return _mm256_add_epi64(a, b); }
  static Q xor64(Q a, Q b) { return _mm256_xor_si256(a, b); }
  template <int K> static Q srl64(Q a) { return _mm256_srli_epi64(a, K); }
  static Q set64(std::uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  static Q iota64(std::uint64_t base) { return _mm256_add_epi64(set64(base), _mm256_setr_epi64x(0, 1, 2, 3)); }
  // High 32 bits of each 64-bit lane of lo (lanes 0..3) and hi (lanes 4..7), in lane order.
  static I high_halves(Q lo, Q hi) {
    const __m256 a = _mm256_castsi256_ps(lo), b = _mm256_castsi256_ps(hi);
    const __m256 h = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));  // a1 a3 b1 b3 | a5 a7 b5 b7
    return _mm256_permute4x64_epi64(_mm256_castps_si256(h), _MM_SHUFFLE(3, 1, 2, 0));
  }
};

}  // namespace lowbit::simd
LOWBIT_TARGET_END
