// How a 2-D tensor is cut into blocks (groups sharing one scale).
//
//   along(axis, B)   runs of B consecutive elements along `axis` (1 = within a row, the
//                    default: for a weight [out, in] that is the reduction axis); the tail of
//                    a line shorter than B is a block of its own (as if zero-padded: padding
//                    never changes a block maximum)
//   per_channel(a)   one block per whole line along axis a (B = the line length)
//   tiles(R, C)      R x C tiles, edge tiles smaller; values ordered row-major inside a tile
//   per_tensor()     one block holding every value
// A block size of 0 in along() means "the format's own block size".
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "lowbit/core/error.hpp"

namespace lowbit {

struct Blocking {
  enum class Kind { Along, Tiles, PerTensor };
  Kind kind = Kind::Along;
  int axis = 1;
  std::int64_t block = 0;  // Along: 0 = the format's default, -1 = the whole line
  std::int64_t tile_rows = 0, tile_cols = 0;

  static Blocking along(int axis = 1, std::int64_t block = 0) { return {Kind::Along, axis, block, 0, 0}; }
  static Blocking per_channel(int axis = 1) { return {Kind::Along, axis, -1, 0, 0}; }
  static Blocking tiles(std::int64_t r, std::int64_t c) { return {Kind::Tiles, 1, 0, r, c}; }
  static Blocking per_tensor() { return {Kind::PerTensor, 1, 0, 0, 0}; }

  bool operator==(const Blocking&) const = default;
};

// A blocking resolved against a shape: enumerates the blocks and their elements.
class BlockGrid {
 public:
  BlockGrid() = default;
  BlockGrid(const Blocking& b, std::int64_t rows, std::int64_t cols, std::int64_t format_block)
      : b_(b), rows_(rows), cols_(cols) {
    const char* where = "Blocking";
    detail::require(rows >= 0 && cols >= 0, where, "negative shape");
    switch (b.kind) {
      case Blocking::Kind::Along: {
        detail::require(b.axis == 0 || b.axis == 1, where, "axis must be 0 or 1, got ", b.axis);
        const std::int64_t line = b.axis == 1 ? cols : rows;
        detail::require(b.block >= -1, where, "block size must be positive, 0 (the format's) or -1 (the whole line), got ",
                        b.block);
        std::int64_t bs = b.block == 0 ? format_block : (b.block < 0 ? line : b.block);
        detail::require(bs >= 1 || line == 0, where, "block size must be positive, got ", b.block);
        b_.block = std::max<std::int64_t>(bs, 1);
        per_line_ = line == 0 ? 0 : (line + b_.block - 1) / b_.block;
        count_ = per_line_ * (b.axis == 1 ? rows : cols);
        break;
      }
      case Blocking::Kind::Tiles:
        detail::require(b.tile_rows >= 1 && b.tile_cols >= 1, where, "tile shape must be positive, got ",
                        b.tile_rows, " x ", b.tile_cols);
        tiles_across_ = (cols + b.tile_cols - 1) / b.tile_cols;
        count_ = tiles_across_ * ((rows + b.tile_rows - 1) / b.tile_rows);
        break;
      case Blocking::Kind::PerTensor: count_ = rows * cols > 0 ? 1 : 0; break;
    }
  }

  const Blocking& blocking() const { return b_; }
  std::int64_t count() const { return count_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  // Largest number of elements in one block. Bounded by the shape, not the nominal block,
  // because callers size buffers with it (a block far longer than the line is the line).
  std::int64_t max_block_elements() const {
    switch (b_.kind) {
      case Blocking::Kind::Along: return std::min(b_.block, b_.axis == 1 ? cols_ : rows_);
      case Blocking::Kind::Tiles: return std::min(b_.tile_rows, rows_) * std::min(b_.tile_cols, cols_);
      case Blocking::Kind::PerTensor: return rows_ * cols_;
    }
    return 0;
  }

  // Calls f(r, c) for each element of block g, in block order.
  template <class F>
  void for_each(std::int64_t g, F&& f) const {
    switch (b_.kind) {
      case Blocking::Kind::Along: {
        const std::int64_t line = g / per_line_, k = g % per_line_;
        const std::int64_t len = b_.axis == 1 ? cols_ : rows_;
        const std::int64_t begin = k * b_.block, end = std::min(len, begin + b_.block);
        if (b_.axis == 1) for (std::int64_t c = begin; c < end; ++c) f(line, c);
        else for (std::int64_t r = begin; r < end; ++r) f(r, line);
        break;
      }
      case Blocking::Kind::Tiles: {
        const std::int64_t tr = g / tiles_across_, tc = g % tiles_across_;
        const std::int64_t r0 = tr * b_.tile_rows, c0 = tc * b_.tile_cols;
        const std::int64_t r1 = std::min(rows_, r0 + b_.tile_rows), c1 = std::min(cols_, c0 + b_.tile_cols);
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t c = c0; c < c1; ++c) f(r, c);
        break;
      }
      case Blocking::Kind::PerTensor:
        for (std::int64_t r = 0; r < rows_; ++r)
          for (std::int64_t c = 0; c < cols_; ++c) f(r, c);
        break;
    }
  }

 private:
  Blocking b_{};
  std::int64_t rows_ = 0, cols_ = 0, count_ = 0, per_line_ = 0, tiles_across_ = 0;
};

}  // namespace lowbit
