// Error metrics against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/metrics.hpp"
#include "lowbit/quant/saturation.hpp"

namespace {

using lowbit::MatrixRef;

TEST(Metrics, HandComputed) {
  const std::vector<float> x{1.0f, -2.0f, 3.0f, 4.0f};
  const std::vector<float> q{1.0f, -2.5f, 3.0f, 3.0f};
  const auto s = lowbit::error_stats(MatrixRef<const float>::row_major(x.data(), 2, 2),
                                     MatrixRef<const float>::row_major(q.data(), 2, 2));
  EXPECT_DOUBLE_EQ(s.mse, (0.25 + 1.0) / 4.0);
  EXPECT_DOUBLE_EQ(s.sqnr_db, 10.0 * std::log10(30.0 / 1.25));
  EXPECT_DOUBLE_EQ(s.max_abs_error, 1.0);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(s.skipped, 0);
}

TEST(Metrics, ExactIsInfiniteSqnrAndNonFiniteReferenceIsSkipped) {
  const std::vector<float> x{1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f};
  const auto s = lowbit::error_stats(MatrixRef<const float>::row_major(x.data(), 1, 3),
                                     MatrixRef<const float>::row_major(x.data(), 1, 3));
  EXPECT_TRUE(std::isinf(s.sqnr_db));
  EXPECT_EQ(s.count, 2);
  EXPECT_EQ(s.skipped, 1);
}

TEST(Metrics, NanInQuantisedOutputIsVisible) {
  const std::vector<float> x{1.0f, 2.0f};
  const std::vector<float> q{1.0f, std::numeric_limits<float>::quiet_NaN()};
  const auto s = lowbit::error_stats(MatrixRef<const float>::row_major(x.data(), 1, 2),
                                     MatrixRef<const float>::row_major(q.data(), 1, 2));
  EXPECT_TRUE(std::isnan(s.mse));
  EXPECT_TRUE(std::isnan(s.max_abs_error));
}

TEST(Metrics, ShapeMismatchThrows) {
  const std::vector<float> x(6);
  EXPECT_THROW(lowbit::error_stats(MatrixRef<const float>::row_major(x.data(), 2, 3),
                                   MatrixRef<const float>::row_major(x.data(), 3, 2)),
               lowbit::Error);
}

TEST(Metrics, PaperMemoryDensity) {
  EXPECT_NEAR(lowbit::memory_density(6.5), 4.923, 1e-3);  // BFP W6 block 16: the paper's "5x"
  EXPECT_DOUBLE_EQ(lowbit::memory_density(32.0), 1.0);
}

}  // namespace

// Saturation counts, by hand: OCP MX's floor rule puts a block whose largest magnitude is 7.5
// at scale 2^(2 - 2) = 1, so 7.5 clips to FP4's 6 while 3.2 and 5.0 fit; an absmax-scaled
// int8 block never clips; an infinity that a saturating fp8 turns into 448 counts.
TEST(Saturation, CountsClippedValuesOnly) {
  std::vector<float> x(32, 0.25f);
  x[0] = 7.5f;
  x[1] = -7.5f;
  x[2] = 3.2f;
  x[3] = 5.0f;
  std::vector<float> y(x.size());
  const auto xr = lowbit::MatrixRef<const float>::row_major(x.data(), 1, 32);
  const auto yr = lowbit::MatrixRef<float>::row_major(y.data(), 1, 32);
  const auto mx = lowbit::quantization_error(lowbit::MXFP4::format, xr, yr);
  EXPECT_EQ(mx.saturated, 2);
  EXPECT_EQ(y[0], 6.0f);
  EXPECT_EQ(mx.stats.count, 32);
  const auto i8 = lowbit::quantization_error(lowbit::INT8_B32_FP16::format, xr, yr);
  EXPECT_EQ(i8.saturated, 0);
  std::vector<float> z = {1.0f, std::numeric_limits<float>::infinity(), 500.0f, -3.0f};
  std::vector<float> zq(z.size());
  const lowbit::MinifloatFormat e4m3{lowbit::FP8_E4M3::spec, lowbit::kNoScale, 1};  // per element, saturating
  const auto fp8 = lowbit::quantization_error(e4m3, lowbit::MatrixRef<const float>::row_major(z.data(), 1, 4),
                                              lowbit::MatrixRef<float>::row_major(zq.data(), 1, 4));
  EXPECT_EQ(fp8.saturated, 2);  // the infinity and 500 (largest E4M3 value: 448)
  EXPECT_EQ(zq[2], 448.0f);
}
