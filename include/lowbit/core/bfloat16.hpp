// bfloat16: activations as engines keep them (the top 16 bits of an fp32). Its own type, not
// std::uint16_t, so that an overload taking it cannot be handed fp16 bits by mistake; a buffer
// of raw bf16 bits can be viewed as one (same size, trivially copyable). Widening to float is
// exact; to make bf16 from floats, BF16::encode (formats/minifloat.hpp) rounds to nearest even.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

#include "lowbit/core/matrix_ref.hpp"

namespace lowbit {

struct bfloat16 {
  std::uint16_t bits = 0;
  constexpr float to_float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
};
static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable_v<bfloat16>);

// x widened to float: row r to out + r * out_stride (x.cols values). Exact.
inline void widen_rows(MatrixRef<const bfloat16> x, float* out, std::int64_t out_stride) {
  for (std::int64_t r = 0; r < x.rows; ++r) {
    float* o = out + r * out_stride;
    const bfloat16* row = x.data + r * x.row_stride;
    if (x.col_stride == 1) {  // the common case, a loop the compiler vectorises
      for (std::int64_t c = 0; c < x.cols; ++c) o[c] = row[c].to_float();
    } else {
      for (std::int64_t c = 0; c < x.cols; ++c) o[c] = row[c * x.col_stride].to_float();
    }
  }
}

}  // namespace lowbit
