// safetensors files: read (memory-mapped, zero-copy views), sharded models through their
// *.index.json, and write.
//
// Needs nlohmann-json (Debian nlohmann-json3-dev, CMake package nlohmann_json) besides the
// standard library: the JSON header is parsed with it, not by hand.
//
// A safetensors file is a little-endian u64 N, an N-byte JSON header, then the data:
//   {"__metadata__": {"k": "v", ...},
//    "name": {"dtype": "F32", "shape": [4096, 4096], "data_offsets": [begin, end]}, ...}
// with offsets relative to the start of the data. The file is untrusted input: the header
// length, every entry's fields, dtype x shape = byte length (overflow-checked), offsets inside
// the data and tensors not overlapping are all checked before any view is handed out, and
// anything wrong throws lowbit::Error naming the file, the tensor and the problem.
//
// Floats are converted through lowbit's own Minifloat types (F16, BF16, F8_E4M3 = OCP E4M3
// "fn", F8_E5M2), so the conversions are the same ones the formats use.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
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

#include <nlohmann/json.hpp>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/io/mapped_file.hpp"
#include "lowbit/io/partial_file.hpp"

namespace lowbit::safetensors {

enum class Dtype { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U64, U32, U16, U8, BOOL };

inline constexpr std::string_view dtype_name(Dtype d) {
  switch (d) {
    case Dtype::F64: return "F64";
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
    case Dtype::F8_E4M3: return "F8_E4M3";
    case Dtype::F8_E5M2: return "F8_E5M2";
    case Dtype::I64: return "I64";
    case Dtype::I32: return "I32";
    case Dtype::I16: return "I16";
    case Dtype::I8: return "I8";
    case Dtype::U64: return "U64";
    case Dtype::U32: return "U32";
    case Dtype::U16: return "U16";
    case Dtype::U8: return "U8";
    case Dtype::BOOL: return "BOOL";
  }
  return "?";
}

inline constexpr std::size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::F64: case Dtype::I64: case Dtype::U64: return 8;
    case Dtype::F32: case Dtype::I32: case Dtype::U32: return 4;
    case Dtype::F16: case Dtype::BF16: case Dtype::I16: case Dtype::U16: return 2;
    default: return 1;
  }
}

inline constexpr bool is_float(Dtype d) {
  return d == Dtype::F64 || d == Dtype::F32 || d == Dtype::F16 || d == Dtype::BF16 || d == Dtype::F8_E4M3 ||
         d == Dtype::F8_E5M2;
}

inline std::optional<Dtype> parse_dtype(std::string_view s) {
  for (Dtype d : {Dtype::F64, Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F8_E4M3, Dtype::F8_E5M2, Dtype::I64,
                  Dtype::I32, Dtype::I16, Dtype::I8, Dtype::U64, Dtype::U32, Dtype::U16, Dtype::U8, Dtype::BOOL})
    if (dtype_name(d) == s) return d;
  return std::nullopt;
}

// One tensor of a file: a view into the mapped (or owned) bytes, valid while the file lives.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;

  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;  // checked against the byte length when parsed
    return n;
  }
};

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace detail_st {

inline constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's limit

[[noreturn]] inline void bad(const std::string& file, const std::string& what) { lowbit::detail::fail(file, what); }
[[noreturn]] inline void bad_tensor(const std::string& file, const std::string& tensor, const std::string& what) {
  lowbit::detail::fail(file, "tensor '" + tensor + "': " + what);
}

inline std::uint64_t load_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

inline std::uint64_t load_le(const std::byte* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

// Byte length of `shape` in `dtype`, or nullopt when it overflows 64 bits.
inline std::optional<std::uint64_t> byte_length(const std::vector<std::int64_t>& shape, Dtype dtype) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) {
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud != 0 && n > std::numeric_limits<std::uint64_t>::max() / ud) return std::nullopt;
    n *= ud;
  }
  if (n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / dtype_size(dtype)) return std::nullopt;
  return n * dtype_size(dtype);
}

inline std::uint64_t json_u64(const nlohmann::json& v, const std::string& file, const std::string& tensor,
                              const char* what) {
  if (!v.is_number_unsigned()) {
    if (v.is_number_integer() && v.get<std::int64_t>() < 0) bad_tensor(file, tensor, std::string(what) + " is negative");
    bad_tensor(file, tensor, std::string(what) + " must be a non-negative integer, got " + v.dump());
  }
  return v.get<std::uint64_t>();
}

}  // namespace detail_st

// One .safetensors file.
class File {
 public:
  // Maps the file and validates its header.
  static File open(const std::filesystem::path& path) {
    File f;
    f.map_ = std::make_shared<io::MappedFile>(path);
    f.path_ = path.string();
    f.parse_header(f.map_->bytes());
    return f;
  }
  // The bytes of a file held in memory (tests, small files); `name` appears in errors.
  static File from_bytes(std::vector<std::byte> bytes, const std::string& name = "<memory>") {
    File f;
    f.owned_ = std::make_shared<std::vector<std::byte>>(std::move(bytes));
    f.path_ = name;
    f.parse_header(*f.owned_);
    return f;
  }

  const std::string& path() const { return path_; }
  // In the order of their data in the file.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::uint64_t header_bytes() const { return header_len_; }

  const TensorView* find(std::string_view name) const {
    for (const TensorView& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  const TensorView& tensor(std::string_view name) const {
    const TensorView* t = find(name);
    if (!t) lowbit::detail::fail(path_, "no tensor named '", std::string(name), "'");
    return *t;
  }
  // Lets the kernel drop the pages of a tensor that has been processed (streaming).
  void release(const TensorView& t) const {
    if (map_) map_->release(t.data);
  }

 private:
  void parse_header(std::span<const std::byte> all) {
    using namespace detail_st;
    const std::string& file = path_;
    if (all.size() < 8)
      bad(file, "truncated: " + std::to_string(all.size()) + " bytes is shorter than the 8-byte header length");
    const std::uint64_t n = load_u64(all.data());
    if (n > kMaxHeaderBytes)
      bad(file, "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                    " bytes (not a safetensors file?)");
    if (n > all.size() - 8)
      bad(file, "truncated: the header claims " + std::to_string(n) + " bytes but only " +
                    std::to_string(all.size() - 8) + " follow");
    header_len_ = n;
    const std::string_view text(reinterpret_cast<const char*>(all.data() + 8), static_cast<std::size_t>(n));

    // Duplicate top-level keys are an error (a JSON object keeps only the last one).
    std::set<std::string> seen;
    std::string duplicate;
    nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
      if (depth == 1 && ev == nlohmann::json::parse_event_t::key && parsed.is_string()) {
        const auto k = parsed.get<std::string>();
        if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
      }
      return true;
    };
    const nlohmann::json h = nlohmann::json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
    if (h.is_discarded()) bad(file, "the header is not valid JSON");
    if (!h.is_object()) bad(file, "the header must be a JSON object");
    if (!duplicate.empty()) bad(file, "key '" + duplicate + "' appears twice in the header");

    const std::span<const std::byte> data = all.subspan(static_cast<std::size_t>(8 + n));
    for (const auto& [key, v] : h.items()) {
      if (key == "__metadata__") {
        if (!v.is_object()) bad(file, "__metadata__ must be an object of strings");
        for (const auto& [mk, mv] : v.items()) {
          if (!mv.is_string()) bad(file, "__metadata__ value of '" + mk + "' is not a string");
          metadata_[mk] = mv.get<std::string>();
        }
        continue;
      }
      if (!v.is_object()) bad_tensor(file, key, "entry is not an object");
      for (const char* field : {"dtype", "shape", "data_offsets"})
        if (!v.contains(field)) bad_tensor(file, key, std::string("missing field '") + field + "'");
      TensorView t;
      t.name = key;
      if (!v["dtype"].is_string()) bad_tensor(file, key, "dtype is not a string");
      const auto dt = parse_dtype(v["dtype"].get<std::string>());
      if (!dt) bad_tensor(file, key, "unsupported dtype '" + v["dtype"].get<std::string>() + "'");
      t.dtype = *dt;
      if (!v["shape"].is_array()) bad_tensor(file, key, "shape is not an array");
      if (v["shape"].size() > 64) bad_tensor(file, key, "more than 64 dimensions");
      for (const auto& d : v["shape"]) {
        const std::uint64_t ud = json_u64(d, file, key, "a dimension");
        if (ud > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          bad_tensor(file, key, "dimension " + std::to_string(ud) + " is too large");
        t.shape.push_back(static_cast<std::int64_t>(ud));
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2) bad_tensor(file, key, "data_offsets must be [begin, end]");
      const std::uint64_t b = json_u64(off[0], file, key, "data_offsets[0]");
      const std::uint64_t e = json_u64(off[1], file, key, "data_offsets[1]");
      if (b > e) bad_tensor(file, key, "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] run backwards");
      if (e > data.size())
        bad_tensor(file, key, "data_offsets end " + std::to_string(e) + " is past the end of the data (" +
                                  std::to_string(data.size()) + " bytes; truncated file?)");
      const auto want = byte_length(t.shape, t.dtype);
      if (!want) bad_tensor(file, key, "the byte size of shape " + shape_string(t.shape) + " overflows");
      if (*want != e - b)
        bad_tensor(file, key, "shape " + shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) + " needs " +
                                  std::to_string(*want) + " bytes but data_offsets span " + std::to_string(e - b));
      t.data = data.subspan(static_cast<std::size_t>(b), static_cast<std::size_t>(e - b));
      tensors_.push_back(std::move(t));
    }
    std::sort(tensors_.begin(), tensors_.end(), [&](const TensorView& a, const TensorView& b) {
      return a.data.data() != b.data.data() ? a.data.data() < b.data.data() : a.data.size() < b.data.size();
    });
    for (std::size_t i = 1; i < tensors_.size(); ++i) {
      const TensorView& p = tensors_[i - 1];
      const TensorView& c = tensors_[i];
      if (!c.data.empty() && !p.data.empty() && c.data.data() < p.data.data() + p.data.size())
        bad(file, "tensors '" + p.name + "' and '" + c.name + "' overlap");
    }
  }

  std::shared_ptr<io::MappedFile> map_;
  std::shared_ptr<std::vector<std::byte>> owned_;
  std::string path_;
  std::uint64_t header_len_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// ---- conversion to float -----------------------------------------------------------------

// The value of element i of a little-endian buffer in `dtype`, as a float.
inline float element_as_float(Dtype dtype, const std::byte* p) {
  using detail_st::load_le;
  switch (dtype) {
    case Dtype::F32: return std::bit_cast<float>(static_cast<std::uint32_t>(load_le(p, 4)));
    case Dtype::F64: return static_cast<float>(std::bit_cast<double>(load_le(p, 8)));
    case Dtype::F16: return static_cast<float>(FP16::decode(static_cast<std::uint32_t>(load_le(p, 2))));
    case Dtype::BF16: return std::bit_cast<float>(static_cast<std::uint32_t>(load_le(p, 2)) << 16);
    case Dtype::F8_E4M3: return static_cast<float>(FP8_E4M3::decode(static_cast<std::uint32_t>(p[0])));
    case Dtype::F8_E5M2: return static_cast<float>(FP8_E5M2::decode(static_cast<std::uint32_t>(p[0])));
    case Dtype::I64: return static_cast<float>(static_cast<std::int64_t>(load_le(p, 8)));
    case Dtype::I32: return static_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(load_le(p, 4))));
    case Dtype::I16: return static_cast<float>(static_cast<std::int16_t>(static_cast<std::uint16_t>(load_le(p, 2))));
    case Dtype::I8: return static_cast<float>(static_cast<std::int8_t>(static_cast<std::uint8_t>(p[0])));
    case Dtype::U64: return static_cast<float>(load_le(p, 8));
    case Dtype::U32: return static_cast<float>(load_le(p, 4));
    case Dtype::U16: return static_cast<float>(load_le(p, 2));
    case Dtype::U8: case Dtype::BOOL: return static_cast<float>(static_cast<std::uint8_t>(p[0]));
  }
  return 0.0f;
}

// Every element of `t` as float, into `out` (t.numel() values).
inline void to_float(const TensorView& t, std::span<float> out) {
  const std::size_t n = t.data.size() / dtype_size(t.dtype);
  lowbit::detail::require(out.size() == n, "safetensors::to_float", "tensor '", t.name, "' has ", n,
                          " elements, the output ", out.size());
  if (t.dtype == Dtype::F32) {
    if (n) std::memcpy(out.data(), t.data.data(), n * 4);  // bit for bit (little-endian hosts)
    if constexpr (std::endian::native != std::endian::little)
      for (std::size_t i = 0; i < n; ++i) out[i] = element_as_float(t.dtype, t.data.data() + 4 * i);
    return;
  }
  const std::size_t s = dtype_size(t.dtype);
  for (std::size_t i = 0; i < n; ++i) out[i] = element_as_float(t.dtype, t.data.data() + s * i);
}

inline std::vector<float> to_float(const TensorView& t) {
  std::vector<float> out(t.data.size() / dtype_size(t.dtype));
  to_float(t, out);
  return out;
}

// Floats encoded as `dtype` (float dtypes only), round to nearest even as the formats do.
inline std::vector<std::byte> encode_floats(Dtype dtype, std::span<const float> v) {
  lowbit::detail::require(is_float(dtype), "safetensors::encode_floats", "dtype ", dtype_name(dtype),
                          " is not a float type");
  const std::size_t s = dtype_size(dtype);
  std::vector<std::byte> out(v.size() * s);
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint64_t bits = 0;
    switch (dtype) {
      case Dtype::F32: bits = std::bit_cast<std::uint32_t>(v[i]); break;
      case Dtype::F64: bits = std::bit_cast<std::uint64_t>(static_cast<double>(v[i])); break;
      case Dtype::F16: bits = FP16::encode(v[i]); break;
      case Dtype::BF16: bits = BF16::encode(v[i]); break;
      case Dtype::F8_E4M3: bits = FP8_E4M3::encode(v[i]); break;
      case Dtype::F8_E5M2: bits = FP8_E5M2::encode(v[i]); break;
      default: break;
    }
    for (std::size_t k = 0; k < s; ++k) out[i * s + k] = static_cast<std::byte>((bits >> (8 * k)) & 0xFF);
  }
  return out;
}

// ---- writing ---------------------------------------------------------------------------------

struct TensorSpec {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<std::int64_t> shape;

  std::uint64_t bytes() const {
    for (std::int64_t d : shape)
      lowbit::detail::require(d >= 0, "safetensors writer", "tensor '", name, "': negative dimension ", d);
    const auto n = detail_st::byte_length(shape, dtype);
    lowbit::detail::require(n.has_value(), "safetensors writer", "tensor '", name, "': byte size overflows");
    return *n;
  }
};

// The header (8-byte length + JSON, padded with spaces to a multiple of 8) for tensors laid
// out back to back in the given order.
inline std::vector<std::byte> make_header(const std::vector<TensorSpec>& specs,
                                          const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = m;
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const TensorSpec& s : specs) {
    lowbit::detail::require(s.name != "__metadata__" && names.insert(s.name).second, "safetensors writer",
                            "tensor name '", s.name, "' is reserved or used twice");
    const std::uint64_t n = s.bytes();
    h[s.name] = {{"dtype", std::string(dtype_name(s.dtype))}, {"shape", s.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<std::byte> out(8 + text.size());
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xFF);
  std::memcpy(out.data() + 8, text.data(), text.size());
  return out;
}

// Writes a file tensor by tensor, so no more than one tensor need be in memory: the header
// is written from the specs first, then write() is called once per tensor, in order.
// The bytes go to PATH.partial, renamed to PATH by finish(): a run that fails part way leaves
// no file that looks complete.
class Writer {
 public:
  Writer(const std::filesystem::path& path, std::vector<TensorSpec> specs,
         const std::map<std::string, std::string>& metadata = {})
      : path_(path.string()), specs_(std::move(specs)) {
    const std::vector<std::byte> header = make_header(specs_, metadata);  // all checked before a file exists
    file_.emplace(path);
    put(header);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  const std::vector<TensorSpec>& specs() const { return specs_; }
  std::size_t written() const { return next_; }

  void write(std::span<const std::byte> bytes) {
    lowbit::detail::require(next_ < specs_.size(), path_, "more tensors written than declared");
    const TensorSpec& s = specs_[next_];
    lowbit::detail::require(bytes.size() == s.bytes(), path_, "tensor '", s.name, "': ", bytes.size(),
                            " bytes given, its shape and dtype need ", s.bytes());
    put(bytes);
    ++next_;
  }
  void write_floats(std::span<const float> v) { write(encode_floats(specs_.at(next_).dtype, v)); }

  void finish() {
    lowbit::detail::require(next_ == specs_.size(), path_, "only ", next_, " of ", specs_.size(), " tensors written");
    file_->commit();
  }

 private:
  void put(std::span<const std::byte> b) { file_->put(b); }

  std::string path_;
  std::vector<TensorSpec> specs_;
  std::optional<io::PartialFile> file_;  // PATH.partial until finish()
  std::size_t next_ = 0;
};

// A whole file in memory (for tests and small files).
inline std::vector<std::byte> serialize(const std::vector<std::pair<TensorSpec, std::vector<std::byte>>>& tensors,
                                        const std::map<std::string, std::string>& metadata = {}) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back(t.first);
  std::vector<std::byte> out = make_header(specs, metadata);
  for (const auto& [s, b] : tensors) {
    lowbit::detail::require(b.size() == s.bytes(), "safetensors::serialize", "tensor '", s.name, "': ", b.size(),
                            " bytes given, its shape and dtype need ", s.bytes());
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// ---- models: one file or shards ------------------------------------------------------------

// A model as one .safetensors file, or several listed by a *.index.json
// ({"weight_map": {"tensor": "model-00001-of-00002.safetensors", ...}}), or a directory
// holding either. Tensors keep the shards' order.
class Model {
 public:
  Model(const Model&) = delete;  // entries point into the files
  Model& operator=(const Model&) = delete;
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  static Model open(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p = path;
    if (fs::is_directory(p, ec)) {
      fs::path found;
      for (const auto& e : fs::directory_iterator(p)) {
        const std::string n = e.path().filename().string();
        if (n.size() > 11 && n.ends_with(".index.json")) { found = e.path(); break; }
      }
      if (found.empty())
        for (const auto& e : fs::directory_iterator(p))
          if (e.path().extension() == ".safetensors") {
            if (!found.empty()) lowbit::detail::fail(p.string(), "several .safetensors files and no *.index.json");
            found = e.path();
          }
      if (found.empty()) lowbit::detail::fail(p.string(), "no .safetensors file or *.index.json in the directory");
      p = found;
    }
    Model m;
    if (p.string().ends_with(".json")) m.open_index(p);
    else m.files_.push_back(File::open(p));
    for (std::size_t f = 0; f < m.files_.size(); ++f)
      for (const TensorView& t : m.files_[f].tensors()) m.entries_.push_back({&t, f});
    return m;
  }

  struct Entry {
    const TensorView* tensor;
    std::size_t file;  // index into files()
  };
  const std::vector<Entry>& entries() const { return entries_; }
  const std::vector<File>& files() const { return files_; }
  const std::map<std::string, std::string>& metadata() const { return files_.front().metadata(); }
  void release(const Entry& e) const { files_[e.file].release(*e.tensor); }

 private:
  void open_index(const std::filesystem::path& index) {
    const std::string name = index.string();
    std::ifstream in(index);
    if (!in) lowbit::detail::fail(name, "cannot open for reading");
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) lowbit::detail::fail(name, "not a JSON object");
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      lowbit::detail::fail(name, "missing the object 'weight_map'");
    std::map<std::string, std::size_t> shard_of_file;
    std::vector<std::pair<std::string, std::string>> wanted;
    for (const auto& [tensor, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) lowbit::detail::fail(name, "weight_map entry of '", tensor, "' is not a string");
      const std::string s = shard.get<std::string>();
      // Shards live beside the index: a path elsewhere is refused, not followed.
      const std::filesystem::path sp(s);
      if (s.empty() || sp.is_absolute() || sp.has_parent_path())
        lowbit::detail::fail(name, "shard name '", s, "' of tensor '", tensor, "' is not a plain file name");
      if (!shard_of_file.count(s)) {
        shard_of_file[s] = files_.size();
        files_.push_back(File::open(index.parent_path() / sp));
      }
      wanted.emplace_back(tensor, s);
    }
    if (files_.empty()) lowbit::detail::fail(name, "weight_map is empty");
    for (const auto& [tensor, s] : wanted)
      if (!files_[shard_of_file[s]].find(tensor))
        lowbit::detail::fail(name, "tensor '", tensor, "' is not in its shard ", s);
    std::set<std::string> seen;
    for (const File& f : files_)
      for (const TensorView& t : f.tensors())
        if (!seen.insert(t.name).second) lowbit::detail::fail(f.path(), "tensor '", t.name, "' is in two shards");
  }

  Model() = default;

  std::vector<File> files_;
  std::vector<Entry> entries_;
};

}  // namespace lowbit::safetensors
