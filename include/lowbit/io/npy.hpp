// NumPy .npy files: read (format versions 1.0, 2.0, 3.0) and write (1.0, or 2.0 when the
// header does not fit 1.0's 16-bit length), in memory or on disk.
//
// An .npy file is a magic string, a version, a header length, a header that is a Python
// dict literal ({'descr': '<f4', 'fortran_order': False, 'shape': (64, 256), }) padded with
// spaces to a 64-byte boundary, then the raw element bytes. Files are untrusted input: every
// field is validated before it is used, and anything malformed throws lowbit::Error naming
// the file and the problem. Nothing here reads out of bounds or overflows a size.
//
// Supported dtypes: floats f2 f4 f8, signed i1 i2 i4 i8, unsigned u1 u2 u4 u8. Big-endian
// arrays ('>f4') are converted to little-endian on read; NpyArray always holds
// little-endian data with a canonical descr ('<f4', '|i1', ...). Conversions do not depend
// on the host's byte order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/minifloat.hpp"

namespace lowbit::npy {

struct NpyArray {
  std::string dtype;                // canonical descr: '<f4', '<f2', '<f8', '|i1', '|u1', '<i4', ...
  std::vector<std::int64_t> shape;  // empty for a 0-d array (one element)
  bool fortran_order = false;       // column-major element order
  std::vector<std::byte> data;      // little-endian element bytes

  std::int64_t size() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
};

// A float matrix in row-major order: element (r, c) is values[r * cols + c].
struct FloatMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<float> values;
};

namespace detail_npy {

inline constexpr char kMagic[] = "\x93NUMPY";
inline constexpr std::size_t kMagicSize = 6;
inline constexpr std::size_t kAlign = 64;  // numpy aligns the data to 64 bytes

[[noreturn]] inline void bad(const std::string& name, const std::string& what) {
  lowbit::detail::fail("npy " + name, what);
}

struct DtypeInfo {
  char kind = 0;  // 'f', 'i', 'u'
  std::size_t itemsize = 0;
  bool big_endian = false;
};

// Parses a descr such as '<f4'; returns false when it is not a supported simple dtype.
inline bool parse_descr(std::string_view d, DtypeInfo& info) {
  if (d.size() != 3) return false;
  const char order = d[0], kind = d[1], size = d[2];
  if (order != '<' && order != '>' && order != '|' && order != '=') return false;
  std::size_t n = 0;
  switch (size) {
    case '1': n = 1; break;
    case '2': n = 2; break;
    case '4': n = 4; break;
    case '8': n = 8; break;
    default: return false;
  }
  if (kind == 'f') {
    if (n == 1) return false;
  } else if (kind != 'i' && kind != 'u') {
    return false;
  }
  // '|' (byte order not applicable) is only meaningful for one-byte items; '=' is the
  // writer's native order, which numpy never stores in a file: not accepted.
  if (order == '=') return false;
  if (order == '|' && n != 1) return false;
  info.kind = kind;
  info.itemsize = n;
  info.big_endian = order == '>' && n > 1;
  return true;
}

inline std::string canonical_descr(const DtypeInfo& info) {
  std::string s;
  s += info.itemsize == 1 ? '|' : '<';
  s += info.kind;
  s += static_cast<char>('0' + info.itemsize);
  return s;
}

inline DtypeInfo require_dtype(const std::string& descr, const std::string& name) {
  DtypeInfo info;
  if (!parse_descr(descr, info))
    bad(name, "unsupported dtype '" + descr +
                  "' (supported: <f2 <f4 <f8 |i1 |u1 <i2 <i4 <i8 <u2 <u4 <u8, and their big-endian forms)");
  return info;
}

// Element count and byte size of a shape, with every overflow caught.
inline std::size_t checked_byte_size(const std::vector<std::int64_t>& shape, std::size_t itemsize,
                                     const std::string& name) {
  std::size_t count = 1;
  for (std::int64_t d : shape) {
    if (d < 0) bad(name, "negative dimension " + std::to_string(d) + " in the shape");
    const auto ud = static_cast<std::uint64_t>(d);
    if (ud > std::numeric_limits<std::size_t>::max() ||
        (ud != 0 && count > std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(ud)))
      bad(name, "the shape's element count overflows");
    count *= static_cast<std::size_t>(ud);
  }
  if (count > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()) ||
      (itemsize != 0 && count > std::numeric_limits<std::size_t>::max() / itemsize))
    bad(name, "the shape's byte size overflows");
  return count * itemsize;
}

// ---- the header dict ---------------------------------------------------------------------
// A hand-written reader for the tiny Python literal numpy writes. It accepts single- or
// double-quoted keys, any whitespace, trailing commas, and Python 2 'L' suffixes on ints.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<std::int64_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') { ++i_; break; }
      const std::string key = parse_string("a dict key");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("'descr' appears twice");
        if (peek() == '[') fail("structured dtypes (a list descr) are not supported");
        descr = parse_string("the 'descr' value");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_fortran) fail("'fortran_order' appears twice");
        fortran = parse_bool();
        have_fortran = true;
      } else if (key == "shape") {
        if (have_shape) fail("'shape' appears twice");
        shape = parse_shape();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_ws();
      if (peek() == ',') { ++i_; continue; }
      if (peek() == '}') { ++i_; break; }
      fail("expected ',' or '}' after the value of '" + key + "'");
    }
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    bad(name_, "malformed header dict: " + what + " (at offset " + std::to_string(i_) + ")");
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c || i_ >= s_.size()) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string parse_string(const char* what) {
    const char q = peek();
    if (q != '\'' && q != '"') fail(std::string("expected a quoted string for ") + what);
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("escape sequences are not supported in header strings");
      out += s_[i_++];
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  bool parse_bool() {
    if (s_.substr(i_, 4) == "True") { i_ += 4; return true; }
    if (s_.substr(i_, 5) == "False") { i_ += 5; return false; }
    fail("'fortran_order' must be True or False");
  }
  std::int64_t parse_int() {
    bool neg = false;
    if (peek() == '-') { neg = true; ++i_; }
    if (!(peek() >= '0' && peek() <= '9')) fail("expected an integer in the shape");
    std::int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = peek() - '0';
      if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail("a shape entry overflows 64 bits");
      v = v * 10 + digit;
      ++i_;
    }
    if (peek() == 'L') ++i_;
    if (neg) {
      if (v != 0) bad(name_, "negative dimension -" + std::to_string(v) + " in the shape");
    }
    return v;
  }
  std::vector<std::int64_t> parse_shape() {
    std::vector<std::int64_t> shape;
    expect('(');
    skip_ws();
    if (peek() == ')') { ++i_; return shape; }
    while (true) {
      skip_ws();
      shape.push_back(parse_int());
      if (shape.size() > 64) fail("more than 64 dimensions");
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
        if (peek() == ')') { ++i_; break; }
        continue;
      }
      if (peek() == ')') {
        // Python needs a trailing comma for a 1-tuple: '(5)' is the integer 5, not a shape.
        if (shape.size() == 1) fail("a one-element shape needs a trailing comma, as in (5,)");
        ++i_;
        break;
      }
      fail("expected ',' or ')' in the shape");
    }
    return shape;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t i_ = 0;
};

inline std::uint64_t load_le(const std::byte* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

inline void store_le(std::byte* p, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

inline std::string shape_repr(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

}  // namespace detail_npy

// ---- in memory ------------------------------------------------------------------------------

// Parses the bytes of an .npy file. `name` is used in error messages (a path, or a label).
inline NpyArray parse(std::span<const std::byte> bytes, const std::string& name = "<memory>") {
  using namespace detail_npy;
  const std::size_t n = bytes.size();
  if (n < kMagicSize + 2) bad(name, "truncated: " + std::to_string(n) + " bytes is shorter than the magic and version");
  if (std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) bad(name, "not an .npy file (bad magic string)");
  const auto major = static_cast<unsigned>(bytes[6]), minor = static_cast<unsigned>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    bad(name, "unsupported format version " + std::to_string(major) + "." + std::to_string(minor) +
                  " (supported: 1.0, 2.0, 3.0)");
  const std::size_t len_size = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagicSize + 2 + len_size;
  if (n < prefix) bad(name, "truncated: the header length field is cut off");
  const std::uint64_t header_len = load_le(bytes.data() + kMagicSize + 2, len_size);
  if (header_len > n - prefix)
    bad(name, "truncated: the header claims " + std::to_string(header_len) + " bytes but only " +
                  std::to_string(n - prefix) + " follow");
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + prefix),
                                static_cast<std::size_t>(header_len));
  // Version 1.0/2.0 headers are latin-1, 3.0 is UTF-8; the dict keys and values we accept
  // are plain ASCII in both, so any other byte is simply a parse error.
  NpyArray a;
  HeaderParser(header, name).parse(a.dtype, a.fortran_order, a.shape);
  const DtypeInfo info = require_dtype(a.dtype, name);
  a.dtype = canonical_descr(info);
  const std::size_t data_offset = prefix + static_cast<std::size_t>(header_len);
  const std::size_t want = checked_byte_size(a.shape, info.itemsize, name);
  const std::size_t have = n - data_offset;
  if (have != want)
    bad(name, "data length mismatch: shape " + shape_repr(a.shape) + " of " + a.dtype + " needs " +
                  std::to_string(want) + " bytes but the file holds " + std::to_string(have) +
                  (have < want ? " (truncated)" : " (trailing bytes)"));
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(data_offset), bytes.end());
  if (info.big_endian) {
    for (std::size_t i = 0; i < a.data.size(); i += info.itemsize)
      for (std::size_t j = 0; j < info.itemsize / 2; ++j) std::swap(a.data[i + j], a.data[i + info.itemsize - 1 - j]);
  }
  return a;
}

// The bytes of an .npy file holding `a` (version 1.0, or 2.0 for a header over 64 KiB),
// laid out as numpy's own writer does.
inline std::vector<std::byte> serialize(const NpyArray& a, const std::string& name = "<memory>") {
  using namespace detail_npy;
  const DtypeInfo info = require_dtype(a.dtype, name);
  if (info.big_endian) bad(name, "write big-endian data as little-endian ('<' descr)");
  const std::size_t want = checked_byte_size(a.shape, info.itemsize, name);
  if (a.data.size() != want)
    bad(name, "data holds " + std::to_string(a.data.size()) + " bytes but shape " + shape_repr(a.shape) + " of " +
                  a.dtype + " needs " + std::to_string(want));
  std::string header = "{'descr': '" + canonical_descr(info) + "', 'fortran_order': " +
                       (a.fortran_order ? "True" : "False") + ", 'shape': " + shape_repr(a.shape) + ", }";
  // numpy leaves room to grow the first (C) or last (Fortran) axis to 21 digits in place.
  if (!a.shape.empty()) {
    const std::size_t digits = std::to_string(a.fortran_order ? a.shape.back() : a.shape.front()).size();
    if (digits < 21) header.append(21 - digits, ' ');
  }
  std::size_t len_size = 2;
  unsigned major = 1;
  auto padded = [&](std::size_t ls) {
    const std::size_t used = kMagicSize + 2 + ls + header.size() + 1;  // +1 for the '\n'
    return header.size() + (kAlign - used % kAlign) % kAlign + 1;
  };
  if (padded(2) > 0xFFFF) {
    len_size = 4;
    major = 2;
  }
  const std::size_t hlen = padded(len_size);
  if (hlen > 0xFFFFFFFFull) bad(name, "header too long for the .npy format");
  header.append(hlen - header.size() - 1, ' ');
  header += '\n';

  std::vector<std::byte> out(kMagicSize + 2 + len_size + header.size() + a.data.size());
  std::memcpy(out.data(), kMagic, kMagicSize);
  out[6] = static_cast<std::byte>(major);
  out[7] = std::byte{0};
  store_le(out.data() + 8, header.size(), len_size);
  std::memcpy(out.data() + 8 + len_size, header.data(), header.size());
  if (!a.data.empty()) std::memcpy(out.data() + 8 + len_size + header.size(), a.data.data(), a.data.size());
  return out;
}

// ---- files ------------------------------------------------------------------------------------

inline NpyArray read(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) detail_npy::bad(name, "no such file (or not a regular file)");
  std::ifstream f(path, std::ios::binary);
  if (!f) detail_npy::bad(name, "cannot open the file for reading");
  f.seekg(0, std::ios::end);
  const std::streamoff end = f.tellg();
  if (end < 0) detail_npy::bad(name, "cannot determine the file size");
  f.seekg(0, std::ios::beg);
  std::vector<std::byte> bytes(static_cast<std::size_t>(end));
  if (!bytes.empty() && !f.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    detail_npy::bad(name, "read error");
  return parse(bytes, name);
}

inline void write(const std::filesystem::path& path, const NpyArray& a) {
  const std::string name = path.string();
  const std::vector<std::byte> bytes = serialize(a, name);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) detail_npy::bad(name, "cannot open the file for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) detail_npy::bad(name, "write error");
}

// ---- typed convenience --------------------------------------------------------------------------

namespace detail_npy {

// The element at p (little-endian) as a double: floats exactly, 64-bit integers rounded.
inline double load_as_double(const DtypeInfo& info, const std::byte* p) {
  const std::uint64_t bits = load_le(p, info.itemsize);
  switch (info.kind) {
    case 'f':
      if (info.itemsize == 2) return FP16::decode(static_cast<std::uint32_t>(bits));
      if (info.itemsize == 4) return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
      return std::bit_cast<double>(bits);
    case 'i': {
      const unsigned shift = static_cast<unsigned>(64 - 8 * info.itemsize);
      return static_cast<double>(static_cast<std::int64_t>(bits << shift) >> shift);
    }
    default: return static_cast<double>(bits);
  }
}

}  // namespace detail_npy

// A 0-, 1- or 2-D array of any supported dtype as a row-major float matrix: a 1-D array of n
// is 1 x n, a 0-D array 1 x 1, Fortran-ordered data is transposed into row-major.
inline FloatMatrix to_float32_matrix(const NpyArray& a, const std::string& name = "<memory>") {
  const detail_npy::DtypeInfo info = detail_npy::require_dtype(a.dtype, name);
  if (a.shape.size() > 2)
    detail_npy::bad(name, "expected a 0-, 1- or 2-D array, got " + std::to_string(a.shape.size()) + " dimensions");
  const std::size_t bytes = detail_npy::checked_byte_size(a.shape, info.itemsize, name);
  if (bytes != a.data.size()) detail_npy::bad(name, "data length does not match the shape");
  FloatMatrix m;
  m.rows = a.shape.size() == 2 ? a.shape[0] : 1;
  m.cols = a.shape.empty() ? 1 : a.shape.back();
  const auto rows = static_cast<std::size_t>(m.rows), cols = static_cast<std::size_t>(m.cols);
  m.values.resize(rows * cols);
  if (m.values.empty()) return m;  // (a 10^11 x 0 array is legal: no row loop over it)
  const bool column_major = a.fortran_order && a.shape.size() == 2;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t src = column_major ? c * rows + r : r * cols + c;
      const std::byte* p = a.data.data() + src * info.itemsize;
      // float32 is copied bit for bit (a detour through double would quiet signalling NaNs).
      m.values[r * cols + c] = info.kind == 'f' && info.itemsize == 4
                                   ? std::bit_cast<float>(static_cast<std::uint32_t>(detail_npy::load_le(p, 4)))
                                   : static_cast<float>(detail_npy::load_as_double(info, p));
    }
  return m;
}

inline FloatMatrix read_float32_matrix(const std::filesystem::path& path) {
  return to_float32_matrix(read(path), path.string());
}

// A rows x cols '<f4' C-order array from row-major values.
inline NpyArray make_float32(std::int64_t rows, std::int64_t cols, const float* values) {
  detail_npy::require_dtype("<f4", "make_float32");
  if (rows < 0 || cols < 0) detail_npy::bad("make_float32", "negative shape");
  NpyArray a;
  a.dtype = "<f4";
  a.shape = {rows, cols};
  const std::size_t bytes = detail_npy::checked_byte_size(a.shape, 4, "make_float32");
  if (bytes != 0 && values == nullptr) detail_npy::bad("make_float32", "null data");
  a.data.resize(bytes);
  for (std::size_t i = 0; i < bytes / 4; ++i) detail_npy::store_le(a.data.data() + 4 * i, std::bit_cast<std::uint32_t>(values[i]), 4);
  return a;
}

inline void write_float32(const std::filesystem::path& path, std::int64_t rows, std::int64_t cols,
                          const float* values) {
  write(path, make_float32(rows, cols, values));
}

}  // namespace lowbit::npy
