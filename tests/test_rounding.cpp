// The rounding primitive and stochastic rounding: round_to_grid against a floating-point model,
// mode names, reproducible random bits, and unbiased stochastic rounding through the formats.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"
#include "lowbit/formats/codebook.hpp"
#include "lowbit/formats/fixed_point.hpp"
#include "lowbit/formats/log_element.hpp"
#include "lowbit/formats/minifloat.hpp"

namespace {

using lowbit::Rounding;

struct SplitMix64 {  // the SplitMix64 stream, on lowbit's own finaliser
  std::uint64_t state;
  std::uint64_t next() { return lowbit::mix64(state += 0x9E3779B97F4A7C15ull); }
};

TEST(RoundingNames, RoundTripAndAliases) {
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic})
    EXPECT_EQ(lowbit::parse_rounding(lowbit::to_string(m)), m);
  EXPECT_EQ(lowbit::parse_rounding("rne"), Rounding::NearestEven);
  EXPECT_EQ(lowbit::parse_rounding("nearest"), Rounding::NearestAway);
  EXPECT_EQ(lowbit::parse_rounding("truncate"), Rounding::TowardZero);
  EXPECT_EQ(lowbit::parse_rounding("sr"), Rounding::Stochastic);
  EXPECT_THROW(lowbit::parse_rounding("up"), lowbit::Error);
  EXPECT_THROW(lowbit::parse_rounding(""), lowbit::Error);
}

TEST(Bits, DecomposeAndFriends) {
  const lowbit::Decomposed one = lowbit::decompose(1.0);
  EXPECT_EQ(one.significand, 1ull << 52);
  EXPECT_EQ(one.exponent, -52);
  const lowbit::Decomposed tiny = lowbit::decompose(std::ldexp(3.0, -1074));
  EXPECT_EQ(tiny.significand, 3u);
  EXPECT_EQ(tiny.exponent, -1074);
  EXPECT_EQ(lowbit::decompose(-6.0).significand, 3ull << 51);  // the sign is ignored
  SplitMix64 rng{7};
  for (int i = 0; i < 100000; ++i) {
    const double a = std::fabs(lowbit::bits_double(rng.next() >> 1 | 1));
    if (!std::isfinite(a)) continue;
    const lowbit::Decomposed d = lowbit::decompose(a);
    ASSERT_EQ(std::ldexp(static_cast<double>(d.significand), d.exponent), a);
    ASSERT_EQ(lowbit::floor_log2(a), d.exponent + static_cast<int>(std::bit_width(d.significand)) - 1) << a;
  }
  for (int e = -1074; e <= 1023; ++e) {
    ASSERT_EQ(lowbit::pow2(e), std::ldexp(1.0, e));
    ASSERT_EQ(lowbit::floor_log2(lowbit::pow2(e)), e);
    ASSERT_TRUE(lowbit::is_power_of_two(lowbit::pow2(e)));
    if (e > -1074) {
      ASSERT_EQ(lowbit::floor_log2(std::nextafter(lowbit::pow2(e), 0.0)), e - 1);
    }
  }
  EXPECT_FALSE(lowbit::is_power_of_two(3.0));
  EXPECT_FALSE(lowbit::is_power_of_two(std::nextafter(1.0, 2.0)));
  EXPECT_EQ(lowbit::float_bits(lowbit::bits_float(0x7FC12345u)), 0x7FC12345u);
}

// round_to_grid(a, q) against a model in plain floating point: a / 2^q split into integer
// and fraction (both exact for the ranges drawn), then the mode applied to the fraction.
std::uint64_t model_round(double a, int q, Rounding mode, std::uint32_t random) {
  const double x = std::ldexp(a, -q);
  const double fl = std::floor(x), frac = x - fl;
  const std::uint64_t k = static_cast<std::uint64_t>(fl);
  switch (mode) {
    case Rounding::NearestEven: return k + ((frac > 0.5 || (frac == 0.5 && (k & 1))) ? 1 : 0);
    case Rounding::NearestAway: return k + (frac >= 0.5 ? 1 : 0);
    case Rounding::TowardZero: return k;
    case Rounding::Stochastic: {
      // up iff random < floor(frac * 2^32)
      const double threshold = std::floor(std::ldexp(frac, 32));
      return k + (static_cast<double>(random) < threshold ? 1 : 0);
    }
  }
  return 0;
}

TEST(RoundToGrid, MatchesTheModel) {
  SplitMix64 rng{42};
  int failures = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    const std::uint64_t r = rng.next();
    // a = significand * 2^e with up to 53 bits; q chosen so that a / 2^q < 2^60.
    const double sig = static_cast<double>(r >> (11 + r % 40));
    if (sig == 0.0) continue;
    const int e = static_cast<int>(rng.next() % 200) - 100;
    const double a = std::ldexp(sig, e);
    const int q = lowbit::floor_log2(a) - static_cast<int>(rng.next() % 60);
    const std::uint32_t random = static_cast<std::uint32_t>(rng.next());
    const Rounding mode = static_cast<Rounding>(i % 4);
    const std::uint64_t got = lowbit::round_to_grid(a, q, mode, random);
    const std::uint64_t want = model_round(a, q, mode, random);
    if (got != want && ++failures <= 20)
      ADD_FAILURE() << "round_to_grid(" << a << ", " << q << ", " << lowbit::to_string(mode) << ", " << random
                    << ") = " << got << ", model " << want;
  }
  EXPECT_EQ(failures, 0);
}

TEST(RoundToGrid, EdgeCases) {
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic}) {
    EXPECT_EQ(lowbit::round_to_grid(0.0, 0, m, 0), 0u);
    EXPECT_EQ(lowbit::round_to_grid(1e300, 0, m, 0), lowbit::kGridHuge);       // far past the grid's range
    EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, 62), 0, m, 0), lowbit::kGridHuge);
    EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, 61), 0, m, 0), 1ull << 61);
    EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, -1074), -1074, m, 0), 1u);  // subnormal, on the grid
  }
  // Far below the grid step (discarded bits beyond 64): only stochastic could round up, and
  // its 32-bit threshold is zero.
  EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, -100), 0, Rounding::NearestAway, 0), 0u);
  EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, -100), 0, Rounding::Stochastic, 0), 0u);
  EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, -20), 0, Rounding::Stochastic, 0), 1u);
  EXPECT_EQ(lowbit::round_to_grid(std::ldexp(1.0, -20), 0, Rounding::Stochastic, 4096u), 0u);
  // Exactly half, both parities, on negative and positive grids.
  EXPECT_EQ(lowbit::round_to_grid(2.5, 0, Rounding::NearestEven), 2u);
  EXPECT_EQ(lowbit::round_to_grid(3.5, 0, Rounding::NearestEven), 4u);
  EXPECT_EQ(lowbit::round_to_grid(2.5, 0, Rounding::NearestAway), 3u);
  EXPECT_EQ(lowbit::round_to_grid(0.375, -2, Rounding::NearestEven), 2u);
  EXPECT_EQ(lowbit::round_to_grid(24.0, 4, Rounding::NearestEven), 2u);
  EXPECT_EQ(lowbit::round_to_grid(40.0, 4, Rounding::NearestEven), 2u);
}

TEST(Stochastic, BitsAreReproducibleAndSeedDependent) {
  for (std::uint64_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(lowbit::stochastic_bits(1, i), lowbit::stochastic_bits(1, i));
  }
  int same_seed_diff = 0, same_index_diff = 0;
  for (std::uint64_t i = 0; i < 1000; ++i) {
    same_seed_diff += lowbit::stochastic_bits(1, i) == lowbit::stochastic_bits(1, i + 1);
    same_index_diff += lowbit::stochastic_bits(1, i) == lowbit::stochastic_bits(2, i);
  }
  EXPECT_LE(same_seed_diff, 1);
  EXPECT_LE(same_index_diff, 1);
  static_assert(lowbit::stochastic_bits(3, 4) == lowbit::stochastic_bits(3, 4));
  // Uniform: 16 buckets of the top 4 bits, chi-square with 15 dof well below its 99.99% point.
  constexpr int kN = 1'600'000;
  std::int64_t buckets[16] = {};
  for (int i = 0; i < kN; ++i) ++buckets[lowbit::stochastic_bits(0xABCDEFull, static_cast<std::uint64_t>(i)) >> 28];
  double chi2 = 0.0;
  for (std::int64_t b : buckets) chi2 += std::pow(static_cast<double>(b) - kN / 16.0, 2) / (kN / 16.0);
  EXPECT_LT(chi2, 44.3);
  // Every bit position is fair.
  for (int bit = 0; bit < 32; ++bit) {
    int ones = 0;
    for (int i = 0; i < 100000; ++i) ones += (lowbit::stochastic_bits(99, static_cast<std::uint64_t>(i)) >> bit) & 1;
    EXPECT_NEAR(ones / 100000.0, 0.5, 0.01) << bit;  // 6 sigma
  }
}

// Rounds `x` n times with independent draws through `quantize` and checks the mean against x,
// and the frequency of rounding up against the fraction (lo, hi the neighbours of x).
template <class Quantize>
void check_unbiased(Quantize quantize, double x, double lo, double hi, int n, std::uint64_t seed) {
  double sum = 0.0;
  int ups = 0;
  for (int i = 0; i < n; ++i) {
    const double q = quantize(x, lowbit::stochastic_bits(seed, static_cast<std::uint64_t>(i)));
    ASSERT_TRUE(q == lo || q == hi) << x << " -> " << q;
    sum += q;
    ups += q == hi;
  }
  const double p = (x - lo) / (hi - lo);
  const double sigma_p = std::sqrt(p * (1.0 - p) / n);
  EXPECT_NEAR(static_cast<double>(ups) / n, p, 5.0 * sigma_p + 1e-9) << x;
  EXPECT_NEAR(sum / n, x, 5.0 * sigma_p * std::fabs(hi - lo) + 1e-12) << x;
  // Reproducible: the same seed and index give the same result.
  for (int i = 0; i < 100; ++i) {
    const std::uint32_t r = lowbit::stochastic_bits(seed, static_cast<std::uint64_t>(i));
    ASSERT_EQ(quantize(x, r), quantize(x, r));
  }
}

TEST(Stochastic, UnbiasedThroughEveryElementFamily) {
  constexpr int kN = 400'000;
  const auto fp8 = [](double x, std::uint32_t r) { return lowbit::FP8_E4M3::quantize(x, Rounding::Stochastic, r); };
  check_unbiased(fp8, 1.1, 1.0, 1.125, kN, 1);          // p = 0.8
  check_unbiased(fp8, -300.0, -288.0, -320.0, kN, 2);   // p = 0.375, negative side
  check_unbiased(fp8, 0.001, 0.0, 0.001953125, kN, 3);  // subnormal range
  const auto int4 = [](double x, std::uint32_t r) { return lowbit::INT4::quantize(x, Rounding::Stochastic, r); };
  check_unbiased(int4, 2.3, 2.0, 3.0, kN, 4);
  check_unbiased(int4, -0.1, 0.0, -1.0, kN, 5);
  const auto nf4 = [](double x, std::uint32_t r) { return lowbit::kNF4.quantize(x, Rounding::Stochastic, r); };
  check_unbiased(nf4, 0.5, lowbit::kNF4.values[12], lowbit::kNF4.values[13], kN, 6);
  const lowbit::LogSpec log4{3};
  const auto lg = [&](double x, std::uint32_t r) { return log4.quantize(x, Rounding::Stochastic, r); };
  check_unbiased(lg, 0.3, 0.25, 0.5, kN, 7);
  // Fractions at the edge of the 32-bit resolution still round up with the right frequency.
  const auto grid = [](double x, std::uint32_t r) {
    return static_cast<double>(lowbit::round_to_grid(x, 0, Rounding::Stochastic, r));
  };
  check_unbiased(grid, 5.0 + 1.0 / 1024.0, 5.0, 6.0, kN, 8);
  check_unbiased(grid, 7.0 + 1.0 / 3.0, 7.0, 8.0, kN, 9);
}

}  // namespace
