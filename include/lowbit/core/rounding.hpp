// Rounding modes and the one exact rounding primitive every format is built on.
//
// round_to_grid(a, q, mode, random) rounds a non-negative double to an integer multiple
// of 2^q using only integer arithmetic on a's bits, so no conversion ever rounds twice.
// Formats round magnitudes and put the sign back, which makes every mode sign-symmetric:
// "toward zero" truncates the magnitude, "away" breaks ties away from zero.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"

namespace lowbit {

enum class Rounding {
  NearestEven,  // round to nearest, ties to even (IEEE default; lowbit's default)
  NearestAway,  // round to nearest, ties away from zero (microxcaling's "nearest")
  TowardZero,   // truncate the magnitude
  Stochastic,   // round up with probability equal to the discarded fraction
};

inline std::string_view to_string(Rounding r) {
  switch (r) {
    case Rounding::NearestEven: return "even";
    case Rounding::NearestAway: return "away";
    case Rounding::TowardZero: return "zero";
    case Rounding::Stochastic: return "stochastic";
  }
  return "?";
}

inline Rounding parse_rounding(std::string_view s) {
  if (s == "even" || s == "nearest_even" || s == "rne") return Rounding::NearestEven;
  if (s == "away" || s == "nearest_away" || s == "nearest") return Rounding::NearestAway;
  if (s == "zero" || s == "toward_zero" || s == "truncate") return Rounding::TowardZero;
  if (s == "stochastic" || s == "sr") return Rounding::Stochastic;
  detail::fail("parse_rounding", "unknown rounding mode '", s,
               "' (accepted: even, away, zero, stochastic)");
}

// Counter-based random bits for stochastic rounding: a pure function of (seed, index), so
// results do not depend on threads, call order or memory layout. The mixer is SplitMix64's
// finaliser applied twice (a well-studied 64-bit bijection with full avalanche).
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint32_t stochastic_bits(std::uint64_t seed, std::uint64_t index) noexcept {
  return static_cast<std::uint32_t>(mix64(mix64(index + 0x9E3779B97F4A7C15ull) ^ seed) >> 32);
}

// Largest integer round_to_grid returns; callers saturate far below it.
inline constexpr std::uint64_t kGridHuge = 1ull << 62;

// Rounds a (finite, >= 0) to k * 2^q and returns k, exactly. `random` supplies 32 uniform
// bits for Stochastic: the result rounds up with probability (discarded fraction), exact to
// 2^-32. Results of kGridHuge or more are reported as kGridHuge (the caller saturates).
inline std::uint64_t round_to_grid(double a, int q, Rounding mode, std::uint32_t random = 0) noexcept {
  if (a == 0.0) return 0;
  const Decomposed d = decompose(a);
  const int shift = q - d.exponent;  // bits of the significand below the grid step
  if (shift <= 0) {
    // a is already on the grid; guard against k overflowing.
    if (-shift >= 62 || (d.significand >> (62 + shift)) != 0) return kGridHuge;
    return d.significand << -shift;
  }
  std::uint64_t k, rem;       // a = (k + rem / 2^shift) * 2^q
  bool above_half, is_half;   // rem compared with 2^(shift-1)
  if (shift >= 64) {
    k = 0;
    rem = d.significand;      // < 2^53 <= 2^(shift-1): strictly below half
    above_half = false;
    is_half = false;
  } else {
    k = d.significand >> shift;
    rem = d.significand & ((1ull << shift) - 1);
    const std::uint64_t half = 1ull << (shift - 1);
    above_half = rem > half;
    is_half = rem == half;
  }
  if (rem == 0) return k;
  bool up = false;
  switch (mode) {
    case Rounding::NearestEven: up = above_half || (is_half && (k & 1)); break;
    case Rounding::NearestAway: up = above_half || is_half; break;
    case Rounding::TowardZero: up = false; break;
    case Rounding::Stochastic: {
      // Round up when the 32-bit draw is below the top 32 bits of the discarded fraction.
      std::uint64_t top;
      if (shift <= 32) top = rem << (32 - shift);
      else if (shift - 32 < 64) top = rem >> (shift - 32);
      else top = 0;
      up = random < top;
      break;
    }
  }
  return k + (up ? 1 : 0);
}

}  // namespace lowbit
