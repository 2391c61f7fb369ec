// Logarithmic elements (the paper's block logarithm, BL): a sign and an E-bit exponent field.
// Field 0 is zero; field f >= 1 is 2^(f - (2^E - 1)), so the largest magnitude is 1 and the
// block scale (a power of two) places it at the block's maximum.
//
// Nearest rounding happens in the log domain, as the paper defines it: the boundary between
// 2^k and 2^(k+1) is 2^(k+1/2), decided exactly (no ties exist since sqrt(2) is irrational).
// Below the smallest power, values round to it from 2^(emin-1) up (nearest), to 0 toward
// zero, or with probability a / 2^emin (stochastic). Stochastic rounding between powers is
// linear in value (P(up) = a / 2^k - 1), so it is unbiased.
#pragma once

#include <cmath>
#include <cstdint>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"

namespace lowbit {

struct LogSpec {
  int exp_bits = 7;

  constexpr bool operator==(const LogSpec&) const = default;
  constexpr int bits() const { return 1 + exp_bits; }
  constexpr int top_field() const { return (1 << exp_bits) - 1; }
  constexpr int emin() const { return 1 - top_field(); }  // exponent of field 1
  constexpr bool has_nan() const { return false; }
  double max_value() const { return 1.0; }
  double min_subnormal() const { return pow2(emin()); }
  int emax() const { return 0; }
  bool is_canonical(std::uint32_t code) const {
    return (code >> bits()) == 0 && code != (1u << exp_bits);  // -0 is not produced
  }
  void validate() const {
    detail::require(exp_bits >= 1 && exp_bits <= 8, "LogSpec", "exponent bits must be 1..8, got ", exp_bits);
  }

  double decode(std::uint32_t code) const {
    const bool neg = (code >> exp_bits) & 1u;
    const int field = static_cast<int>(code & static_cast<std::uint32_t>(top_field()));
    const double v = field == 0 ? 0.0 : pow2(field - top_field());
    return neg ? -v : v;
  }

  std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    if (std::isnan(y)) detail::fail("log encode", "NaN has no encoding in a log format");
    const double a = std::fabs(y);
    if (a == 0.0) return 0;
    const std::uint32_t sign = std::signbit(y) ? (1u << exp_bits) : 0u;
    if (std::isinf(a) || a >= 1.0) return sign | static_cast<std::uint32_t>(top_field());
    int e;
    if (a < pow2(emin())) {
      bool keep = false;
      switch (mode) {
        case Rounding::NearestEven:
        case Rounding::NearestAway: keep = a >= pow2(emin() - 1); break;
        case Rounding::TowardZero: keep = false; break;
        case Rounding::Stochastic: keep = round_to_grid(a, emin(), mode, random) == 1; break;
      }
      return keep ? sign | 1u : 0u;
    }
    e = floor_log2(a);
    const Decomposed d = decompose(a);  // a = S * 2^x with S in [2^52, 2^53) for normal doubles
    bool up = false;
    switch (mode) {
      case Rounding::NearestEven:
      case Rounding::NearestAway: {
        // a >= 2^(e + 1/2)  <=>  (a / 2^e)^2 >= 2, compared exactly in 128-bit integers
        std::uint64_t s = d.significand;
        while (s < (1ull << 52)) s <<= 1;  // normalise (a subnormal double)
        __extension__ using u128 = unsigned __int128;
        up = static_cast<u128>(s) * s >= (static_cast<u128>(1) << 105);
        break;
      }
      case Rounding::TowardZero: up = false; break;
      case Rounding::Stochastic: up = round_to_grid(a - pow2(e), e, mode, random) == 1; break;
    }
    e += up ? 1 : 0;
    if (e > 0) e = 0;
    return sign | static_cast<std::uint32_t>(e + top_field());
  }
  double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    return decode(encode(y, mode, random));
  }
};

}  // namespace lowbit
