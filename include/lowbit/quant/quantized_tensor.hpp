// QuantizedTensor: the result of quantize(): one element code per value (row-major, one
// uint32 each — bit-packed storage is the pack/ layer's job), one header (scale code and
// zero point) per block in block order, and the tensor-level parameters.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/formats/block_format.hpp"
#include "lowbit/quant/blocking.hpp"

namespace lowbit {

struct QuantizedTensor {
  std::int64_t rows = 0, cols = 0;
  Blocking blocking{};                 // resolved (block size filled in)
  std::vector<std::uint32_t> codes;    // codes[r * cols + c]
  std::vector<BlockHeader> headers;    // one per block
  TensorParams tensor{};
};

}  // namespace lowbit
