// Error metrics of a quantised tensor against its float original, and the paper's density.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"

namespace lowbit {

struct ErrorStats {
  double mse = 0.0;            // mean squared error over the finite reference values
  double sqnr_db = 0.0;        // 10 log10(sum x^2 / sum (x - q)^2); +inf when exact
  double max_abs_error = 0.0;  // largest |x - q|
  std::int64_t count = 0;      // values compared
  std::int64_t skipped = 0;    // reference values that were NaN or Inf (not compared)
};

inline ErrorStats error_stats(MatrixRef<const float> ref, MatrixRef<const float> q) {
  detail::require(ref.rows == q.rows && ref.cols == q.cols, "error_stats", "shapes differ: ", ref.rows, " x ",
                  ref.cols, " vs ", q.rows, " x ", q.cols);
  ErrorStats s;
  double signal = 0.0, noise = 0.0;
  for (std::int64_t r = 0; r < ref.rows; ++r)
    for (std::int64_t c = 0; c < ref.cols; ++c) {
      const double x = ref(r, c), y = q(r, c);
      if (!std::isfinite(x)) { ++s.skipped; continue; }
      const double e = x - y;  // NaN or Inf in q propagates into the metrics, as it should
      signal += x * x;
      noise += e * e;
      s.max_abs_error = std::isnan(e) ? e : std::max(s.max_abs_error, std::fabs(e));
      ++s.count;
    }
  s.mse = s.count ? noise / static_cast<double>(s.count) : 0.0;
  s.sqnr_db = noise == 0.0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  return s;
}

// Memory density as the paper defines it: 32 bits over the bits stored per element.
inline double memory_density(double bits_per_element) { return 32.0 / bits_per_element; }

}  // namespace lowbit
