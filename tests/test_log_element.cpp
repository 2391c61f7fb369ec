// Logarithmic elements: every code of exponent widths 1..7 round-trips, the log-domain
// boundary 2^(k+1/2) between neighbouring powers is decided exactly, and the bottom, the top
// and stochastic rounding follow the documented rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/log_element.hpp"

namespace {

using lowbit::LogSpec;
using lowbit::Rounding;

constexpr Rounding kAllModes[] = {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero,
                                  Rounding::Stochastic};

// The value of a code, from the definition: sign bit above E exponent bits; field 0 is zero,
// field f is 2^(f - (2^E - 1)).
double reference_decode(int E, std::uint32_t code) {
  const std::uint32_t field = code & ((1u << E) - 1u);
  const double mag = field == 0 ? 0.0 : std::pow(2.0, static_cast<int>(field) - ((1 << E) - 1));
  return ((code >> E) & 1u) ? -mag : mag;
}

class LogElement : public ::testing::TestWithParam<int> {};

TEST_P(LogElement, EveryCodeRoundTrips) {
  const int E = GetParam();
  const LogSpec s{E};
  ASSERT_NO_THROW(s.validate());
  ASSERT_EQ(s.bits(), E + 1);
  for (std::uint32_t c = 0; c < (1u << (E + 1)); ++c) {
    const double v = s.decode(c);
    ASSERT_EQ(v, reference_decode(E, c)) << c;
    const bool negative_zero = c == (1u << E);
    ASSERT_EQ(s.is_canonical(c), !negative_zero) << c;
    for (Rounding m : kAllModes) EXPECT_EQ(s.encode(v, m, 0x13579BDFu), negative_zero ? 0u : c) << c;
  }
  EXPECT_FALSE(s.is_canonical(1u << (E + 1)));
  EXPECT_EQ(s.max_value(), 1.0);
  EXPECT_EQ(s.min_subnormal(), std::ldexp(1.0, 2 - (1 << E)));
}

TEST_P(LogElement, BoundariesBetweenPowers) {
  const int E = GetParam();
  const LogSpec s{E};
  // The double nearest sqrt(2) lies above it and its predecessor below: checked exactly with fma.
  const double r2 = std::sqrt(2.0), below_r2 = std::nextafter(r2, 0.0);
  ASSERT_GT(std::fma(r2, r2, -2.0), 0.0);
  ASSERT_LT(std::fma(below_r2, below_r2, -2.0), 0.0);
  for (int f = 1; f < s.top_field(); ++f) {
    const int k = f - s.top_field();  // neighbours 2^k (field f) and 2^(k+1) (field f + 1)
    const std::uint32_t lo = static_cast<std::uint32_t>(f), hi = lo + 1u, sign = 1u << E;
    const double at = std::ldexp(r2, k), before = std::ldexp(below_r2, k);
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
      EXPECT_EQ(s.encode(before, m), lo) << k;
      EXPECT_EQ(s.encode(at, m), hi) << k;
      EXPECT_EQ(s.encode(-before, m), sign | lo) << k;
      EXPECT_EQ(s.encode(-at, m), sign | hi) << k;
      // The linear midpoint 1.5 * 2^k is above the log boundary, so it rounds up.
      EXPECT_EQ(s.encode(std::ldexp(1.5, k), m), hi) << k;
      EXPECT_EQ(s.encode(std::ldexp(1.4, k), m), lo) << k;
    }
    EXPECT_EQ(s.encode(std::nextafter(std::ldexp(1.0, k + 1), 0.0), Rounding::TowardZero), lo) << k;
    EXPECT_EQ(s.encode(-std::ldexp(1.99, k), Rounding::TowardZero), sign | lo) << k;
    // Stochastic: linear in value, P(up) = a / 2^k - 1.
    const double quarter = std::ldexp(1.25, k);
    EXPECT_EQ(s.encode(quarter, Rounding::Stochastic, (1u << 30) - 1u), hi) << k;
    EXPECT_EQ(s.encode(quarter, Rounding::Stochastic, 1u << 30), lo) << k;
  }
}

TEST_P(LogElement, BottomTopAndSpecials) {
  const int E = GetParam();
  const LogSpec s{E};
  const double smallest = std::ldexp(1.0, s.emin());
  const std::uint32_t sign = 1u << E, top = static_cast<std::uint32_t>(s.top_field());
  // Below the smallest power: nearest keeps it from half of it up, toward zero gives 0.
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
    EXPECT_EQ(s.encode(0.5 * smallest, m), 1u);
    EXPECT_EQ(s.encode(std::nextafter(0.5 * smallest, 0.0), m), 0u);
    EXPECT_EQ(s.encode(-0.5 * smallest, m), sign | 1u);
    EXPECT_EQ(s.encode(-0.25 * smallest, m), 0u);  // zero has no sign
  }
  EXPECT_EQ(s.encode(0.9 * smallest, Rounding::TowardZero), 0u);
  EXPECT_EQ(s.encode(0.25 * smallest, Rounding::Stochastic, (1u << 30) - 1u), 1u);
  EXPECT_EQ(s.encode(0.25 * smallest, Rounding::Stochastic, 1u << 30), 0u);
  EXPECT_EQ(s.encode(std::ldexp(1.0, -1074)), 0u);
  // At and above 1 every mode gives the top power; infinities too.
  const double inf = std::numeric_limits<double>::infinity();
  for (Rounding m : kAllModes) {
    EXPECT_EQ(s.encode(1.0, m), top);
    EXPECT_EQ(s.encode(1.7, m), top);
    EXPECT_EQ(s.encode(1e300, m), top);
    EXPECT_EQ(s.encode(inf, m), top);
    EXPECT_EQ(s.encode(-inf, m), sign | top);
    EXPECT_EQ(s.encode(-0.0, m), 0u);
    EXPECT_THROW(s.encode(std::numeric_limits<double>::quiet_NaN(), m), lowbit::Error);
  }
  // Just below 1, nearest rounds up to 1 above 2^(-1/2) and toward zero stays at 1/2.
  if (E >= 2) {
    EXPECT_EQ(s.encode(std::nextafter(1.0, 0.0)), top);
    EXPECT_EQ(s.encode(std::nextafter(1.0, 0.0), Rounding::TowardZero), top - 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(ExponentBits, LogElement, ::testing::Range(1, 8));

TEST(LogElementValidate, RejectsBadWidths) {
  EXPECT_THROW(LogSpec{0}.validate(), lowbit::Error);
  EXPECT_THROW(LogSpec{9}.validate(), lowbit::Error);
  EXPECT_NO_THROW(LogSpec{8}.validate());
}

}  // namespace
