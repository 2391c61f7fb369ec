// The packed matmul's reference path against Eigen: dequantised W (and fake-quantised X) in
// double precision, on odd shapes, every weight family, both modes, any thread count.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "lowbit/gemm/matmul_reference.hpp"
#include "lowbit/lowbit.hpp"
#include "matmul_test_support.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit_test::random_matrix;
using lowbit_test::RowMat;
using lowbit_test::to_eigen;

// Y must equal the double-precision product of the exact operands, rounded once: within one
// float rounding of it (plus the tiny difference of double summation orders).
void expect_matches_eigen(const std::string& wname, const std::string& aname, std::int64_t n, std::int64_t m,
                          std::int64_t k, int threads) {
  SCOPED_TRACE(wname + " x " + (aname.empty() ? "float" : aname) + " " + std::to_string(n) + "x" + std::to_string(m) +
               "x" + std::to_string(k));
  const auto xv = random_matrix(n, k, 1, 1.0f);
  const auto wv = random_matrix(m, k, 2, 0.02f);
  const auto bv = random_matrix(1, m, 3, 0.1f);
  const auto w = lowbit::AnyPackedMatrix::pack(wname, MatrixRef<const float>::row_major(wv.data(), m, k));
  const std::vector<float> wdq = w.unpack();
  std::vector<float> xq = xv;
  lowbit::MatmulOptions opt;
  opt.threads = threads;
  if (!aname.empty()) {
    opt.activation = lowbit::Quantizer(aname);
    opt.activation->fake_quant(MatrixRef<const float>::row_major(xv.data(), n, k), MatrixRef<float>::row_major(xq.data(), n, k));
  }
  std::vector<float> y(static_cast<std::size_t>(n * m));
  std::visit(
      [&](const auto& pm) {
        lowbit::matmul_reference(MatrixRef<const float>::row_major(xv.data(), n, k), pm, std::span<const float>(bv),
                                 MatrixRef<float>::row_major(y.data(), n, m), opt);
      },
      w.matrix());
  const RowMat ref = to_eigen(xq, n, k) * to_eigen(wdq, m, k).transpose();
  const RowMat mag = to_eigen(xq, n, k).cwiseAbs() * to_eigen(wdq, m, k).cwiseAbs().transpose();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      const double want = ref(i, j) + bv[static_cast<std::size_t>(j)];
      const double bound = std::fabs(want) * 0x1p-24 + (mag(i, j) + std::fabs(bv[static_cast<std::size_t>(j)])) * 1e-15;
      ASSERT_LE(std::fabs(static_cast<double>(y[static_cast<std::size_t>(i * m + j)]) - want), bound)
          << "at " << i << ", " << j;
    }
}

TEST(MatmulReference, WeightOnlyEveryFamily) {
  for (const char* w : {"mxfp4", "mxfp8_e4m3", "mxint8", "nvfp4", "bfp6_b16", "bfp3_b16", "int4_b32_fp16", "uint4_b32_fp16",
                        "int8_b32_e8m0", "nf4_b64", "bm_e4m3_b16", "bl_w8_b16", "fp8_e4m3", "fp16"})
    expect_matches_eigen(w, "", 5, 13, 70, 0);
}

TEST(MatmulReference, QuantisedActivations) {
  for (const auto& [w, a] : std::vector<std::pair<const char*, const char*>>{
           {"mxfp4", "mxint8"}, {"int4_b32_fp16", "int8_b32_fp16"}, {"bfp4_b16", "bfp8_b16"}, {"nf4_b64", "mxfp8_e4m3"},
           {"nvfp4", "fp8_e4m3_pt"}, {"bfp6_b16", "bfp6_b16"}})
    expect_matches_eigen(w, a, 4, 9, 96, 0);
}

TEST(MatmulReference, OddShapes) {
  for (auto [n, m, k] : std::vector<std::tuple<int, int, int>>{{1, 1, 1}, {1, 7, 33}, {3, 1, 65}, {2, 5, 31}, {0, 4, 32}, {3, 0, 32}})
    expect_matches_eigen("mxfp4", "mxint8", n, m, k, 0);
}

TEST(MatmulReference, AnyThreadCountGivesTheSameBits) {
  const std::int64_t n = 3, m = 300, k = 512;
  const auto xv = random_matrix(n, k, 4, 1.0f);
  const auto wv = random_matrix(m, k, 5, 0.02f);
  const auto w = lowbit::PackedMatrix<lowbit::MinifloatFormat>::pack(lowbit::MXFP4::format,
                                                                     MatrixRef<const float>::row_major(wv.data(), m, k));
  std::vector<float> y1(static_cast<std::size_t>(n * m)), y2(y1.size());
  lowbit::MatmulOptions opt;
  opt.activation = lowbit::Quantizer("mxint8");
  opt.threads = 1;
  lowbit::matmul_reference(MatrixRef<const float>::row_major(xv.data(), n, k), w, {}, MatrixRef<float>::row_major(y1.data(), n, m), opt);
  for (int t : {2, 3, 8}) {
    opt.threads = t;
    lowbit::matmul_reference(MatrixRef<const float>::row_major(xv.data(), n, k), w, {}, MatrixRef<float>::row_major(y2.data(), n, m), opt);
    EXPECT_EQ(y1, y2) << t;
  }
}

TEST(MatmulReference, ShapeErrors) {
  const std::vector<float> wv(8 * 32, 0.5f), xv(2 * 31, 1.0f), bias(7, 0.0f);
  std::vector<float> y(2 * 8);
  const auto w = lowbit::PackedMatrix<lowbit::MinifloatFormat>::pack(lowbit::MXFP4::format, MatrixRef<const float>::row_major(wv.data(), 8, 32));
  EXPECT_THROW(lowbit::matmul_reference(MatrixRef<const float>::row_major(xv.data(), 2, 31), w, {},
                                        MatrixRef<float>::row_major(y.data(), 2, 8)),
               lowbit::Error);
  const std::vector<float> x2(2 * 32, 1.0f);
  EXPECT_THROW(lowbit::matmul_reference(MatrixRef<const float>::row_major(x2.data(), 2, 32), w, std::span<const float>(bias),
                                        MatrixRef<float>::row_major(y.data(), 2, 8)),
               lowbit::Error);
  EXPECT_THROW(lowbit::matmul_reference(MatrixRef<const float>::row_major(x2.data(), 2, 32), w, {},
                                        MatrixRef<float>::row_major(y.data(), 1, 8)),
               lowbit::Error);
}

}  // namespace
