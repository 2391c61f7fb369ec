// Lookup of 16-entry float tables by lane (the decoded values of 4-bit codes), per
// instruction set: SimdTable<V>::load(table) once, then lookup(t, index) per vector.
#pragma once

#include "lowbit/kernels/simd_avx2.hpp"
#include "lowbit/kernels/simd_avx512.hpp"

namespace lowbit::simd {
template <class V>
struct SimdTable;
}  // namespace lowbit::simd

LOWBIT_TARGET_AVX512_BEGIN
namespace lowbit::simd {
template <>
struct SimdTable<Avx512> {
  using T = __m512;
  static T load(const float* t) { return _mm512_loadu_ps(t); }
  static __m512 lookup(T t, __m512i idx) { return _mm512_permutexvar_ps(idx, t); }
};
}  // namespace lowbit::simd
LOWBIT_TARGET_END

LOWBIT_TARGET_AVX2_BEGIN
namespace lowbit::simd {
template <>
struct SimdTable<Avx2> {
  struct T {
    __m256 lo, hi;
  };
  static T load(const float* t) { return {_mm256_loadu_ps(t), _mm256_loadu_ps(t + 8)}; }
  // permutevar8x32 uses the low 3 bits of the index; bit 3 picks the half
  static __m256 lookup(const T& t, __m256i idx) {
    const __m256 lo = _mm256_permutevar8x32_ps(t.lo, idx), hi = _mm256_permutevar8x32_ps(t.hi, idx);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
  }
};
}  // namespace lowbit::simd
LOWBIT_TARGET_END
