// lowbit's own packed file: a safetensors file (so any safetensors reader opens it) whose
// quantised tensors are the bytes of PackedMatrix::serialize() and whose other tensors are
// kept as they were (float norms, embeddings).
//
// Needs nlohmann-json (through safetensors.hpp).
//
//   __metadata__  "format": "lowbit-packed", "lowbit.version": "1",
//                 "lowbit.format:<name>": the format name (e.g. "nvfp4"),
//                 "lowbit.shape:<name>":  the original shape as JSON, e.g. "[4096, 11008]"
//   <name>        dtype U8, shape [n bytes]: the serialised PackedMatrix
// A tensor of shape [d0, .., dk] is packed as a (d0*..*d(k-1)) x dk matrix, blocks along
// its rows (the last axis). Loading hands the packed bytes to PackedMatrix::deserialize,
// which checks them (CRC, format fingerprint, sizes); nothing is quantised again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit::packed {

inline constexpr std::string_view kFileFormat = "lowbit-packed";
inline constexpr std::string_view kFileVersion = "1";

inline std::string format_key(std::string_view tensor) { return "lowbit.format:" + std::string(tensor); }
inline std::string shape_key(std::string_view tensor) { return "lowbit.shape:" + std::string(tensor); }

// The matrix a tensor shape is packed as: rows = all leading dimensions, cols = the last.
inline std::pair<std::int64_t, std::int64_t> matrix_shape(const std::vector<std::int64_t>& shape) {
  if (shape.empty()) return {1, 1};
  std::int64_t rows = 1;
  for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  return {rows, shape.back()};
}

// Bytes PackedMatrix::serialize() produces for a rows x cols matrix in format q (default
// blocking), so a file's header can be written before any tensor is packed.
inline std::uint64_t packed_bytes(const Quantizer& q, std::int64_t rows, std::int64_t cols) {
  return std::visit(
      [&](const auto& f) -> std::uint64_t {
        using F = std::decay_t<decltype(f)>;
        if constexpr (is_block_format<F>) {
          const BlockGrid grid = detail::make_grid(f, Blocking::along(1, 0), rows, cols);
          const std::int64_t block = grid.blocking().block;
          detail::require(f.block_size != kPerTensor, "packed file", "format '", q.name(),
                          "' has one scale per tensor; packed storage needs blocks along the rows");
          const PackedLayout l = PackedLayout::make(f, rows, cols, block);
          return kPackHeaderBytes + l.row_payload_bytes * static_cast<std::uint64_t>(rows);
        } else {
          detail::fail("packed file", "format '", q.name(), "' is fake-quant only (it has no codes to pack)");
        }
      },
      q.format());
}

// What one tensor of a packed file will hold: packed in `format`, or (format empty) kept as
// `keep_dtype`.
struct TensorPlan {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string format;
  safetensors::Dtype keep_dtype = safetensors::Dtype::F32;
};

// The safetensors specs and metadata of a packed file; extra metadata is kept.
inline std::pair<std::vector<safetensors::TensorSpec>, std::map<std::string, std::string>> plan_file(
    const std::vector<TensorPlan>& plans, std::map<std::string, std::string> metadata = {}) {
  metadata["format"] = std::string(kFileFormat);
  metadata["lowbit.version"] = std::string(kFileVersion);
  std::vector<safetensors::TensorSpec> specs;
  for (const TensorPlan& p : plans) {
    if (p.format.empty()) {
      specs.push_back({p.name, p.keep_dtype, p.shape});
      continue;
    }
    const Quantizer q(p.format);
    const auto [rows, cols] = matrix_shape(p.shape);
    specs.push_back({p.name, safetensors::Dtype::U8, {static_cast<std::int64_t>(packed_bytes(q, rows, cols))}});
    metadata[format_key(p.name)] = q.name();
    metadata[shape_key(p.name)] = nlohmann::json(p.shape).dump();
  }
  return {std::move(specs), std::move(metadata)};
}

// A packed file opened for reading.
class PackedFile {
 public:
  static PackedFile open(const std::filesystem::path& path) { return PackedFile(safetensors::File::open(path)); }
  static PackedFile from_bytes(std::vector<std::byte> bytes, const std::string& name = "<memory>") {
    return PackedFile(safetensors::File::from_bytes(std::move(bytes), name));
  }

  const safetensors::File& file() const { return file_; }

  // The format a tensor is packed in, or nullopt when it is kept as stored.
  std::optional<std::string> format(std::string_view tensor) const {
    const auto it = file_.metadata().find(format_key(tensor));
    if (it == file_.metadata().end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::int64_t> shape(std::string_view tensor) const {
    const auto it = file_.metadata().find(shape_key(tensor));
    if (it == file_.metadata().end()) return file_.tensor(tensor).shape;
    const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
    std::vector<std::int64_t> s;
    if (!j.is_array()) bad(tensor, "metadata " + shape_key(tensor) + " is not a JSON array");
    for (const auto& d : j) {
      if (!d.is_number_unsigned()) bad(tensor, "metadata " + shape_key(tensor) + " holds a non-dimension");
      s.push_back(d.get<std::int64_t>());
    }
    return s;
  }

  // The packed matrix of a tensor, checked against its recorded shape.
  AnyPackedMatrix load(std::string_view tensor) const {
    const auto f = format(tensor);
    if (!f) bad(tensor, "is not packed (no " + format_key(tensor) + " metadata)");
    const safetensors::TensorView& t = file_.tensor(tensor);
    if (t.dtype != safetensors::Dtype::U8 || t.shape.size() != 1) bad(tensor, "packed bytes must be a 1-D U8 tensor");
    AnyPackedMatrix m = [&] {
      try {
        return AnyPackedMatrix::deserialize(*f, t.data);
      } catch (const Error& e) {
        bad(tensor, e.what());
      }
    }();
    check_shape(tensor, m.rows(), m.cols());
    return m;
  }
  // The same with the format known at compile time (an alias type or a format value).
  template <class F>
  auto load_as(std::string_view tensor, const F& format_value) const {
    using Fmt = std::decay_t<decltype(format_of(format_value))>;
    const safetensors::TensorView& t = file_.tensor(tensor);
    PackedMatrix<Fmt> m = [&] {
      try {
        return PackedMatrix<Fmt>::deserialize(format_of(format_value), t.data);
      } catch (const Error& e) {
        bad(tensor, e.what());
      }
    }();
    check_shape(tensor, m.rows(), m.cols());
    return m;
  }

 private:
  explicit PackedFile(safetensors::File f) : file_(std::move(f)) {
    const auto& md = file_.metadata();
    const auto it = md.find("format");
    if (it == md.end() || it->second != kFileFormat)
      detail::fail(file_.path(), "not a lowbit packed file (metadata 'format' is not '", kFileFormat, "')");
    const auto v = md.find("lowbit.version");
    if (v == md.end() || v->second != kFileVersion)
      detail::fail(file_.path(), "unsupported lowbit packed file version '", v == md.end() ? "" : v->second, "'");
  }
  [[noreturn]] void bad(std::string_view tensor, const std::string& what) const {
    detail::fail(file_.path(), "tensor '", std::string(tensor), "': ", what);
  }
  void check_shape(std::string_view tensor, std::int64_t rows, std::int64_t cols) const {
    const auto [r, c] = matrix_shape(shape(tensor));
    if (r != rows || c != cols)
      bad(tensor, "packed matrix is " + std::to_string(rows) + " x " + std::to_string(cols) + " but the recorded shape " +
                      safetensors::shape_string(shape(tensor)) + " is " + std::to_string(r) + " x " + std::to_string(c));
  }

  safetensors::File file_;
};

}  // namespace lowbit::packed
