// PanelMatrix<Format>: the packed matmul's weight layout. Same bits as PackedMatrix (codes at
// their real width, scales at theirs), arranged so a kernel reads every weight byte once
// and each SIMD lane owns one output row:
//
//   rows are grouped in panels of 16 (the last panel may hold fewer, `rp`);
//   panel p starts at byte p * panel_stride (64-byte aligned) and holds
//     scales  nb blocks x rp rows, each scale code little-endian in its own width (1, 2 or 4
//             bytes), padded to a multiple of 64 bytes
//     codes   Kp / 8 octets; octet o covers columns 8o .. 8o+7:
//               4-bit: rp * 4 bytes; byte 4i + j of row i holds column 8o+j in its low nibble
//                      and column 8o+4+j in its high nibble (j = 0..3)
//               8-bit: two groups of rp * 4 bytes; byte 4i + j of group t holds column 8o+4t+j
//               6-bit: octets come in pairs (columns 16P .. 16P+15, rp * 12 bytes): the two
//                      octets' low four bits as in the 4-bit layout (rp * 4 bytes each), then
//                      rp * 4 bytes of top two bits: byte 4i + j holds, at bit 2(2 odd + g), those
//                      of column 8o + 4g + j (odd = o & 1; g = 0 low nibble, 1 high nibble)
//
// Scales come first so that a kernel streaming one panel's codes, with its prefetches running
// ahead, has already brought in the next panel's scales: behind the codes they would be a
// second stream that missed in cache at every new line (N = 1 from DRAM ran at half speed).
//
// where Kp = K rounded up to a multiple of 8, 16 for 6-bit codes (the pad columns hold a code
// whose value is 0).
// So four columns of one row are one 32-bit lane: a vpdpbusd multiplies 16 rows by four
// broadcast activations, and a panel's scales for one block are one vector load.
//
// Which formats: element codes of 4, 6 or 8 bits, no zero point, scales of 0, 8, 16 or 32
// bits, blocks along K that are a multiple of 8 (16 for 6-bit codes) or one block per row. `supports()` says; other
// formats use PackedMatrix with the matmul's generic path.
//
// Memory: payload_bits() = M * (Kp * We + nb * Ws); bytes() adds under 128 bytes per panel.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/formats/e8m0.hpp"
#include "lowbit/formats/minifloat.hpp"
#include "lowbit/kernels/panel_args.hpp"
#include "lowbit/kernels/panel_scalar.hpp"
#include "lowbit/pack/bit_stream.hpp"
#include "lowbit/pack/packed_matrix.hpp"

namespace lowbit {

namespace detail {

// How a format's element codes and block scales look to the kernels.
struct PanelCodeMap {
  int bits = 0;
  bool integer = false;  // every code is an int8 times 2^-unit_exp: the integer kernels apply
  int unit_exp = 0;
  bool identity8 = false;
  bool fvalue_is_e4m3 = false;  // 8-bit codes with E4M3's values (the float kernels decode them)
  bool fvalue_is_e5m2 = false;  // 8-bit codes with E5M2's values
  float e3m2_unit = 0.0f;       // 6-bit codes with E3M2's values, any bias (e3m2_half_unit)
  int ivalue_min = 0, ivalue_span = 255;  // over the integer values of the codes
  std::uint32_t zero_code = 0;
  std::array<std::int8_t, 256> ivalue{};
  std::array<float, 256> fvalue{};
};

// True when the 256 values are E5M2's, the top bytes of fp16 (NaNs compared as NaN): a
// kernel may then convert code << 8 as fp16 in place of looking the value up.
inline bool values_are_e5m2(const std::array<float, 256>& v) {
  for (std::uint32_t c = 0; c < 256; ++c) {
    const auto h = static_cast<float>(FP16::decode(c << 8));
    if (std::isnan(h) ? !std::isnan(v[c]) : std::bit_cast<std::uint32_t>(h) != std::bit_cast<std::uint32_t>(v[c])) return false;
  }
  return true;
}

// When the 64 values are E3M2's of some bias, bit for bit, each the binary16 of
// e3m2_half_top(c) times one power of two: that power, so a kernel may convert the codes as
// fp16 and multiply in place of looking them up; else 0 (other values, Inf or NaN codes).
inline float e3m2_half_unit(const std::array<float, 256>& v) {
  const float unit = v[4] / static_cast<float>(FP16::decode(4u << 8));  // code 4: exponent 1, mantissa 0
  int e = 0;
  if (!(unit > 0.0f) || !std::isfinite(unit) || std::frexp(unit, &e) != 0.5f) return 0.0f;
  for (std::uint32_t c = 0; c < 64; ++c) {
    const float h = static_cast<float>(FP16::decode(kernels::e3m2_half_top(c) << 8)) * unit;
    if (std::bit_cast<std::uint32_t>(h) != std::bit_cast<std::uint32_t>(v[c])) return 0.0f;
  }
  return unit;
}

template <class E>
PanelCodeMap make_panel_code_map(const BlockFormat<E>& f) {
  PanelCodeMap m;
  m.bits = f.element_bits();
  const int n = 1 << m.bits;
  bool have_zero = false, finite = true;
  for (int c = 0; c < n; ++c) {
    const double v = f.element.decode(static_cast<std::uint32_t>(c));
    m.fvalue[static_cast<std::size_t>(c)] = static_cast<float>(v);
    if (!std::isfinite(v)) finite = false;
    if (v == 0.0 && !have_zero) {
      m.zero_code = static_cast<std::uint32_t>(c);
      have_zero = true;
    }
  }
  require(have_zero, "PanelMatrix", "the element has no code for zero (needed to pad K to a multiple of 8)");
  m.fvalue_is_e4m3 = m.bits == 8 && kernels::table_is_e4m3(m.fvalue.data(), false, 1.0f, 1.0f);
  m.fvalue_is_e5m2 = m.bits == 8 && values_are_e5m2(m.fvalue);
  if (m.bits == 6) m.e3m2_unit = e3m2_half_unit(m.fvalue);
  if (!finite) return m;
  for (int u = 0; u <= 24 && !m.integer; ++u) {
    bool ok = true;
    for (int c = 0; c < n && ok; ++c) {
      const double s = std::ldexp(f.element.decode(static_cast<std::uint32_t>(c)), u);
      ok = s == std::floor(s) && s >= -128.0 && s <= 127.0;
      if (ok) m.ivalue[static_cast<std::size_t>(c)] = static_cast<std::int8_t>(s);
    }
    if (ok) {
      m.integer = true;
      m.unit_exp = u;
    }
  }
  if (m.integer && m.bits == 8) {
    m.identity8 = true;
    for (int c = 0; c < 256; ++c) m.identity8 = m.identity8 && m.ivalue[static_cast<std::size_t>(c)] == static_cast<std::int8_t>(c);
    m.integer = m.identity8;  // 8-bit integer kernels read the code byte as the value
  }
  if (m.integer) {
    const auto [lo, hi] = std::minmax_element(m.ivalue.begin(), m.ivalue.begin() + n);
    m.ivalue_min = *lo;
    m.ivalue_span = *hi - *lo;
  }
  return m;
}

inline kernels::PanelScaleKind panel_scale_kind(const ScaleSpec& s) {
  using K = kernels::PanelScaleKind;
  if (s.kind == ScaleKind::None) return K::None;
  if (s.kind == ScaleKind::E8M0) return K::E8M0;
  const MinifloatSpec& f = s.format;
  const bool ieee = f.subnormals && f.specials == Specials::IEEE;
  if (f.bits() == 8) return K::Lut8;
  if (ieee && f.exp_bits == 5 && f.man_bits == 10 && f.bias == 15) return K::F16;
  if (ieee && f.exp_bits == 8 && f.man_bits == 7 && f.bias == 127) return K::BF16;
  if (ieee && f.exp_bits == 8 && f.man_bits == 23 && f.bias == 127) return K::F32;
  fail("PanelMatrix", "scale format E", f.exp_bits, "M", f.man_bits, " has no panel kernel (8-bit scales, fp16, bf16 and fp32 do)");
}

}  // namespace detail

template <class Format>
class PanelMatrix {
 public:
  using format_type = Format;
  static constexpr int kPanelRows = kernels::kPanelRows;

  PanelMatrix() = default;

  // Whether the panel layout and kernels take this format with blocks of `block` along K
  // (rows of `cols` values).
  static bool supports(const Format& f, std::int64_t block, std::int64_t cols) {
    const int we = f.element_bits();
    if (we != 4 && we != 6 && we != 8) return false;
    if (f.scale.zero_point) return false;
    if (f.has_scale()) {
      const int sb = f.scale.bits();
      if (sb != 8 && sb != 16 && sb != 32) return false;
      if (f.scale.kind == ScaleKind::Float && sb != 8) {
        const MinifloatSpec& s = f.scale.format;
        if (!(s.subnormals && s.specials == Specials::IEEE)) return false;
        if (!((s.exp_bits == 5 && s.man_bits == 10 && s.bias == 15) || (s.exp_bits == 8 && s.bias == 127))) return false;
      }
      if (!(block >= cols || (block > 0 && block % column_step(we) == 0))) return false;
    }
    return true;
  }

  // Repacks a PackedMatrix (no requantisation: the same codes and scales).
  static PanelMatrix from_packed(const PackedMatrix<Format>& pm) {
    const Format& f = pm.format();
    const std::int64_t m = pm.rows(), k = pm.cols(), b = pm.block();
    detail::require(supports(f, b, k), "PanelMatrix",
                    "this format or block size has no panel layout (4- or 8-bit codes, no zero point, blocks of a "
                    "multiple of 8 along K): use PackedMatrix with lowbit::matmul");
    PanelMatrix p;
    p.fmt_ = f;
    p.tensor_ = pm.tensor_params();
    p.map_ = detail::make_panel_code_map(f);
    p.rows_ = m;
    p.cols_ = k;
    const std::int64_t step = column_step(p.map_.bits);
    p.padded_cols_ = (k + step - 1) / step * step;
    p.blocks_ = f.has_scale() ? pm.blocks_per_row() : (k > 0 ? 1 : 0);
    p.packed_block_ = b;
    p.block_ = (!f.has_scale() || b >= k) ? std::max<std::int64_t>(p.padded_cols_, step) : b;
    p.scale_bytes_ = f.has_scale() ? f.scale.bits() / 8 : 0;
    p.panels_ = (m + kPanelRows - 1) / kPanelRows;
    p.scale_int_ = p.make_scale(std::ldexp(1.0f, -p.map_.unit_exp), p.lut_int_);
    p.scale_float_ = p.make_scale(1.0f, p.lut_float_);
    p.panel_stride_ = round64(panel_payload(p, kPanelRows));
    p.data_.assign(static_cast<std::size_t>(p.panels_ > 0 ? (p.panels_ - 1) * p.panel_stride_ +
                                                                round64(panel_payload(p, p.panel_rows(p.panels_ - 1)))
                                                          : 0),
                   0);
    const PackedLayout& l = pm.layout();
    parallel_for(p.panels_, p.panels_, 0, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t pi = p0; pi < p1; ++pi) {
        const int rp = p.panel_rows(pi);
        std::uint8_t* scales = p.data_.data() + pi * p.panel_stride_;
        std::uint8_t* codes = scales + p.scales_bytes(rp);
        for (int i = 0; i < rp; ++i) {
          const std::int64_t r = pi * kPanelRows + i;
          const std::uint8_t* row = pm.row_data(r);
          FieldExtractor fx(row, 0, row + l.row_payload_bytes);
          for (std::int64_t c = 0; c < p.padded_cols_; ++c)
            p.put_code(codes, rp, i, c, c < k ? fx.get(l.element_bits) : p.map_.zero_code);
          if (f.has_scale())
            for (std::int64_t blk = 0; blk < p.blocks_; ++blk) {
              const std::uint32_t s = pm.header(r, blk).scale;
              std::uint8_t* dst = scales + (blk * rp + i) * p.scale_bytes_;
              for (int byte = 0; byte < p.scale_bytes_; ++byte) dst[byte] = static_cast<std::uint8_t>(s >> (8 * byte));
            }
        }
      }
    });
    return p;
  }

  // Quantises w (M x K, blocks along K) and lays it out in panels.
  static PanelMatrix pack(const Format& f, MatrixRef<const float> w, const QuantOptions& opt = {}) {
    return from_packed(PackedMatrix<Format>::pack(f, w, opt));
  }

  // Back to the row layout (for files): the same codes and scales.
  PackedMatrix<Format> to_packed() const {
    QuantizedTensor qt;
    qt.rows = rows_;
    qt.cols = cols_;
    qt.blocking = Blocking::along(1, packed_block_);
    qt.tensor = tensor_;
    qt.codes.resize(static_cast<std::size_t>(rows_ * cols_));
    const std::int64_t nb = cols_ == 0 ? 0 : (cols_ + packed_block_ - 1) / packed_block_;
    qt.headers.resize(static_cast<std::size_t>(rows_ * nb));
    for (std::int64_t r = 0; r < rows_; ++r) {
      const std::int64_t pi = r / kPanelRows;
      const int rp = panel_rows(pi), i = static_cast<int>(r % kPanelRows);
      const kernels::PanelArgs a = panel(pi, false);
      for (std::int64_t c = 0; c < cols_; ++c) qt.codes[static_cast<std::size_t>(r * cols_ + c)] = kernels::panel_code(a, i, c);
      for (std::int64_t blk = 0; blk < blocks_ && fmt_.has_scale(); ++blk) {
        const std::uint8_t* s = a.scales + (blk * rp + i) * scale_bytes_;
        std::uint32_t v = 0;
        for (int byte = 0; byte < scale_bytes_; ++byte) v |= static_cast<std::uint32_t>(s[byte]) << (8 * byte);
        qt.headers[static_cast<std::size_t>(r * nb + blk)].scale = v;
      }
    }
    return PackedMatrix<Format>::pack(fmt_, qt);
  }

  // Dequantised values: bit-identical to the PackedMatrix's unpack.
  std::vector<float> unpack() const { return to_packed().unpack(); }

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t padded_cols() const { return padded_cols_; }
  // Columns are padded (and blocks must be a multiple of) this many: one octet, or an octet
  // pair for 6-bit codes.
  static constexpr std::int64_t column_step(int bits) { return bits == 6 ? 16 : 8; }
  std::int64_t block() const { return block_; }  // padded_cols() when one block spans a row
  std::int64_t blocks_per_row() const { return blocks_; }
  std::int64_t panels() const { return panels_; }
  int panel_rows(std::int64_t p) const {
    return static_cast<int>(std::min<std::int64_t>(kPanelRows, rows_ - p * kPanelRows));
  }
  const Format& format() const { return fmt_; }
  const TensorParams& tensor_params() const { return tensor_; }
  const detail::PanelCodeMap& code_map() const { return map_; }
  // Whether the integer kernels apply (every element an int8 times a power of two).
  bool integer_elements() const { return map_.integer; }
  std::uint64_t bytes() const { return data_.size(); }
  std::uint64_t payload_bits() const {
    return static_cast<std::uint64_t>(rows_) *
           (static_cast<std::uint64_t>(padded_cols_) * static_cast<std::uint64_t>(map_.bits) +
            static_cast<std::uint64_t>(blocks_) * static_cast<std::uint64_t>(scale_bytes_) * 8u);
  }

  // Kernel view of panel p; `integer` picks the scale values the integer kernels use (with the
  // element's 2^-u folded in) over the float kernels' plain scales.
  kernels::PanelArgs panel(std::int64_t p, bool integer) const {
    kernels::PanelArgs a;
    const int rp = panel_rows(p);
    a.scales = data_.data() + p * panel_stride_;
    a.codes = a.scales + scales_bytes(rp);
    a.rows = rp;
    a.bits = map_.bits;
    a.padded_cols = padded_cols_;
    a.block = block_;
    a.ivalue = map_.ivalue.data();
    a.fvalue = map_.fvalue.data();
    a.identity8 = map_.identity8;
    a.integer_codes = map_.integer && map_.bits != 8;
    a.fvalue_is_e4m3 = map_.fvalue_is_e4m3;
    a.fvalue_is_e5m2 = map_.fvalue_is_e5m2;
    a.e3m2_unit = map_.e3m2_unit;
    a.ivalue_min = map_.ivalue_min;
    a.ivalue_span = map_.ivalue_span;
    a.code_unit = std::ldexp(1.0f, -map_.unit_exp);
    a.scale = integer ? scale_int_ : scale_float_;  // the LUT pointer is taken here, so copies stay valid
    a.scale.lut = integer ? lut_int_.data() : lut_float_.data();
    return a;
  }

 private:
  static std::int64_t round64(std::int64_t n) { return (n + 63) / 64 * 64; }
  std::int64_t codes_bytes(int rp) const { return padded_cols_ / 8 * rp * map_.bits; }
  std::int64_t scales_bytes(int rp) const { return round64(blocks_ * rp * scale_bytes_); }
  static std::int64_t panel_payload(const PanelMatrix& p, int rp) { return p.scales_bytes(rp) + p.codes_bytes(rp); }
  void put_code(std::uint8_t* base, int rp, int i, std::int64_t c, std::uint32_t code) {
    const std::int64_t o = c >> 3;
    const int j = static_cast<int>(c & 7);
    auto put_nibble = [](std::uint8_t& b, int g, std::uint32_t v) {
      b = g == 0 ? static_cast<std::uint8_t>((b & 0xF0u) | v) : static_cast<std::uint8_t>((b & 0x0Fu) | (v << 4));
    };
    if (map_.bits == 4) {
      put_nibble(base[o * rp * 4 + i * 4 + (j & 3)], j < 4 ? 0 : 1, code);
      return;
    }
    if (map_.bits == 6) {
      const int odd = static_cast<int>(o & 1), g = j < 4 ? 0 : 1;
      std::uint8_t* pair = base + (o >> 1) * rp * 12;
      put_nibble(pair[odd * rp * 4 + i * 4 + (j & 3)], g, code & 0xFu);
      pair[rp * 8 + i * 4 + (j & 3)] |= static_cast<std::uint8_t>((code >> 4) << kernels::panel_high_shift(odd, g));
      return;
    }
    base[o * rp * 8 + (j >> 2) * rp * 4 + i * 4 + (j & 3)] = static_cast<std::uint8_t>(code);
  }
  kernels::PanelScale make_scale(float unit, std::array<float, 256>& lut) const {
    kernels::PanelScale s;
    s.kind = detail::panel_scale_kind(fmt_.scale);
    s.bytes = scale_bytes_;
    s.unit = unit;
    s.has_tensor_scale = fmt_.scale.tensor_scale;
    s.tensor_scale = tensor_.tensor_scale;
    s.constant = unit;
    if (s.kind == kernels::PanelScaleKind::E8M0 || s.kind == kernels::PanelScaleKind::Lut8)
      for (std::uint32_t c = 0; c < 256; ++c) {
        float v = s.kind == kernels::PanelScaleKind::E8M0 ? static_cast<float>(E8M0::decode(c))
                                                            : static_cast<float>(fmt_.scale.format.decode(c));
        if (s.has_tensor_scale) v = v * s.tensor_scale;
        lut[c] = v * unit;
      }
    if (s.kind == kernels::PanelScaleKind::Lut8) {
      s.lut_is_e4m3 = kernels::table_is_e4m3(lut.data(), s.has_tensor_scale, s.tensor_scale, unit);
    }
    return s;
  }

  Format fmt_{};
  TensorParams tensor_{};
  detail::PanelCodeMap map_{};
  std::int64_t packed_block_ = 1;  // the PackedMatrix's block (for to_packed)
  std::int64_t rows_ = 0, cols_ = 0, padded_cols_ = 0, block_ = 8, blocks_ = 0, panels_ = 0, panel_stride_ = 0;
  int scale_bytes_ = 0;
  kernels::PanelScale scale_int_{}, scale_float_{};
  std::array<float, 256> lut_int_{}, lut_float_{};
  detail::PackBuffer data_;
};

// Packs with a format value or an alias type: pack_panels(MXFP4{}, w).
template <class F>
auto pack_panels(const F& format, MatrixRef<const float> w, const QuantOptions& opt = {}) {
  using Fmt = std::decay_t<decltype(format_of(format))>;
  return PanelMatrix<Fmt>::pack(format_of(format), w, opt);
}

}  // namespace lowbit
