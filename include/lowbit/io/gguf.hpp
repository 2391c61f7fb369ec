// GGUF files (the format llama.cpp loads): read (memory-mapped) and write, version 3.
//
// Layout, little-endian (ggml's gguf.cpp):
//   "GGUF"  u32 version  u64 tensor count  u64 metadata count
//   metadata: { string key, u32 value type, value }   string = u64 length + bytes (no NUL)
//             value types 0 u8 1 i8 2 u16 3 i16 4 u32 5 i32 6 f32 7 bool 8 string
//             9 array (u32 element type, u64 count, elements) 10 u64 11 i64 12 f64
//   tensor infos: { string name, u32 n_dims (<= 4), u64 ne[n_dims] (ne[0] = the contiguous
//             row length), u32 ggml type, u64 offset into the data section }
//   zero padding to the alignment (metadata general.alignment, u32, default 32), then the
//   data section; each tensor starts at an aligned offset (ggml lays them out in order,
//   each padded to the alignment, and checks exactly that when loading).
// A lowbit shape [rows, cols] is ne = {cols, rows}: shapes here are ne reversed.
//
// Everything read is validated first: lengths and counts against the bytes left, no nested
// arrays, duplicate keys or names, at most 4 dimensions, element counts and byte sizes
// without overflow, rows a whole number of blocks, offsets aligned, inside the data and not
// overlapping. Errors throw lowbit::Error naming the file, the key or tensor, and the fault.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/ggml_blocks.hpp"
#include "lowbit/io/mapped_file.hpp"
#include "lowbit/io/partial_file.hpp"

namespace lowbit::gguf {

inline constexpr std::uint32_t kVersion = 3;
inline constexpr std::uint32_t kDefaultAlignment = 32;
inline constexpr std::uint32_t kMaxDims = 4;      // GGML_MAX_DIMS
inline constexpr std::size_t kMaxNameBytes = 63;  // GGML_MAX_NAME - 1 (llama.cpp refuses longer names)

enum class ValueType : std::uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

inline std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<std::uint32_t>(t);
  return i < 13 ? names[i] : "?";
}

// A metadata value. Unsigned integers and bools are in u, signed in i, floats in f.
struct Value {
  ValueType type = ValueType::UINT32;
  std::uint64_t u = 0;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;
  ValueType elem = ValueType::UINT8;  // arrays: the element type
  std::vector<Value> items;           // arrays: the elements

  static Value of_u32(std::uint32_t v) { Value x; x.type = ValueType::UINT32; x.u = v; return x; }
  static Value of_u64(std::uint64_t v) { Value x; x.type = ValueType::UINT64; x.u = v; return x; }
  static Value of_i32(std::int32_t v) { Value x; x.type = ValueType::INT32; x.i = v; return x; }
  static Value of_f32(float v) { Value x; x.type = ValueType::FLOAT32; x.f = v; return x; }
  static Value of_bool(bool v) { Value x; x.type = ValueType::BOOL; x.u = v ? 1 : 0; return x; }
  static Value of_string(std::string v) { Value x; x.type = ValueType::STRING; x.s = std::move(v); return x; }
  static Value of_array(ValueType elem, std::vector<Value> items) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem = elem;
    x.items = std::move(items);
    return x;
  }

  // A short human-readable form (arrays longer than 8 are summarised).
  std::string repr() const {
    switch (type) {
      case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
        return std::to_string(u);
      case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
        return std::to_string(i);
      case ValueType::FLOAT32: case ValueType::FLOAT64: {
        char b[32];
        std::snprintf(b, sizeof b, "%.9g", f);
        return b;
      }
      case ValueType::BOOL: return u ? "true" : "false";
      case ValueType::STRING: return "\"" + (s.size() > 60 ? s.substr(0, 57) + "..." : s) + "\"";
      case ValueType::ARRAY: {
        std::string r = "[" + std::string(value_type_name(elem)) + " x " + std::to_string(items.size());
        if (items.size() <= 8) {
          r += ":";
          for (const Value& v : items) r += " " + v.repr();
        }
        return r + "]";
      }
    }
    return "?";
  }
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  std::vector<std::uint64_t> ne;  // ne[0] is the row length
  std::uint32_t type = 0;         // ggml type id
  std::uint64_t offset = 0;       // into the data section
  std::span<const std::byte> data;

  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (std::uint64_t d : ne) n *= d;  // checked when read
    return n;
  }
  // lowbit's (row-major) shape: ne reversed.
  std::vector<std::int64_t> shape() const {
    std::vector<std::int64_t> s;
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) s.push_back(static_cast<std::int64_t>(*it));
    return s;
  }
};

// Block size and bytes per block of every ggml type a GGUF may hold (ggml.c's type traits),
// so files with types lowbit cannot convert can still be listed and checked.
inline std::optional<std::pair<std::uint64_t, std::uint64_t>> type_size(std::uint32_t type) {
  if (const auto t = ggml::traits(type)) return std::pair<std::uint64_t, std::uint64_t>(t->block, t->block_bytes);
  switch (type) {
    case 6: return std::pair<std::uint64_t, std::uint64_t>(32, 22);    // Q5_0
    case 7: return std::pair<std::uint64_t, std::uint64_t>(32, 24);    // Q5_1
    case 9: return std::pair<std::uint64_t, std::uint64_t>(32, 36);    // Q8_1
    case 10: return std::pair<std::uint64_t, std::uint64_t>(256, 84);  // Q2_K
    case 11: return std::pair<std::uint64_t, std::uint64_t>(256, 110); // Q3_K
    case 12: return std::pair<std::uint64_t, std::uint64_t>(256, 144); // Q4_K
    case 13: return std::pair<std::uint64_t, std::uint64_t>(256, 176); // Q5_K
    case 14: return std::pair<std::uint64_t, std::uint64_t>(256, 210); // Q6_K
    case 15: return std::pair<std::uint64_t, std::uint64_t>(256, 292); // Q8_K
    case 24: return std::pair<std::uint64_t, std::uint64_t>(1, 1);     // I8
    case 25: return std::pair<std::uint64_t, std::uint64_t>(1, 2);     // I16
    case 26: return std::pair<std::uint64_t, std::uint64_t>(1, 4);     // I32
    case 27: return std::pair<std::uint64_t, std::uint64_t>(1, 8);     // I64
    case 28: return std::pair<std::uint64_t, std::uint64_t>(1, 8);     // F64
    default: return std::nullopt;
  }
}

inline std::string type_name(std::uint32_t type) {
  static const std::map<std::uint32_t, const char*> other{{6, "Q5_0"}, {7, "Q5_1"}, {9, "Q8_1"}, {10, "Q2_K"},
                                                          {11, "Q3_K"}, {12, "Q4_K"}, {13, "Q5_K"}, {14, "Q6_K"},
                                                          {15, "Q8_K"}, {24, "I8"}, {25, "I16"}, {26, "I32"},
                                                          {27, "I64"}, {28, "F64"}};
  if (ggml::traits(type)) return ggml::type_name(type);
  const auto it = other.find(type);
  return it != other.end() ? it->second : "type " + std::to_string(type);
}

namespace detail_gguf {

// Bounds-checked little-endian cursor over the file's bytes.
class Cursor {
 public:
  Cursor(std::span<const std::byte> b, const std::string& file) : b_(b), file_(file) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return b_.size() - pos_; }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > left())
      lowbit::detail::fail(file_, "truncated: ", what, " at offset ", pos_, " needs ", n, " bytes, ", left(), " left");
  }
  std::uint64_t uint(std::size_t n, const std::string& what) {
    need(n, what);
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v |= static_cast<std::uint64_t>(b_[pos_ + k]) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string str(const std::string& what) {
    const std::uint64_t n = uint(8, "the length of " + what);
    need(n, what + " (" + std::to_string(n) + " bytes)");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }

 private:
  std::span<const std::byte> b_;
  const std::string& file_;
  std::size_t pos_ = 0;
};

inline std::size_t scalar_bytes(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return 0;
  }
}

inline Value read_scalar(Cursor& c, ValueType t, const std::string& file, const std::string& what) {
  Value v;
  v.type = t;
  const std::size_t n = scalar_bytes(t);
  switch (t) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
      v.u = c.uint(n, what);
      break;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64: {
      const std::uint64_t raw = c.uint(n, what);
      const unsigned shift = static_cast<unsigned>(64 - 8 * n);
      v.i = static_cast<std::int64_t>(raw << shift) >> shift;
      break;
    }
    case ValueType::FLOAT32: v.f = std::bit_cast<float>(static_cast<std::uint32_t>(c.uint(4, what))); break;
    case ValueType::FLOAT64: v.f = std::bit_cast<double>(c.uint(8, what)); break;
    case ValueType::BOOL:
      v.u = c.uint(1, what);
      if (v.u > 1) lowbit::detail::fail(file, what, ": bool value ", v.u, " is neither 0 nor 1");
      break;
    case ValueType::STRING: v.s = c.str(what); break;
    default: lowbit::detail::fail(file, what, ": invalid value type ", static_cast<std::uint32_t>(t));
  }
  return v;
}

inline Value read_value(Cursor& c, const std::string& file, const std::string& key) {
  const std::string what = "the value of '" + key + "'";
  const auto t = static_cast<ValueType>(c.uint(4, "the type of '" + key + "'"));
  if (static_cast<std::uint32_t>(t) > 12)
    lowbit::detail::fail(file, "key '", key, "' has invalid value type ", static_cast<std::uint32_t>(t));
  if (t != ValueType::ARRAY) return read_scalar(c, t, file, what);
  const auto et = static_cast<ValueType>(c.uint(4, "the element type of '" + key + "'"));
  if (et == ValueType::ARRAY) lowbit::detail::fail(file, "key '", key, "': nested arrays are not supported");
  if (static_cast<std::uint32_t>(et) > 12)
    lowbit::detail::fail(file, "key '", key, "' has invalid array element type ", static_cast<std::uint32_t>(et));
  const std::uint64_t n = c.uint(8, "the length of '" + key + "'");
  // Every element takes at least one byte (a string at least eight): a count beyond what is
  // left is a corrupt file, caught before anything is allocated.
  const std::uint64_t min_bytes = et == ValueType::STRING ? 8 : scalar_bytes(et);
  if (n > c.left() / min_bytes)
    lowbit::detail::fail(file, "truncated: array '", key, "' claims ", n, " elements, more than the ", c.left(),
                         " bytes left hold");
  Value v;
  v.type = ValueType::ARRAY;
  v.elem = et;
  v.items.reserve(static_cast<std::size_t>(n));
  for (std::uint64_t k = 0; k < n; ++k) v.items.push_back(read_scalar(c, et, file, what));
  return v;
}

inline std::uint64_t pad(std::uint64_t x, std::uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace detail_gguf

class File {
 public:
  static File open(const std::filesystem::path& path) {
    File f;
    f.map_ = std::make_shared<io::MappedFile>(path);
    f.path_ = path.string();
    f.parse(f.map_->bytes());
    return f;
  }
  static File from_bytes(std::vector<std::byte> bytes, const std::string& name = "<memory>") {
    File f;
    f.owned_ = std::make_shared<std::vector<std::byte>>(std::move(bytes));
    f.path_ = name;
    f.parse(*f.owned_);
    return f;
  }

  const std::string& path() const { return path_; }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  const std::vector<KeyValue>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  std::uint64_t data_offset() const { return data_offset_; }

  const Value* find(std::string_view key) const {
    for (const KeyValue& kv : kv_)
      if (kv.key == key) return &kv.value;
    return nullptr;
  }
  const TensorInfo* find_tensor(std::string_view name) const {
    for (const TensorInfo& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  void release(const TensorInfo& t) const {
    if (map_) map_->release(t.data);
  }

 private:
  void parse(std::span<const std::byte> all) {
    using detail_gguf::Cursor;
    const std::string& file = path_;
    Cursor c(all, file);
    c.need(4, "the magic");
    if (std::memcmp(all.data(), "GGUF", 4) != 0) lowbit::detail::fail(file, "not a GGUF file (bad magic)");
    c.uint(4, "the magic");
    version_ = static_cast<std::uint32_t>(c.uint(4, "the version"));
    if (version_ != 2 && version_ != 3)
      lowbit::detail::fail(file, "unsupported GGUF version ", version_, " (supported: 2, 3)");
    const std::uint64_t n_tensors = c.uint(8, "the tensor count");
    const std::uint64_t n_kv = c.uint(8, "the metadata count");
    // A key-value pair takes at least 13 bytes, a tensor info at least 24.
    if (n_kv > c.left() / 13) lowbit::detail::fail(file, "truncated: ", n_kv, " metadata entries cannot fit in ", c.left(), " bytes");
    if (n_tensors > c.left() / 24)
      lowbit::detail::fail(file, "truncated: ", n_tensors, " tensor infos cannot fit in ", c.left(), " bytes");

    std::set<std::string> keys;
    for (std::uint64_t k = 0; k < n_kv; ++k) {
      KeyValue kv;
      kv.key = c.str("metadata key " + std::to_string(k));
      if (!keys.insert(kv.key).second) lowbit::detail::fail(file, "metadata key '", kv.key, "' appears twice");
      kv.value = detail_gguf::read_value(c, file, kv.key);
      kv_.push_back(std::move(kv));
    }
    alignment_ = kDefaultAlignment;
    if (const Value* a = find("general.alignment")) {
      if (a->type != ValueType::UINT32) lowbit::detail::fail(file, "general.alignment must be a u32");
      if (a->u == 0 || (a->u & (a->u - 1)) != 0)
        lowbit::detail::fail(file, "general.alignment ", a->u, " is not a power of two");
      alignment_ = static_cast<std::uint32_t>(a->u);
    }

    std::set<std::string> names;
    std::vector<std::uint64_t> sizes;
    for (std::uint64_t k = 0; k < n_tensors; ++k) {
      TensorInfo t;
      t.name = c.str("tensor name " + std::to_string(k));
      const std::string& name = t.name;
      auto bad = [&](const auto&... parts) { lowbit::detail::fail(file, "tensor '", name, "': ", parts...); };
      if (!names.insert(name).second) lowbit::detail::fail(file, "tensor name '", name, "' appears twice");
      const auto n_dims = static_cast<std::uint32_t>(c.uint(4, "the dimension count of '" + name + "'"));
      if (n_dims > kMaxDims) bad(n_dims, " dimensions, at most ", kMaxDims);
      std::uint64_t numel = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const std::uint64_t v = c.uint(8, "a dimension of '" + name + "'");
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) bad("dimension ", d, " is negative");
        if (v != 0 && numel > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / v)
          bad("the element count overflows");
        numel *= v;
        t.ne.push_back(v);
      }
      t.type = static_cast<std::uint32_t>(c.uint(4, "the type of '" + name + "'"));
      const auto ts = type_size(t.type);
      if (!ts) bad("unknown ggml type ", t.type);
      const std::uint64_t row = t.ne.empty() ? 1 : t.ne[0];
      if (row % ts->first != 0) bad("rows of ", row, " elements are not a whole number of ", ts->first, "-blocks of ", type_name(t.type));
      t.offset = c.uint(8, "the offset of '" + name + "'");
      if (t.offset % alignment_ != 0) bad("offset ", t.offset, " is not a multiple of the alignment ", alignment_);
      if (numel / ts->first > std::numeric_limits<std::uint64_t>::max() / ts->second) bad("the byte size overflows");
      sizes.push_back(numel / ts->first * ts->second);
      tensors_.push_back(std::move(t));
    }
    data_offset_ = detail_gguf::pad(c.pos(), alignment_);
    if (tensors_.empty()) return;
    if (data_offset_ > all.size())
      lowbit::detail::fail(file, "truncated: the data section would start at ", data_offset_, " but the file has ",
                           all.size(), " bytes");
    const std::uint64_t data_size = all.size() - data_offset_;
    for (std::size_t k = 0; k < tensors_.size(); ++k) {
      TensorInfo& t = tensors_[k];
      const std::uint64_t n = sizes[k];
      if (t.offset > data_size || n > data_size - t.offset)
        lowbit::detail::fail(file, "tensor '", t.name, "': bytes [", t.offset, ", ", t.offset + n,
                             ") of the data section are past its end (", data_size, " bytes; truncated file?)");
      t.data = all.subspan(static_cast<std::size_t>(data_offset_ + t.offset), static_cast<std::size_t>(n));
    }
    std::vector<const TensorInfo*> order;
    for (const TensorInfo& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (std::size_t k = 1; k < order.size(); ++k)
      if (!order[k]->data.empty() && order[k]->offset < order[k - 1]->offset + order[k - 1]->data.size())
        lowbit::detail::fail(file, "tensors '", order[k - 1]->name, "' and '", order[k]->name, "' overlap");
  }

  std::shared_ptr<io::MappedFile> map_;
  std::shared_ptr<std::vector<std::byte>> owned_;
  std::string path_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

// Every element of a tensor of a type lowbit converts (F32, F16, BF16, Q8_0, Q4_0, Q4_1,
// MXFP4) as float, as ggml dequantises it.
inline void to_float(const TensorInfo& t, std::span<float> out) {
  lowbit::detail::require(ggml::traits(t.type).has_value(), "gguf tensor '" + t.name + "'",
                          "cannot convert ", type_name(t.type), " to float");
  lowbit::detail::require(out.size() == t.numel(), "gguf tensor '" + t.name + "'", "output holds ", out.size(),
                          " values, the tensor ", t.numel());
  ggml::decode(t.type, t.data, out, "tensor '" + t.name + "'");
}
inline std::vector<float> to_float(const TensorInfo& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  to_float(t, v);
  return v;
}

// ---- writing ---------------------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  std::vector<std::uint64_t> ne;  // ne[0] = row length
  std::uint32_t type = 0;

  std::uint64_t bytes() const {
    std::uint64_t n = 1;
    for (std::uint64_t d : ne) {
      lowbit::detail::require(d == 0 || n <= std::numeric_limits<std::uint64_t>::max() / d, "gguf writer",
                              "tensor '", name, "': element count overflows");
      n *= d;
    }
    const auto ts = type_size(type);
    lowbit::detail::require(ts.has_value(), "gguf writer", "tensor '", name, "': unknown ggml type ", type);
    lowbit::detail::require((ne.empty() ? 1 : ne[0]) % ts->first == 0, "gguf writer", "tensor '", name, "': rows of ",
                            ne.empty() ? 1 : ne[0], " elements are not a whole number of ", ts->first, "-blocks");
    return n / ts->first * ts->second;
  }
};

// lowbit shape [.., rows, cols] -> ne {cols, rows, ..}.
inline std::vector<std::uint64_t> ne_of_shape(const std::vector<std::int64_t>& shape) {
  std::vector<std::uint64_t> ne;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it) ne.push_back(static_cast<std::uint64_t>(*it));
  return ne;
}

namespace detail_gguf {

inline void put(std::vector<std::byte>& o, std::uint64_t v, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) o.push_back(static_cast<std::byte>((v >> (8 * k)) & 0xFF));
}
inline void put_str(std::vector<std::byte>& o, const std::string& s) {
  put(o, s.size(), 8);
  for (char ch : s) o.push_back(static_cast<std::byte>(ch));
}
inline void put_scalar(std::vector<std::byte>& o, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: case ValueType::UINT16: case ValueType::UINT32: case ValueType::UINT64:
    case ValueType::BOOL:
      put(o, v.u, scalar_bytes(v.type));
      break;
    case ValueType::INT8: case ValueType::INT16: case ValueType::INT32: case ValueType::INT64:
      put(o, static_cast<std::uint64_t>(v.i), scalar_bytes(v.type));
      break;
    case ValueType::FLOAT32: put(o, std::bit_cast<std::uint32_t>(static_cast<float>(v.f)), 4); break;
    case ValueType::FLOAT64: put(o, std::bit_cast<std::uint64_t>(v.f), 8); break;
    case ValueType::STRING: put_str(o, v.s); break;
    case ValueType::ARRAY: lowbit::detail::fail("gguf writer", "nested arrays are not supported");
  }
}

}  // namespace detail_gguf

// Everything before the data section: header, metadata, tensor infos (tensors back to back
// in the given order, each padded to the alignment), padding.
inline std::vector<std::byte> make_header(const std::vector<KeyValue>& metadata, const std::vector<TensorSpec>& specs,
                                          std::uint32_t alignment) {
  using namespace detail_gguf;
  std::vector<std::byte> o;
  for (char ch : std::string_view("GGUF")) o.push_back(static_cast<std::byte>(ch));
  put(o, kVersion, 4);
  put(o, specs.size(), 8);
  put(o, metadata.size(), 8);
  std::set<std::string> keys;
  for (const KeyValue& kv : metadata) {
    lowbit::detail::require(keys.insert(kv.key).second, "gguf writer", "metadata key '", kv.key, "' used twice");
    put_str(o, kv.key);
    put(o, static_cast<std::uint32_t>(kv.value.type), 4);
    if (kv.value.type == ValueType::ARRAY) {
      put(o, static_cast<std::uint32_t>(kv.value.elem), 4);
      put(o, kv.value.items.size(), 8);
      for (const Value& v : kv.value.items) {
        lowbit::detail::require(v.type == kv.value.elem, "gguf writer", "array '", kv.key, "' mixes element types");
        put_scalar(o, v);
      }
    } else {
      put_scalar(o, kv.value);
    }
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const TensorSpec& s : specs) {
    lowbit::detail::require(names.insert(s.name).second, "gguf writer", "tensor name '", s.name, "' used twice");
    lowbit::detail::require(s.name.size() <= kMaxNameBytes, "gguf writer", "tensor name '", s.name,
                            "' is longer than ggml's ", kMaxNameBytes, " bytes");
    lowbit::detail::require(s.ne.size() <= kMaxDims, "gguf writer", "tensor '", s.name, "' has more than 4 dimensions");
    put_str(o, s.name);
    put(o, s.ne.size(), 4);
    for (std::uint64_t d : s.ne) put(o, d, 8);
    put(o, s.type, 4);
    put(o, offset, 8);
    offset += pad(s.bytes(), alignment);
  }
  o.resize(static_cast<std::size_t>(pad(o.size(), alignment)), std::byte{0});
  return o;
}

// The alignment a metadata list asks for (general.alignment, u32), else 32.
inline std::uint32_t alignment_of(const std::vector<KeyValue>& metadata) {
  for (const KeyValue& kv : metadata)
    if (kv.key == "general.alignment") {
      lowbit::detail::require(kv.value.type == ValueType::UINT32 && kv.value.u != 0 && (kv.value.u & (kv.value.u - 1)) == 0,
                              "gguf writer", "general.alignment must be a u32 power of two");
      return static_cast<std::uint32_t>(kv.value.u);
    }
  return kDefaultAlignment;
}

// Writes tensor by tensor: header from the specs first, then write() once per tensor in order.
// The bytes go to PATH.partial, renamed to PATH by finish(): a run that fails part way leaves
// no file that looks complete.
class Writer {
 public:
  Writer(const std::filesystem::path& path, std::vector<KeyValue> metadata, std::vector<TensorSpec> specs)
      : path_(path.string()), specs_(std::move(specs)) {
    alignment_ = alignment_of(metadata);
    const std::vector<std::byte> header = make_header(metadata, specs_, alignment_);  // all checked before a file exists
    file_.emplace(path);
    put(header);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void write(std::span<const std::byte> bytes) {
    lowbit::detail::require(next_ < specs_.size(), path_, "more tensors written than declared");
    const TensorSpec& s = specs_[next_];
    lowbit::detail::require(bytes.size() == s.bytes(), path_, "tensor '", s.name, "': ", bytes.size(),
                            " bytes given, its shape and type need ", s.bytes());
    put(bytes);
    const std::vector<std::byte> zeros(static_cast<std::size_t>(detail_gguf::pad(bytes.size(), alignment_) - bytes.size()));
    put(zeros);
    ++next_;
  }
  void finish() {
    lowbit::detail::require(next_ == specs_.size(), path_, "only ", next_, " of ", specs_.size(), " tensors written");
    file_->commit();
  }

 private:
  void put(std::span<const std::byte> b) { file_->put(b); }

  std::string path_;
  std::vector<TensorSpec> specs_;
  std::optional<io::PartialFile> file_;  // PATH.partial until finish()
  std::uint32_t alignment_ = kDefaultAlignment;
  std::size_t next_ = 0;
};

// A whole file in memory (tests, small files).
inline std::vector<std::byte> serialize(const std::vector<KeyValue>& metadata,
                                        const std::vector<std::pair<TensorSpec, std::vector<std::byte>>>& tensors) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back(t.first);
  const std::uint32_t a = alignment_of(metadata);
  std::vector<std::byte> o = make_header(metadata, specs, a);
  for (const auto& [s, b] : tensors) {
    lowbit::detail::require(b.size() == s.bytes(), "gguf::serialize", "tensor '", s.name, "': ", b.size(),
                            " bytes given, its shape and type need ", s.bytes());
    o.insert(o.end(), b.begin(), b.end());
    o.resize(static_cast<std::size_t>(detail_gguf::pad(o.size(), a)), std::byte{0});
  }
  return o;
}

}  // namespace lowbit::gguf
