// Exact access to the bits of float and double: the building blocks of every conversion.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace lowbit {

inline std::uint32_t float_bits(float x) noexcept { return std::bit_cast<std::uint32_t>(x); }
inline float bits_float(std::uint32_t b) noexcept { return std::bit_cast<float>(b); }
inline std::uint64_t double_bits(double x) noexcept { return std::bit_cast<std::uint64_t>(x); }
inline double bits_double(std::uint64_t b) noexcept { return std::bit_cast<double>(b); }

// A finite, non-zero, non-negative double as significand * 2^exponent with an integer
// significand of at most 53 bits (subnormal doubles included). Exact.
struct Decomposed {
  std::uint64_t significand;
  int exponent;
};

inline Decomposed decompose(double a) noexcept {
  const std::uint64_t b = double_bits(a) & 0x7FFFFFFFFFFFFFFFull;
  const int field = static_cast<int>(b >> 52);
  const std::uint64_t frac = b & ((1ull << 52) - 1);
  if (field == 0) return {frac, -1074};                // subnormal double
  return {frac | (1ull << 52), field - 1075};
}

// floor(log2(a)) for finite a > 0, exact, from the bits (no library call: it sits on hot
// paths). Subnormal doubles count their leading zeros.
inline int floor_log2(double a) noexcept {
  const std::uint64_t b = double_bits(a) & 0x7FFFFFFFFFFFFFFFull;
  const int field = static_cast<int>(b >> 52);
  if (field != 0) return field - 1023;
  return -1074 + (63 - std::countl_zero(b));
}

// True when a (finite, > 0) is an exact power of two.
inline bool is_power_of_two(double a) noexcept {
  const Decomposed d = decompose(a);
  return (d.significand & (d.significand - 1)) == 0;
}

// 2^e as a double, exact for every e in double's range (built from bits for normal results).
inline double pow2(int e) noexcept {
  if (e >= -1022 && e <= 1023) return bits_double(static_cast<std::uint64_t>(e + 1023) << 52);
  return std::ldexp(1.0, e);
}

// x * 2^e, exact whenever the result is a normal double (as std::ldexp, without the call).
inline double scale2(double x, int e) noexcept {
  if (e >= -1022 && e <= 1023) return x * pow2(e);
  return std::ldexp(x, e);
}

}  // namespace lowbit
