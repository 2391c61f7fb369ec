// ggml's block layouts (ggml-common.h) for the four types lowbit writes, made from lowbit's
// quantised values, and read back to floats.
//
//   Q8_0   block_q8_0  { fp16 d; int8 qs[32]; }                  value = qs[j] * d
//   Q4_0   block_q4_0  { fp16 d; uint8 qs[16]; }                 value = (q - 8) * d
//   Q4_1   block_q4_1  { fp16 d; fp16 m; uint8 qs[16]; }         value = q * d + m
//   MXFP4  block_mxfp4 { uint8 e; uint8 qs[16]; }                value = E2M1(q) * 2^(e - 127)
// In the 4-bit types element j of a block is the low nibble of qs[j] and element j + 16 the
// high nibble. All blocks are 32 elements along a row (ggml's ne[0]); fp16 is little-endian.
//
// Which lowbit format writes which type, and where lowbit's rule differs from ggml's own
// quantiser (the blocks always decode, in ggml, to lowbit's dequantised values except where
// said):
//   int8_b32_fp16  -> Q8_0   d = fp16(absmax / 127) as in ggml; lowbit rounds x / d with the
//                            fp16-rounded d to nearest even, ggml multiplies by 1/d of the
//                            unrounded d and rounds half away: a few codes can differ by one.
//   int4_b32_fp16  -> Q4_0   lowbit is symmetric: d = fp16(absmax / 7), k in -7..7, q = k + 8
//                            (q = 0 unused). ggml takes the signed value of largest magnitude
//                            m and d = m / -8, so it uses q = 0 for that value: one more level,
//                            and a scale of the other sign.
//   uint4_b32_fp16 -> Q4_1   lowbit stores an fp16 scale s and an integer zero point z, value
//                            (q - z) * s; Q4_1 stores d = s and m = fp16(-z * s). Exact when
//                            -z * s is an fp16 number (z = 0, or few significant bits); else m
//                            is rounded to nearest even, which shifts the whole block by at
//                            most half an fp16 ulp of m (a relative 2^-11 of the block's
//                            minimum). ggml itself takes d = (max - min) / 15 and m = min.
//   mxfp4 (any rule, block 32) -> MXFP4   the same codes and E8M0 byte; ggml's own quantiser
//                            uses the OCP floor rule as lowbit's mxfp4 does, but picks the
//                            nearest value by table search (ties to the lower index, so +0
//                            before -0 and the smaller magnitude first) where lowbit rounds
//                            ties to even. A block holding NaN/Inf has no MXFP4 encoding
//                            (ggml decodes e = 0xFF as 2^127): refused.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/quantized_tensor.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit::ggml {

// ggml_type values (ggml.h) of the types lowbit reads or writes.
enum class Type : std::uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, BF16 = 30, MXFP4 = 39 };

inline constexpr std::int64_t kBlock = 32;  // QK8_0 = QK4_0 = QK4_1 = QK_MXFP4

struct TypeTraits {
  std::string_view name;
  std::int64_t block = 1;       // elements per block
  std::size_t block_bytes = 4;  // bytes per block
};

// Traits of a ggml type id, or nullopt for a type lowbit does not handle.
inline std::optional<TypeTraits> traits(std::uint32_t type) {
  switch (static_cast<Type>(type)) {
    case Type::F32: return TypeTraits{"F32", 1, 4};
    case Type::F16: return TypeTraits{"F16", 1, 2};
    case Type::BF16: return TypeTraits{"BF16", 1, 2};
    case Type::Q8_0: return TypeTraits{"Q8_0", kBlock, 2 + 32};
    case Type::Q4_0: return TypeTraits{"Q4_0", kBlock, 2 + 16};
    case Type::Q4_1: return TypeTraits{"Q4_1", kBlock, 4 + 16};
    case Type::MXFP4: return TypeTraits{"MXFP4", kBlock, 1 + 16};
  }
  return std::nullopt;
}

inline std::string type_name(std::uint32_t type) {
  const auto t = traits(type);
  return t ? std::string(t->name) : "ggml type " + std::to_string(type);
}

namespace detail_ggml {

template <class E>
bool same(const BlockFormat<E>& a, const BlockFormat<E>& b) {
  return a.element == b.element && a.scale == b.scale && a.block_size == b.block_size;
}

inline void put16(std::byte* p, std::uint32_t v) {
  p[0] = static_cast<std::byte>(v & 0xFF);
  p[1] = static_cast<std::byte>((v >> 8) & 0xFF);
}
inline std::uint32_t get16(const std::byte* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8);
}
inline float half(const std::byte* p) { return static_cast<float>(FP16::decode(get16(p))); }

}  // namespace detail_ggml

// The ggml block type a lowbit format is written as, if any (see the table above).
inline std::optional<Type> type_for(const Quantizer& q) {
  return std::visit(
      [](const auto& f) -> std::optional<Type> {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, FixedPointFormat>) {
          if (detail_ggml::same(f, INT8_B32_FP16::format)) return Type::Q8_0;
          if (detail_ggml::same(f, INT4_B32_FP16::format)) return Type::Q4_0;
          if (detail_ggml::same(f, UINT4_B32_FP16::format)) return Type::Q4_1;
        } else if constexpr (std::is_same_v<F, MinifloatFormat>) {
          const auto& mx = MXFP4::format;
          if (f.element == mx.element && f.scale.kind == ScaleKind::E8M0 && f.block_size == kBlock) return Type::MXFP4;
        }
        return std::nullopt;
      },
      q.format());
}

// Bytes of `n` elements of a type, or nullopt when n is not a whole number of blocks or
// the size overflows.
inline std::optional<std::uint64_t> byte_size(std::uint32_t type, std::uint64_t n) {
  const auto t = traits(type);
  if (!t || n % static_cast<std::uint64_t>(t->block) != 0) return std::nullopt;
  const std::uint64_t blocks = n / static_cast<std::uint64_t>(t->block);
  if (blocks > std::numeric_limits<std::uint64_t>::max() / t->block_bytes) return std::nullopt;
  return blocks * t->block_bytes;
}

// The blocks of a tensor quantised (rows x cols, blocks of 32 along the rows) with the
// format type_for() maps to `type`; `what` names the tensor in errors.
inline std::vector<std::byte> encode(Type type, const QuantizedTensor& qt, const std::string& what = "tensor") {
  const std::string where = "ggml " + type_name(static_cast<std::uint32_t>(type)) + " " + what;
  const auto tr = traits(static_cast<std::uint32_t>(type));
  detail::require(tr && tr->block == kBlock, where, "not a block type lowbit writes");
  detail::require(qt.blocking.kind == Blocking::Kind::Along && qt.blocking.axis == 1 && qt.blocking.block == kBlock,
                  where, "blocks must be 32 elements along the rows (Blocking::along(1, 32))");
  detail::require(qt.cols % kBlock == 0, where, "a row of ", qt.cols, " elements is not a whole number of 32-blocks");
  const auto n = static_cast<std::size_t>(qt.rows * qt.cols);
  const std::size_t nb = n / kBlock;
  detail::require(qt.codes.size() == n && qt.headers.size() == nb, where, "quantised tensor is inconsistent: ",
                  qt.codes.size(), " codes, ", qt.headers.size(), " headers for ", qt.rows, " x ", qt.cols);
  std::vector<std::byte> out(nb * tr->block_bytes);
  const FixedPointSpec int4 = INT4_B32_FP16::format.element;
  for (std::size_t b = 0; b < nb; ++b) {
    std::byte* p = out.data() + b * tr->block_bytes;
    const std::uint32_t* c = qt.codes.data() + b * kBlock;
    const BlockHeader& h = qt.headers[b];
    auto nibbles = [&](std::byte* qs, auto nibble_of) {
      for (int j = 0; j < 16; ++j) {
        const std::uint32_t lo = nibble_of(c[j]), hi = nibble_of(c[j + 16]);
        detail::require(lo < 16 && hi < 16, where, "code out of range in block ", b);
        qs[j] = static_cast<std::byte>(lo | (hi << 4));
      }
    };
    switch (type) {
      case Type::Q8_0:
        detail_ggml::put16(p, h.scale);
        for (int j = 0; j < 32; ++j) {
          detail::require(c[j] < 256 && c[j] != 0x80, where, "code ", c[j], " in block ", b, " is not a symmetric int8");
          p[2 + j] = static_cast<std::byte>(c[j]);  // the code is the int8 two's complement byte
        }
        break;
      case Type::Q4_0:
        detail_ggml::put16(p, h.scale);
        nibbles(p + 2, [&](std::uint32_t code) {
          const std::int64_t k = int4.int_of_code(code);
          detail::require(code < 16 && k >= -7 && k <= 7, where, "code ", code, " in block ", b, " is not a symmetric int4");
          return static_cast<std::uint32_t>(k + 8);
        });
        break;
      case Type::Q4_1: {
        detail_ggml::put16(p, h.scale);
        const double s = FP16::decode(h.scale);
        detail::require(h.zero_point < 16, where, "zero point ", h.zero_point, " of block ", b, " is not 4-bit");
        detail_ggml::put16(p + 2, FP16::encode(-static_cast<double>(h.zero_point) * s));
        nibbles(p + 4, [](std::uint32_t code) { return code; });
        break;
      }
      case Type::MXFP4:
        detail::require(h.scale != E8M0::nan_code, where, "block ", b,
                        " holds NaN or Inf, which MXFP4 in ggml cannot store (no NaN scale)");
        p[0] = static_cast<std::byte>(h.scale);
        nibbles(p + 1, [](std::uint32_t code) { return code; });
        break;
      default: break;
    }
  }
  return out;
}

// Decodes `out.size()` elements of `type` (any type traits() knows) from `in`, exactly as
// ggml's dequantize_row_* computes them (float arithmetic).
inline void decode(std::uint32_t type, std::span<const std::byte> in, std::span<float> out,
                   const std::string& what = "tensor") {
  const std::string where = "ggml " + type_name(type) + " " + what;
  const auto tr = traits(type);
  detail::require(tr.has_value(), where, "unsupported type");
  const auto need = byte_size(type, out.size());
  detail::require(need.has_value(), where, out.size(), " elements are not a whole number of ", tr->block, "-blocks");
  detail::require(in.size() == *need, where, in.size(), " bytes given, ", out.size(), " elements need ", *need);
  static constexpr float kE2M1x2[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  const std::byte* p = in.data();
  switch (static_cast<Type>(type)) {
    case Type::F32:
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint32_t bits = 0;
        for (int k = 0; k < 4; ++k) bits |= static_cast<std::uint32_t>(p[4 * i + static_cast<std::size_t>(k)]) << (8 * k);
        out[i] = std::bit_cast<float>(bits);
      }
      return;
    case Type::F16:
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = detail_ggml::half(p + 2 * i);
      return;
    case Type::BF16:
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<float>(detail_ggml::get16(p + 2 * i) << 16);
      return;
    default: break;
  }
  const std::size_t nb = out.size() / kBlock;
  for (std::size_t b = 0; b < nb; ++b) {
    const std::byte* q = p + b * tr->block_bytes;
    float* y = out.data() + b * kBlock;
    switch (static_cast<Type>(type)) {
      case Type::Q8_0: {
        const float d = detail_ggml::half(q);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(q[2 + j])) * d;
        break;
      }
      case Type::Q4_0: {
        const float d = detail_ggml::half(q);
        for (int j = 0; j < 16; ++j) {
          const auto v = static_cast<unsigned>(q[2 + j]);
          y[j] = static_cast<float>(static_cast<int>(v & 0x0F) - 8) * d;
          y[j + 16] = static_cast<float>(static_cast<int>(v >> 4) - 8) * d;
        }
        break;
      }
      case Type::Q4_1: {
        const float d = detail_ggml::half(q), m = detail_ggml::half(q + 2);
        for (int j = 0; j < 16; ++j) {
          const auto v = static_cast<unsigned>(q[4 + j]);
          y[j] = static_cast<float>(v & 0x0F) * d + m;
          y[j + 16] = static_cast<float>(v >> 4) * d + m;
        }
        break;
      }
      case Type::MXFP4: {
        // 2^(e - 128), paired with the doubled E2M1 table as ggml does (same products).
        const auto e = static_cast<std::uint32_t>(q[0]);
        const float d = std::bit_cast<float>(e < 2 ? (0x00200000u << e) : ((e - 1) << 23));
        for (int j = 0; j < 16; ++j) {
          const auto v = static_cast<unsigned>(q[1 + j]);
          y[j] = kE2M1x2[v & 0x0F] * d;
          y[j + 16] = kE2M1x2[v >> 4] * d;
        }
        break;
      }
      default: break;
    }
  }
}

}  // namespace lowbit::ggml
