// The packed matmul: Y[N x M] = X[N x K] * W^T (+ bias).
//
//   W a PanelMatrix (4- and 8-bit formats: MXFP4, NVFP4, int4/int8 per block, MXINT8, BFP8/4,
//   NF4, MXFP8, fp8 ...): the panel kernels, scalar / AVX2 / AVX-512 (VNNI) chosen at run time.
//     weight-only (no activation format): weights are decoded in registers, one block of a
//       16-row panel at a time, and multiplied by float activations (float kernel).
//     weight + activation: X is quantised per block along K in the activation format. When
//       both formats' elements are integers times a power of two (int, MXINT, BFP, MXFP4,
//       NVFP4, MXFP6 E2M3 activations ...) the dot products run in int32 with one float
//       multiply-add per granule (integer kernel); otherwise the fake-quantised activations
//       go through the float kernel.
//   W a PackedMatrix of any other format: 64-row tiles of W are decoded to float (never the
//     whole matrix) and multiplied with Eigen.
//
// Every output is computed by one kernel call in one fixed order, so results do not depend on
// the thread count, and the SIMD paths equal the scalar path bit for bit
// (kernels/panel_scalar.hpp states the order). Against matmul_reference (exact dot products
// rounded once) the difference is float accumulation error only.
//
// X is fp32 or bf16 (core/bfloat16.hpp); bf16 is widened to fp32 exactly, so both give the
// same bits for the same values.
//
// Engines that run their own threads: prepare the activations once with
// prepare_activations(), then call matmul_rows() for disjoint row ranges of W (starting on a
// multiple of 16) from any threads.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/bfloat16.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/gemm/matmul_reference.hpp"
#include "lowbit/gemm/panel_matrix.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/kernels/panel_scalar.hpp"
#if defined(__x86_64__) || defined(__i386__)
#include "lowbit/kernels/panel_avx2.hpp"
#include "lowbit/kernels/panel_avx512.hpp"
#endif

namespace lowbit {

// X prepared for the panel kernels of one weight matrix (see the top of this file).
struct PanelActivations {
  bool integer = false;
  std::int64_t rows = 0, cols = 0, padded_cols = 0;
  std::vector<float> x;              // float kernel: rows x padded_cols (fake-quantised if a format is set)
  std::vector<float> x256;           // x times 2^8, or empty (kernels::FloatActArgs::x256)
  std::vector<std::int8_t> q;        // integer kernel: rows x padded_cols
  std::vector<float> scale;          // act_blocks x rows (kernels::IntActArgs)
  std::vector<std::int32_t> neg_sum128;  // granules x rows: -128 * sum(q)
  kernels::IntActArgs args{};

  kernels::IntActArgs int_args() const {
    kernels::IntActArgs a = args;
    a.q = q.data();
    a.scale = scale.data();
    a.neg_sum128 = neg_sum128.data();
    return a;
  }
  kernels::FloatActArgs float_args() const { return {x.data(), x256.empty() ? nullptr : x256.data()}; }
};

namespace detail {

// Quantises X into integer codes when the activation format allows the integer kernel with
// this weight; false otherwise (nothing written).
template <class WF>
bool prepare_int_activations(MatrixRef<const float> x, const PanelMatrix<WF>& w, const MatmulOptions& opt,
                             PanelActivations& act) {
  if (!opt.activation || !w.integer_elements()) return false;
  return std::visit(
      [&](const auto& f) -> bool {
        using F = std::decay_t<decltype(f)>;
        if constexpr (!is_block_format<F>) {
          return false;
        } else {
          if (f.scale.zero_point || f.element_bits() > 8 || f.block_size == kPerTensor) return false;
          const PanelCodeMap map = make_panel_code_map(f);
          if (!map.integer) return false;
          const std::int64_t k = x.cols, kp = w.padded_cols();
          const QuantOptions qopt = activation_quant_options(opt);
          const BlockGrid grid = make_grid(f, qopt.blocking, x.rows, k);
          const std::int64_t bx_raw = f.has_scale() ? grid.blocking().block : k;
          const std::int64_t bx = (bx_raw <= 0 || bx_raw >= k) ? kp : bx_raw;
          const std::int64_t bw = w.block();
          if (bx % PanelMatrix<WF>::column_step(w.code_map().bits) != 0 && bx != kp) return false;
          const std::int64_t g = std::min(bw, bx);
          if (!((bw % g == 0 || bw >= kp) && (bx % g == 0 || bx >= kp))) return false;
          const std::int64_t nbx = f.has_scale() ? (k + bx_raw - 1) / std::max<std::int64_t>(bx_raw, 1) : 1;
          const std::int64_t act_blocks = (kp + bx - 1) / bx, granules = (kp + g - 1) / g;
          act.integer = true;
          act.q.assign(static_cast<std::size_t>(x.rows * kp), 0);
          act.scale.assign(static_cast<std::size_t>(x.rows * act_blocks), 0.0f);
          act.neg_sum128.assign(static_cast<std::size_t>(x.rows * granules), 0);
          std::vector<BlockHeader> headers(static_cast<std::size_t>(x.rows * nbx));
          TensorParams tp;
          // 8-bit two's complement codes are the int8 values: the SIMD kernel writes them into
          // the rows of act.q as it makes them. Otherwise (other codes, strided X, the scalar
          // path, a NaN the format refuses) codes come from quantize_into and the code map.
          bool direct = false;
          const SimdPath path = active_simd_path();
          const ElementRounding er = kernels::simd_rounding(f);
          const std::int64_t line_block = f.has_scale() ? bx_raw : std::max<std::int64_t>(k, 1);
          if (map.identity8 && codes_simd_applies(f, grid, x.col_stride, x.size()) &&
              kernels::quantize_packed_simd_applies(path, er, 8, line_block)) {
            const ElementCodes ec = element_codes(f);
            tp = tensor_pass(f, x, qopt.threads);
            std::atomic<bool> ok{true};
            parallel_for(x.rows, std::max<std::int64_t>(1, x.rows / 4), qopt.threads, [&](std::int64_t r0, std::int64_t r1) {
              kernels::PackedLines lines;
              lines.x = x.data + r0 * x.row_stride;
              lines.x_stride = x.row_stride;
              lines.out = reinterpret_cast<std::uint8_t*>(act.q.data() + r0 * kp);
              lines.out_stride = kp;
              lines.headers = headers.data() + r0 * nbx;
              lines.headers_stride = nbx;
              lines.index0 = static_cast<std::uint64_t>(r0 * k);
              lines.index_stride = static_cast<std::uint64_t>(k);
              lines.count = r1 - r0;
              lines.end = k;
              if (kernels::quantize_lines_packed_simd(path, f, er, ec, lines, 8, line_block, qopt.rounding, qopt.seed, tp,
                                                      [](std::int64_t) {}) != lines.count)
                ok.store(false);
            });
            direct = ok.load();
          }
          if (!direct) {
            QuantizedTensor qt;
            quantize_into(f, x, qt, qopt);
            tp = qt.tensor;
            for (std::int64_t r = 0; r < x.rows; ++r) {
              std::int8_t* q = act.q.data() + r * kp;
              for (std::int64_t c = 0; c < k; ++c) q[c] = map.ivalue[qt.codes[static_cast<std::size_t>(r * k + c)] & 0xFFu];
              for (std::int64_t c = k; c < kp; ++c) q[c] = 0;
            }
            if (f.has_scale()) std::copy(qt.headers.begin(), qt.headers.end(), headers.begin());
          }
          const float unit = std::ldexp(1.0f, -map.unit_exp);
          for (std::int64_t r = 0; r < x.rows; ++r) {
            const std::int8_t* q = act.q.data() + r * kp;
            for (std::int64_t b = 0; b < act_blocks; ++b) {
              const BlockHeader h = f.has_scale() ? headers[static_cast<std::size_t>(r * nbx + std::min(b, nbx - 1))]
                                                  : BlockHeader{};
              act.scale[static_cast<std::size_t>(b * x.rows + r)] = f.scale_value(h, tp) * unit;
            }
            for (std::int64_t gi = 0; gi < granules; ++gi) {
              std::int32_t s = 0;
              for (std::int64_t c = gi * g; c < std::min((gi + 1) * g, kp); ++c) s += q[c];
              act.neg_sum128[static_cast<std::size_t>(gi * x.rows + r)] = -128 * s;
            }
          }
          act.args.rows = x.rows;
          act.args.act_block = bx;
          act.args.act_blocks = act_blocks;
          act.args.granule = g;
          act.args.granules = granules;
          return true;
        }
      },
      opt.activation->format());
}

}  // namespace detail

namespace detail {

// Activations of nothing yet for an X of the given shape against w (whose K it must have).
template <class T, class WF>
PanelActivations empty_activations(MatrixRef<const T> x, const PanelMatrix<WF>& w) {
  x.validate("matmul");
  require(x.cols == w.cols(), "matmul", "X is ", x.rows, " x ", x.cols, " but W is ", w.rows(), " x ", w.cols(),
          " (X's columns must equal W's)");
  PanelActivations act;
  act.rows = x.rows;
  act.cols = x.cols;
  act.padded_cols = w.padded_cols();
  return act;
}

// X times 2^8 beside X (FloatActArgs::x256) for weights of E4M3 codes, at fewer rows than 8:
// there the float kernels decode the codes in their loops, and one multiply less per column
// took MXFP8 E4M3 at N = 1, one thread, from 21.3 to 24.5-24.8 GFLOP/s with W in cache on
// AVX-512 (1.08-1.09x from DRAM) and 1.18-1.20x on AVX2. From 8 rows on they decode a panel
// once for all the rows, into a tile, and gain nothing. Left empty if any 2^8 x overflows.
template <class WF>
void add_x256(const PanelMatrix<WF>& w, PanelActivations& act) {
  if (!w.code_map().fvalue_is_e4m3 || act.rows >= 8) return;
  act.x256.resize(act.x.size());
  for (std::size_t i = 0; i < act.x.size(); ++i) {
    act.x256[i] = act.x[i] * 256.0f;
    if (std::isinf(act.x256[i]) && !std::isinf(act.x[i])) return act.x256.clear();
  }
}

}  // namespace detail

// Quantises (or copies) X for the panel kernels of w.
template <class WF>
PanelActivations prepare_activations(MatrixRef<const float> x, const PanelMatrix<WF>& w, const MatmulOptions& opt = {}) {
  PanelActivations act = detail::empty_activations(x, w);
  if (detail::prepare_int_activations(x, w, opt, act)) return act;
  const std::int64_t k = x.cols, kp = w.padded_cols();
  act.x.assign(static_cast<std::size_t>(x.rows * kp), 0.0f);
  std::vector<float> fq;
  MatrixRef<const float> src = x;
  if (opt.activation) {
    fq.resize(static_cast<std::size_t>(x.rows * k));
    opt.activation->fake_quant(x, MatrixRef<float>::row_major(fq.data(), x.rows, k), detail::activation_quant_options(opt));
    src = MatrixRef<const float>::row_major(fq.data(), x.rows, k);
  }
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < k; ++c) act.x[static_cast<std::size_t>(r * kp + c)] = src(r, c);
  detail::add_x256(w, act);
  return act;
}

// bf16 activations: widened to float (exact), so the results are those of the widened X bit
// for bit. Weight-only, the rows are widened straight into the kernels' copy; with an
// activation format, into one float copy of X that the quantiser reads. The kernels themselves
// stay on float or int8 activations: the integer kernel already multiplies in int8, and the
// weight-only float kernel is limited by decoding weights, not by its FMAs.
template <class WF>
PanelActivations prepare_activations(MatrixRef<const bfloat16> x, const PanelMatrix<WF>& w, const MatmulOptions& opt = {}) {
  x.validate("matmul");
  if (opt.activation) {
    std::vector<float> xf(static_cast<std::size_t>(x.size()));
    widen_rows(x, xf.data(), x.cols);
    return prepare_activations(MatrixRef<const float>::row_major(xf.data(), x.rows, x.cols), w, opt);
  }
  PanelActivations act = detail::empty_activations(x, w);
  act.x.assign(static_cast<std::size_t>(x.rows * act.padded_cols), 0.0f);
  widen_rows(x, act.x.data(), act.padded_cols);
  detail::add_x256(w, act);
  return act;
}

namespace detail {

// Activation rows [n0, n0 + nr) times one panel; out.y is row n0's output.
inline void run_panel(SimdPath path, const kernels::PanelArgs& w, const PanelActivations& act, std::int64_t n0, int nr,
                      kernels::PanelOut out) {
#if defined(__x86_64__) || defined(__i386__)
  if (act.integer) {
    const kernels::IntActArgs a = act.int_args();
    if (path == SimdPath::AVX512 && cpu_has_avx512_vnni_vbmi()) return kernels::avx512::panel_int(w, a, n0, nr, out);
    if (path != SimdPath::Scalar && avx_vnni_active()) return kernels::avx2::panel_int_vnni(w, a, n0, nr, out);
    if (path != SimdPath::Scalar) return kernels::avx2::panel_int(w, a, n0, nr, out);
    return kernels::panel_int_scalar(w, a, n0, nr, out);
  }
  const kernels::FloatActArgs a = act.float_args();
  if (path == SimdPath::AVX512) return kernels::avx512::panel_float(w, a, n0, nr, out);
  if (path == SimdPath::AVX2) return kernels::avx2::panel_float(w, a, n0, nr, out);
  return kernels::panel_float_scalar(w, a, n0, nr, out);
#else
  (void)path;
  if (act.integer) return kernels::panel_int_scalar(w, act.int_args(), n0, nr, out);
  return kernels::panel_float_scalar(w, act.float_args(), n0, nr, out);
#endif
}

// Activation rows per pass over the panels: about 256 KiB of them (int8 or float), so that
// they stay in L2 while every panel of a thread's stretch goes by; a multiple of 8 (the
// kernels' row group). Float rows on the AVX-512 path take 1 MiB: its float kernel decodes a
// panel once per pass for all the rows, so more rows share each decode (64 rows at K = 4096:
// 1.15-1.3x over 16 at N = 512), and the cores with AVX-512 have 1-2 MiB of L2.
inline std::int64_t activation_tile_rows(const PanelActivations& act, SimdPath path) {
  const std::int64_t row_bytes = act.padded_cols * (act.integer ? 1 : 4);
  const std::int64_t bytes = (!act.integer && path == SimdPath::AVX512 ? 1024 : 256) << 10;
  return std::max<std::int64_t>(8, bytes / std::max<std::int64_t>(row_bytes, 1) / 8 * 8);
}

}  // namespace detail

// Rows [row_begin, row_end) of Y^T for activation rows [n_begin, n_end): Y(n_begin .. n_end,
// row_begin .. row_end) from prepared activations. row_begin must be a multiple of 16;
// row_end a multiple of 16 or W's row count. Any split of rows and activation rows gives the
// same bits.
template <class WF>
void matmul_rows(const PanelActivations& act, const PanelMatrix<WF>& w, std::span<const float> bias, MatrixRef<float> y,
                 std::int64_t row_begin, std::int64_t row_end, std::int64_t n_begin, std::int64_t n_end) {
  constexpr std::int64_t P = kernels::kPanelRows;
  detail::require(row_begin >= 0 && row_begin <= row_end && row_end <= w.rows() && row_begin % P == 0 &&
                      (row_end % P == 0 || row_end == w.rows()),
                  "matmul_rows", "row range [", row_begin, ", ", row_end, ") must lie in [0, ", w.rows(),
                  ") and start and end on multiples of ", P, " (or end at the last row)");
  detail::require(n_begin >= 0 && n_begin <= n_end && n_end <= act.rows, "matmul_rows", "activation rows [", n_begin,
                  ", ", n_end, ") must lie in [0, ", act.rows, "]");
  detail::require(act.padded_cols == w.padded_cols() && act.cols == w.cols(), "matmul_rows",
                  "the activations were prepared for K = ", act.cols, ", W has K = ", w.cols());
  detail::require(y.rows == act.rows && y.cols == w.rows(), "matmul_rows", "Y is ", y.rows, " x ", y.cols, ", expected ",
                  act.rows, " x ", w.rows());
  detail::require(bias.empty() || static_cast<std::int64_t>(bias.size()) == w.rows(), "matmul_rows", "bias has ",
                  bias.size(), " values, expected ", w.rows(), " (one per output) or none");
  if (n_begin == n_end || row_begin == row_end) return;
  const SimdPath path = active_simd_path();
  const std::int64_t tile_rows = std::min(detail::activation_tile_rows(act, path), n_end - n_begin);
  std::vector<float> tile(static_cast<std::size_t>(tile_rows * P));
  for (std::int64_t n0 = n_begin; n0 < n_end; n0 += tile_rows) {
    const std::int64_t nr = std::min(tile_rows, n_end - n0);
    for (std::int64_t p = row_begin / P; p * P < row_end; ++p) {
      const kernels::PanelArgs a = w.panel(p, act.integer);
      detail::run_panel(path, a, act, n0, static_cast<int>(nr), kernels::PanelOut{tile.data(), P});
      for (std::int64_t n = 0; n < nr; ++n)
        for (int i = 0; i < a.rows; ++i) {
          const std::int64_t j = p * P + i;
          const float v = tile[static_cast<std::size_t>(n * P + i)];
          y(n0 + n, j) = bias.empty() ? v : v + bias[static_cast<std::size_t>(j)];
        }
    }
  }
}

// All activation rows: the row-range entry point for an engine that runs the work on its own
// threads.
template <class WF>
void matmul_rows(const PanelActivations& act, const PanelMatrix<WF>& w, std::span<const float> bias, MatrixRef<float> y,
                 std::int64_t row_begin, std::int64_t row_end) {
  matmul_rows(act, w, bias, y, row_begin, row_end, 0, act.rows);
}

namespace detail {

// Y = X * W^T + bias from prepared activations, over lowbit's threads.
template <class WF>
void matmul_prepared(const PanelActivations& act, const PanelMatrix<WF>& w, std::span<const float> bias, MatrixRef<float> y,
                     const MatmulOptions& opt) {
  const std::int64_t n = act.rows;
  const std::int64_t panels = w.panels();
  const std::int64_t work = std::max<std::int64_t>(1, w.rows() * w.cols() * std::max<std::int64_t>(n, 1) / (1 << 18));
  // Few long runs of panels: each thread streams a contiguous stretch of W, which its
  // prefetches (8 KiB ahead) and the hardware's follow; panels dealt out one at a time sent
  // half of each thread's prefetches into the other thread's panels (two threads at N = 8:
  // 420 -> 570-670 GFLOP/s). One stretch per thread for matrix-vector products, two where
  // the arithmetic is the limit and the second evens out the finish.
  const int threads = opt.threads > 0 ? opt.threads : num_threads();
  const std::int64_t per_thread = n <= 4 ? 1 : 2;
  const std::int64_t chunks = std::min({panels, work, per_thread * threads});
  // Too few panels for the threads (a narrow W and a large batch): split the activation rows
  // too, in groups of 8.
  const std::int64_t n_parts =
      panels >= threads ? 1 : std::clamp<std::int64_t>((n + 7) / 8, 1, (threads + panels - 1) / panels);
  parallel_for(chunks * n_parts, chunks * n_parts, opt.threads, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t c = i / n_parts, part = i % n_parts;
      const std::int64_t p0 = panels * c / chunks, p1 = panels * (c + 1) / chunks;
      const std::int64_t groups = (n + 7) / 8;
      const std::int64_t n0 = std::min(n, 8 * (groups * part / n_parts)),
                         n1 = std::min(n, 8 * (groups * (part + 1) / n_parts));
      matmul_rows(act, w, bias, y, p0 * kernels::kPanelRows, std::min(p1 * kernels::kPanelRows, w.rows()), n0, n1);
    }
  });
}

}  // namespace detail

// Y = X * W^T + bias with W in the panel layout.
template <class WF>
void matmul(MatrixRef<const float> x, const PanelMatrix<WF>& w, std::span<const float> bias, MatrixRef<float> y,
            const MatmulOptions& opt = {}) {
  detail::check_matmul_shapes(x, w.rows(), w.cols(), bias, y);
  detail::matmul_prepared(prepare_activations(x, w, opt), w, bias, y, opt);
}

// The same with bf16 activations (see prepare_activations): the bits of the widened X.
template <class WF>
void matmul(MatrixRef<const bfloat16> x, const PanelMatrix<WF>& w, std::span<const float> bias, MatrixRef<float> y,
            const MatmulOptions& opt = {}) {
  detail::check_matmul_shapes(x, w.rows(), w.cols(), bias, y);
  detail::matmul_prepared(prepare_activations(x, w, opt), w, bias, y, opt);
}

// Y = X * W^T + bias with W in the row layout, any format: 64-row tiles of W decoded to float
// and multiplied with Eigen (float accumulation, batch-invariant).
template <class F>
void matmul(MatrixRef<const float> x, const PackedMatrix<F>& w, std::span<const float> bias, MatrixRef<float> y,
            const MatmulOptions& opt = {}) {
  const std::int64_t n = x.rows, m = w.rows(), k = w.cols();
  detail::check_matmul_shapes(x, m, k, bias, y);
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  RowMat xa(n, k);
  if (opt.activation) {
    opt.activation->fake_quant(x, MatrixRef<float>::row_major(xa.data(), n, k), detail::activation_quant_options(opt));
  } else {
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t c = 0; c < k; ++c) xa(r, c) = x(r, c);
  }
  constexpr std::int64_t T = 64;
  const std::int64_t tiles = (m + T - 1) / T;
  parallel_for(tiles, tiles, opt.threads, [&](std::int64_t t0, std::int64_t t1) {
    typename PackedMatrix<F>::RowDecoder dec(w);
    RowMat wt(T, k);
    RowMat yt(n, T);
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t r0 = t * T, rows = std::min(T, m - r0);
      for (std::int64_t r = 0; r < rows; ++r) dec.decode(r0 + r, wt.row(r).data());
      // One matrix-vector product per activation row: the same summation order whatever N
      // is, so a batch gives the bits of its rows computed one at a time.
      for (std::int64_t i = 0; i < n; ++i)
        yt.row(i).head(rows).noalias() = (wt.topRows(rows) * xa.row(i).transpose()).transpose();
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t r = 0; r < rows; ++r)
          y(i, r0 + r) = bias.empty() ? yt(i, r) : yt(i, r) + bias[static_cast<std::size_t>(r0 + r)];
    }
  });
}

// The same with bf16 activations: X widened to float (exact), then as above.
template <class F>
void matmul(MatrixRef<const bfloat16> x, const PackedMatrix<F>& w, std::span<const float> bias, MatrixRef<float> y,
            const MatmulOptions& opt = {}) {
  x.validate("matmul");
  std::vector<float> xf(static_cast<std::size_t>(x.size()));
  widen_rows(x, xf.data(), x.cols);
  matmul(MatrixRef<const float>::row_major(xf.data(), x.rows, x.cols), w, bias, y, opt);
}

}  // namespace lowbit
