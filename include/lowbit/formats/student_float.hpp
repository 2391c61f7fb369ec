// SF4 ("Learning from Students: Applying t-Distributions to Explore Accurate and Efficient
// Formats for LLMs", Dotzel et al., ICML 2024): a 4-bit codebook built exactly like NF4 but
// from the quantiles of Student's t distribution with nu = 5 instead of the normal.
//
// Construction (bitsandbytes' create_normal_map with t quantiles), offset = 0.9677083:
//   positive: t5.ppf(linspace(offset, 0.5, 9)[:-1])   (8 values)
//   negative: -t5.ppf(linspace(offset, 0.5, 8)[:-1])  (7 values)
//   plus 0; sorted; divided by the largest value.
// As in bitsandbytes, linspace is computed in float32 (torch.linspace), the quantiles are
// stored as float32 and the division by the maximum is a float32 division; the constants
// below are those float32 results. The quantiles were computed to 50 digits (t CDF via the
// hypergeometric closed form, inverted by root finding). The same pipeline with normal
// quantiles reproduces kNF4 bit for bit.
#pragma once

#include "lowbit/formats/codebook.hpp"

namespace lowbit {

inline constexpr double kStudentFloatNu = 5.0;
inline constexpr double kStudentFloatOffset = 0.9677083;

inline constexpr CodebookSpec kSF4{
    {-1.0, -0.6277806162834167, -0.4547361433506012, -0.33433082699775696, -0.2374344915151596,
     -0.15289874374866486, -0.07498251646757126, 0.0, 0.06551306694746017, 0.13296478986740112,
     0.2046610713005066, 0.283834844827652, 0.37580496072769165, 0.49107569456100464,
     0.6567813754081726, 1.0},
    16};

}  // namespace lowbit
