// Shared by the matmul test suites: Student-t test matrices and their double Eigen copies.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <random>
#include <vector>

namespace lowbit_test {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline std::vector<float> random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = scale * t(rng);
  return v;
}

inline RowMat to_eigen(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  RowMat m(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m(r, c) = v[static_cast<std::size_t>(r * cols + c)];
  return m;
}

}  // namespace lowbit_test
