// Codebook elements: a code is an index into a sorted table of values in [-1, 1]; the block
// scale is the block's absmax. NF4 (QLoRA) and SF4 (Student-t) are instances.
//
// Rounding picks between the two table entries around y: nearest (ties: "even" goes to the
// even index, "away" to the larger magnitude), toward zero (the smaller magnitude) or
// stochastic (the upper entry with probability (y - lo) / (hi - lo)).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "lowbit/core/error.hpp"
#include "lowbit/core/rounding.hpp"

namespace lowbit {

struct CodebookSpec {
  std::array<double, 16> values{};  // ascending; the first `size` entries are used
  int size = 16;

  constexpr bool operator==(const CodebookSpec& o) const { return values == o.values && size == o.size; }

  constexpr int bits() const { int b = 0; while ((1 << b) < size) ++b; return b; }
  constexpr bool has_nan() const { return false; }
  double max_value() const { return std::fmax(std::fabs(values[0]), std::fabs(values[size - 1])); }
  double min_subnormal() const {
    double m = max_value();
    for (int i = 0; i < size; ++i)
      if (values[i] != 0.0 && std::fabs(values[i]) < m) m = std::fabs(values[i]);
    return m;
  }
  int emax() const { return 0; }
  bool is_canonical(std::uint32_t code) const { return code < static_cast<std::uint32_t>(size); }
  void validate() const {
    detail::require(size >= 2 && size <= 16, "CodebookSpec", "a codebook holds 2..16 values, got ", size);
    for (int i = 1; i < size; ++i)
      detail::require(values[i - 1] < values[i], "CodebookSpec", "codebook values must be strictly ascending");
  }

  double decode(std::uint32_t code) const { return values[code]; }

  std::uint32_t encode(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    if (std::isnan(y)) detail::fail("codebook encode", "NaN has no encoding in a codebook format");
    if (y <= values[0]) return 0;
    if (y >= values[size - 1]) return static_cast<std::uint32_t>(size - 1);
    int hi = 1;
    while (values[hi] < y) ++hi;
    if (values[hi] == y) return static_cast<std::uint32_t>(hi);
    const int lo = hi - 1;
    const double a = values[lo], b = values[hi];
    const bool lo_smaller_mag = std::fabs(a) < std::fabs(b) || (std::fabs(a) == std::fabs(b) && a >= 0);
    int pick;
    switch (mode) {
      case Rounding::TowardZero: pick = lo_smaller_mag ? lo : hi; break;
      case Rounding::Stochastic: {
        // up with probability (y - a) / (b - a), using 32 random bits
        const double p = (y - a) / (b - a);
        pick = static_cast<double>(random) < p * 4294967296.0 ? hi : lo;
        break;
      }
      default: {
        const double dlo = y - a, dhi = b - y;
        if (dlo < dhi) pick = lo;
        else if (dhi < dlo) pick = hi;
        else if (mode == Rounding::NearestAway) pick = lo_smaller_mag ? hi : lo;
        else pick = (lo % 2 == 0) ? lo : hi;
      }
    }
    return static_cast<std::uint32_t>(pick);
  }
  double quantize(double y, Rounding mode = Rounding::NearestEven, std::uint32_t random = 0) const {
    return decode(encode(y, mode, random));
  }
};

// NF4 from QLoRA (bitsandbytes' table, float32 constants, index order as bitsandbytes).
inline constexpr CodebookSpec kNF4{
    {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
     -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
     0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
     0.7229568362236023, 1.0},
    16};

}  // namespace lowbit
