// E8M0 (OCP MX scale): an unsigned 8-bit biased exponent, value 2^(code-127), 0xFF = NaN.
// There is no zero, no sign and no infinity: 2^-127 .. 2^127.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/rounding.hpp"

namespace lowbit {

struct E8M0 {
  static constexpr int bits = 8;
  static constexpr int bias = 127;
  static constexpr int min_exponent = -127;
  static constexpr int max_exponent = 127;
  static constexpr std::uint32_t nan_code = 0xFF;

  // Code of 2^e, clamping e to the representable range.
  static constexpr std::uint32_t from_exponent(int e) {
    e = e < min_exponent ? min_exponent : (e > max_exponent ? max_exponent : e);
    return static_cast<std::uint32_t>(e + bias);
  }
  static constexpr int exponent(std::uint32_t code) { return static_cast<int>(code) - bias; }
  static bool is_nan(std::uint32_t code) { return code == nan_code; }

  static double decode(std::uint32_t code) {
    if (code >= nan_code) return std::numeric_limits<double>::quiet_NaN();
    return pow2(exponent(code));
  }

  // Nearest power of two to v (NaN/Inf -> NaN; v <= 2^-127, zero and negatives included,
  // -> 2^-127; v >= 2^127 -> 2^127). Rounding is in the value domain: nearest modes compare
  // with 1.5 * 2^k (ties: away goes up, even goes to the even code), toward zero is floor,
  // stochastic goes up with probability (v - 2^k) / 2^k.
  static std::uint32_t encode(double v, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) {
    if (std::isnan(v) || std::isinf(v)) return nan_code;
    if (!(v > pow2(min_exponent))) return from_exponent(min_exponent);
    const int k = floor_log2(v);
    if (k >= max_exponent) return from_exponent(max_exponent);
    const double m = std::ldexp(v, -k);  // in [1, 2), exact
    bool up = false;
    switch (mode) {
      case Rounding::NearestEven: up = m > 1.5 || (m == 1.5 && ((k + bias) & 1)); break;
      case Rounding::NearestAway: up = m >= 1.5; break;
      case Rounding::TowardZero: up = false; break;
      case Rounding::Stochastic: up = round_to_grid(m - 1.0, 0, mode, random) == 1; break;
    }
    return from_exponent(k + (up ? 1 : 0));
  }
};

}  // namespace lowbit
