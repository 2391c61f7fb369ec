// Saturation: how many values a quantisation clipped. A value is saturated when it lies more
// than half a step beyond the largest magnitude its block can hold: it landed on the element's
// top code but would have rounded past it on an unbounded grid (values within half a step of
// the top merely rounded). Asymmetric formats: a value at either end code beyond the end.
// Infinite inputs that a format turns into finite values count too. No conversion loses range
// silently: quantization_error() reports the count beside the error metrics.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/formats/block_format.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/metrics.hpp"
#include "lowbit/quant/quantized_tensor.hpp"

namespace lowbit {

namespace detail {

// The largest magnitude an element encodes below `top` (its largest): scanned over every code
// up to 16 bits, one unit in the last place below for wider minifloats.
template <class E>
double largest_below(const E& e, double top) {
  const int bits = element_bits(e);
  if (bits > 16) {
    if constexpr (std::is_same_v<E, MinifloatSpec>) return top - std::ldexp(1.0, floor_log2(top) - e.man_bits);
    return top;
  }
  double best = 0.0;
  for (std::uint32_t c = 0; c < (1u << bits); ++c) {
    const double v = std::fabs(e.decode(c));
    if (std::isfinite(v) && v < top && v > best) best = v;
  }
  return best;
}

}  // namespace detail

// Saturated values of x given its quantisation qt and dequantised values y (same shape;
// qt.codes in row-major order, as quantize() writes them).
template <class E>
std::int64_t saturated_count(const BlockFormat<E>& f, MatrixRef<const float> x, const QuantizedTensor& qt,
                             MatrixRef<const float> y) {
  detail::require(x.rows == y.rows && x.cols == y.cols && qt.rows == x.rows && qt.cols == x.cols, "saturated_count",
                  "shapes differ: x ", x.rows, " x ", x.cols, ", y ", y.rows, " x ", y.cols, ", codes ", qt.rows, " x ",
                  qt.cols);
  const double emax = f.element.max_value();
  // Half the gap below the top magnitude, relative to it: |x| > |y| (1 + r) is past the top.
  const double r = (emax - detail::largest_below(f.element, emax)) / (2.0 * emax);
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < x.rows; ++i)
    for (std::int64_t c = 0; c < x.cols; ++c) {
      const float xv = x(i, c), yv = y(i, c);
      if (std::isinf(xv)) {
        n += std::isfinite(yv) ? 1 : 0;
        continue;
      }
      if (!std::isfinite(xv) || !(std::fabs(xv) > std::fabs(yv))) continue;
      const std::uint32_t code = qt.codes[static_cast<std::size_t>(i * x.cols + c)];
      bool clipped = std::fabs(f.element.decode(code)) == emax && std::fabs(xv) > std::fabs(yv) * (1.0 + r);
      if constexpr (std::is_same_v<E, FixedPointSpec>)
        if (f.scale.zero_point) clipped = code == 0 || static_cast<double>(code) == emax;
      n += clipped ? 1 : 0;
    }
  return n;
}

struct QuantizationError {
  ErrorStats stats;           // against the float original
  std::int64_t saturated = 0; // values clipped (see the top of this file)
};

// Quantises x (blocks as opt says), dequantises into y and measures both the error and the
// saturation.
template <class E>
QuantizationError quantization_error(const BlockFormat<E>& f, MatrixRef<const float> x, MatrixRef<float> y,
                                     const QuantOptions& opt = {}) {
  const QuantizedTensor qt = quantize(f, x, opt);
  dequantize(f, qt, y);
  QuantizationError e;
  e.stats = error_stats(x, y);
  e.saturated = saturated_count(f, x, qt, y);
  return e;
}

}  // namespace lowbit
