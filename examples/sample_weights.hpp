// A deterministic sample weight tensor with the statistics of an LLM linear layer: heavy
// tails (Student-t, 4 degrees of freedom), per-row scale spread, and a few input channels
// (columns) with much larger magnitudes — the "outlier channels" block formats are built for.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include <lowbit/core/rounding.hpp>

namespace lowbit_examples {

struct SampleTensor {
  std::int64_t rows, cols;
  std::vector<float> values;  // row-major
};

// SplitMix64: small, fast, fully specified, identical on every platform.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() { return lowbit::mix64(s_ += 0x9E3779B97F4A7C15ull); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  double student_t(int dof) {
    double chi2 = 0.0;
    for (int i = 0; i < dof; ++i) { const double z = normal(); chi2 += z * z; }
    return normal() / std::sqrt(chi2 / dof);
  }

 private:
  std::uint64_t s_;
};

inline SampleTensor sample_weights(std::int64_t rows = 256, std::int64_t cols = 1024, std::uint64_t seed = 2023) {
  SampleTensor t{rows, cols, std::vector<float>(static_cast<std::size_t>(rows * cols))};
  SplitMix64 rng(seed);
  std::vector<double> col_gain(static_cast<std::size_t>(cols), 1.0);
  for (std::int64_t c = 0; c < cols; c += 97) col_gain[static_cast<std::size_t>(c)] = 25.0;  // outlier channels
  for (std::int64_t r = 0; r < rows; ++r) {
    const double row_scale = 0.02 * std::exp(0.5 * rng.normal());  // weights ~ 0.02, log-normal spread
    for (std::int64_t c = 0; c < cols; ++c)
      t.values[static_cast<std::size_t>(r * cols + c)] =
          static_cast<float>(row_scale * col_gain[static_cast<std::size_t>(c)] * rng.student_t(4));
  }
  return t;
}

}  // namespace lowbit_examples
