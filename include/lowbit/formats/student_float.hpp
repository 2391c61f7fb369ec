// SF4 ("Learning from Students", Dotzel et al., 2024): a 4-bit codebook built like NF4 but
// from Student-t quantiles. Values below are placeholders replaced by the computed table.
#pragma once
#include "lowbit/formats/codebook.hpp"
namespace lowbit {
inline constexpr CodebookSpec kSF4 = kNF4;
}  // namespace lowbit
