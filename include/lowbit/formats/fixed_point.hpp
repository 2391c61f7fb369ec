// Integers and fixed point: W-bit codes (2..16) with F fraction bits, value = k * 2^-F.
//
// Three ranges: two's complement (-2^(W-1) .. 2^(W-1)-1), symmetric two's complement
// (-(2^(W-1)-1) .. 2^(W-1)-1, the code -2^(W-1) unused, as MXINT8 and BFP use), and unsigned
// (0 .. 2^W-1, used with a zero point). Plain integers are F = 0; the paper's per-tensor
// "fixed-point" baseline is W = 8, F = 7 (or 4). Codes are stored as W-bit two's complement.
// Out-of-range values saturate; NaN has no encoding and throws.
#pragma once

#include <cmath>
#include <cstdint>

#include "lowbit/core/bits.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"

namespace lowbit {

enum class IntRange { TwosComplement, Symmetric, Unsigned };

struct FixedPointSpec {
  int bits = 8;
  int frac_bits = 0;
  IntRange range = IntRange::TwosComplement;

  constexpr bool operator==(const FixedPointSpec&) const = default;

  constexpr bool is_signed() const { return range != IntRange::Unsigned; }
  constexpr std::int64_t max_int() const {
    return range == IntRange::Unsigned ? (std::int64_t{1} << bits) - 1 : (std::int64_t{1} << (bits - 1)) - 1;
  }
  constexpr std::int64_t min_int() const {
    switch (range) {
      case IntRange::TwosComplement: return -(std::int64_t{1} << (bits - 1));
      case IntRange::Symmetric: return -((std::int64_t{1} << (bits - 1)) - 1);
      case IntRange::Unsigned: return 0;
    }
    return 0;
  }
  constexpr std::uint32_t code_mask() const { return (bits >= 32) ? 0xFFFFFFFFu : ((1u << bits) - 1u); }
  constexpr bool has_nan() const { return false; }
  constexpr bool has_inf() const { return false; }

  void validate() const {
    detail::require(bits >= 2 && bits <= 16, "FixedPointSpec", "integer width must be 2..16, got ", bits);
    detail::require(frac_bits >= -126 && frac_bits <= 126, "FixedPointSpec", "fraction bits out of range: ", frac_bits);
  }

  double step() const { return pow2(-frac_bits); }
  double max_value() const { return scale2(static_cast<double>(max_int()), -frac_bits); }
  double min_value() const { return scale2(static_cast<double>(min_int()), -frac_bits); }
  double min_subnormal() const { return step(); }
  int emax() const { return floor_log2(max_value()); }

  // Integer k (before saturation) nearest y * 2^F under `mode`, sign-symmetric.
  std::int64_t round_int(double y, Rounding mode, std::uint32_t random) const {
    if (std::isnan(y)) detail::fail("fixed-point encode", "NaN has no encoding in a ", bits, "-bit integer");
    if (std::isinf(y)) return y > 0 ? max_int() : min_int() - (is_signed() ? 0 : 1);
    const std::uint64_t k = round_to_grid(std::fabs(y), -frac_bits, mode, random);
    const std::int64_t mag = static_cast<std::int64_t>(k);
    return std::signbit(y) ? -mag : mag;
  }

  std::int64_t saturate(std::int64_t k) const {
    return k > max_int() ? max_int() : (k < min_int() ? min_int() : k);
  }

  std::uint32_t code_of_int(std::int64_t k) const { return static_cast<std::uint32_t>(k) & code_mask(); }
  std::int64_t int_of_code(std::uint32_t code) const {
    code &= code_mask();
    if (is_signed() && (code >> (bits - 1)) != 0) return static_cast<std::int64_t>(code) - (std::int64_t{1} << bits);
    return static_cast<std::int64_t>(code);
  }
  bool is_canonical(std::uint32_t code) const {
    if ((code & ~code_mask()) != 0) return false;
    const std::int64_t k = int_of_code(code);
    return k >= min_int() && k <= max_int();
  }

  std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    return code_of_int(saturate(round_int(y, mode, random)));
  }
  double decode(std::uint32_t code) const { return scale2(static_cast<double>(int_of_code(code)), -frac_bits); }
  double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    return decode(encode(y, mode, random));
  }
};

template <int W, int F = 0, IntRange R = IntRange::TwosComplement>
struct FixedPoint {
  static constexpr FixedPointSpec spec{W, F, R};
  static constexpr int bits = W;
  static std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) {
    return spec.encode(y, mode, random);
  }
  static double decode(std::uint32_t code) { return spec.decode(code); }
  static double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) {
    return spec.quantize(y, mode, random);
  }
};

template <int W> using Int = FixedPoint<W, 0, IntRange::TwosComplement>;
template <int W> using SymInt = FixedPoint<W, 0, IntRange::Symmetric>;
template <int W> using UInt = FixedPoint<W, 0, IntRange::Unsigned>;
using INT8 = Int<8>;
using INT4 = Int<4>;
// MX integer elements (microxcaling): value = k * 2^-(W-2), symmetric.
using MXINT8_Element = FixedPoint<8, 6, IntRange::Symmetric>;
using MXINT4_Element = FixedPoint<4, 2, IntRange::Symmetric>;
using MXINT2_Element = FixedPoint<2, 0, IntRange::Symmetric>;

}  // namespace lowbit
