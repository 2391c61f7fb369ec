// Codebook elements (NF4, SF4): every code round-trips, midpoints follow the rounding mode,
// and both tables match their published construction recomputed here independently.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/student_float.hpp"

namespace {

using lowbit::CodebookSpec;
using lowbit::Rounding;

// ---- the tables' construction, recomputed -----------------------------------------------------

// torch.linspace(start, end, n) for float32, as bitsandbytes calls it: the step and every point
// are float32 operations, the first half counted from start and the second half from end.
std::vector<float> linspace_f32(float start, float end, int n) {
  const float step = (end - start) / static_cast<float>(n - 1);
  std::vector<float> out;
  for (int i = 0; i < n; ++i) {
    if (i < n / 2) {
      const float offset = step * static_cast<float>(i);
      out.push_back(start + offset);
    } else {
      const float offset = step * static_cast<float>(n - i - 1);
      out.push_back(end - offset);
    }
  }
  return out;
}

// Inverts a increasing CDF on [0, hi] by bisection (p >= 0.5 only).
template <class Cdf>
double invert_by_bisection(Cdf cdf, double p, double hi) {
  double lo = 0.0;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    const double mid = 0.5 * (lo + hi);
    (cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double normal_ppf(double p) {
  return invert_by_bisection([](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }, p, 40.0);
}

// Student's t with nu = 5: CDF by composite Simpson integration of the density from 0.
double t5_pdf(double x) {
  const double pi = std::acos(-1.0);
  const double c = std::tgamma(3.0) / (std::sqrt(5.0 * pi) * std::tgamma(2.5));
  return c * std::pow(1.0 + x * x / 5.0, -3.0);
}
double t5_cdf(double x) {
  const int n = 4000;  // even
  const double h = x / n;
  double s = t5_pdf(0.0) + t5_pdf(x);
  for (int i = 1; i < n; ++i) s += (i % 2 ? 4.0 : 2.0) * t5_pdf(i * h);
  return 0.5 + s * h / 3.0;
}
double t5_ppf(double p) { return invert_by_bisection(t5_cdf, p, 50.0); }

// bitsandbytes' create_normal_map(offset=0.9677083, use_extra_value=True) with any quantile
// function: 8 positive quantiles, 7 negative, a zero, sorted, float32, divided by the max.
template <class Ppf>
std::vector<double> nf4_style_table(Ppf ppf, float offset) {
  std::vector<float> v;
  const std::vector<float> pos = linspace_f32(offset, 0.5f, 9);
  const std::vector<float> neg = linspace_f32(offset, 0.5f, 8);
  for (int i = 0; i < 8; ++i) v.push_back(static_cast<float>(ppf(pos[static_cast<std::size_t>(i)])));
  for (int i = 0; i < 7; ++i) v.push_back(static_cast<float>(-ppf(neg[static_cast<std::size_t>(i)])));
  v.push_back(0.0f);
  std::sort(v.begin(), v.end());
  const float max = v.back();
  std::vector<double> out;
  for (float x : v) out.push_back(static_cast<double>(x / max));
  return out;
}

TEST(CodebookTables, NF4MatchesBitsandbytesConstruction) {
  const std::vector<double> ref = nf4_style_table(normal_ppf, 0.9677083f);
  ASSERT_EQ(ref.size(), 16u);
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(lowbit::kNF4.values[static_cast<std::size_t>(i)], ref[static_cast<std::size_t>(i)], 1e-7)
        << "NF4 index " << i;
}

TEST(CodebookTables, SF4MatchesStudentTConstruction) {
  // Spot-check the integrated CDF against textbook t(5) critical values first.
  EXPECT_NEAR(t5_cdf(2.015048373), 0.95, 1e-9);
  EXPECT_NEAR(t5_cdf(3.364929997), 0.99, 1e-9);
  const std::vector<double> ref = nf4_style_table(t5_ppf, static_cast<float>(lowbit::kStudentFloatOffset));
  ASSERT_EQ(ref.size(), 16u);
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(lowbit::kSF4.values[static_cast<std::size_t>(i)], ref[static_cast<std::size_t>(i)], 1e-6)
        << "SF4 index " << i;
  EXPECT_EQ(lowbit::kStudentFloatNu, 5.0);
}

TEST(CodebookTables, ShapeOfBothTables) {
  for (const CodebookSpec* cb : {&lowbit::kNF4, &lowbit::kSF4}) {
    ASSERT_EQ(cb->size, 16);
    EXPECT_NO_THROW(cb->validate());
    EXPECT_EQ(cb->values[0], -1.0);
    EXPECT_EQ(cb->values[15], 1.0);
    EXPECT_EQ(cb->values[7], 0.0);
    for (int i = 1; i < 16; ++i) EXPECT_LT(cb->values[i - 1], cb->values[i]);
    for (double v : cb->values) EXPECT_EQ(static_cast<double>(static_cast<float>(v)), v) << "not a float32";
    EXPECT_EQ(cb->bits(), 4);
    EXPECT_EQ(cb->max_value(), 1.0);
  }
  // t(5) has heavier tails than the normal: after normalising by the max, SF4's inner values
  // sit closer to zero than NF4's.
  for (int i = 1; i < 15; ++i) {
    if (i == 7) continue;
    EXPECT_LT(std::fabs(lowbit::kSF4.values[i]), std::fabs(lowbit::kNF4.values[i])) << i;
  }
}

// ---- rounding properties ---------------------------------------------------------------------

class CodebookRounding : public ::testing::TestWithParam<const CodebookSpec*> {};

TEST_P(CodebookRounding, EveryCodeRoundTrips) {
  const CodebookSpec& cb = *GetParam();
  for (std::uint32_t c = 0; c < 16; ++c) {
    EXPECT_TRUE(cb.is_canonical(c));
    EXPECT_EQ(cb.decode(c), cb.values[c]);
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic})
      EXPECT_EQ(cb.encode(cb.decode(c), m, 0x12345678u), c) << "code " << c;
  }
  EXPECT_FALSE(cb.is_canonical(16));
}

TEST_P(CodebookRounding, MidpointsFollowTheMode) {
  const CodebookSpec& cb = *GetParam();
  for (std::uint32_t i = 0; i + 1 < 16; ++i) {
    const double a = cb.values[i], b = cb.values[i + 1];
    const double mid = 0.5 * (a + b);
    ASSERT_EQ(mid - a, b - mid);  // an exact midpoint
    const std::uint32_t smaller = std::fabs(a) < std::fabs(b) ? i : i + 1;
    const std::uint32_t larger = smaller == i ? i + 1 : i;
    const std::uint32_t even = (i % 2 == 0) ? i : i + 1;
    EXPECT_EQ(cb.encode(mid, Rounding::NearestEven), even) << i;
    EXPECT_EQ(cb.encode(mid, Rounding::NearestAway), larger) << i;
    EXPECT_EQ(cb.encode(mid, Rounding::TowardZero), smaller) << i;
    EXPECT_EQ(cb.encode(mid, Rounding::Stochastic, 0u), i + 1) << i;
    EXPECT_EQ(cb.encode(mid, Rounding::Stochastic, 0xFFFFFFFFu), i) << i;
    // Just inside each side of the midpoint.
    const double below = std::nextafter(mid, a), above = std::nextafter(mid, b);
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
      EXPECT_EQ(cb.encode(below, m), i) << i;
      EXPECT_EQ(cb.encode(above, m), i + 1) << i;
    }
    EXPECT_EQ(cb.encode(below, Rounding::TowardZero), smaller) << i;
    EXPECT_EQ(cb.encode(above, Rounding::TowardZero), smaller) << i;
    EXPECT_EQ(cb.encode(std::nextafter(a, b), Rounding::TowardZero), smaller) << i;
    EXPECT_EQ(cb.encode(std::nextafter(b, a), Rounding::TowardZero), smaller) << i;
    // Stochastic: P(up) = (y - a) / (b - a); at a quarter of the way, draws below 2^30 go up.
    const double quarter = a + 0.25 * (b - a);
    EXPECT_EQ(cb.encode(quarter, Rounding::Stochastic, (1u << 30) - 4096u), i + 1) << i;
    EXPECT_EQ(cb.encode(quarter, Rounding::Stochastic, (1u << 30) + 4096u), i) << i;
  }
}

TEST_P(CodebookRounding, OutOfRangeAndSpecials) {
  const CodebookSpec& cb = *GetParam();
  const double inf = std::numeric_limits<double>::infinity();
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic}) {
    EXPECT_EQ(cb.encode(1.5, m), 15u);
    EXPECT_EQ(cb.encode(inf, m), 15u);
    EXPECT_EQ(cb.encode(-7.0, m), 0u);
    EXPECT_EQ(cb.encode(-inf, m), 0u);
    EXPECT_EQ(cb.encode(-0.0, m), 7u);
    EXPECT_THROW(cb.encode(std::numeric_limits<double>::quiet_NaN(), m), lowbit::Error);
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, CodebookRounding, ::testing::Values(&lowbit::kNF4, &lowbit::kSF4),
                         [](const auto& info) { return info.param == &lowbit::kNF4 ? "NF4" : "SF4"; });

TEST(CodebookSpecValidate, RejectsBadTables) {
  CodebookSpec cb = lowbit::kNF4;
  cb.values[3] = cb.values[4];
  EXPECT_THROW(cb.validate(), lowbit::Error);
  CodebookSpec tiny{};
  tiny.size = 1;
  EXPECT_THROW(tiny.validate(), lowbit::Error);
  CodebookSpec three{{-1.0, 0.0, 1.0}, 3};
  EXPECT_NO_THROW(three.validate());
  EXPECT_EQ(three.bits(), 2);
  EXPECT_EQ(three.encode(0.5, Rounding::NearestEven), 2u);  // ties go to the even index
  EXPECT_EQ(three.encode(-0.5, Rounding::NearestEven), 0u);
  EXPECT_EQ(three.encode(-0.5, Rounding::TowardZero), 1u);
  EXPECT_EQ(three.min_subnormal(), 1.0);
}

}  // namespace
