// Minifloats: exhaustive code round trips and midpoint rounding over a wide sweep of splits,
// biases and special-value policies; overflow and special inputs; exact rounding of doubles;
// and bit-for-bit agreement of FP16 / BF16 / FP32 with the CPU's own conversions.
#include <gtest/gtest.h>

#include <cpuid.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/core/bfloat16.hpp"
#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/formats/minifloat.hpp"

namespace {

using lowbit::MinifloatSpec;
using lowbit::Overflow;
using lowbit::Rounding;
using lowbit::Specials;

constexpr Rounding kAllModes[] = {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero,
                                  Rounding::Stochastic};

std::string describe(const MinifloatSpec& s) {
  std::ostringstream os;
  os << "e" << s.exp_bits << "m" << s.man_bits << " bias " << s.bias << (s.subnormals ? " subnormals" : " no-subnormals")
     << (s.specials == Specials::IEEE ? " IEEE" : s.specials == Specials::FiniteNaN ? " FiniteNaN" : " FiniteOnly")
     << (s.overflow == Overflow::Saturate ? " saturate" : " overflow-to-inf");
  return os.str();
}

// ---- an independent model of the formats, written from their definition ------------------------

enum class Kind { Number, Inf, NaN };

struct RefCode {
  Kind kind;
  double value;  // for numbers, the exact signed value
  bool canonical;
};

RefCode reference_decode(const MinifloatSpec& s, std::uint32_t code) {
  const int E = s.exp_bits, M = s.man_bits;
  const bool neg = (code >> (E + M)) & 1u;
  const std::uint32_t field = (code >> M) & ((1u << E) - 1u);
  const std::uint32_t man = code & ((1u << M) - 1u);
  const std::uint32_t top = (1u << E) - 1u;
  if (s.specials == Specials::IEEE && field == top) return {man == 0 ? Kind::Inf : Kind::NaN, 0.0, true};
  if (s.specials == Specials::FiniteNaN && field == top && man == (1u << M) - 1u) return {Kind::NaN, 0.0, true};
  double mag;
  bool canonical = true;
  if (field == 0) {
    // subnormal: 0.man * 2^(1 - bias); without subnormals these read as zero and are never produced
    mag = s.subnormals ? static_cast<double>(man) / std::pow(2.0, M) * std::pow(2.0, 1 - s.bias) : 0.0;
    canonical = s.subnormals || man == 0;
  } else {
    mag = (1.0 + static_cast<double>(man) / std::pow(2.0, M)) * std::pow(2.0, static_cast<int>(field) - s.bias);
  }
  return {Kind::Number, neg ? -mag : mag, canonical};
}

// ---- the property sweep -----------------------------------------------------------------------

struct Expect {
  std::uint32_t even, away, zero;
};

// Tie rule between neighbours lo < hi (both >= 0): nearest-even picks the one that is an even
// multiple of their distance (for M >= 1 this is the code with an even mantissa; for M = 0 it
// is the larger power of two; between 0 and the smallest normal without subnormals it is 0).
Expect tie_expectations(double lo, double hi, std::uint32_t lo_code, std::uint32_t hi_code) {
  const double k = lo / (hi - lo);
  const bool lo_even = std::fmod(k, 2.0) == 0.0;
  return {lo_even ? lo_code : hi_code, hi_code, lo_code};
}

// Checks a neighbour pair (lo, lo_code) < (hi, hi_code) on both signs; hi may be "past max",
// in which case hi_code is the overflow result for nearest and stochastic rounding.
void check_pair(const MinifloatSpec& s, double lo, std::uint32_t lo_code, double hi, std::uint32_t hi_code,
                std::uint32_t rtz_hi_code, int& failures) {
  const double mid = 0.5 * (lo + hi);
  ASSERT_EQ(mid - lo, hi - mid) << "inexact midpoint";
  const Expect t = tie_expectations(lo, hi, lo_code, hi_code);
  const std::uint32_t sign = s.sign_mask();
  const double below = std::nextafter(mid, lo), above = std::nextafter(mid, hi);
  struct Case {
    double x;
    Rounding mode;
    std::uint32_t random;
    std::uint32_t want;
  };
  const Case cases[] = {
      {mid, Rounding::NearestEven, 0, t.even},
      {mid, Rounding::NearestAway, 0, t.away},
      {mid, Rounding::TowardZero, 0, t.zero},
      {mid, Rounding::Stochastic, 0x7FFFFFFFu, hi_code},  // P(up) = 1/2: draws below 2^31 go up
      {mid, Rounding::Stochastic, 0x80000000u, lo_code},
      {below, Rounding::NearestEven, 0, lo_code},
      {below, Rounding::NearestAway, 0, lo_code},
      {above, Rounding::NearestEven, 0, hi_code},
      {above, Rounding::NearestAway, 0, hi_code},
      {above, Rounding::TowardZero, 0, lo_code},
      {std::nextafter(hi, lo), Rounding::TowardZero, 0, lo_code},
      {hi, Rounding::TowardZero, 0, rtz_hi_code},
  };
  for (const Case& c : cases) {
    for (int neg = 0; neg < 2; ++neg) {
      const double x = neg ? -c.x : c.x;
      const std::uint32_t want = c.want | (neg ? sign : 0u);
      const std::uint32_t got = s.encode(x, c.mode, c.random);
      if (got != want && ++failures <= 20) {
        ADD_FAILURE() << describe(s) << ": encode(" << x << ", " << lowbit::to_string(c.mode) << ", random "
                      << c.random << ") = 0x" << std::hex << got << ", want 0x" << want << std::dec
                      << " (neighbours " << lo << ", " << hi << ")";
      }
    }
  }
  // In M >= 1 formats, ties between two codes of one binade (or a binade's last code and the
  // next power) go to the code with an even mantissa.
  if (s.man_bits >= 1 && lo != 0.0 && hi <= s.max_value() && (t.even & 1u) != 0 && ++failures <= 20)
    ADD_FAILURE() << describe(s) << ": tie between " << lo << " and " << hi << " picks an odd code";
}

// Every code of `s` (bits <= 16): decoding matches the model, numbers re-encode to themselves in
// every mode, NaNs stay NaN, and every midpoint between neighbours rounds as the mode says.
void sweep(const MinifloatSpec& s) {
  SCOPED_TRACE(describe(s));
  ASSERT_LE(s.bits(), 16);
  const std::uint32_t ncodes = 1u << s.bits();
  const std::uint32_t sign = s.sign_mask();
  int failures = 0;
  std::vector<std::uint32_t> positive;  // canonical finite non-negative codes, ascending
  for (std::uint32_t c = 0; c < ncodes; ++c) {
    const RefCode r = reference_decode(s, c);
    const double got = s.decode(c);
    ASSERT_EQ(s.is_canonical(c), r.canonical) << "code 0x" << std::hex << c;
    ASSERT_EQ(s.is_nan(c), r.kind == Kind::NaN) << "code 0x" << std::hex << c;
    ASSERT_EQ(s.is_inf(c), r.kind == Kind::Inf) << "code 0x" << std::hex << c;
    if (r.kind == Kind::NaN) {
      ASSERT_TRUE(std::isnan(got)) << "code 0x" << std::hex << c;
      // A NaN re-encodes to itself (IEEE: with the quiet bit set).
      const std::uint32_t quiet = s.specials == Specials::IEEE ? 1u << (s.man_bits - 1) : 0u;
      ASSERT_EQ(s.encode(got), c | quiet) << "code 0x" << std::hex << c;
      continue;
    }
    if (r.kind == Kind::Inf) {
      ASSERT_TRUE(std::isinf(got) && std::signbit(got) == ((c & sign) != 0)) << "code 0x" << std::hex << c;
      // Inf re-encodes to itself, or to the largest finite value when the format saturates.
      ASSERT_EQ(s.encode(got), s.overflow == Overflow::Saturate ? (c & sign) | s.max_code() : c);
      continue;
    }
    ASSERT_EQ(got, r.value) << "code 0x" << std::hex << c;
    ASSERT_EQ(std::signbit(got), (c & sign) != 0) << "code 0x" << std::hex << c;
    if (!r.canonical) continue;
    for (Rounding m : kAllModes) {
      const std::uint32_t back = s.encode(got, m, 0xDEADBEEFu);
      if (back != c && ++failures <= 20)
        ADD_FAILURE() << "code 0x" << std::hex << c << " decodes to " << got << " and re-encodes to 0x" << back
                      << " under " << lowbit::to_string(m);
    }
    if ((c & sign) == 0) positive.push_back(c);
  }
  ASSERT_GE(positive.size(), 2u);
  // Ascending values along ascending canonical codes, and the advertised maximum.
  for (std::size_t i = 1; i < positive.size(); ++i)
    ASSERT_LT(s.decode(positive[i - 1]), s.decode(positive[i])) << "codes not monotone";
  ASSERT_EQ(positive.back(), s.max_code());
  ASSERT_EQ(s.decode(s.max_code()), s.max_value());
  // Midpoints between neighbours.
  for (std::size_t i = 1; i < positive.size(); ++i) {
    const double lo = s.decode(positive[i - 1]), hi = s.decode(positive[i]);
    check_pair(s, lo, positive[i - 1], hi, positive[i], positive[i], failures);
  }
  // Past the maximum: the next value on max's grid, whose code is the overflow result.
  const double vmax = s.max_value();
  const double step = std::ldexp(1.0, lowbit::floor_log2(vmax) - s.man_bits);
  std::uint32_t overflow_code = s.max_code();
  if (s.overflow == Overflow::Infinity)
    overflow_code = s.specials == Specials::IEEE ? static_cast<std::uint32_t>(s.top_field()) << s.man_bits
                                                 : ((static_cast<std::uint32_t>(s.top_field()) << s.man_bits) | s.man_mask());
  check_pair(s, vmax, s.max_code(), vmax + step, overflow_code, s.max_code(), failures);
  // Far past the maximum, and infinite inputs.
  const double inf = std::numeric_limits<double>::infinity();
  for (int neg = 0; neg < 2; ++neg) {
    const double sg = neg ? -1.0 : 1.0;
    const std::uint32_t sb = neg ? sign : 0u;
    EXPECT_EQ(s.encode(sg * vmax * 1e6, Rounding::NearestEven), overflow_code | sb);
    EXPECT_EQ(s.encode(sg * vmax * 1e6, Rounding::TowardZero), s.max_code() | sb);  // never Inf
    EXPECT_EQ(s.encode(sg * 1e300, Rounding::TowardZero), s.max_code() | sb);
    const std::uint32_t inf_code =
        s.specials == Specials::IEEE && s.overflow == Overflow::Infinity ? overflow_code
        : s.specials == Specials::FiniteNaN && s.overflow == Overflow::Infinity ? overflow_code
                                                                                  : s.max_code();
    for (Rounding m : kAllModes) EXPECT_EQ(s.encode(sg * inf, m), inf_code | sb) << lowbit::to_string(m);
  }
}

// Every MinifloatSpec the sweep visits is valid by the spec's own rules.
bool valid(const MinifloatSpec& s) {
  try {
    s.validate();
    return true;
  } catch (const lowbit::Error&) {
    return false;
  }
}

TEST(MinifloatSweep, AllPoliciesUpTo12Bits) {
  int visited = 0;
  for (int E = 1; E <= 8; ++E) {
    for (int M = 0; 1 + E + M <= 12; ++M) {
      const int def = MinifloatSpec::default_bias(E);
      for (int bias : {def, def + 4, def - 3}) {
        for (Specials sp : {Specials::IEEE, Specials::FiniteNaN, Specials::FiniteOnly}) {
          for (bool sub : {true, false}) {
            for (Overflow ov : {Overflow::Infinity, Overflow::Saturate}) {
              const MinifloatSpec s{E, M, bias, sub, sp, ov};
              if (!valid(s)) continue;
              sweep(s);
              ++visited;
              if (HasFatalFailure()) return;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(visited, 1000);
}

TEST(MinifloatSweep, EverySplitAt13To16Bits) {
  for (int bits = 13; bits <= 16; ++bits) {
    for (int E = 1; E <= 8; ++E) {
      const int M = bits - 1 - E;
      const int def = MinifloatSpec::default_bias(E);
      // IEEE with subnormals everywhere it is valid; the other policies on one width each.
      std::vector<MinifloatSpec> specs;
      if (E >= 2) specs.push_back({E, M, def, true, Specials::IEEE, Overflow::Infinity});
      if (bits == 14) specs.push_back({E, M, def + 2, false, Specials::FiniteOnly, Overflow::Saturate});
      if (bits == 13) specs.push_back({E, M, def - 1, true, Specials::FiniteNaN, Overflow::Infinity});
      for (const MinifloatSpec& s : specs) {
        ASSERT_TRUE(valid(s)) << describe(s);
        sweep(s);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(MinifloatSweep, NamedFormats) {
  struct Named {
    MinifloatSpec spec;
    double max;
    const char* name;
  };
  const Named named[] = {
      {lowbit::FP16::spec, 65504.0, "FP16"},
      {lowbit::BF16::spec, 3.3895313892515355e38, "BF16"},
      {lowbit::FP8_E4M3::spec, 448.0, "FP8_E4M3"},
      {lowbit::FP8_E5M2::spec, 57344.0, "FP8_E5M2"},
      {lowbit::FP8_E4M3_OVF::spec, 448.0, "FP8_E4M3_OVF"},
      {lowbit::FP8_E5M2_OVF::spec, 57344.0, "FP8_E5M2_OVF"},
      {lowbit::FP6_E3M2::spec, 28.0, "FP6_E3M2"},
      {lowbit::FP6_E2M3::spec, 7.5, "FP6_E2M3"},
      {lowbit::FP4_E2M1::spec, 6.0, "FP4_E2M1"},
  };
  for (const Named& n : named) {
    SCOPED_TRACE(n.name);
    EXPECT_NO_THROW(n.spec.validate());
    EXPECT_EQ(n.spec.max_value(), n.max);
    sweep(n.spec);
  }
  // Saturating OCP types and their non-saturating variants at the overflow boundary.
  EXPECT_EQ(lowbit::FP8_E4M3::quantize(464.0), 448.0);           // tie, even mantissa 110
  EXPECT_EQ(lowbit::FP8_E4M3::quantize(1e9), 448.0);
  EXPECT_EQ(lowbit::FP8_E4M3_OVF::quantize(464.0), 448.0);
  EXPECT_TRUE(std::isnan(lowbit::FP8_E4M3_OVF::quantize(464.0, Rounding::NearestAway)));
  EXPECT_EQ(lowbit::FP8_E4M3_OVF::encode(-1e9), 0xFFu);
  EXPECT_EQ(lowbit::FP8_E5M2::quantize(61440.0), 57344.0);
  EXPECT_TRUE(std::isinf(lowbit::FP8_E5M2_OVF::quantize(61440.0)));
  EXPECT_EQ(lowbit::FP8_E5M2_OVF::quantize(61439.0), 57344.0);
  EXPECT_EQ(lowbit::FP4_E2M1::quantize(5.0), 4.0);   // tie between 4 (even) and 6
  EXPECT_EQ(lowbit::FP4_E2M1::quantize(5.0, Rounding::NearestAway), 6.0);
  EXPECT_EQ(lowbit::FP4_E2M1::quantize(0.25), 0.0);  // tie between 0 and the subnormal 0.5
  EXPECT_EQ(lowbit::FP4_E2M1::quantize(-0.25, Rounding::NearestAway), -0.5);
  EXPECT_EQ(lowbit::FP6_E2M3::quantize(100.0), 7.5);
  EXPECT_EQ(lowbit::FP6_E3M2::quantize(-100.0), -28.0);
}

// ---- specials ---------------------------------------------------------------------------------

double nan_with_payload(bool neg, std::uint64_t payload52) {
  return lowbit::bits_double((neg ? 0xFFF0000000000000ull : 0x7FF0000000000000ull) | payload52);
}

TEST(MinifloatSpecials, NaNInputs) {
  // Finite-only formats cannot encode NaN.
  for (Rounding m : kAllModes) {
    EXPECT_THROW(lowbit::FP4_E2M1::encode(std::nan(""), m), lowbit::Error);
    EXPECT_THROW(lowbit::FP6_E3M2::encode(-std::nan(""), m), lowbit::Error);
  }
  // OCP E4M3: the single NaN code, sign kept.
  EXPECT_EQ(lowbit::FP8_E4M3::encode(std::nan("")), 0x7Fu);
  EXPECT_EQ(lowbit::FP8_E4M3::encode(-std::nan("")), 0xFFu);
  // IEEE formats keep the payload's top bits and set the quiet bit.
  const MinifloatSpec h = lowbit::FP16::spec;
  const std::uint64_t top10 = 0x2A5ull << 42;  // 10 payload bits at the top of the 52
  EXPECT_EQ(h.encode(nan_with_payload(false, top10 | 1)), 0x7C00u | 0x200u | 0x2A5u);
  EXPECT_EQ(h.encode(nan_with_payload(true, top10)), 0xFC00u | 0x200u | 0x2A5u);
  EXPECT_EQ(h.encode(nan_with_payload(false, 1)), 0x7E00u);  // signalling, payload below the kept bits
  const MinifloatSpec e5m2 = lowbit::FP8_E5M2::spec;
  EXPECT_EQ(e5m2.encode(nan_with_payload(false, 1ull << 51)), 0x7Eu);
  EXPECT_EQ(e5m2.encode(nan_with_payload(false, 1ull << 50)), 0x7Fu);
  EXPECT_EQ(e5m2.encode(nan_with_payload(true, 1)), 0xFEu);
  for (Rounding m : kAllModes) EXPECT_TRUE(std::isnan(lowbit::BF16::quantize(std::nan(""), m)));
}

TEST(MinifloatSpecials, SignedZeroAndTinyInputs) {
  const double tiny = lowbit::bits_double(1);  // 2^-1074, a subnormal double
  for (Rounding m : kAllModes) {
    EXPECT_EQ(lowbit::FP16::encode(-0.0, m), 0x8000u);
    EXPECT_EQ(lowbit::FP16::encode(0.0, m), 0u);
    EXPECT_EQ(lowbit::FP8_E4M3::encode(-0.0, m), 0x80u);
    EXPECT_EQ(lowbit::FP4_E2M1::encode(-0.0, m), 0x8u);
  }
  EXPECT_EQ(lowbit::FP16::encode(tiny), 0u);
  EXPECT_EQ(lowbit::FP16::encode(-tiny), 0x8000u);
  EXPECT_EQ(lowbit::FP16::encode(-tiny, Rounding::NearestAway), 0x8000u);
  EXPECT_EQ(lowbit::FP16::encode(tiny, Rounding::Stochastic, 0u), 0u);  // P(up) = 2^-1050 rounds to 0 in 32 bits
  EXPECT_EQ(lowbit::FP32::encode(std::ldexp(1.0, -149)), 1u);           // the smallest float subnormal
  EXPECT_EQ(lowbit::FP32::encode(std::ldexp(1.0, -150)), 0u);           // tie with 0 goes to 0
  EXPECT_EQ(lowbit::FP32::encode(std::ldexp(1.5, -150)), 1u);
  EXPECT_EQ(lowbit::FP32::encode(std::ldexp(1.0, -150), Rounding::NearestAway), 1u);
  // Without subnormals, the range below the smallest normal is one step from 0.
  const MinifloatSpec ftz{5, 10, 15, false, Specials::IEEE, Overflow::Infinity};
  EXPECT_EQ(ftz.encode(std::ldexp(1.0, -14)), 0x0400u);
  EXPECT_EQ(ftz.encode(std::ldexp(1.0, -15)), 0u);
  EXPECT_EQ(ftz.encode(std::nextafter(std::ldexp(1.0, -15), 1.0)), 0x0400u);
  EXPECT_EQ(ftz.encode(std::ldexp(1.0, -20), Rounding::TowardZero), 0u);
  EXPECT_EQ(ftz.decode(0x0001u), 0.0);
  EXPECT_FALSE(ftz.is_canonical(0x0001u));
  EXPECT_EQ(ftz.min_subnormal(), std::ldexp(1.0, -14));
}

TEST(MinifloatSpecials, ValidateRejectsImpossibleSpecs) {
  EXPECT_THROW((MinifloatSpec{0, 3, 0, true, Specials::FiniteOnly, Overflow::Saturate}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{9, 3, 0, true, Specials::FiniteOnly, Overflow::Saturate}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{4, 24, 7, true, Specials::IEEE, Overflow::Saturate}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{1, 3, 0, true, Specials::IEEE, Overflow::Saturate}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{1, 0, 0, true, Specials::FiniteNaN, Overflow::Saturate}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{2, 1, 1, true, Specials::FiniteOnly, Overflow::Infinity}.validate()), lowbit::Error);
  EXPECT_THROW((MinifloatSpec{4, 3, 400, true, Specials::IEEE, Overflow::Infinity}.validate()), lowbit::Error);
  EXPECT_NO_THROW((MinifloatSpec{1, 2, 0, true, Specials::FiniteOnly, Overflow::Saturate}.validate()));
}

// ---- doubles that would round twice through float ------------------------------------------

// For neighbours lo < hi of `s`, a double a hair above (below) their midpoint must round to hi
// (lo) in every nearest mode, although converting it to float first would land on the tie.
void check_no_double_rounding(const MinifloatSpec& s, double lo, double hi, std::uint32_t lo_code,
                              std::uint32_t hi_code) {
  const double mid = 0.5 * (lo + hi);
  const double hair = std::ldexp(mid, -40);  // far below float resolution, exact in double
  const double up = mid + hair, down = mid - hair;
  ASSERT_EQ(static_cast<double>(static_cast<float>(up)), mid);  // float would see the tie
  ASSERT_EQ(static_cast<double>(static_cast<float>(down)), mid);
  for (Rounding m : {Rounding::NearestEven, Rounding::NearestAway}) {
    EXPECT_EQ(s.encode(up, m), hi_code) << describe(s) << " at " << lo << ".." << hi;
    EXPECT_EQ(s.encode(down, m), lo_code) << describe(s) << " at " << lo << ".." << hi;
    EXPECT_EQ(s.encode(-up, m), hi_code | s.sign_mask());
  }
}

TEST(MinifloatExactness, NoDoubleRoundingThroughFloat) {
  for (const MinifloatSpec& s : {lowbit::FP16::spec, lowbit::BF16::spec, lowbit::FP8_E4M3::spec,
                                 lowbit::FP8_E5M2::spec, lowbit::FP4_E2M1::spec}) {
    // Both tie parities, in normals and subnormals.
    for (std::uint32_t c : {0x01u, 0x02u, 0x11u, 0x12u, 0x21u, 0x22u, 0x2Au, 0x35u}) {
      if (c + 1 > s.max_code()) continue;
      check_no_double_rounding(s, s.decode(c), s.decode(c + 1), c, c + 1);
    }
  }
  // FP32 itself: doubles a hair past a float midpoint (the case a float detour cannot see).
  const MinifloatSpec f = lowbit::FP32::spec;
  for (std::uint32_t c : {0x3F800000u, 0x3F800001u, 0x00000001u, 0x00000002u, 0x7F7FFFFEu, 0x1234567u}) {
    const double lo = f.decode(c), hi = f.decode(c + 1), mid = 0.5 * (lo + hi);
    const double hair = std::ldexp(mid, -50);
    EXPECT_EQ(f.encode(mid + hair), c + 1);
    EXPECT_EQ(f.encode(mid - hair), c);
    EXPECT_EQ(f.encode(mid), (c & 1u) ? c + 1 : c);
  }
}

// ---- agreement with the CPU -----------------------------------------------------------------

// splitmix64: a fast, well-mixed stream of 64-bit values.
struct SplitMix64 {  // the SplitMix64 stream, on lowbit's own finaliser
  std::uint64_t state;
  std::uint64_t next() { return lowbit::mix64(state += 0x9E3779B97F4A7C15ull); }
};

bool cpu_has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_F16C) != 0 && __builtin_cpu_supports("avx");  // VEX state enabled by the OS
}
bool cpu_has_avx512bf16() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bf16");
}

// vcvtps2ph with imm8 = 0: round to nearest even, regardless of MXCSR.
__attribute__((target("f16c"))) std::uint16_t cpu_fp16(float x) {
  return static_cast<std::uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT), 0));
}
__attribute__((target("f16c,avx"))) void cpu_fp16_batch(const float* in, std::uint16_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
}
// vcvtneps2bf16: round to nearest even (no MXCSR control).
__attribute__((target("avx512bf16,avx512vl,avx512f"))) std::uint16_t cpu_bf16(float x) {
  const __m128bh r = _mm_cvtneps_pbh(_mm_set_ss(x));
  std::uint16_t lanes[8];
  std::memcpy(lanes, &r, sizeof lanes);
  return lanes[0];
}
__attribute__((target("avx512bf16,avx512vl,avx512f"))) void cpu_bf16_batch(const float* in, std::uint16_t* out,
                                                                             std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) {
    const __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(in + i));
    std::memcpy(out + i, &r, 32);
  }
}

bool is_float_subnormal(std::uint32_t b) { return (b & 0x7F800000u) == 0 && (b & 0x007FFFFFu) != 0; }

// Float inputs that probe every rounding position: for each exponent field and sign, mantissas
// at a tie for every number of dropped bits d (kept part all ones, zero, one, mixed), one ulp
// either side, plus zeros, infinities, the ends of each binade and NaNs with payloads.
std::vector<std::uint32_t> special_float_bits() {
  std::vector<std::uint32_t> v;
  for (std::uint32_t sign : {0u, 0x80000000u}) {
    for (std::uint32_t field = 0; field < 256; ++field) {
      const std::uint32_t base = sign | (field << 23);
      for (std::uint32_t m : {0u, 1u, 2u, 0x7FFFFFu, 0x7FFFFEu, 0x400000u, 0x3FFFFFu}) v.push_back(base | m);
      for (int d = 1; d <= 23; ++d) {
        const std::uint32_t kept_mask = (0x7FFFFFu >> d) << d;
        for (std::uint32_t kept : {0u, 1u << d, kept_mask, 0x555555u & kept_mask, 0x2AAAAAu & kept_mask}) {
          const std::uint32_t tie = base | kept | (1u << (d - 1));
          for (std::uint32_t x : {tie - 1, tie, tie + 1}) v.push_back(x);
        }
      }
    }
    for (int i = 0; i < 23; ++i) {  // NaNs: one payload bit each, quiet and signalling
      v.push_back(sign | 0x7F800000u | (1u << i));
      v.push_back(sign | 0x7FC00000u | (1u << i));
    }
  }
  return v;
}

template <class Cpu>
void check_specials(const MinifloatSpec& s, Cpu cpu, bool skip_float_subnormals) {
  int failures = 0, checked = 0;
  for (std::uint32_t b : special_float_bits()) {
    if (skip_float_subnormals && is_float_subnormal(b)) continue;
    const float x = lowbit::bits_float(b);
    const std::uint32_t want = cpu(x);
    const std::uint32_t got = s.encode(static_cast<double>(x));
    ++checked;
    if (got != want && ++failures <= 20)
      ADD_FAILURE() << "float 0x" << std::hex << b << ": lowbit 0x" << got << ", CPU 0x" << want;
  }
  EXPECT_EQ(failures, 0) << "of " << checked << " special inputs";
  EXPECT_GT(checked, 100000);
}

template <class Batch>
void check_random(const MinifloatSpec& s, Batch batch, std::uint64_t seed, std::uint64_t total,
                  bool skip_float_subnormals) {
  constexpr std::size_t kChunk = 1 << 16;
  std::vector<float> in(kChunk);
  std::vector<std::uint16_t> out(kChunk);
  SplitMix64 rng{seed};
  std::uint64_t failures = 0, done = 0;
  while (done < total) {
    for (std::size_t i = 0; i < kChunk; i += 2) {
      const std::uint64_t r = rng.next();
      in[i] = lowbit::bits_float(static_cast<std::uint32_t>(r));
      in[i + 1] = lowbit::bits_float(static_cast<std::uint32_t>(r >> 32));
    }
    batch(in.data(), out.data(), kChunk);
    for (std::size_t i = 0; i < kChunk; ++i) {
      const std::uint32_t b = lowbit::float_bits(in[i]);
      if (skip_float_subnormals && is_float_subnormal(b)) continue;
      const std::uint32_t got = s.encode(static_cast<double>(in[i]));
      if (got != out[i] && ++failures <= 20)
        ADD_FAILURE() << "float 0x" << std::hex << b << ": lowbit 0x" << got << ", CPU 0x" << out[i];
    }
    done += kChunk;
  }
  EXPECT_EQ(failures, 0u) << "of " << done << " random floats";
}

constexpr std::uint64_t kRandomInputs = 100'000'000;

TEST(CpuAgreement, FP16SpecialValues) {
  if (!cpu_has_f16c()) GTEST_SKIP() << "CPU lacks F16C";
  check_specials(lowbit::FP16::spec, cpu_fp16, false);
}

TEST(CpuAgreement, FP16RandomFloats) {
  if (!cpu_has_f16c()) GTEST_SKIP() << "CPU lacks F16C";
  check_random(lowbit::FP16::spec, cpu_fp16_batch, 0x5EED0F16ull, kRandomInputs, false);
}

TEST(CpuAgreement, BF16SpecialValues) {
  if (!cpu_has_avx512bf16()) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  // vcvtneps2bf16 treats denormal inputs as zero (Intel's pseudocode; observed on AMD Zen 4
  // too), which lowbit::BF16 deliberately does not: subnormal floats are compared separately.
  check_specials(lowbit::BF16::spec, cpu_bf16, true);
}

TEST(CpuAgreement, BF16RandomFloats) {
  if (!cpu_has_avx512bf16()) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  check_random(lowbit::BF16::spec, cpu_bf16_batch, 0x5EEDBF16ull, kRandomInputs, true);
}

// The documented behaviour of vcvtneps2bf16 on a float subnormal is a zero of the same sign.
// What we found: the instruction does that (every subnormal float -> +-0), while lowbit::BF16
// rounds subnormal floats to nearest even like any other value (BF16 keeps subnormals), so the
// two differ exactly on the subnormals that are at least half the smallest bf16 subnormal.
TEST(CpuAgreement, BF16SubnormalFloatsAreFlushedByTheCpu) {
  if (!cpu_has_avx512bf16()) GTEST_SKIP() << "CPU lacks AVX512-BF16";
  std::uint64_t differing = 0;
  for (std::uint32_t m = 1; m < (1u << 23); m += 7) {
    for (std::uint32_t sign : {0u, 0x80000000u}) {
      const float x = lowbit::bits_float(sign | m);
      ASSERT_EQ(cpu_bf16(x), sign >> 16) << "CPU did not flush 0x" << std::hex << (sign | m);
      // lowbit: exact round-to-nearest-even of m * 2^-149 to a multiple of 2^-133.
      const std::uint32_t k = (m >> 16) + (((m & 0xFFFFu) > 0x8000u || ((m & 0xFFFFu) == 0x8000u && (m >> 16) & 1u)) ? 1u : 0u);
      ASSERT_EQ(lowbit::BF16::encode(static_cast<double>(x)), (sign >> 16) | k) << std::hex << (sign | m);
      differing += k != 0;
    }
  }
  EXPECT_GT(differing, 0u);
}

TEST(CpuAgreement, FP32IsTheIdentityOnFloats) {
  int failures = 0;
  for (std::uint32_t b : special_float_bits()) {
    const float x = lowbit::bits_float(b);
    const std::uint32_t got = lowbit::FP32::encode(static_cast<double>(x));
    // Every float is representable; NaNs come back quiet with their payload.
    const std::uint32_t want = std::isnan(x) ? (b | 0x00400000u) : b;
    if (got != want && ++failures <= 20) ADD_FAILURE() << std::hex << b << " -> " << got;
  }
  SplitMix64 rng{0xF32F32ull};
  for (int i = 0; i < 4'000'000; ++i) {
    const std::uint32_t b = static_cast<std::uint32_t>(rng.next());
    const float x = lowbit::bits_float(b);
    if (std::isnan(x)) continue;
    const std::uint32_t got = lowbit::FP32::encode(static_cast<double>(x));
    if (got != b && ++failures <= 20) ADD_FAILURE() << std::hex << b << " -> " << got;
    ASSERT_EQ(lowbit::FP32::decode(got), static_cast<double>(x));
  }
  EXPECT_EQ(failures, 0);
}

TEST(CpuAgreement, FP32FromDoubleMatchesTheFloatCast) {
  SplitMix64 rng{0xD0B1Eull};
  int failures = 0;
  for (int i = 0; i < 4'000'000; ++i) {
    const std::uint64_t r = rng.next();
    // Exponents concentrated around float's range (overflow, normals, subnormals, underflow);
    // every fifth input a raw 64-bit pattern (NaNs and huge values included).
    std::uint64_t bits = r;
    if (i % 5 != 0) {
      const std::uint64_t exponent = 1023 - 160 + (r >> 52) % 300;  // 2^-160 .. 2^139
      bits = (r & 0x800FFFFFFFFFFFFFull) | (exponent << 52);
    }
    const double d = lowbit::bits_double(bits);
    const float f = static_cast<float>(d);
    const std::uint32_t got = lowbit::FP32::encode(d);
    if (got != lowbit::float_bits(f) && ++failures <= 20)
      ADD_FAILURE() << "double 0x" << std::hex << bits << ": lowbit 0x" << got << ", cast 0x" << lowbit::float_bits(f);
  }
  // Ties between floats, hit exactly, and a hair to either side.
  for (std::uint32_t c : {0x00000000u, 0x00000001u, 0x3F800000u, 0x3F800001u, 0x7F7FFFFEu}) {
    const double lo = lowbit::FP32::decode(c), hi = lowbit::FP32::decode(c + 1), mid = 0.5 * (lo + hi);
    for (double d : {mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e300), -mid}) {
      EXPECT_EQ(lowbit::FP32::encode(d), lowbit::float_bits(static_cast<float>(d))) << d;
    }
  }
  const double beyond = 0.5 * (lowbit::FP32::max_value() + std::ldexp(1.0, 128));  // the overflow tie
  EXPECT_EQ(lowbit::FP32::encode(beyond), lowbit::float_bits(static_cast<float>(beyond)));
  EXPECT_EQ(lowbit::FP32::encode(std::nextafter(beyond, 0.0)), 0x7F7FFFFFu);
  EXPECT_EQ(failures, 0);
}

}  // namespace

namespace {

// The bf16 activation storage type widens every one of its 65536 codes to the value BF16
// decodes (NaNs to NaNs with the same bits above the fp32 mantissa's low half), and
// widen_rows does so for contiguous and strided views.
TEST(Bfloat16, WidensEveryCodeLikeBF16Decode) {
  std::vector<lowbit::bfloat16> all(65536);
  for (std::uint32_t c = 0; c < 65536; ++c) {
    const lowbit::bfloat16 b{static_cast<std::uint16_t>(c)};
    all[c] = b;
    const float f = b.to_float(), want = static_cast<float>(lowbit::BF16::decode(c));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << c;
      ASSERT_EQ(std::bit_cast<std::uint32_t>(f) >> 16, c) << c;
    } else {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(f), std::bit_cast<std::uint32_t>(want)) << c;
    }
  }
  // 256 x 256 row-major, and the same codes read as its transpose (column stride 256).
  std::vector<float> rows(65536, -1.0f), cols(65536, -1.0f);
  lowbit::widen_rows(lowbit::MatrixRef<const lowbit::bfloat16>::row_major(all.data(), 256, 256), rows.data(), 256);
  lowbit::widen_rows(lowbit::MatrixRef<const lowbit::bfloat16>::col_major(all.data(), 256, 256), cols.data(), 256);
  for (std::uint32_t r = 0; r < 256; ++r)
    for (std::uint32_t c = 0; c < 256; ++c) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(rows[r * 256 + c]), (r * 256 + c) << 16);
      ASSERT_EQ(std::bit_cast<std::uint32_t>(cols[r * 256 + c]), (c * 256 + r) << 16);
    }
}

}  // namespace
