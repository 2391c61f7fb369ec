// E8M0 (OCP MX scale): all 256 codes, rounding between neighbouring powers of two in every
// mode, and the clamping and NaN rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/formats/e8m0.hpp"

namespace {

using lowbit::E8M0;
using lowbit::Rounding;

constexpr Rounding kAllModes[] = {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero,
                                  Rounding::Stochastic};

TEST(E8M0, EveryCodeDecodesAndRoundTrips) {
  for (std::uint32_t c = 0; c < 255; ++c) {
    const double v = E8M0::decode(c);
    EXPECT_EQ(v, std::pow(2.0, static_cast<int>(c) - 127)) << c;
    EXPECT_EQ(E8M0::exponent(c), static_cast<int>(c) - 127);
    EXPECT_FALSE(E8M0::is_nan(c));
    for (Rounding m : kAllModes) EXPECT_EQ(E8M0::encode(v, m, 0x5A5A5A5Au), c) << c;
    EXPECT_EQ(E8M0::from_exponent(static_cast<int>(c) - 127), c);
  }
  EXPECT_TRUE(E8M0::is_nan(0xFF));
  EXPECT_TRUE(std::isnan(E8M0::decode(0xFF)));
  EXPECT_EQ(E8M0::decode(0), std::ldexp(1.0, -127));
  EXPECT_EQ(E8M0::decode(254), std::ldexp(1.0, 127));
}

TEST(E8M0, MidpointsFollowTheMode) {
  for (std::uint32_t c = 0; c + 1 < 255; ++c) {
    const double lo = E8M0::decode(c), hi = E8M0::decode(c + 1);
    const double mid = 0.5 * (lo + hi);  // 1.5 * 2^k, exact
    const std::uint32_t even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(E8M0::encode(mid, Rounding::NearestEven), even) << c;
    EXPECT_EQ(E8M0::encode(mid, Rounding::NearestAway), c + 1) << c;
    EXPECT_EQ(E8M0::encode(mid, Rounding::TowardZero), c) << c;
    EXPECT_EQ(E8M0::encode(mid, Rounding::Stochastic, 0x7FFFFFFFu), c + 1) << c;
    EXPECT_EQ(E8M0::encode(mid, Rounding::Stochastic, 0x80000000u), c) << c;
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
      EXPECT_EQ(E8M0::encode(std::nextafter(mid, lo), m), c) << c;
      EXPECT_EQ(E8M0::encode(std::nextafter(mid, hi), m), c + 1) << c;
    }
    EXPECT_EQ(E8M0::encode(std::nextafter(hi, lo), Rounding::TowardZero), c) << c;
    // Stochastic rounding is linear in value: at 2^k * 1.25, P(up) = 1/4.
    const double quarter = lo * 1.25;
    EXPECT_EQ(E8M0::encode(quarter, Rounding::Stochastic, (1u << 30) - 1u), c + 1) << c;
    EXPECT_EQ(E8M0::encode(quarter, Rounding::Stochastic, 1u << 30), c) << c;
  }
}

TEST(E8M0, ClampsAndSpecials) {
  const double inf = std::numeric_limits<double>::infinity();
  for (Rounding m : kAllModes) {
    EXPECT_EQ(E8M0::encode(std::nan(""), m), 0xFFu);
    EXPECT_EQ(E8M0::encode(inf, m), 0xFFu);
    EXPECT_EQ(E8M0::encode(-inf, m), 0xFFu);
    EXPECT_EQ(E8M0::encode(0.0, m), 0u);
    EXPECT_EQ(E8M0::encode(-0.0, m), 0u);
    EXPECT_EQ(E8M0::encode(-4.0, m), 0u);
    EXPECT_EQ(E8M0::encode(std::ldexp(1.0, -1074), m), 0u);
    EXPECT_EQ(E8M0::encode(std::ldexp(1.0, -200), m), 0u);
    EXPECT_EQ(E8M0::encode(std::ldexp(1.0, 127), m), 254u);
    EXPECT_EQ(E8M0::encode(std::ldexp(1.9, 127), m), 254u);
    EXPECT_EQ(E8M0::encode(1e300, m), 254u);
  }
  EXPECT_EQ(E8M0::from_exponent(-500), 0u);
  EXPECT_EQ(E8M0::from_exponent(500), 254u);
}

}  // namespace
