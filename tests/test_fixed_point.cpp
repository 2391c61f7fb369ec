// Fixed point: every code of every width 2..16 in the three ranges round-trips, midpoints
// between neighbouring integers follow the rounding mode, and out-of-range inputs saturate.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/fixed_point.hpp"

namespace {

using lowbit::FixedPointSpec;
using lowbit::IntRange;
using lowbit::Rounding;

std::string describe(const FixedPointSpec& s) {
  std::ostringstream os;
  os << "w" << s.bits << " f" << s.frac_bits
     << (s.range == IntRange::TwosComplement ? " twos" : s.range == IntRange::Symmetric ? " symmetric" : " unsigned");
  return os.str();
}

// The integer range, written from the definition.
std::int64_t ref_min(const FixedPointSpec& s) {
  if (s.range == IntRange::Unsigned) return 0;
  const std::int64_t half = std::int64_t{1} << (s.bits - 1);
  return s.range == IntRange::Symmetric ? -(half - 1) : -half;
}
std::int64_t ref_max(const FixedPointSpec& s) {
  return s.range == IntRange::Unsigned ? (std::int64_t{1} << s.bits) - 1 : (std::int64_t{1} << (s.bits - 1)) - 1;
}
// W-bit two's complement (or plain unsigned) code of integer k.
std::uint32_t ref_code(const FixedPointSpec& s, std::int64_t k) {
  return static_cast<std::uint32_t>((k + (std::int64_t{1} << s.bits)) % (std::int64_t{1} << s.bits));
}

void sweep(const FixedPointSpec& s) {
  SCOPED_TRACE(describe(s));
  ASSERT_NO_THROW(s.validate());
  const std::int64_t lo = ref_min(s), hi = ref_max(s);
  ASSERT_EQ(s.min_int(), lo);
  ASSERT_EQ(s.max_int(), hi);
  const double step = std::pow(2.0, -s.frac_bits);
  ASSERT_EQ(s.max_value(), static_cast<double>(hi) * step);
  ASSERT_EQ(s.min_value(), static_cast<double>(lo) * step);
  int failures = 0;
  auto check = [&](double x, Rounding m, std::uint32_t random, std::int64_t want_k) {
    const std::uint32_t got = s.encode(x, m, random), want = ref_code(s, want_k);
    if (got != want && ++failures <= 20)
      ADD_FAILURE() << "encode(" << x << ", " << lowbit::to_string(m) << ", " << random << ") = " << got
                    << ", want " << want << " (k = " << want_k << ")";
  };
  // Every code: canonical iff in range; canonical codes decode to k * 2^-F and re-encode.
  for (std::uint32_t c = 0; c < (1u << s.bits); ++c) {
    const std::int64_t k = s.range == IntRange::Unsigned || c < (1u << (s.bits - 1))
                               ? static_cast<std::int64_t>(c)
                               : static_cast<std::int64_t>(c) - (std::int64_t{1} << s.bits);
    const bool in_range = k >= lo && k <= hi;
    ASSERT_EQ(s.is_canonical(c), in_range) << c;
    if (!in_range) continue;
    ASSERT_EQ(s.decode(c), static_cast<double>(k) * step) << c;
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic})
      check(s.decode(c), m, 0x9ABCDEF0u, k);
  }
  ASSERT_FALSE(s.is_canonical(1u << s.bits));
  // Midpoints between k and k + 1, and just inside them.
  for (std::int64_t k = lo; k < hi; ++k) {
    const double a = static_cast<double>(k) * step, b = static_cast<double>(k + 1) * step, mid = 0.5 * (a + b);
    const std::int64_t even = (k % 2 == 0) ? k : k + 1;
    const bool lo_is_smaller = std::fabs(a) < std::fabs(b);
    const std::int64_t smaller = lo_is_smaller ? k : k + 1, larger = lo_is_smaller ? k + 1 : k;
    check(mid, Rounding::NearestEven, 0, even);
    check(mid, Rounding::NearestAway, 0, larger);
    check(mid, Rounding::TowardZero, 0, smaller);
    check(mid, Rounding::Stochastic, 0x7FFFFFFFu, larger);  // P(larger magnitude) = 1/2
    check(mid, Rounding::Stochastic, 0x80000000u, smaller);
    for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
      check(std::nextafter(mid, a), m, 0, k);
      check(std::nextafter(mid, b), m, 0, k + 1);
    }
    check(std::nextafter(mid, a), Rounding::TowardZero, 0, smaller);
    check(std::nextafter(mid, b), Rounding::TowardZero, 0, smaller);
  }
  // Saturation at both ends, infinities, and the half-step past each end.
  const double inf = std::numeric_limits<double>::infinity();
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic}) {
    check(s.max_value() + 0.5 * step, m, 0, hi);
    check(s.max_value() * 1e6 + 1.0, m, 0, hi);
    check(inf, m, 0, hi);
    check(-inf, m, 0, lo);
    check(-1e30, m, 0, lo);
    check(s.min_value() - 0.5 * step, m, 0, lo);
    check(-0.0, m, 0, 0);
    EXPECT_THROW(s.encode(std::numeric_limits<double>::quiet_NaN(), m), lowbit::Error);
  }
}

TEST(FixedPointSweep, EveryWidthRangeAndSomeFractionBits) {
  int visited = 0;
  for (int bits = 2; bits <= 16; ++bits) {
    for (IntRange r : {IntRange::TwosComplement, IntRange::Symmetric, IntRange::Unsigned}) {
      for (int frac : {0, bits - 2, 7, -3}) {
        if (bits == 16 && frac != 0 && frac != 7) continue;  // the widest codes only twice
        sweep(FixedPointSpec{bits, frac, r});
        ++visited;
        if (HasFatalFailure()) return;
      }
    }
  }
  EXPECT_GT(visited, 150);
}

TEST(FixedPointTypes, KnownValues) {
  // INT8: -128 .. 127; ties to even, away and toward zero.
  EXPECT_EQ(lowbit::INT8::decode(lowbit::INT8::encode(-1000.0)), -128.0);
  EXPECT_EQ(lowbit::INT8::decode(lowbit::INT8::encode(2.5)), 2.0);
  EXPECT_EQ(lowbit::INT8::decode(lowbit::INT8::encode(-2.5, Rounding::NearestAway)), -3.0);
  EXPECT_EQ(lowbit::INT8::decode(lowbit::INT8::encode(-2.9, Rounding::TowardZero)), -2.0);
  EXPECT_EQ(lowbit::INT8::encode(-1.0), 0xFFu);
  // MXINT8 element: symmetric, 6 fraction bits: -127/64 .. 127/64.
  EXPECT_EQ(lowbit::MXINT8_Element::quantize(-100.0), -127.0 / 64.0);
  EXPECT_EQ(lowbit::MXINT8_Element::quantize(100.0), 127.0 / 64.0);
  EXPECT_FALSE(lowbit::MXINT8_Element::spec.is_canonical(0x80u));
  EXPECT_EQ(lowbit::MXINT4_Element::quantize(-2.0), -1.75);
  EXPECT_EQ(lowbit::MXINT2_Element::quantize(-0.5), 0.0);
  EXPECT_EQ(lowbit::MXINT2_Element::quantize(-0.5, Rounding::NearestAway), -1.0);
  EXPECT_EQ(lowbit::MXINT2_Element::quantize(-5.0), -1.0);
  // Unsigned: negatives clamp to 0.
  EXPECT_EQ(lowbit::UInt<4>::quantize(-3.0), 0.0);
  EXPECT_EQ(lowbit::UInt<4>::quantize(15.4), 15.0);
  EXPECT_EQ(lowbit::UInt<4>::quantize(99.0), 15.0);
  // The paper's fixed-point baselines.
  EXPECT_EQ((lowbit::FixedPoint<8, 7>::quantize(0.99999)), 127.0 / 128.0);
  EXPECT_EQ((lowbit::FixedPoint<8, 4>::quantize(-8.5)), -8.0);
  EXPECT_EQ((lowbit::FixedPoint<4, 2>::quantize(0.125)), 0.0);
  EXPECT_EQ((lowbit::FixedPoint<4, 2>::quantize(0.375)), 0.5);
}

TEST(FixedPointTypes, DoublesNearTiesRoundExactly) {
  // A double a hair above a tie (invisible to float) still rounds up.
  const FixedPointSpec s{8, 0, IntRange::TwosComplement};
  EXPECT_EQ(s.encode(2.5 + std::ldexp(1.0, -40)), 3u);
  EXPECT_EQ(s.encode(2.5 - std::ldexp(1.0, -40)), 2u);
  EXPECT_EQ(s.encode(-(2.5 + std::ldexp(1.0, -40))), s.code_of_int(-3));
  EXPECT_EQ(s.encode(std::ldexp(1.0, -1074)), 0u);  // subnormal double
  EXPECT_EQ(s.encode(std::ldexp(1.0, -1074), Rounding::NearestAway), 0u);
}

TEST(FixedPointTypes, ValidateRejectsBadWidths) {
  EXPECT_THROW((FixedPointSpec{1, 0, IntRange::TwosComplement}.validate()), lowbit::Error);
  EXPECT_THROW((FixedPointSpec{17, 0, IntRange::TwosComplement}.validate()), lowbit::Error);
  EXPECT_THROW((FixedPointSpec{8, 200, IntRange::TwosComplement}.validate()), lowbit::Error);
  EXPECT_NO_THROW((FixedPointSpec{16, -20, IntRange::Unsigned}.validate()));
}

}  // namespace
