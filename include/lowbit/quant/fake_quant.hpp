// The generic fake-quant core: quantize (to codes and block headers), dequantize, and
// fake_quant (both at once) for any format over any blocking of a 2-D tensor.
//
// A format is anything with the BlockFormat interface (quantize_block, dequantize_block,
// tensor_params, block_size), or a type naming one as a static member `format` (the
// standard aliases, e.g. lowbit::MXFP4). Stochastic rounding draws the bits of element
// (r, c) from (seed, r * cols + c), so results never depend on memory layout or order.
// fake_quant may run in place (in and out the same view).
//
// Contiguous rows with blocks along them run the SIMD kernels (kernels/), everything else the
// scalar BlockFormat code, which stays the reference the kernels are tested against bit for
// bit. Work is cut into chunks of whole blocks by shape alone and spread over threads
// (core/parallel.hpp), so no result depends on the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/core/rounding.hpp"
#include "lowbit/formats/block_format.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/kernels/fake_quant_simd.hpp"
#include "lowbit/quant/blocking.hpp"
#include "lowbit/quant/quantized_tensor.hpp"

namespace lowbit {

struct QuantOptions {
  Rounding rounding = Rounding::NearestEven;
  std::uint64_t seed = 0;
  Blocking blocking{};
  int threads = 0;  // 0: lowbit's default (set_num_threads); results never depend on it
};

// Format values and format types alike: format_of(MXFP4{}) is the BlockFormat value.
template <class F>
constexpr const auto& format_of(const F& f) {
  if constexpr (requires { F::format; }) return F::format;
  else return f;
}

namespace detail {

// Work is cut into chunks of whole blocks of about this many values; the cut depends only on
// the shape, never on the thread count.
inline constexpr std::int64_t kChunkValues = 1 << 16;

template <class Fmt>
BlockGrid make_grid(const Fmt& fmt, const Blocking& b, std::int64_t rows, std::int64_t cols) {
  Blocking eff = b;
  const bool format_default = b.kind == Blocking::Kind::Along && b.block == 0;
  if (format_default && fmt.block_size == kPerTensor) eff = Blocking::per_tensor();
  else if (format_default && fmt.block_size == kPerChannel) eff = Blocking::per_channel(b.axis);
  return BlockGrid(eff, rows, cols, fmt.block_size);
}

template <class Fmt>
TensorParams tensor_pass(const Fmt& fmt, MatrixRef<const float> in, int threads = 0) {
  if (!fmt.needs_tensor_pass()) return {};
  // The largest finite magnitude, row by row (a max is exact in any order).
  std::vector<float> row_amax(static_cast<std::size_t>(in.rows), 0.0f);
  const SimdPath path = active_simd_path();
  const std::int64_t chunks = std::clamp<std::int64_t>(in.size() / kChunkValues, 1, std::max<std::int64_t>(in.rows, 1));
  parallel_for(in.rows, chunks, threads, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      float m = 0.0f;
      if (in.col_stride != 1 || !kernels::finite_amax_simd(path, in.data + r * in.row_stride, in.cols, m)) {
        for (std::int64_t c = 0; c < in.cols; ++c) {
          const float v = std::fabs(in(r, c));
          if (std::isfinite(v)) m = std::max(m, v);
        }
      }
      row_amax[static_cast<std::size_t>(r)] = m;
    }
  });
  float amax = 0.0f;
  for (float m : row_amax) amax = std::max(amax, m);
  return fmt.tensor_params(amax);
}


inline std::int64_t chunk_count(const BlockGrid& grid) {
  const std::int64_t values = grid.rows() * grid.cols();
  return std::clamp<std::int64_t>(values / kChunkValues, 1, std::max<std::int64_t>(grid.count(), 1));
}

// Per-chunk buffers, each as long as the largest block.
struct BlockScratch {
  std::vector<std::uint32_t> codes;
  std::vector<float> y;
  explicit BlockScratch(std::int64_t cap) : codes(static_cast<std::size_t>(cap)), y(static_cast<std::size_t>(cap)) {}
};

// Runs `body(g, x, index, n, coords, scratch)` over every block with its values gathered,
// the blocks split over threads in chunks (each chunk with its own buffers).
template <class Body>
void for_each_block(const BlockGrid& grid, MatrixRef<const float> in, int threads, Body&& body) {
  const std::int64_t cap = grid.max_block_elements();
  parallel_for(grid.count(), chunk_count(grid), threads, [&](std::int64_t g0, std::int64_t g1) {
    std::vector<float> x(static_cast<std::size_t>(cap));
    std::vector<std::uint64_t> index(static_cast<std::size_t>(cap));
    std::vector<std::int64_t> rc(static_cast<std::size_t>(2 * cap));
    BlockScratch scratch(cap);
    for (std::int64_t g = g0; g < g1; ++g) {
      std::size_t n = 0;
      grid.for_each(g, [&](std::int64_t r, std::int64_t c) {
        x[n] = in(r, c);
        index[n] = static_cast<std::uint64_t>(r * in.cols + c);
        rc[2 * n] = r;
        rc[2 * n + 1] = c;
        ++n;
      });
      body(g, x.data(), index.data(), n, rc.data(), scratch);
    }
  });
}

// The SIMD path: contiguous rows, blocks along them (or no blocks at all). Returns false
// when it does not apply; the caller then runs the scalar reference.
template <class Fmt>
bool fake_quant_simd(const Fmt& fmt, const BlockGrid& grid, MatrixRef<const float> in, MatrixRef<float> out,
                     const QuantOptions& opt, const TensorParams& tp) {
  const SimdPath path = active_simd_path();
  if (path == SimdPath::Scalar || in.col_stride != 1 || out.col_stride != 1 || in.size() == 0) return false;
  const Blocking& b = grid.blocking();
  const bool rows_of_blocks = b.kind == Blocking::Kind::Along && b.axis == 1;
  if (fmt.has_scale() && !rows_of_blocks) return false;
  const ElementRounding er = kernels::simd_rounding(fmt);
  if (!er.eligible) return false;
  // Units of work: blocks along rows (for per-element formats, runs of kLine values).
  constexpr std::int64_t kLine = 1024;
  const std::int64_t unit = fmt.has_scale() ? b.block : kLine;
  const std::int64_t per_row = (in.cols + unit - 1) / unit;
  const std::int64_t units = per_row * in.rows;
  const std::int64_t chunks = std::clamp<std::int64_t>(in.size() / kChunkValues, 1, units);
  std::atomic<bool> ok{true};
  parallel_for(units, chunks, opt.threads, [&](std::int64_t u0, std::int64_t u1) {
    for (std::int64_t u = u0; u < u1;) {
      const std::int64_t r = u / per_row, k0 = u % per_row;
      const std::int64_t k1 = std::min(per_row, k0 + (u1 - u));  // stay within row r
      const std::int64_t c0 = k0 * unit, c1 = std::min(in.cols, k1 * unit);
      const float* x = in.data + r * in.row_stride;
      float* y = out.data + r * out.row_stride;
      if (!kernels::fake_quant_line_simd(path, fmt, er, x, y, c0, c1, unit, static_cast<std::uint64_t>(r * in.cols),
                                         opt.rounding, opt.seed, tp))
        ok.store(false);
      u += k1 - k0;
    }
  });
  return ok.load();
}

}  // namespace detail

namespace detail {

// Work on contiguous rows for the SIMD quantize / dequantize paths: blocks along rows (for
// per-element formats, runs of 1024 values), cut into the same chunks as fake_quant_simd.
struct RowUnits {
  std::int64_t unit = 0, per_row = 0, units = 0, chunks = 0;
  template <class Fmt>
  RowUnits(const Fmt& fmt, const BlockGrid& grid, std::int64_t rows, std::int64_t cols) {
    unit = fmt.has_scale() ? grid.blocking().block : 1024;
    per_row = (cols + unit - 1) / unit;
    units = per_row * rows;
    chunks = std::clamp<std::int64_t>(rows * cols / kChunkValues, 1, units);
  }
  // Calls f(row, first unit, end unit) for each run of units [u0, u1) within one row.
  template <class Fn>
  void split(std::int64_t u0, std::int64_t u1, Fn&& f) const {
    for (std::int64_t u = u0; u < u1;) {
      const std::int64_t r = u / per_row, k0 = u % per_row;
      const std::int64_t k1 = std::min(per_row, k0 + (u1 - u));
      f(r, k0, k1);
      u += k1 - k0;
    }
  }
};

template <class Fmt>
bool codes_simd_applies(const Fmt& fmt, const BlockGrid& grid, std::int64_t col_stride, std::int64_t size) {
  if (active_simd_path() == SimdPath::Scalar || col_stride != 1 || size == 0) return false;
  const Blocking& b = grid.blocking();
  if (fmt.has_scale() && !(b.kind == Blocking::Kind::Along && b.axis == 1)) return false;
  return kernels::simd_rounding(fmt).eligible;
}

// The SIMD quantize path; false when it does not apply (or met a NaN the format cannot
// encode): the caller then runs the scalar reference.
template <class Fmt>
bool quantize_simd(const Fmt& fmt, const BlockGrid& grid, MatrixRef<const float> in, QuantizedTensor& qt,
                   const QuantOptions& opt) {
  if (!codes_simd_applies(fmt, grid, in.col_stride, in.size())) return false;
  const SimdPath path = active_simd_path();
  const ElementRounding er = kernels::simd_rounding(fmt);
  const ElementCodes ec = element_codes(fmt);
  const RowUnits ru(fmt, grid, in.rows, in.cols);
  std::atomic<bool> ok{true};
  parallel_for(ru.units, ru.chunks, opt.threads, [&](std::int64_t u0, std::int64_t u1) {
    ru.split(u0, u1, [&](std::int64_t r, std::int64_t k0, std::int64_t k1) {
      std::uint32_t* codes = qt.codes.data() + r * in.cols;
      BlockHeader* headers = qt.headers.data() + (fmt.has_scale() ? r * ru.per_row + k0 : 0);
      if (!kernels::quantize_line_simd(path, fmt, er, ec, in.data + r * in.row_stride, codes, headers, k0 * ru.unit,
                                       std::min(in.cols, k1 * ru.unit), ru.unit, static_cast<std::uint64_t>(r * in.cols),
                                       opt.rounding, opt.seed, qt.tensor))
        ok.store(false);
    });
  });
  return ok.load();
}

template <class Fmt>
bool dequantize_simd(const Fmt& fmt, const BlockGrid& grid, const QuantizedTensor& qt, MatrixRef<float> out) {
  if (!codes_simd_applies(fmt, grid, out.col_stride, out.size())) return false;
  const SimdPath path = active_simd_path();
  const ElementCodes ec = element_codes(fmt);
  const RowUnits ru(fmt, grid, qt.rows, qt.cols);
  std::atomic<bool> ok{true};
  parallel_for(ru.units, ru.chunks, 0, [&](std::int64_t u0, std::int64_t u1) {
    ru.split(u0, u1, [&](std::int64_t r, std::int64_t k0, std::int64_t k1) {
      const BlockHeader* headers = qt.headers.data() + (fmt.has_scale() ? r * ru.per_row + k0 : 0);
      if (!kernels::dequantize_line_simd(path, fmt, ec, qt.codes.data() + r * qt.cols, out.data + r * out.row_stride,
                                         headers, k0 * ru.unit, std::min(qt.cols, k1 * ru.unit), ru.unit, qt.tensor))
        ok.store(false);
    });
  });
  return ok.load();
}

}  // namespace detail

// Quantises into `qt`, reusing its buffers when they are large enough (an engine that
// quantises activations every step keeps one QuantizedTensor per tensor and pays for no
// allocation). Every field of qt is overwritten.
template <class F>
void quantize_into(const F& format, MatrixRef<const float> in, QuantizedTensor& qt, const QuantOptions& opt = {}) {
  const auto& fmt = format_of(format);
  in.validate("quantize");
  const BlockGrid grid = detail::make_grid(fmt, opt.blocking, in.rows, in.cols);
  qt.rows = in.rows;
  qt.cols = in.cols;
  qt.blocking = grid.blocking();
  qt.tensor = detail::tensor_pass(fmt, in, opt.threads);
  qt.codes.resize(static_cast<std::size_t>(in.rows * in.cols));
  qt.headers.resize(static_cast<std::size_t>(grid.count()));
  if (detail::quantize_simd(fmt, grid, in, qt, opt)) return;
  detail::for_each_block(grid, in, opt.threads, [&](std::int64_t g, const float* x, const std::uint64_t* idx,
                                                    std::size_t n, const std::int64_t* rc, detail::BlockScratch& sc) {
    qt.headers[static_cast<std::size_t>(g)] =
        fmt.quantize_block(x, idx, n, opt.rounding, opt.seed, qt.tensor, sc.codes.data());
    // blocks never share a value, so chunks write disjoint codes
    for (std::size_t i = 0; i < n; ++i) qt.codes[static_cast<std::size_t>(rc[2 * i] * in.cols + rc[2 * i + 1])] = sc.codes[i];
  });
}

template <class F>
QuantizedTensor quantize(const F& format, MatrixRef<const float> in, const QuantOptions& opt = {}) {
  QuantizedTensor qt;
  quantize_into(format, in, qt, opt);
  return qt;
}

template <class F>
void dequantize(const F& format, const QuantizedTensor& qt, MatrixRef<float> out) {
  const auto& fmt = format_of(format);
  out.validate("dequantize");
  detail::require(out.rows == qt.rows && out.cols == qt.cols, "dequantize", "output is ", out.rows, " x ", out.cols,
                  " but the quantized tensor is ", qt.rows, " x ", qt.cols);
  const BlockGrid grid(qt.blocking, qt.rows, qt.cols, qt.blocking.block);
  detail::require(static_cast<std::int64_t>(qt.headers.size()) == grid.count() &&
                      static_cast<std::int64_t>(qt.codes.size()) == qt.rows * qt.cols,
                  "dequantize", "quantized tensor is inconsistent: ", qt.headers.size(), " headers for ", grid.count(),
                  " blocks, ", qt.codes.size(), " codes for ", qt.rows * qt.cols, " values");
  if (detail::dequantize_simd(fmt, grid, qt, out)) return;
  const std::int64_t cap = grid.max_block_elements();
  parallel_for(grid.count(), detail::chunk_count(grid), 0, [&](std::int64_t g0, std::int64_t g1) {
    std::vector<std::uint32_t> codes(static_cast<std::size_t>(cap));
    std::vector<float> y(static_cast<std::size_t>(cap));
    std::vector<std::int64_t> rc(static_cast<std::size_t>(2 * cap));
    for (std::int64_t g = g0; g < g1; ++g) {
      std::size_t n = 0;
      grid.for_each(g, [&](std::int64_t r, std::int64_t c) {
        codes[n] = qt.codes[static_cast<std::size_t>(r * qt.cols + c)];
        rc[2 * n] = r;
        rc[2 * n + 1] = c;
        ++n;
      });
      fmt.dequantize_block(codes.data(), n, qt.headers[static_cast<std::size_t>(g)], qt.tensor, y.data());
      for (std::size_t i = 0; i < n; ++i) out(rc[2 * i], rc[2 * i + 1]) = y[i];
    }
  });
}

template <class F>
void fake_quant(const F& format, MatrixRef<const float> in, MatrixRef<float> out, const QuantOptions& opt = {}) {
  const auto& fmt = format_of(format);
  in.validate("fake_quant");
  out.validate("fake_quant");
  detail::require(out.rows == in.rows && out.cols == in.cols, "fake_quant", "output is ", out.rows, " x ", out.cols,
                  " but the input is ", in.rows, " x ", in.cols);
  const BlockGrid grid = detail::make_grid(fmt, opt.blocking, in.rows, in.cols);
  const TensorParams tp = detail::tensor_pass(fmt, in, opt.threads);
  if (detail::fake_quant_simd(fmt, grid, in, out, opt, tp)) return;
  detail::for_each_block(grid, in, opt.threads, [&](std::int64_t, const float* x, const std::uint64_t* idx,
                                                    std::size_t n, const std::int64_t* rc, detail::BlockScratch& sc) {
    const BlockHeader h = fmt.quantize_block(x, idx, n, opt.rounding, opt.seed, tp, sc.codes.data());
    fmt.dequantize_block(sc.codes.data(), n, h, tp, sc.y.data());
    for (std::size_t i = 0; i < n; ++i) out(rc[2 * i], rc[2 * i + 1]) = sc.y[i];
  });
}

// Contiguous 1-D data: one row.
template <class F>
void fake_quant(const F& format, std::span<const float> in, std::span<float> out, const QuantOptions& opt = {}) {
  detail::require(in.size() == out.size(), "fake_quant", "input has ", in.size(), " values, output ", out.size());
  fake_quant(format, MatrixRef<const float>::from_span(in), MatrixRef<float>::from_span(out), opt);
}

template <class F>
std::vector<float> fake_quant(const F& format, std::span<const float> in, const QuantOptions& opt = {}) {
  std::vector<float> out(in.size());
  fake_quant(format, in, std::span<float>(out), opt);
  return out;
}

}  // namespace lowbit
