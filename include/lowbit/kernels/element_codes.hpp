// ElementCodes: the constants the SIMD quantize / dequantize kernels need to turn element
// values (float bits from the rounding kernel) into codes and codes back into values, exactly
// as MinifloatSpec / FixedPointSpec encode and decode do. Only meaningful for formats whose
// kernels::simd_rounding is eligible (emin >= -126, values within float range), where every
// element value, subnormals included, is a float.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "lowbit/core/bits.hpp"
#include "lowbit/formats/block_format.hpp"

namespace lowbit {

struct ElementCodes {
  enum class Kind { Minifloat, Fixed, ZeroPoint };
  Kind kind = Kind::Minifloat;
  std::uint32_t code_mask = 0;  // the element's bits
  std::int32_t sign_shift = 0;  // float sign bit >> sign_shift = the code's sign bit
  // minifloats
  std::int32_t man = 0, bias = 0, emin = 0;
  std::uint32_t top_code = 0;  // top exponent field, shifted into place (Inf and NaN)
  bool subnormals = true;
  bool special_top = false;   // some codes decode as Inf or NaN
  bool ieee = false;          // the whole top field is Inf (mantissa 0) and NaN
  std::uint32_t nan_mag = 0;  // otherwise: the one NaN code without its sign
  // fixed point: value = k * to_value, k = value * to_int; sign_bit: the code's sign (0: unsigned)
  float to_int = 1.0f, to_value = 1.0f;
  std::uint32_t sign_bit = 0;
  // zero point: codes 0 .. qmax
  std::int32_t qmax = 0;
  // Codes of at most 4 bits decode through a 16-entry table of the scalar decode's floats.
  bool use_table = false;
  float table[16] = {};
};

template <class Fmt>
ElementCodes element_codes(const Fmt& fmt) {
  ElementCodes c;
  const auto& e = fmt.element;
  using E = std::decay_t<decltype(e)>;
  const int bits = element_bits(e);
  c.code_mask = bits >= 32 ? 0xFFFFFFFFu : (1u << bits) - 1u;
  c.sign_shift = 32 - bits;
  if (fmt.scale.zero_point) {
    c.kind = ElementCodes::Kind::ZeroPoint;
    c.qmax = static_cast<std::int32_t>(e.max_value());
    return c;
  }
  if constexpr (std::is_same_v<E, MinifloatSpec>) {
    c.kind = ElementCodes::Kind::Minifloat;
    c.man = e.man_bits;
    c.bias = e.bias;
    c.emin = e.emin();
    c.top_code = static_cast<std::uint32_t>(e.top_field()) << e.man_bits;
    c.subnormals = e.subnormals;
    c.special_top = e.specials != Specials::FiniteOnly;
    c.ieee = e.specials == Specials::IEEE;
    c.nan_mag = c.top_code | e.man_mask();
  } else if constexpr (std::is_same_v<E, FixedPointSpec>) {
    c.kind = ElementCodes::Kind::Fixed;
    c.to_int = std::ldexp(1.0f, e.frac_bits);
    c.to_value = std::ldexp(1.0f, -e.frac_bits);
    c.sign_bit = e.is_signed() ? 1u << (bits - 1) : 0u;
  } else {
    return c;  // no SIMD codes for other elements
  }
  c.use_table = bits <= 4;
  if (c.use_table)
    for (std::uint32_t k = 0; k <= c.code_mask; ++k) c.table[k] = static_cast<float>(e.decode(k));
  return c;
}

}  // namespace lowbit
