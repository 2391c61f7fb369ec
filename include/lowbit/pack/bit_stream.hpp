// Dense W-bit fields in a byte array (W = 1..32), little-endian bit order: field i of a
// stream starting at bit 0 occupies bits [i*W, i*W + W), bit j of the stream being bit
// (j % 8) of byte j / 8. Fields are never padded to a byte, so 3-bit and 6-bit codes take
// exactly 3 and 6 bits each.
//
// The field functions touch only the bytes the field overlaps (at most 5), so a buffer of
// packed_bytes(n, W) bytes is enough for n fields: nothing reads or writes past its end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/core/error.hpp"

namespace lowbit {

inline constexpr int kMaxFieldBits = 32;

// Bytes holding `bits` bits.
constexpr std::uint64_t bytes_for_bits(std::uint64_t bits) { return (bits + 7) / 8; }
// Bytes holding n fields of `width` bits.
constexpr std::uint64_t packed_bytes(std::uint64_t n, int width) {
  return bytes_for_bits(n * static_cast<std::uint64_t>(width));
}

constexpr std::uint32_t field_mask(int width) {
  return width >= 32 ? 0xFFFFFFFFu : (1u << width) - 1u;
}

// Writes the low `width` bits of v at bit offset `bit`; the other bits of the touched bytes
// keep their values.
inline void write_field(std::uint8_t* data, std::uint64_t bit, int width, std::uint32_t v) noexcept {
  std::uint8_t* p = data + bit / 8;
  const int shift = static_cast<int>(bit % 8);
  const int nbytes = (shift + width + 7) / 8;
  const std::uint64_t mask = static_cast<std::uint64_t>(field_mask(width)) << shift;
  const std::uint64_t val = (static_cast<std::uint64_t>(v) << shift) & mask;
  for (int i = 0; i < nbytes; ++i) {
    const auto m = static_cast<std::uint8_t>(mask >> (8 * i));
    p[i] = static_cast<std::uint8_t>((p[i] & ~m) | (static_cast<std::uint8_t>(val >> (8 * i)) & m));
  }
}

inline std::uint32_t read_field(const std::uint8_t* data, std::uint64_t bit, int width) noexcept {
  const std::uint8_t* p = data + bit / 8;
  const int shift = static_cast<int>(bit % 8);
  const int nbytes = (shift + width + 7) / 8;
  std::uint64_t w = 0;
  for (int i = 0; i < nbytes; ++i) w |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<std::uint32_t>(w >> shift) & field_mask(width);
}

namespace detail {
inline void check_field_width(int width, const char* where) {
  require(width >= 1 && width <= kMaxFieldBits, where, "field width must be 1..", kMaxFieldBits, ", got ", width);
}
}  // namespace detail

// Sequential writer: fields one after another from a starting bit.
class BitWriter {
 public:
  BitWriter(std::uint8_t* data, std::uint64_t start_bit = 0) : data_(data), bit_(start_bit) {}
  void put(std::uint32_t v, int width) noexcept {
    write_field(data_, bit_, width, v);
    bit_ += static_cast<std::uint64_t>(width);
  }
  std::uint64_t bit() const { return bit_; }

 private:
  std::uint8_t* data_;
  std::uint64_t bit_;
};

class BitReader {
 public:
  BitReader(const std::uint8_t* data, std::uint64_t start_bit = 0) : data_(data), bit_(start_bit) {}
  std::uint32_t get(int width) noexcept {
    const std::uint32_t v = read_field(data_, bit_, width);
    bit_ += static_cast<std::uint64_t>(width);
    return v;
  }
  std::uint64_t bit() const { return bit_; }

 private:
  const std::uint8_t* data_;
  std::uint64_t bit_;
};

// Fast sequential writing for packing whole rows: fields go into a 64-bit accumulator that is
// stored 32 bits at a time. The bytes after the starting bit must be zero (a freshly cleared
// row), the bits before it in its byte are kept; finish() stores the last partial bytes and
// nothing past the last field is touched.
class FieldAppender {
 public:
  FieldAppender(std::uint8_t* data, std::uint64_t start_bit)
      : p_(data + start_bit / 8), nbits_(static_cast<int>(start_bit % 8)) {
    acc_ = nbits_ ? (p_[0] & ((1u << nbits_) - 1u)) : 0u;
  }
  void put(std::uint32_t v, int width) noexcept {  // v must fit in width (1..32) bits
    acc_ |= static_cast<std::uint64_t>(v) << nbits_;
    nbits_ += width;
    if (nbits_ >= 32) {
      store_bytes(4);
      acc_ >>= 32;
      nbits_ -= 32;
    }
  }
  void finish() noexcept { store_bytes((nbits_ + 7) / 8); }
  // After finish(): one past the last byte written.
  std::uint8_t* end() const noexcept { return p_; }

 private:
  void store_bytes(int n) noexcept {
    for (int i = 0; i < n; ++i) p_[i] = static_cast<std::uint8_t>(acc_ >> (8 * i));
    p_ += n;
  }
  std::uint8_t* p_;
  std::uint64_t acc_;
  int nbits_;
};

// Fast sequential reading of the fields of one row; never reads past `end`.
class FieldExtractor {
 public:
  FieldExtractor(const std::uint8_t* data, std::uint64_t start_bit, const std::uint8_t* end)
      : p_(data + start_bit / 8), end_(end), skip_(static_cast<int>(start_bit % 8)) {}
  std::uint32_t get(int width) noexcept {  // width 1..32
    while (nbits_ < width + skip_) refill();
    const std::uint32_t v = static_cast<std::uint32_t>(acc_ >> skip_) & field_mask(width);
    acc_ >>= (skip_ + width);
    nbits_ -= skip_ + width;
    skip_ = 0;
    return v;
  }

 private:
  void refill() noexcept {
    if (end_ - p_ >= 4 && nbits_ <= 32) {
      std::uint64_t w = 0;
      for (int i = 0; i < 4; ++i) w |= static_cast<std::uint64_t>(p_[i]) << (8 * i);
      acc_ |= w << nbits_;
      p_ += 4;
      nbits_ += 32;
    } else if (p_ < end_) {
      acc_ |= static_cast<std::uint64_t>(*p_++) << nbits_;
      nbits_ += 8;
    } else {
      nbits_ += 64;  // past the end: zeros (callers never ask for bits beyond their data)
    }
  }
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  std::uint64_t acc_ = 0;
  int nbits_ = 0;
  int skip_;
};

// Packs values into out (at least packed_bytes(values.size(), width) bytes); values must fit
// in `width` bits (a value that does not is an Error, never silently truncated).
inline void pack_fields(std::span<const std::uint32_t> values, int width, std::span<std::uint8_t> out) {
  detail::check_field_width(width, "pack_fields");
  detail::require(out.size() >= packed_bytes(values.size(), width), "pack_fields", values.size(), " fields of ", width,
                  " bits need ", packed_bytes(values.size(), width), " bytes, the buffer has ", out.size());
  BitWriter w(out.data());
  for (std::size_t i = 0; i < values.size(); ++i) {
    detail::require((values[i] & ~field_mask(width)) == 0, "pack_fields", "value ", values[i], " at ", i,
                    " does not fit in ", width, " bits");
    w.put(values[i], width);
  }
}

inline void unpack_fields(std::span<const std::uint8_t> in, int width, std::span<std::uint32_t> values) {
  detail::check_field_width(width, "unpack_fields");
  detail::require(in.size() >= packed_bytes(values.size(), width), "unpack_fields", values.size(), " fields of ", width,
                  " bits need ", packed_bytes(values.size(), width), " bytes, the buffer has ", in.size());
  BitReader r(in.data());
  for (auto& v : values) v = r.get(width);
}

}  // namespace lowbit
