// GPTQ (Frantar et al., ICLR 2023) for any lowbit block format with blocks along the input
// axis of a weight W [out x in].
//
// The columns of W are quantised one at a time; the error of each column is spread over the
// columns not yet quantised through the inverse Hessian of the layer's inputs,
// H = 2 X^T X / n + damping (X: n calibration inputs as rows; damping: a percentage of the
// mean diagonal). As in the paper the inverse is taken through Cholesky factors (Eigen), the
// updates are applied lazily in batches of columns, and columns may be visited in order of
// decreasing diag(H) (activation order).
//
// Block formats: the shared scale of a block (a row's run of B input columns) is chosen from
// the error-updated weights of that block at the moment its first column is visited, by the
// format's own scale rule (as GPTQ's group-wise mode); each column of the block is then
// rounded with that scale. Formats with one scale per tensor take it from the original W
// (stored as elements plus an output scale, as QuantLinear stores them); NVFP4's tensor
// scale likewise.
//
// The result holds codes and block headers, so packing is exact: packed() decodes to
// exactly `weight`. (Quantising `weight` again from scratch need not give it back: the scale
// rule sees the rounded block, not the updated one.)
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/formats/block_format.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/quantized_tensor.hpp"

namespace lowbit::algo {

struct GptqOptions {
  double damp_percent = 0.01;  // damping added to diag(H): this share of its mean
  std::int64_t batch = 128;    // columns per lazy update
  bool act_order = false;      // visit columns by decreasing diag(H)
};

// H = 2 X^T X / n in double, from n inputs of the layer (rows of x).
inline Eigen::MatrixXd input_hessian(MatrixRef<const float> x) {
  x.validate("input_hessian");
  Eigen::MatrixXd xs(x.rows, x.cols);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) xs(r, c) = x(r, c);
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(x.cols, x.cols);
  h.selfadjointView<Eigen::Lower>().rankUpdate(xs.transpose(), 2.0 / static_cast<double>(std::max<std::int64_t>(x.rows, 1)));
  return h.selfadjointView<Eigen::Lower>();
}

template <class E>
struct GptqResult {
  BlockFormat<E> format;            // the format of the codes (per-tensor formats: the elements alone)
  QuantizedTensor codes;            // blocks along the input axis
  std::optional<float> output_scale;  // per-tensor formats: the one tensor scale
  std::vector<float> weight;        // [out x in] row-major, the values the layer multiplies by

  PackedMatrix<BlockFormat<E>> packed() const { return PackedMatrix<BlockFormat<E>>::pack(format, codes); }
};

namespace internal {

// The code of x in a block whose header is already chosen (BlockFormat::quantize_block's
// arithmetic with the scale fixed), round to nearest even.
template <class E>
std::uint32_t code_with_header(const BlockFormat<E>& f, const BlockHeader& h, const TensorParams& tp, float x) {
  if (!f.has_scale()) return f.element.encode(static_cast<double>(x), Rounding::NearestEven);
  const float s = f.scale_value(h, tp);
  if (!(s > 0.0f)) return f.scale.zero_point ? h.zero_point : f.element.encode(0.0);
  const float y = x / s;
  if (f.scale.zero_point) {
    const FixedPointSpec wide{32, 0, IntRange::TwosComplement};
    const auto qmax = static_cast<std::int64_t>(f.element.max_value());
    return static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(wide.round_int(y, Rounding::NearestEven, 0) + h.zero_point, 0, qmax));
  }
  return f.element.encode(static_cast<double>(y), Rounding::NearestEven);
}

}  // namespace internal

// Quantises w [out x in] given the Hessian h [in x in] of its inputs.
template <class E>
GptqResult<E> gptq(const BlockFormat<E>& fmt, MatrixRef<const float> w, const Eigen::MatrixXd& h_in,
                   const GptqOptions& opt = {}) {
  const char* where = "gptq";
  w.validate(where);
  fmt.validate();
  const std::int64_t rows = w.rows, cols = w.cols;
  lowbit::detail::require(h_in.rows() == cols && h_in.cols() == cols, where, "Hessian is ", h_in.rows(), " x ", h_in.cols(),
                  " for a weight with ", cols, " inputs");
  lowbit::detail::require(opt.damp_percent >= 0.0 && opt.batch >= 1, where, "damping must be >= 0 and the batch >= 1");
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      lowbit::detail::require(std::isfinite(w(r, c)), where, "weight (", r, ", ", c, ") is not finite");

  GptqResult<E> res;
  res.format = fmt;
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> W(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) W(r, c) = w(r, c);

  // Per-tensor formats: the tensor scale from the original weight, then the elements alone.
  if (fmt.has_scale() && fmt.block_size == kPerTensor) {
    lowbit::detail::require(!fmt.scale.zero_point && !fmt.needs_tensor_pass(), where,
                    "per-tensor scales with a zero point or a second-level scale are not supported for weights");
    QuantOptions whole;
    whole.blocking = Blocking::per_tensor();
    const QuantizedTensor qt = quantize(fmt, w, whole);
    const float s = qt.headers.empty() ? 1.0f : fmt.scale_value(qt.headers[0], qt.tensor);
    res.output_scale = s > 0.0f ? s : 0.0f;
    res.format = BlockFormat<E>{fmt.element, kNoScale, 1};
    W = s > 0.0f ? (W / s).eval() : decltype(W)::Zero(rows, cols);
  }
  const BlockFormat<E>& f = res.format;
  const std::int64_t group = !f.has_scale() ? 1 : (f.block_size == kPerChannel ? std::max<std::int64_t>(cols, 1) : f.block_size);
  const std::int64_t groups = cols == 0 ? 0 : (cols + group - 1) / group;
  QuantizedTensor& qt = res.codes;
  qt.rows = rows;
  qt.cols = cols;
  qt.blocking = Blocking::along(1, group);
  qt.tensor = lowbit::detail::tensor_pass(f, MatrixRef<const float>::row_major(W.data(), rows, cols));
  qt.codes.assign(static_cast<std::size_t>(rows * cols), 0);
  qt.headers.assign(static_cast<std::size_t>(rows * groups), BlockHeader{});

  // Inputs that never fire carry no information: their weights are zeroed (as in the paper).
  Eigen::MatrixXd H = h_in;
  for (std::int64_t c = 0; c < cols; ++c)
    if (H(c, c) == 0.0) {
      H(c, c) = 1.0;
      W.col(c).setZero();
    }
  std::vector<std::int64_t> perm(static_cast<std::size_t>(cols));
  std::iota(perm.begin(), perm.end(), 0);
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return H(a, a) > H(b, b); });
  std::vector<std::int64_t> pos(static_cast<std::size_t>(cols));  // position of column c in the visit order
  for (std::int64_t i = 0; i < cols; ++i) pos[static_cast<std::size_t>(perm[static_cast<std::size_t>(i)])] = i;

  // Visit order: permuted copies of W and H.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor> Wp(rows, cols);
  Eigen::MatrixXd Hp(cols, cols);
  for (std::int64_t i = 0; i < cols; ++i) {
    Wp.col(i) = W.col(perm[static_cast<std::size_t>(i)]);
    for (std::int64_t j = 0; j < cols; ++j) Hp(i, j) = H(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
  }
  const double damp = opt.damp_percent * (cols > 0 ? Hp.diagonal().mean() : 0.0);
  Hp.diagonal().array() += damp;
  // U upper triangular with H^-1 = U^T U: row i of U holds the updates column i sends onward.
  // With J the order reversal, J H J = L L^T gives H^-1 = (J L^-1 J)^T (J L^-1 J), and J L^-1 J
  // is upper triangular: one Cholesky factorisation and one triangular inverse.
  Eigen::LLT<Eigen::MatrixXd> llt(Hp.reverse().eval());
  lowbit::detail::require(llt.info() == Eigen::Success, where, "the damped Hessian is not positive definite (raise damp_percent)");
  // L^-1 is lower triangular: each panel of its columns is solved on the rows at and below
  // the panel only (a third of the work of a full solve).
  const Eigen::MatrixXd L = llt.matrixL();
  Eigen::MatrixXd linv = Eigen::MatrixXd::Zero(cols, cols);
  constexpr std::int64_t kPanel = 256;
  for (std::int64_t j0 = 0; j0 < cols; j0 += kPanel) {
    const std::int64_t bs = std::min(kPanel, cols - j0), m = cols - j0;
    Eigen::MatrixXd x = Eigen::MatrixXd::Identity(m, bs);
    L.bottomRightCorner(m, m).triangularView<Eigen::Lower>().solveInPlace(x);
    linv.block(j0, j0, m, bs) = x;
  }
  const Eigen::MatrixXf U = linv.reverse().cast<float>();

  std::vector<char> group_ready(static_cast<std::size_t>(groups), 0);
  std::vector<float> gvals(static_cast<std::size_t>(group));
  std::vector<std::uint64_t> gindex(static_cast<std::size_t>(group));
  std::vector<std::uint32_t> gcodes(static_cast<std::size_t>(group));
  Eigen::MatrixXf Err(rows, std::min<std::int64_t>(opt.batch, std::max<std::int64_t>(cols, 1)));
  for (std::int64_t i1 = 0; i1 < cols; i1 += opt.batch) {
    const std::int64_t i2 = std::min(cols, i1 + opt.batch), count = i2 - i1;
    for (std::int64_t i = i1; i < i2; ++i) {
      const std::int64_t c = perm[static_cast<std::size_t>(i)];
      const std::int64_t g = c / group;
      if (f.has_scale() && !group_ready[static_cast<std::size_t>(g)]) {
        // The block's headers from its current (error-updated) weights. Columns past this
        // batch have not had this batch's lazy update yet: add it for them here.
        const std::int64_t c0 = g * group, c1 = std::min(cols, c0 + group);
        for (std::int64_t r = 0; r < rows; ++r) {
          for (std::int64_t cc = c0; cc < c1; ++cc) {
            const std::int64_t p = pos[static_cast<std::size_t>(cc)];
            float v = Wp(r, p);
            if (p >= i2 && i > i1) v -= Err.row(r).head(i - i1).dot(U.block(i1, p, i - i1, 1).col(0).transpose());
            gvals[static_cast<std::size_t>(cc - c0)] = v;
            gindex[static_cast<std::size_t>(cc - c0)] = static_cast<std::uint64_t>(r * cols + cc);
          }
          qt.headers[static_cast<std::size_t>(r * groups + g)] =
              f.quantize_block(gvals.data(), gindex.data(), static_cast<std::size_t>(c1 - c0), Rounding::NearestEven, 0,
                               qt.tensor, gcodes.data());
        }
        group_ready[static_cast<std::size_t>(g)] = 1;
      }
      const float d = U(i, i);
      for (std::int64_t r = 0; r < rows; ++r) {
        const float x = Wp(r, i);
        const BlockHeader& hd = qt.headers[static_cast<std::size_t>(f.has_scale() ? r * groups + g : 0)];
        const std::uint32_t code = internal::code_with_header(f, hd, qt.tensor, x);
        qt.codes[static_cast<std::size_t>(r * cols + c)] = code;
        float q = 0.0f;
        f.dequantize_block(&code, 1, hd, qt.tensor, &q);
        Err(r, i - i1) = (x - q) / d;
      }
      // Within the batch the update is immediate.
      if (i + 1 < i2) Wp.middleCols(i + 1, i2 - i - 1).noalias() -= Err.col(i - i1) * U.row(i).segment(i + 1, i2 - i - 1);
    }
    if (i2 < cols)
      Wp.rightCols(cols - i2).noalias() -= Err.leftCols(count) * U.block(i1, i2, count, cols - i2);
  }

  res.weight.assign(static_cast<std::size_t>(rows * cols), 0.0f);
  dequantize(f, qt, MatrixRef<float>::row_major(res.weight.data(), rows, cols));
  if (res.output_scale)
    for (float& v : res.weight) v *= *res.output_scale;
  return res;
}

// From the layer's calibration inputs x [n x in].
template <class E>
GptqResult<E> gptq(const BlockFormat<E>& fmt, MatrixRef<const float> w, MatrixRef<const float> x, const GptqOptions& opt = {}) {
  lowbit::detail::require(x.cols == w.cols, "gptq", "inputs have ", x.cols, " channels, the weight ", w.cols);
  return gptq(fmt, w, input_hessian(x), opt);
}

}  // namespace lowbit::algo
