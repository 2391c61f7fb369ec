// The packed-matmul kernels on the scalar path: the reference every SIMD path reproduces
// bit for bit. The order of the float operations is part of the contract:
//   integer kernel  per granule: dot = exact int32 sum of w*q; y = fma(float(dot), ws*xs, y)
//   float kernel    per weight block: four partial sums p[k & 3] = fma(w_k, x_k, p[k & 3]) in k
//                   order, b = (p0 + p1) + (p2 + p3), y = fma(b, ws, y)
// with y starting at 0 and every row of the panel independent, so lanes may run in parallel
// in any order and give the same bits.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "lowbit/formats/minifloat.hpp"
#include "lowbit/kernels/panel_args.hpp"

namespace lowbit::kernels {

// Block scale of panel row i at a block's scale codes.
inline float panel_scale_at(const PanelScale& s, const std::uint8_t* codes, int i) {
  const std::uint8_t* p = codes + static_cast<std::ptrdiff_t>(i) * s.bytes;
  float v = 1.0f;
  switch (s.kind) {
    case PanelScaleKind::None: return s.constant;
    case PanelScaleKind::E8M0:
    case PanelScaleKind::Lut8: return s.lut[*p];
    case PanelScaleKind::F16: {
      std::uint16_t h;
      std::memcpy(&h, p, 2);
      v = static_cast<float>(Minifloat<5, 10>::decode(h));
      break;
    }
    case PanelScaleKind::BF16: {
      std::uint16_t h;
      std::memcpy(&h, p, 2);
      v = std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
      break;
    }
    case PanelScaleKind::F32: std::memcpy(&v, p, 4); break;
  }
  if (s.has_tensor_scale) v = v * s.tensor_scale;
  return v * s.unit;
}

// 6-bit codes: where the top two bits of a column sit in the octet pair's high-bit byte (odd:
// the second octet of the pair, g: the column's nibble, low = 0 or high = 1).
constexpr int panel_high_shift(int odd, int g) { return 2 * (2 * odd + g); }

// Code of panel row i at column k (k < padded_cols).
inline std::uint32_t panel_code(const PanelArgs& w, int i, std::int64_t k) {
  const std::int64_t o = k >> 3;
  const int j = static_cast<int>(k & 7);
  if (w.bits == 4) {
    const std::uint8_t b = w.codes[o * w.rows * 4 + i * 4 + (j & 3)];
    return j < 4 ? (b & 0xFu) : (b >> 4);
  }
  if (w.bits == 6) {
    const int odd = static_cast<int>(o & 1), g = j < 4 ? 0 : 1;
    const std::uint8_t* pair = w.codes + (o >> 1) * w.rows * 12;
    const std::uint8_t nb = pair[odd * w.rows * 4 + i * 4 + (j & 3)];
    const std::uint8_t hb = pair[w.rows * 8 + i * 4 + (j & 3)];
    return (g == 0 ? (nb & 0xFu) : (nb >> 4u)) | (((hb >> panel_high_shift(odd, g)) & 3u) << 4);
  }
  return w.codes[o * w.rows * 8 + (j >> 2) * w.rows * 4 + i * 4 + (j & 3)];
}

inline const std::uint8_t* panel_block_scales(const PanelArgs& w, std::int64_t b) {
  return w.scales + b * w.rows * w.scale.bytes;
}

// Integer kernel: activation rows n0 .. n0+nr.
inline void panel_int_scalar(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  const std::int64_t g_len = a.granule;
  for (int n = 0; n < nr; ++n) {
    const std::int64_t row = n0 + n;
    const std::int8_t* q = a.q + row * w.padded_cols;
    for (int i = 0; i < w.rows; ++i) {
      float y = 0.0f;
      for (std::int64_t g = 0; g < a.granules; ++g) {
        const std::int64_t k0 = g * g_len, k1 = std::min(k0 + g_len, w.padded_cols);
        std::int32_t dot = 0;
        for (std::int64_t k = k0; k < k1; ++k) dot += static_cast<std::int32_t>(w.ivalue[panel_code(w, i, k)]) * q[k];
        const float ws = panel_scale_at(w.scale, panel_block_scales(w, k0 / w.block), i);
        const float xs = a.scale[(k0 / a.act_block) * a.rows + row];
        y = std::fma(static_cast<float>(dot), ws * xs, y);
      }
      out.y[n * out.stride + i] = y;
    }
  }
}

// Float kernel: activation rows n0 .. n0+nr.
inline void panel_float_scalar(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  for (int n = 0; n < nr; ++n) {
    const float* x = a.x + (n0 + n) * w.padded_cols;
    for (int i = 0; i < w.rows; ++i) {
      float y = 0.0f;
      for (std::int64_t k0 = 0; k0 < w.padded_cols; k0 += w.block) {
        const std::int64_t k1 = std::min(k0 + w.block, w.padded_cols);
        float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // four chains: what lets a SIMD lane keep its FMA unit busy
        for (std::int64_t k = k0; k < k1; ++k) p[k & 3] = std::fma(w.fvalue[panel_code(w, i, k)], x[k], p[k & 3]);
        const float b = (p[0] + p[1]) + (p[2] + p[3]);
        y = std::fma(b, panel_scale_at(w.scale, panel_block_scales(w, k0 / w.block), i), y);
      }
      out.y[n * out.stride + i] = y;
    }
  }
}

}  // namespace lowbit::kernels
