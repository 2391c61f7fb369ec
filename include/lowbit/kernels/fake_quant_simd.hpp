// The SIMD fake-quant paths (AVX-512, AVX2) and the choice between them and the scalar
// reference. The kernel is written once (fake_quant_body.inl) and compiled per instruction
// set here; quant/fake_quant.hpp calls fake_quant_line_simd for contiguous rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/rounding.hpp"
#include "lowbit/formats/block_format.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/log_element.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/kernels/element_codes.hpp"
#include "lowbit/kernels/element_rounding.hpp"

#if defined(__x86_64__)
#include "lowbit/kernels/simd_avx2.hpp"
#include "lowbit/kernels/simd_avx512.hpp"
#include "lowbit/kernels/simd_table.hpp"

LOWBIT_TARGET_AVX512_BEGIN
namespace lowbit::kernels::avx512 {
using simd::Avx512;
#include "lowbit/kernels/fake_quant_body.inl"
#include "lowbit/kernels/codes_body.inl"
#define LOWBIT_KERNEL_V simd::Avx512
#include "lowbit/kernels/kernel_instances.inl"
#undef LOWBIT_KERNEL_V
}  // namespace lowbit::kernels::avx512
LOWBIT_TARGET_END

LOWBIT_TARGET_AVX2_BEGIN
namespace lowbit::kernels::avx2 {
using simd::Avx2;
#include "lowbit/kernels/fake_quant_body.inl"
#include "lowbit/kernels/codes_body.inl"
#define LOWBIT_KERNEL_V simd::Avx2
#include "lowbit/kernels/kernel_instances.inl"
#undef LOWBIT_KERNEL_V
}  // namespace lowbit::kernels::avx2
LOWBIT_TARGET_END
#define LOWBIT_HAS_X86_KERNELS 1
#else
#define LOWBIT_HAS_X86_KERNELS 0
#endif

namespace lowbit::kernels {

// Whether the SIMD quantise and fake-quant kernels take elements of this family (the others,
// codebooks and logarithms, quantise on the scalar reference only; their kernels are not even
// compiled).
template <class Fmt>
inline constexpr bool simd_quantizes = std::is_same_v<typename Fmt::element_type, MinifloatSpec> ||
                                       std::is_same_v<typename Fmt::element_type, FixedPointSpec>;

// The element rounding a SIMD kernel would use for this format, or eligible = false when
// the format runs only on the scalar reference.
template <class Fmt>
ElementRounding simd_rounding(const Fmt& fmt) {
  if constexpr (simd_quantizes<Fmt>) {
    if (fmt.scale.tensor_scale && fmt.scale.kind != ScaleKind::Float) return {};
    if (fmt.scale.zero_point) {
      // (k - zp) * s with k = round(y) + zp clamped: a wide integer rounding first
      ElementRounding wide = element_rounding(FixedPointSpec{16, 0, IntRange::TwosComplement});
      wide.max_bits = wide.neg_max_bits = float_bits(16777216.0f);
      wide.add_clamp_bits = float_bits(4194304.0f);  // exact below 2^22; clamped k saturates anyway
      return wide;
    }
    return element_rounding(fmt.element);
  } else {
    return {};
  }
}

// Runs the kernel of `path` on values [begin, end) of one contiguous line. Returns false if
// the path could not produce the result (the caller then runs the scalar reference).
template <class Fmt>
bool fake_quant_line_simd(SimdPath path, const Fmt& fmt, const ElementRounding& er, const float* x, float* y,
                          std::int64_t begin, std::int64_t end, std::int64_t block, std::uint64_t index0,
                          Rounding mode, std::uint64_t seed, const TensorParams& tp) {
#if LOWBIT_HAS_X86_KERNELS
  if constexpr (simd_quantizes<Fmt>) {
    if (!er.eligible) return false;
    switch (path) {
      case SimdPath::AVX512:
        return avx512::fake_quant_line<simd::Avx512>(fmt, er, x, y, begin, end, block, index0, mode, seed, tp);
      case SimdPath::AVX2:
        return avx2::fake_quant_line<simd::Avx2>(fmt, er, x, y, begin, end, block, index0, mode, seed, tp);
      case SimdPath::Scalar: return false;
    }
  }
#else
  (void)path, (void)fmt, (void)er, (void)x, (void)y, (void)begin, (void)end, (void)block, (void)index0, (void)mode,
      (void)seed, (void)tp;
#endif
  return false;
}

}  // namespace lowbit::kernels

namespace lowbit::kernels {

// Largest finite |x| over n contiguous values on `path` (false: no SIMD path here).
inline bool finite_amax_simd(SimdPath path, const float* x, std::int64_t n, float& amax) {
#if LOWBIT_HAS_X86_KERNELS
  switch (path) {
    case SimdPath::AVX512: amax = bits_float(avx512::finite_amax_bits<simd::Avx512>(x, n)); return true;
    case SimdPath::AVX2: amax = bits_float(avx2::finite_amax_bits<simd::Avx2>(x, n)); return true;
    case SimdPath::Scalar: return false;
  }
#else
  (void)path, (void)x, (void)n, (void)amax;
#endif
  return false;
}

// quantize and dequantize on one contiguous line (codes_body.inl): the same contract as
// fake_quant_line_simd, with `headers` the headers of the blocks from `begin` on.
template <class Fmt>
bool quantize_line_simd(SimdPath path, const Fmt& fmt, const ElementRounding& er, const ElementCodes& ec,
                        const float* x, std::uint32_t* codes, BlockHeader* headers, std::int64_t begin,
                        std::int64_t end, std::int64_t block, std::uint64_t index0, Rounding mode, std::uint64_t seed,
                        const TensorParams& tp) {
#if LOWBIT_HAS_X86_KERNELS
  if constexpr (simd_quantizes<Fmt>) {
    if (!er.eligible) return false;
    const auto headers_of = [&](std::int64_t) { return headers; };
    const auto done = [](std::int64_t) {};
    switch (path) {
      case SimdPath::AVX512:
        return avx512::quantize_lines<simd::Avx512>(
                   fmt, er, ec, x, 0, 1, [&](std::int64_t) { return avx512::U32Codes<simd::Avx512>{codes}; }, headers_of,
                   begin, end, block, index0, 0, mode, seed, tp, done) == 1;
      case SimdPath::AVX2:
        return avx2::quantize_lines<simd::Avx2>(
                   fmt, er, ec, x, 0, 1, [&](std::int64_t) { return avx2::U32Codes<simd::Avx2>{codes}; }, headers_of,
                   begin, end, block, index0, 0, mode, seed, tp, done) == 1;
      case SimdPath::Scalar: return false;
    }
  }
#else
  (void)path, (void)fmt, (void)er, (void)ec, (void)x, (void)codes, (void)headers, (void)begin, (void)end, (void)block,
      (void)index0, (void)mode, (void)seed, (void)tp;
#endif
  return false;
}

// Where the lines of quantize_lines_packed_simd come from and go.
struct PackedLines {
  const float* x = nullptr;  // line l at x + l * x_stride, values [0, end)
  std::int64_t x_stride = 0;
  std::uint8_t* out = nullptr;  // its codes at out + l * out_stride, code i at bit i * width
  std::int64_t out_stride = 0;
  BlockHeader* headers = nullptr;  // its block headers at headers + l * headers_stride (0: one
  std::int64_t headers_stride = 0;  // buffer for all, read by `done` before the next line)
  std::uint64_t index0 = 0, index_stride = 0;  // value indices (stochastic rounding's random bits)
  std::int64_t count = 0;
  std::int64_t end = 0;
};

// Whether quantize_lines_packed_simd runs: a SIMD path, a format it takes, 8-bit codes, or
// 4-bit codes in blocks of even length (every vector of codes then starts on a byte).
inline bool quantize_packed_simd_applies(SimdPath path, const ElementRounding& er, int width, std::int64_t block) {
  return LOWBIT_HAS_X86_KERNELS && path != SimdPath::Scalar && er.eligible &&
         (width == 8 || (width == 4 && block % 2 == 0));
}

// quantize_line_simd over lines.count lines with the codes bit-packed as they are made
// (pack/bit_stream.hpp's order), the format's setup worked out once. done(l) runs after line
// l. Returns the number of lines done: all, or the index of the first line that held a NaN
// the format cannot encode (the caller takes the uint32 route for it). Only where
// quantize_packed_simd_applies.
// (Non-temporal stores of the codes measured from +10% to -12% against plain stores from
// one day to the next on the machine of bench/README.md, so the codes are stored plainly.)
template <class Fmt, class Done>
std::int64_t quantize_lines_packed_simd(SimdPath path, const Fmt& fmt, const ElementRounding& er,
                                        const ElementCodes& ec, const PackedLines& lines, int width, std::int64_t block,
                                        Rounding mode, std::uint64_t seed, const TensorParams& tp,
                                        const Done& done) {
#if LOWBIT_HAS_X86_KERNELS
  if constexpr (simd_quantizes<Fmt>) {
    if (!quantize_packed_simd_applies(path, er, width, block)) return 0;
    const auto headers_of = [&](std::int64_t l) { return lines.headers + l * lines.headers_stride; };
    const auto run = [&](auto tag, const auto& sink_of) {
      using V = decltype(tag);
      if constexpr (std::is_same_v<V, simd::Avx512>)
        return avx512::quantize_lines<V>(fmt, er, ec, lines.x, lines.x_stride, lines.count, sink_of, headers_of, 0,
                                         lines.end, block, lines.index0, lines.index_stride, mode, seed, tp, done);
      else
        return avx2::quantize_lines<V>(fmt, er, ec, lines.x, lines.x_stride, lines.count, sink_of, headers_of, 0,
                                       lines.end, block, lines.index0, lines.index_stride, mode, seed, tp, done);
    };
    const auto out_of = [&](std::int64_t l) { return lines.out + l * lines.out_stride; };
    if (path == SimdPath::AVX512) {
      using V = simd::Avx512;
      return width == 8 ? run(V{}, [&](std::int64_t l) { return avx512::ByteCodes<V>{out_of(l)}; })
                        : run(V{}, [&](std::int64_t l) { return avx512::NibbleCodes<V>{out_of(l)}; });
    }
    using V = simd::Avx2;
    return width == 8 ? run(V{}, [&](std::int64_t l) { return avx2::ByteCodes<V>{out_of(l)}; })
                      : run(V{}, [&](std::int64_t l) { return avx2::NibbleCodes<V>{out_of(l)}; });
  } else {
    return 0;
  }
#else
  (void)path, (void)fmt, (void)er, (void)ec, (void)lines, (void)width, (void)block, (void)mode, (void)seed, (void)tp,
      (void)done;
  return 0;
#endif
}

// Returns false when `path` has no kernel (the caller runs the scalar reference).
template <class Fmt>
bool dequantize_line_simd(SimdPath path, const Fmt& fmt, const ElementCodes& ec, const std::uint32_t* codes, float* y,
                          const BlockHeader* headers, std::int64_t begin, std::int64_t end, std::int64_t block,
                          const TensorParams& tp) {
#if LOWBIT_HAS_X86_KERNELS
  switch (path) {
    case SimdPath::AVX512:
      avx512::dequantize_line<simd::Avx512>(fmt, ec, codes, y, headers, begin, end, block, tp);
      return true;
    case SimdPath::AVX2:
      avx2::dequantize_line<simd::Avx2>(fmt, ec, codes, y, headers, begin, end, block, tp);
      return true;
    case SimdPath::Scalar: return false;
  }
#else
  (void)path, (void)fmt, (void)ec, (void)codes, (void)y, (void)headers, (void)begin, (void)end, (void)block, (void)tp;
#endif
  return false;
}

}  // namespace lowbit::kernels
