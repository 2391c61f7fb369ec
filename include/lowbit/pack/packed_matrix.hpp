// PackedMatrix<Format>: an M x K weight (rows = output features, blocks along K) stored at the
// format's real size, for kernels that stream it and for files.
//
// Layout (every row starts on a 64-byte boundary of a 64-byte aligned buffer):
//
//   row r, at byte r * row_stride_bytes():
//     bits [0, K*We)                          element codes, code c at bits [c*We, c*We + We)
//     bits [K*We, K*We + nb*Ws)               the row's nb = ceil(K/B) block scale codes
//     bits [K*We + nb*Ws, row_bits)           their zero points, We bits each (asymmetric only)
//     then zero bits up to the next 64-byte boundary
//
// with We = element bits, Ws = scale bits (E8M0: 8, a float scale: its width, no scale: 0),
// fields packed densely in little-endian bit order (pack/bit_stream.hpp). A block never
// spans two rows, so a row is self-contained: the tail block of a row whose K is not a
// multiple of B is shorter but still has its own scale. The tensor-level parameters
// (NVFP4's fp32 tensor scale) are stored once, beside the rows.
//
// Memory: payload_bits() = M * (K*We + nb*(Ws [+ We])) exactly (= bits_per_element(B) * M*K
// when B divides K); bytes() adds the rounding of each row to whole bytes and under 64 bytes
// of padding per row.
//
// Serialised form (serialize / deserialize), little-endian:
//   0  "LBPK"  4  u16 version  6  u8 element kind  7  u8 flags (1 scale, 2 zero point, 4 tensor scale)
//   8  u64 rows  16 u64 cols  24 u64 block  32 u8 element bits  33 u8 scale bits  34 u8 zero-point bits
//   35 u8 0  36 u32 tensor scale (fp32 bits)  40 u64 format fingerprint  48 u64 payload bytes
//   56 u32 CRC-32 (IEEE) of the header (this field as zero) and the payload  60 u32 0,
//   then the rows without their padding (ceil(row_bits / 8) bytes each).
// The fingerprint hashes the element's decoded values and the scale's kind, rule and format,
// so data packed with another format of the same widths (MXFP4 vs INT4 with E8M0) is refused;
// the CRC catches corruption that leaves the sizes consistent (a block of 33 read as 40).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/core/weight_allocator.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/formats/block_format.hpp"
#include "lowbit/formats/standard.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/kernels/fake_quant_simd.hpp"
#include "lowbit/pack/bit_stream.hpp"
#include "lowbit/quant/blocking.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/quantized_tensor.hpp"

namespace lowbit {

inline constexpr std::size_t kPackRowAlign = kCacheLineBytes;
inline constexpr std::size_t kPackHeaderBytes = 64;
inline constexpr std::uint16_t kPackVersion = 1;

namespace detail {

using PackBuffer = std::vector<std::uint8_t, WeightAllocator<std::uint8_t>>;

// Element family as stored in the serialised header.
template <class E> inline constexpr std::uint8_t element_kind_id = 0;
template <> inline constexpr std::uint8_t element_kind_id<MinifloatSpec> = 1;
template <> inline constexpr std::uint8_t element_kind_id<FixedPointSpec> = 2;
template <> inline constexpr std::uint8_t element_kind_id<CodebookSpec> = 3;
template <> inline constexpr std::uint8_t element_kind_id<LogSpec> = 4;

// Number of valid element codes: a codebook may use fewer than 2^bits entries, and a code
// past its end would index outside the table.
template <class E>
std::uint64_t element_code_count(const BlockFormat<E>& f) {
  if constexpr (std::is_same_v<E, CodebookSpec>) return static_cast<std::uint64_t>(f.element.size);
  else return std::uint64_t{1} << f.element_bits();
}

struct Fnv1a {
  std::uint64_t h = 0xcbf29ce484222325ull;
  void add(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  }
};

template <class E>
std::uint64_t format_fingerprint(const BlockFormat<E>& f) {
  Fnv1a h;
  h.add(element_kind_id<E>);
  h.add(static_cast<std::uint64_t>(f.element_bits()));
  // Every code's value (a sample of 2^16 codes for wider elements).
  const std::uint64_t n = element_code_count(f);
  const std::uint64_t step = n > (1u << 16) ? n >> 16 : 1;
  for (std::uint64_t c = 0; c < n; c += step) h.add(std::bit_cast<std::uint64_t>(f.element.decode(static_cast<std::uint32_t>(c))));
  h.add(static_cast<std::uint64_t>(f.scale.kind));
  h.add(static_cast<std::uint64_t>(f.scale.rule));
  if (f.scale.kind == ScaleKind::Float) {
    const MinifloatSpec& s = f.scale.format;
    for (int v : {s.exp_bits, s.man_bits, s.bias, static_cast<int>(s.subnormals), static_cast<int>(s.specials),
                  static_cast<int>(s.overflow)})
      h.add(static_cast<std::uint64_t>(static_cast<std::int64_t>(v)));
  }
  h.add(f.scale.tensor_scale ? 1 : 0);
  h.add(f.scale.zero_point ? 1 : 0);
  return h.h;
}

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32).
inline std::uint32_t crc32_update(std::uint32_t crc, const std::byte* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ std::to_integer<std::uint32_t>(p[i])) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

// CRC of a serialised matrix: header with its CRC field read as zero, then the payload.
inline std::uint32_t packed_crc(std::span<const std::byte> all) {
  std::array<std::byte, kPackHeaderBytes> h{};
  std::memcpy(h.data(), all.data(), kPackHeaderBytes);
  std::fill(h.begin() + 56, h.begin() + 60, std::byte{0});
  const std::uint32_t c = crc32_update(0, h.data(), h.size());
  return crc32_update(c, all.data() + kPackHeaderBytes, all.size() - kPackHeaderBytes);
}

inline void put_le(std::byte* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}
inline std::uint64_t get_le(const std::byte* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace detail

// Sizes and offsets of the row layout described at the top of this header.
struct PackedLayout {
  std::int64_t rows = 0, cols = 0, block = 1, blocks_per_row = 0;
  int element_bits = 0, scale_bits = 0, zero_point_bits = 0;
  std::uint64_t row_bits = 0;           // payload bits of one row
  std::uint64_t row_payload_bytes = 0;  // ceil(row_bits / 8)
  std::uint64_t row_stride_bytes = 0;   // row_payload_bytes rounded up to 64

  template <class E>
  static PackedLayout make(const BlockFormat<E>& f, std::int64_t rows, std::int64_t cols, std::int64_t block) {
    PackedLayout l;
    l.rows = rows;
    l.cols = cols;
    l.block = block;
    l.blocks_per_row = cols == 0 ? 0 : (cols + block - 1) / block;
    l.element_bits = f.element_bits();
    l.scale_bits = f.scale.bits();
    l.zero_point_bits = f.scale.zero_point ? f.element_bits() : 0;
    l.row_bits = static_cast<std::uint64_t>(cols) * static_cast<std::uint64_t>(l.element_bits) +
                 static_cast<std::uint64_t>(l.blocks_per_row) * static_cast<std::uint64_t>(l.scale_bits + l.zero_point_bits);
    l.row_payload_bytes = bytes_for_bits(l.row_bits);
    l.row_stride_bytes = (l.row_payload_bytes + kPackRowAlign - 1) / kPackRowAlign * kPackRowAlign;
    return l;
  }
  std::uint64_t scale_bit_offset() const { return static_cast<std::uint64_t>(cols) * static_cast<std::uint64_t>(element_bits); }
  std::uint64_t zero_point_bit_offset() const {
    return scale_bit_offset() + static_cast<std::uint64_t>(blocks_per_row) * static_cast<std::uint64_t>(scale_bits);
  }
};

template <class Format>
class PackedMatrix {
 public:
  using format_type = Format;

  PackedMatrix() = default;

  // Quantises w (blocks along K, axis 1) and packs it.
  static PackedMatrix pack(const Format& fmt, MatrixRef<const float> w, const QuantOptions& opt = {}) {
    PackedMatrix m;
    pack_into(fmt, w, m, opt);
    return m;
  }

  // The same into `out`, reusing its storage when it is large enough: an engine that
  // quantises activations on every call allocates once. (If it throws, `out` holds some
  // matrix of the new shape with unspecified values.)
  static void pack_into(const Format& fmt, MatrixRef<const float> w, PackedMatrix& out, const QuantOptions& opt = {}) {
    w.validate("PackedMatrix::pack");
    const BlockGrid grid = detail::make_grid(fmt, opt.blocking, w.rows, w.cols);
    check_blocking(grid.blocking());
    if (pack_rows_simd(fmt, grid, w, opt, out)) return;
    QuantizedTensor qt;
    quantize_into(fmt, w, qt, opt);
    out = pack(fmt, qt);
  }

 private:
  // The fast route: each row is quantised by the SIMD kernel into a row-sized buffer and
  // packed at once, so no full-size code array exists. Gives the same bytes as
  // pack(fmt, quantize(w)); false when it does not apply (the caller takes that route).
  static bool pack_rows_simd(const Format& fmt, const BlockGrid& grid, MatrixRef<const float> w, const QuantOptions& opt,
                             PackedMatrix& m) {
    if (!detail::codes_simd_applies(fmt, grid, w.col_stride, w.size())) return false;
    const SimdPath path = active_simd_path();
    const ElementRounding er = kernels::simd_rounding(fmt);
    const ElementCodes ec = element_codes(fmt);
    m.fmt_ = fmt;
    m.blocking_ = grid.blocking();
    m.tensor_ = detail::tensor_pass(fmt, w, opt.threads);
    m.layout_ = PackedLayout::make(fmt, w.rows, w.cols, grid.blocking().block);
    const PackedLayout& l = m.layout_;
    // every byte of every row is written below (fields, then zero padding): no fill first
    m.data_.resize(static_cast<std::size_t>(l.row_stride_bytes * static_cast<std::uint64_t>(l.rows)));
    const std::int64_t block = fmt.has_scale() ? l.block : std::max<std::int64_t>(l.cols, 1);
    const bool packs = kernels::quantize_packed_simd_applies(path, er, l.element_bits, block);
    std::atomic<bool> ok{true};
    parallel_for(l.rows, row_chunks(l), opt.threads, [&](std::int64_t r0, std::int64_t r1) {
      std::vector<std::uint32_t> codes;  // only for codes the kernel cannot bit-pack as it goes
      std::vector<BlockHeader> headers(static_cast<std::size_t>(std::max<std::int64_t>(l.blocks_per_row, 1)));
      // After the codes of row r: its block headers, then zero padding.
      const auto finish_row = [&](std::int64_t r, bool codes_packed) {
        std::uint8_t* const row = m.row_data(r);
        const std::uint64_t code_bits = static_cast<std::uint64_t>(l.cols) * static_cast<std::uint64_t>(l.element_bits);
        std::uint8_t* end;  // one past the row's last field byte
        if (codes_packed && code_bits % 8 == 0 && l.zero_point_bits == 0 && (l.scale_bits == 8 || l.scale_bits == 16) &&
            fmt.has_scale()) {
          // byte-aligned 8- or 16-bit scales after byte-aligned codes: stored as they are (the
          // loop reads only locals: byte stores may alias anything the compiler cannot see)
          end = row + code_bits / 8;
          const BlockHeader* const h = headers.data();
          const std::int64_t nb = l.blocks_per_row;
          if (l.scale_bits == 8) {
            for (std::int64_t b = 0; b < nb; ++b) end[b] = static_cast<std::uint8_t>(h[b].scale);
          } else {
            for (std::int64_t b = 0; b < nb; ++b) {
              end[2 * b] = static_cast<std::uint8_t>(h[b].scale);
              end[2 * b + 1] = static_cast<std::uint8_t>(h[b].scale >> 8);
            }
          }
          end += nb * (l.scale_bits / 8);
        } else {
          FieldAppender out(row, codes_packed ? code_bits : 0);
          if (!codes_packed) append_codes(out, codes.data(), l.cols, l.element_bits);
          if (fmt.has_scale()) {
            for (std::int64_t b = 0; b < l.blocks_per_row; ++b)
              out.put(headers[static_cast<std::size_t>(b)].scale, l.scale_bits);
            if (l.zero_point_bits > 0)
              for (std::int64_t b = 0; b < l.blocks_per_row; ++b)
                out.put(headers[static_cast<std::size_t>(b)].zero_point, l.zero_point_bits);
          }
          out.finish();
          end = out.end();
        }
        std::fill(end, row + l.row_stride_bytes, std::uint8_t{0});
      };
      for (std::int64_t r = r0; r < r1 && ok.load(std::memory_order_relaxed);) {
        if (packs) {
          kernels::PackedLines lines;
          lines.x = w.data + r * w.row_stride;
          lines.x_stride = w.row_stride;
          lines.out = m.row_data(r);
          lines.out_stride = static_cast<std::int64_t>(l.row_stride_bytes);
          lines.headers = headers.data();
          lines.index0 = static_cast<std::uint64_t>(r * l.cols);
          lines.index_stride = static_cast<std::uint64_t>(l.cols);
          lines.count = r1 - r;
          lines.end = l.cols;
          const std::int64_t r_start = r;
          r += kernels::quantize_lines_packed_simd(path, fmt, er, ec, lines, l.element_bits, block, opt.rounding,
                                                   opt.seed, m.tensor_,
                                                   [&](std::int64_t i) { finish_row(r_start + i, true); });
          if (r == r1) break;
        }
        // this row through the uint32 buffer and the bit appender
        codes.resize(static_cast<std::size_t>(l.cols));
        if (!kernels::quantize_line_simd(path, fmt, er, ec, w.data + r * w.row_stride, codes.data(), headers.data(), 0,
                                         l.cols, block, static_cast<std::uint64_t>(r * l.cols), opt.rounding, opt.seed,
                                         m.tensor_)) {
          ok.store(false);  // a NaN the format cannot encode: the general route reports it
          break;
        }
        finish_row(r, false);
        ++r;
      }
    });
    return ok.load();
  }

  // Codes from the kernels are always valid and in range; up to 8 bits, eight codes go in as
  // one 8W-bit word.
  static void append_codes(FieldAppender& out, const std::uint32_t* codes, std::int64_t n, int width) {
    std::int64_t c = 0;
    if (width <= 8) {
      for (; c + 8 <= n; c += 8) {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(codes[c + i]) << (width * i);
        const int bits = 8 * width;
        if (bits <= 32) {
          out.put(static_cast<std::uint32_t>(v), bits);
        } else {
          out.put(static_cast<std::uint32_t>(v), 32);
          out.put(static_cast<std::uint32_t>(v >> 32), bits - 32);
        }
      }
    }
    for (; c < n; ++c) out.put(codes[c], width);
  }

 public:

  // Packs codes and headers from quantize() (blocks along axis 1 only).
  static PackedMatrix pack(const Format& fmt, const QuantizedTensor& qt) {
    const char* where = "PackedMatrix::pack";
    check_blocking(qt.blocking);
    detail::require(qt.rows >= 0 && qt.cols >= 0, where, "negative shape ", qt.rows, " x ", qt.cols);
    PackedMatrix m;
    m.fmt_ = fmt;
    m.blocking_ = qt.blocking;
    m.tensor_ = qt.tensor;
    m.layout_ = PackedLayout::make(fmt, qt.rows, qt.cols, qt.blocking.block);
    const PackedLayout& l = m.layout_;
    detail::require(qt.codes.size() == static_cast<std::size_t>(qt.rows * qt.cols), where, qt.codes.size(),
                    " codes for a ", qt.rows, " x ", qt.cols, " tensor");
    detail::require(qt.headers.size() == static_cast<std::size_t>(qt.rows * l.blocks_per_row), where, qt.headers.size(),
                    " block headers, expected ", qt.rows * l.blocks_per_row, " (", l.blocks_per_row, " per row)");
    // Checked while packing: nothing is silently cut to its field width.
    const std::uint64_t ncodes = detail::element_code_count(fmt);
    const std::uint32_t scale_mask = field_mask(l.scale_bits), zp_mask = field_mask(l.zero_point_bits);
    m.data_.assign(static_cast<std::size_t>(l.row_stride_bytes * static_cast<std::uint64_t>(l.rows)), 0);
    parallel_for(l.rows, row_chunks(l), 0, [&](std::int64_t r0, std::int64_t r1) {
      for (std::int64_t r = r0; r < r1; ++r) {
        FieldAppender out(m.row_data(r), 0);
        const std::uint32_t* codes = qt.codes.data() + r * l.cols;
        for (std::int64_t c = 0; c < l.cols; ++c) {
          if (codes[c] >= ncodes) bad_code(qt, r * l.cols + c, l);
          out.put(codes[c], l.element_bits);
        }
        if (fmt.has_scale()) {
          const BlockHeader* h = qt.headers.data() + r * l.blocks_per_row;
          for (std::int64_t b = 0; b < l.blocks_per_row; ++b) {
            detail::require((h[b].scale & ~scale_mask) == 0, where, "scale code ", h[b].scale, " of block ",
                            r * l.blocks_per_row + b, " does not fit in ", l.scale_bits, " bits");
            out.put(h[b].scale, l.scale_bits);
          }
          if (l.zero_point_bits > 0)
            for (std::int64_t b = 0; b < l.blocks_per_row; ++b) {
              detail::require((h[b].zero_point & ~zp_mask) == 0, where, "zero point ", h[b].zero_point, " of block ",
                              r * l.blocks_per_row + b, " does not fit in ", l.zero_point_bits, " bits");
              out.put(h[b].zero_point, l.zero_point_bits);
            }
        }
        out.finish();
      }
    });
    return m;
  }

  [[noreturn]] static void bad_code(const QuantizedTensor& qt, std::int64_t i, const PackedLayout& l) {
    detail::fail("PackedMatrix::pack", "code ", qt.codes[static_cast<std::size_t>(i)], " at ", i, " is not a valid ",
                 l.element_bits, "-bit element code");
  }

  // ---- shape and memory ------------------------------------------------------------------
  std::int64_t rows() const { return layout_.rows; }
  std::int64_t cols() const { return layout_.cols; }
  std::int64_t block() const { return layout_.block; }
  std::int64_t blocks_per_row() const { return layout_.blocks_per_row; }
  const Format& format() const { return fmt_; }
  const TensorParams& tensor_params() const { return tensor_; }
  const PackedLayout& layout() const { return layout_; }
  std::uint64_t bytes() const { return data_.size(); }
  std::uint64_t payload_bits() const { return layout_.row_bits * static_cast<std::uint64_t>(layout_.rows); }
  std::uint64_t padding_bytes() const {
    return (layout_.row_stride_bytes - layout_.row_payload_bytes) * static_cast<std::uint64_t>(layout_.rows);
  }
  std::uint64_t row_stride_bytes() const { return layout_.row_stride_bytes; }
  const std::uint8_t* row_data(std::int64_t r) const { return data_.data() + static_cast<std::uint64_t>(r) * layout_.row_stride_bytes; }

  // ---- single fields ---------------------------------------------------------------------
  std::uint32_t code(std::int64_t r, std::int64_t c) const {
    detail::require(r >= 0 && r < rows() && c >= 0 && c < cols(), "PackedMatrix::code", "(", r, ", ", c,
                    ") is outside the ", rows(), " x ", cols(), " matrix");
    return read_field(row_data(r), static_cast<std::uint64_t>(c) * static_cast<std::uint64_t>(layout_.element_bits),
                      layout_.element_bits);
  }
  // Header of block b of row r (all zero for formats without a scale).
  BlockHeader header(std::int64_t r, std::int64_t b) const {
    detail::require(r >= 0 && r < rows() && b >= 0 && b < blocks_per_row(), "PackedMatrix::header", "block (", r, ", ",
                    b, ") is outside ", rows(), " rows of ", blocks_per_row(), " blocks");
    return read_header(row_data(r), b);
  }

  // ---- conversions -----------------------------------------------------------------------
  // Dequantises into out (M x K, any strides): bit-identical to fake_quant with the options
  // the matrix was packed with.
  void unpack(MatrixRef<float> out) const {
    out.validate("PackedMatrix::unpack");
    detail::require(out.rows == rows() && out.cols == cols(), "PackedMatrix::unpack", "output is ", out.rows, " x ",
                    out.cols, " but the packed matrix is ", rows(), " x ", cols());
    parallel_for(layout_.rows, row_chunks(layout_), 0, [&](std::int64_t r0, std::int64_t r1) {
      RowDecoder dec(*this);
      std::vector<float> tmp(out.col_stride == 1 ? 0 : static_cast<std::size_t>(cols()));
      for (std::int64_t r = r0; r < r1; ++r) {
        if (out.col_stride == 1) {
          dec.decode(r, out.data + r * out.row_stride);
          continue;
        }
        dec.decode(r, tmp.data());
        for (std::int64_t c = 0; c < cols(); ++c) out(r, c) = tmp[static_cast<std::size_t>(c)];
      }
    });
  }

  // Decodes rows to float one at a time with its own buffers (one per thread): what unpack and
  // the matmul's reference path use, so W is never held as a full float copy.
  class RowDecoder {
   public:
    explicit RowDecoder(const PackedMatrix& m)
        : m_(m),
          path_(active_simd_path()),
          simd_(path_ != SimdPath::Scalar && kernels::simd_rounding(m.fmt_).eligible),
          ec_(simd_ ? element_codes(m.fmt_) : ElementCodes{}),
          unit_(m.fmt_.has_scale() ? m.layout_.block : std::max<std::int64_t>(m.layout_.cols, 1)),
          runs_(m.layout_.cols == 0 ? 0 : (m.layout_.cols + unit_ - 1) / unit_),
          codes_(static_cast<std::size_t>(m.layout_.cols)),
          headers_(static_cast<std::size_t>(m.fmt_.has_scale() ? runs_ : 0)) {}

    // Row r as cols() floats at out (contiguous); bit-identical to fake_quant's row.
    void decode(std::int64_t r, float* out) {
      const PackedLayout& l = m_.layout_;
      const std::uint8_t* row = m_.row_data(r);
      FieldExtractor fx(row, 0, row + l.row_payload_bytes);
      for (std::int64_t c = 0; c < l.cols; ++c) codes_[static_cast<std::size_t>(c)] = fx.get(l.element_bits);
      for (std::size_t b = 0; b < headers_.size(); ++b) headers_[b] = m_.read_header(row, static_cast<std::int64_t>(b));
      if (simd_ && kernels::dequantize_line_simd(path_, m_.fmt_, ec_, codes_.data(), out, headers_.data(), 0, l.cols,
                                                 unit_, m_.tensor_))
        return;
      for (std::int64_t b = 0; b < runs_; ++b) {
        const std::int64_t c0 = b * unit_, n = std::min(unit_, l.cols - c0);
        m_.fmt_.dequantize_block(codes_.data() + c0, static_cast<std::size_t>(n),
                                 m_.fmt_.has_scale() ? headers_[static_cast<std::size_t>(b)] : BlockHeader{}, m_.tensor_,
                                 out + c0);
      }
    }

   private:
    const PackedMatrix& m_;
    SimdPath path_;
    bool simd_;
    ElementCodes ec_;
    std::int64_t unit_, runs_;
    std::vector<std::uint32_t> codes_;
    std::vector<BlockHeader> headers_;
  };

  std::vector<float> unpack() const {
    std::vector<float> out(static_cast<std::size_t>(rows() * cols()));
    unpack(MatrixRef<float>::row_major(out.data(), rows(), cols()));
    return out;
  }

  QuantizedTensor to_quantized() const {
    QuantizedTensor qt;
    qt.rows = rows();
    qt.cols = cols();
    qt.blocking = blocking_;
    qt.tensor = tensor_;
    qt.codes.resize(static_cast<std::size_t>(rows() * cols()));
    qt.headers.resize(static_cast<std::size_t>(rows() * blocks_per_row()));
    for (std::int64_t r = 0; r < rows(); ++r) {
      BitReader br(row_data(r));
      for (std::int64_t c = 0; c < cols(); ++c) qt.codes[static_cast<std::size_t>(r * cols() + c)] = br.get(layout_.element_bits);
      for (std::int64_t b = 0; b < blocks_per_row(); ++b)
        qt.headers[static_cast<std::size_t>(r * blocks_per_row() + b)] = read_header(row_data(r), b);
    }
    return qt;
  }

  // ---- bytes -----------------------------------------------------------------------------
  std::vector<std::byte> serialize() const {
    const PackedLayout& l = layout_;
    std::vector<std::byte> out(kPackHeaderBytes + static_cast<std::size_t>(l.row_payload_bytes * static_cast<std::uint64_t>(l.rows)));
    std::byte* h = out.data();
    std::memcpy(h, "LBPK", 4);
    detail::put_le(h + 4, kPackVersion, 2);
    detail::put_le(h + 6, detail::element_kind_id<typename Format::element_type>, 1);
    detail::put_le(h + 7, flags_of(fmt_), 1);
    detail::put_le(h + 8, static_cast<std::uint64_t>(l.rows), 8);
    detail::put_le(h + 16, static_cast<std::uint64_t>(l.cols), 8);
    detail::put_le(h + 24, static_cast<std::uint64_t>(l.block), 8);
    detail::put_le(h + 32, static_cast<std::uint64_t>(l.element_bits), 1);
    detail::put_le(h + 33, static_cast<std::uint64_t>(l.scale_bits), 1);
    detail::put_le(h + 34, static_cast<std::uint64_t>(l.zero_point_bits), 1);
    detail::put_le(h + 36, std::bit_cast<std::uint32_t>(tensor_.tensor_scale), 4);
    detail::put_le(h + 40, detail::format_fingerprint(fmt_), 8);
    detail::put_le(h + 48, l.row_payload_bytes * static_cast<std::uint64_t>(l.rows), 8);
    for (std::int64_t r = 0; r < l.rows && l.row_payload_bytes > 0; ++r)
      std::memcpy(out.data() + kPackHeaderBytes + static_cast<std::size_t>(static_cast<std::uint64_t>(r) * l.row_payload_bytes),
                  row_data(r), static_cast<std::size_t>(l.row_payload_bytes));
    detail::put_le(h + 56, detail::packed_crc(out), 4);
    return out;
  }

  // Reads what serialize() wrote for the same format; anything else is an Error saying what
  // does not match. Reads nothing outside `in`.
  static PackedMatrix deserialize(const Format& fmt, std::span<const std::byte> in) {
    const char* where = "PackedMatrix::deserialize";
    detail::require(in.size() >= kPackHeaderBytes, where, "truncated header: ", in.size(), " bytes, need ",
                    kPackHeaderBytes);
    const std::byte* h = in.data();
    auto u = [&](int off, int n) { return detail::get_le(h + off, n); };
    detail::require(std::memcmp(h, "LBPK", 4) == 0, where, "bad magic (not a packed lowbit matrix)");
    detail::require(u(4, 2) == kPackVersion, where, "unsupported version ", u(4, 2), " (reader is version ", kPackVersion, ")");
    const auto kind = detail::element_kind_id<typename Format::element_type>;
    detail::require(u(6, 1) == kind, where, "element kind ", u(6, 1), " does not match the format's ", int{kind});
    detail::require(u(7, 1) == flags_of(fmt), where, "scale flags ", u(7, 1), " do not match the format's ", flags_of(fmt));
    const PackedLayout want = PackedLayout::make(fmt, 0, 0, 1);
    detail::require(u(32, 1) == static_cast<std::uint64_t>(want.element_bits), where, "element bits ", u(32, 1),
                    " do not match the format's ", want.element_bits);
    detail::require(u(33, 1) == static_cast<std::uint64_t>(want.scale_bits), where, "scale bits ", u(33, 1),
                    " do not match the format's ", want.scale_bits);
    detail::require(u(34, 1) == static_cast<std::uint64_t>(want.zero_point_bits), where, "zero-point bits ", u(34, 1),
                    " do not match the format's ", want.zero_point_bits);
    detail::require(u(35, 1) == 0 && u(60, 4) == 0, where, "reserved header bytes are not zero");
    detail::require(u(40, 8) == detail::format_fingerprint(fmt), where,
                    "format fingerprint differs: the data was packed with another format of the same widths");
    // Shapes are bounded so no size computation below can overflow.
    constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 40;
    const std::uint64_t rows = u(8, 8), cols = u(16, 8), block = u(24, 8);
    detail::require(rows <= kMaxDim && cols <= kMaxDim, where, "implausible shape ", rows, " x ", cols);
    detail::require(block >= 1 && block <= kMaxDim, where, "block size ", block, " must be 1..2^40");
    PackedMatrix m;
    m.fmt_ = fmt;
    m.layout_ = PackedLayout::make(fmt, static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols),
                                   static_cast<std::int64_t>(block));
    const PackedLayout& l = m.layout_;
    const std::uint64_t payload = u(48, 8);
    detail::require(l.row_payload_bytes == 0 || rows <= std::numeric_limits<std::uint64_t>::max() / l.row_payload_bytes,
                    where, "implausible size ", rows, " rows of ", l.row_payload_bytes, " bytes");
    const std::uint64_t need = l.row_payload_bytes * rows;
    detail::require(payload == need, where, "payload size field says ", payload, " bytes, a ", rows, " x ", cols,
                    " matrix with block ", block, " needs ", need);
    const std::uint64_t have = in.size() - kPackHeaderBytes;
    detail::require(have >= need, where, "payload truncated: ", have, " bytes, need ", need);
    detail::require(have == need, where, have - need, " trailing bytes after the payload");
    detail::require(u(56, 4) == detail::packed_crc(in), where, "CRC mismatch: the header or the payload is corrupt");
    const float ts = std::bit_cast<float>(static_cast<std::uint32_t>(u(36, 4)));
    if (fmt.scale.tensor_scale)
      detail::require(std::isfinite(ts) && ts > 0.0f, where, "tensor scale ", ts, " is not a positive finite number");
    else
      detail::require(ts == 1.0f, where, "tensor scale ", ts, " for a format without one (must be 1)");
    m.tensor_.tensor_scale = ts;
    m.blocking_ = Blocking::along(1, static_cast<std::int64_t>(block));
    m.data_.assign(static_cast<std::size_t>(l.row_stride_bytes * rows), 0);
    const std::byte* src = in.data() + kPackHeaderBytes;
    const std::uint64_t ncodes = detail::element_code_count(fmt);
    for (std::int64_t r = 0; r < l.rows; ++r) {
      auto* row = m.data_.data() + static_cast<std::uint64_t>(r) * l.row_stride_bytes;
      if (l.row_payload_bytes > 0)
        std::memcpy(row, src + static_cast<std::uint64_t>(r) * l.row_payload_bytes, static_cast<std::size_t>(l.row_payload_bytes));
      // Canonical form: the bits after the payload in a row's last byte are zero.
      if (l.row_bits % 8 != 0)
        detail::require((row[l.row_payload_bytes - 1] >> (l.row_bits % 8)) == 0, where, "row ", r,
                        " has non-zero bits after its payload");
      if (ncodes < (std::uint64_t{1} << l.element_bits)) {
        BitReader br(row);
        for (std::int64_t c = 0; c < l.cols; ++c) {
          const std::uint32_t code = br.get(l.element_bits);
          detail::require(code < ncodes, where, "code ", code, " at (", r, ", ", c, ") is not a valid element code");
        }
      }
    }
    return m;
  }

 private:
  static void check_blocking(const Blocking& b) {
    detail::require(b.kind == Blocking::Kind::Along && b.axis == 1 && b.block >= 1, "PackedMatrix",
                    "packed storage needs blocks along K (axis 1): Blocking::along(1, B) or per_channel(1)");
  }
  static std::int64_t row_chunks(const PackedLayout& l) {
    return std::clamp<std::int64_t>(l.rows * l.cols / detail::kChunkValues, 1, std::max<std::int64_t>(l.rows, 1));
  }
  static std::uint64_t flags_of(const Format& f) {
    return (f.has_scale() ? 1u : 0u) | (f.scale.zero_point ? 2u : 0u) | (f.scale.tensor_scale ? 4u : 0u);
  }
  BlockHeader read_header(const std::uint8_t* row, std::int64_t b) const {
    BlockHeader h;
    if (!fmt_.has_scale()) return h;
    const auto ub = static_cast<std::uint64_t>(b);
    h.scale = read_field(row, layout_.scale_bit_offset() + ub * static_cast<std::uint64_t>(layout_.scale_bits), layout_.scale_bits);
    if (layout_.zero_point_bits > 0)
      h.zero_point = read_field(row, layout_.zero_point_bit_offset() + ub * static_cast<std::uint64_t>(layout_.zero_point_bits),
                                layout_.zero_point_bits);
    return h;
  }
  std::uint8_t* row_data(std::int64_t r) { return data_.data() + static_cast<std::uint64_t>(r) * layout_.row_stride_bytes; }

  Format fmt_{};
  Blocking blocking_ = Blocking::along(1, 1);
  TensorParams tensor_{};
  PackedLayout layout_{};
  detail::PackBuffer data_;
};

// Packs with a format value or an alias type: pack_matrix(MXFP4{}, w).
template <class F>
auto pack_matrix(const F& format, MatrixRef<const float> w, const QuantOptions& opt = {}) {
  using Fmt = std::decay_t<decltype(format_of(format))>;
  return PackedMatrix<Fmt>::pack(format_of(format), w, opt);
}

}  // namespace lowbit
