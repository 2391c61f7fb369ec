// Error metrics against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/quant/metrics.hpp"

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
