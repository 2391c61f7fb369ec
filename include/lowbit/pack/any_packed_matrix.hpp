// AnyPackedMatrix: a PackedMatrix whose format is chosen at run time by name
// (AnyPackedMatrix::pack("mxfp4", w)), holding one PackedMatrix per element family.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit {

using AnyPacked = std::variant<PackedMatrix<MinifloatFormat>, PackedMatrix<FixedPointFormat>,
                               PackedMatrix<CodebookFormat>, PackedMatrix<LogFormat>>;

class AnyPackedMatrix {
 public:
  static AnyPackedMatrix pack(std::string_view name, MatrixRef<const float> w, const QuantOptions& opt = {}) {
    return pack(Quantizer(name), w, opt);
  }
  static AnyPackedMatrix pack(const Quantizer& q, MatrixRef<const float> w, const QuantOptions& opt = {}) {
    return AnyPackedMatrix(q.name(), std::visit(
                                         [&](const auto& f) -> AnyPacked {
                                           using F = std::decay_t<decltype(f)>;
                                           if constexpr (is_block_format<F>) return PackedMatrix<F>::pack(f, w, opt);
                                           else no_codes(q.name());
                                         },
                                         q.format()));
  }
  static AnyPackedMatrix deserialize(std::string_view name, std::span<const std::byte> in) {
    const Quantizer q(name);
    return AnyPackedMatrix(q.name(), std::visit(
                                         [&](const auto& f) -> AnyPacked {
                                           using F = std::decay_t<decltype(f)>;
                                           if constexpr (is_block_format<F>) return PackedMatrix<F>::deserialize(f, in);
                                           else no_codes(q.name());
                                         },
                                         q.format()));
  }

  const std::string& name() const { return name_; }
  const AnyPacked& matrix() const { return m_; }

  std::int64_t rows() const { return std::visit([](const auto& m) { return m.rows(); }, m_); }
  std::int64_t cols() const { return std::visit([](const auto& m) { return m.cols(); }, m_); }
  std::uint64_t bytes() const { return std::visit([](const auto& m) { return m.bytes(); }, m_); }
  std::uint64_t payload_bits() const { return std::visit([](const auto& m) { return m.payload_bits(); }, m_); }
  std::uint64_t padding_bytes() const { return std::visit([](const auto& m) { return m.padding_bytes(); }, m_); }
  std::uint32_t code(std::int64_t r, std::int64_t c) const { return std::visit([&](const auto& m) { return m.code(r, c); }, m_); }
  BlockHeader header(std::int64_t r, std::int64_t b) const { return std::visit([&](const auto& m) { return m.header(r, b); }, m_); }
  void unpack(MatrixRef<float> out) const { std::visit([&](const auto& m) { m.unpack(out); }, m_); }
  std::vector<float> unpack() const { return std::visit([](const auto& m) { return m.unpack(); }, m_); }
  QuantizedTensor to_quantized() const { return std::visit([](const auto& m) { return m.to_quantized(); }, m_); }
  std::vector<std::byte> serialize() const { return std::visit([](const auto& m) { return m.serialize(); }, m_); }

 private:
  AnyPackedMatrix(std::string name, AnyPacked m) : name_(std::move(name)), m_(std::move(m)) {}
  [[noreturn]] static void no_codes(const std::string& name) {
    detail::fail("AnyPackedMatrix", "format '", name, "' is fake-quant only (it has no codes to pack)");
  }

  std::string name_;
  AnyPacked m_;
};

}  // namespace lowbit
