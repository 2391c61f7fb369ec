// MatrixRef<T>: a 2-D strided view (pointer, rows, cols, strides in elements). Every tensor
// entry point takes one; spans, raw pointers and Eigen matrices are turned into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "lowbit/core/error.hpp"

namespace lowbit {

template <class T>
struct MatrixRef {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;  // elements between (r, c) and (r + 1, c)
  std::int64_t col_stride = 1;  // elements between (r, c) and (r, c + 1)

  static MatrixRef row_major(T* p, std::int64_t rows, std::int64_t cols) { return {p, rows, cols, cols, 1}; }
  static MatrixRef col_major(T* p, std::int64_t rows, std::int64_t cols) { return {p, rows, cols, 1, rows}; }
  // A span is one row.
  static MatrixRef from_span(std::span<T> s) {
    return {s.data(), 1, static_cast<std::int64_t>(s.size()), static_cast<std::int64_t>(s.size()), 1};
  }

  std::int64_t size() const { return rows * cols; }
  T& operator()(std::int64_t r, std::int64_t c) const { return data[r * row_stride + c * col_stride]; }
  operator MatrixRef<const T>() const { return {data, rows, cols, row_stride, col_stride}; }

  void validate(const char* where) const {
    detail::require(rows >= 0 && cols >= 0, where, "negative shape ", rows, " x ", cols);
    // Element counts (and the byte counts derived from them) must fit in 64 bits.
    detail::require(cols == 0 || rows <= INT64_MAX / 8 / cols, where, "a ", rows, " x ", cols,
                    " tensor's element count overflows 64 bits");
    detail::require(size() == 0 || data != nullptr, where, "null data for a ", rows, " x ", cols, " tensor");
  }
};

}  // namespace lowbit
