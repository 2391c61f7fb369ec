// What the packed-matmul kernels see: one panel of up to 16 weight rows in the panel layout
// (gemm/panel_matrix.hpp) and a few activation rows, as plain pointers and sizes, so each
// kernel is compiled once per instruction set rather than once per format.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace lowbit::kernels {

inline constexpr int kPanelRows = 16;  // one AVX-512 register of int32 or float lanes

// Weights stream from memory once: the kernels prefetch them this far ahead into L2 (T1),
// enough lines in flight to approach DRAM bandwidth at N = 1 (AVX-512: 1 KiB into L1 measured
// 20-30% slower; AVX2 on a Zen 3 core: see bench/README.md).
inline constexpr int kPrefetchBytes = 8192;

// How a block's scale code becomes the float the kernels multiply by.
enum class PanelScaleKind : std::uint8_t {
  None,  // no scale: every block uses `constant`
  E8M0,  // one byte, 2^(code-127), 0xFF = NaN
  Lut8,  // one byte of any other scale format, looked up in `lut`
  F16,   // IEEE binary16
  BF16,  // bfloat16
  F32,   // IEEE binary32
};

// Calls f(std::integral_constant<PanelScaleKind, K>{}) for the run-time kind: decoders choose the
// kind once per panel and run a loop compiled for it (a switch per block measured a fifth of the
// integer kernel's time at N = 1).
template <class F>
inline void with_scale_kind(PanelScaleKind kind, F&& f) {
  using K = PanelScaleKind;
  switch (kind) {
    case K::E8M0: f(std::integral_constant<K, K::E8M0>{}); break;
    case K::Lut8: f(std::integral_constant<K, K::Lut8>{}); break;
    case K::F16: f(std::integral_constant<K, K::F16>{}); break;
    case K::BF16: f(std::integral_constant<K, K::BF16>{}); break;
    case K::F32: f(std::integral_constant<K, K::F32>{}); break;
    default: f(std::integral_constant<K, K::None>{}); break;
  }
}

struct PanelScale {
  PanelScaleKind kind = PanelScaleKind::None;
  int bytes = 0;               // bytes per scale code
  float unit = 1.0f;           // 2^-u: folds the element's integer unit into the scale
  float tensor_scale = 1.0f;   // second-level scale (NVFP4); 1 otherwise
  bool has_tensor_scale = false;
  float constant = 1.0f;       // PanelScaleKind::None
  const float* lut = nullptr;  // Lut8 (and E8M0 on the scalar path): final values per code
  // Lut8 only: every entry of `lut` is e4m3_value(code) times the tensor scale, then the unit
  // (table_is_e4m3, checked where the table is built), so a kernel may decode the codes
  // arithmetically instead of gathering from the table.
  bool lut_is_e4m3 = false;
};

// The value of an E4M3 code (bias 7, subnormals, NaN at S.1111.111), computed as the AVX-512
// decoder does: normal codes by moving their bits into a float's, subnormal ones as m * 2^-9
// (no float subnormal is formed, so DAZ/FTZ modes cannot change it). The two NaN codes give
// the NaNs passed in (a table's own, whose payload the format's decode chose).
inline float e4m3_value(std::uint32_t code, float nan_pos, float nan_neg) {
  const std::uint32_t mag = code & 0x7Fu;
  if (mag == 0x7Fu) return code & 0x80u ? nan_neg : nan_pos;
  const float v = mag < 8 ? static_cast<float>(mag) * 0x1p-9f : std::bit_cast<float>((mag << 20) + (120u << 23));
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) | (code & 0x80u) << 24);
}

// True when table[c] == (e4m3_value(c) [* tensor_scale]) * unit, bit for bit, for all 256 codes,
// the NaNs being the table's own: then a kernel may decode E4M3 codes arithmetically in place
// of looking them up.
inline bool table_is_e4m3(const float* table, bool has_tensor_scale, float tensor_scale, float unit) {
  if (!std::isnan(table[0x7F]) || !std::isnan(table[0xFF])) return false;
  for (std::uint32_t c = 0; c < 256; ++c) {
    float v = e4m3_value(c, table[0x7F], table[0xFF]);
    if (has_tensor_scale) v = v * tensor_scale;
    if (std::bit_cast<std::uint32_t>(v * unit) != std::bit_cast<std::uint32_t>(table[c])) return false;
  }
  return true;
}

// The top byte of the binary16 that holds 6-bit code c's E3M2 bits (s.eee.mm): the sign to bit
// 7, the rest to bits 4-0, so that the exponent fills the low bits of binary16's and the
// mantissa its top: the binary16's value is the E3M2 value times 2^(bias - 15), subnormals too.
constexpr std::uint32_t e3m2_half_top(std::uint32_t c) { return (c & 0x1Fu) | (c & 0x20u) << 2; }

// One panel: rows [r0, r0 + rows) of W, codes and scales as laid out by PanelMatrix.
struct PanelArgs {
  const std::uint8_t* codes = nullptr;   // padded_cols / 8 octets of rows * bits bytes each (6-bit: in pairs)
  const std::uint8_t* scales = nullptr;  // blocks x rows scale codes, `scale.bytes` each
  int rows = 0;                          // 1..16
  int bits = 4;                          // 4, 6 or 8
  std::int64_t padded_cols = 0;          // K rounded up to a multiple of 8 (16 for 6-bit codes)
  std::int64_t block = 0;                // weight block length along K (a multiple of 8, 16 for 6-bit, or padded_cols)
  PanelScale scale{};
  const std::int8_t* ivalue = nullptr;   // integer value of each code (integer kernels)
  const float* fvalue = nullptr;         // float value of each code (float kernels), 2^bits entries
  bool identity8 = false;                // 8-bit codes are their own two's-complement integer values
  bool integer_codes = false;            // 4- and 6-bit codes: every value is ivalue[c] * code_unit (zero's sign aside)
  int ivalue_min = 0, ivalue_span = 255;  // min(ivalue) and max - min over the codes (integer kernels)
  float code_unit = 1.0f;                // identity8 and integer_codes: 2^-u, the unit of the integer values
  bool fvalue_is_e4m3 = false;           // 8-bit codes whose fvalue are E4M3's (table_is_e4m3)
  bool fvalue_is_e5m2 = false;           // 8-bit codes whose fvalue are E5M2's: fp16 with the code as top byte
  float e3m2_unit = 0.0f;                // 6-bit codes whose fvalue are E3M2's: fp16 of e3m2_half_top(c) times this; else 0
};

// Activation rows quantised to int8 per block along K (integer kernels).
struct IntActArgs {
  const std::int8_t* q = nullptr;        // rows x padded_cols, zero padded
  // The per-block tables hold the rows side by side ([block][row]): a kernel taking several
  // rows reads theirs through one pointer at fixed offsets, where per-row indices ran it out
  // of general registers (GCC spilled them at every granule). Alone it measured even; it is
  // part of the unrolled granules' gain (whole_granule).
  const float* scale = nullptr;          // act_blocks x rows: block scale times 2^-u
  // granules x rows: -128 * sum of q over the granule, the weights' +128 (vpdpbusd multiplies
  // u8) taken back out. Stored negated, a kernel's sums start from it with one broadcast load
  // (GCC negated each in a general register and spilled it, 8 rows per granule).
  const std::int32_t* neg_sum128 = nullptr;
  std::int64_t rows = 0;                 // activation rows: the tables' row stride
  std::int64_t act_block = 0;            // activation block length along K
  std::int64_t act_blocks = 0;
  std::int64_t granule = 0;              // min(weight block, activation block); the other is a multiple
  std::int64_t granules = 0;
};

// Activation rows in float (weight-only mode, or fake-quantised activations).
struct FloatActArgs {
  const float* x = nullptr;  // rows x padded_cols, zero padded
  // The same rows times 2^8, or null. The float kernels decode E4M3 codes as binary16s of
  // their values times 2^-8 (kernels/e4m3_half.hpp); with x256 they need no multiply to undo
  // that, and the multiply-adds round alike, since h * (2^8 x) and (2^8 h) * x are the same
  // real number. Set only where every 2^8 x is finite (prepare_activations).
  const float* x256 = nullptr;
};

// The block index of column k for k stepping up by at most one block at a time (granules, or
// whole blocks): a counter in place of a 64-bit division per granule, which the integer
// kernels' epilogue waited on (removing two per granule: +25-38% at N = 8 to 512).
struct BlockCursor {
  std::int64_t len, index = 0, end;
  explicit BlockCursor(std::int64_t block_len) : len(block_len), end(block_len) {}
  std::int64_t at(std::int64_t k) {
    if (k >= end) {
      ++index;
      end += len;
    }
    return index;
  }
};

// The width of every granule when all are whole and 16 or 32 columns, else 0: the integer
// kernels then write a granule's octets as straight-line code (in a loop of two to four octets
// GCC copied the rows' partial sums at every turn).
inline int whole_granule(const PanelArgs& w, const IntActArgs& a) {
  if (a.granule == 32 && w.padded_cols % 32 == 0) return 32;
  if (a.granule == 16 && w.padded_cols % 16 == 0) return 16;
  return 0;
}

// The granule (16 or 32 columns) of the kernels for one activation row against a full panel,
// or 0 where they do not apply: 16 rows, weight blocks of G, activation blocks of G or 2G, K
// a multiple of 32.
inline int one_row_granule(const PanelArgs& w, const IntActArgs& a) {
  const int g = whole_granule(w, a);
  if (g == 0 || w.rows != kPanelRows || w.padded_cols % 32 != 0 || w.block != g) return 0;
  return a.act_block == g || a.act_block == 2 * g ? g : 0;
}

// Output of one kernel call: nr activation rows x panel rows, out[n * out_stride + i].
struct PanelOut {
  float* y = nullptr;
  std::int64_t stride = 0;
};

// Calls kernel.template operator()<R>(n, out_n) over activation rows n0 .. n0 + nr in groups:
// of BIG rows while they last, then of SMALL (0: none), then one group of the rows left (fewer
// than SMALL, or than BIG). R is a constant, so a group's partial sums stay in registers.
template <int BIG, int SMALL, class Kernel>
inline void for_row_groups(std::int64_t n0, int nr, PanelOut out, Kernel&& kernel) {
  const auto run = [&]<int R>() {
    kernel.template operator()<R>(n0, out);
    n0 += R;
    nr -= R;
    out.y += R * out.stride;
  };
  while (nr >= BIG) run.template operator()<BIG>();
  if constexpr (SMALL > 0)
    while (nr >= SMALL) run.template operator()<SMALL>();
  constexpr int kRest = (SMALL > 0 ? SMALL : BIG) - 1;
  [&]<int... R>(std::integer_sequence<int, R...>) {
    ((nr == R + 1 ? run.template operator()<R + 1>() : void()), ...);
  }(std::make_integer_sequence<int, kRest>{});
}

// Calls f(std::integral_constant<int, G>{}) for a granule width g of 16, 32 or 0 (as
// whole_granule and one_row_granule give it), so a kernel is compiled for each.
template <class F>
inline void with_granule(int g, F&& f) {
  if (g == 32) return f(std::integral_constant<int, 32>{});
  if (g == 16) return f(std::integral_constant<int, 16>{});
  f(std::integral_constant<int, 0>{});
}

}  // namespace lowbit::kernels
