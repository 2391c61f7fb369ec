// Reads a fuzzer's bytes as the fields a target needs; past the end every field reads as 0,
// so any byte string is a valid input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace lowbit_fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(byte()) << (8 * i);
    return v;
  }
  std::uint64_t u64() { return u32() | static_cast<std::uint64_t>(u32()) << 32; }
  // An integer in [lo, hi].
  int in_range(int lo, int hi) { return lo + static_cast<int>(byte() % static_cast<unsigned>(hi - lo + 1)); }
  std::size_t remaining() const { return size_ - pos_; }
  std::span<const std::uint8_t> rest() const { return {data_ + pos_, size_ - pos_}; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

inline std::vector<std::byte> as_bytes(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> v(size);
  if (size != 0) std::memcpy(v.data(), data, size);
  return v;
}

}  // namespace lowbit_fuzz
