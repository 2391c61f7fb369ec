// The two matmuls of attention with their operands fake-quantised, and their float reference.
//
//   scores  S [n x m] = Q [n x d] K^T      Q and K in blocks along d (the head size)
//   mix     O [n x d] = P [n x m] V [m x d]  P in blocks along m within each row, V in blocks
//                                            along m within each column (positions)
//
// Blocks always run along the reduction dimension, so one block scale multiplies a run of
// terms of the same dot product, as a block-scaled matmul unit computes it. A format's own
// block size applies; a block longer than the line is the whole line. Products accumulate in
// double and are rounded once. With no format (nullptr) the operands stay float.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit::nn {

namespace impl {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A dense row-major copy of `in`, fake-quantised in blocks along `axis` when fmt is set.
inline RowMatrixF quantized_operand(MatrixRef<const float> in, const Quantizer* fmt, int axis) {
  RowMatrixF out(in.rows, in.cols);
  const auto out_ref = MatrixRef<float>::row_major(out.data(), in.rows, in.cols);
  if (fmt != nullptr && in.size() > 0) {
    QuantOptions opt;
    opt.blocking = Blocking::along(axis);
    fmt->fake_quant(in, out_ref, opt);
  } else {
    for (std::int64_t r = 0; r < in.rows; ++r)
      for (std::int64_t c = 0; c < in.cols; ++c) out_ref(r, c) = in(r, c);
  }
  return out;
}

inline void write_product(const RowMatrixF& a, const RowMatrixF& b_t, MatrixRef<float> out) {
  // out(i, j) = sum_k a(i, k) * b_t(j, k), in double, in index order.
  for (std::int64_t i = 0; i < a.rows(); ++i)
    for (std::int64_t j = 0; j < b_t.rows(); ++j) {
      double acc = 0.0;
      for (std::int64_t k = 0; k < a.cols(); ++k) acc += static_cast<double>(a(i, k)) * static_cast<double>(b_t(j, k));
      out(i, j) = static_cast<float>(acc);
    }
}

}  // namespace impl

// S = Q K^T with Q and K fake-quantised in blocks along the head dimension.
inline void attention_scores(MatrixRef<const float> q, MatrixRef<const float> k, MatrixRef<float> s,
                             const Quantizer* fmt = nullptr) {
  detail::require(q.cols == k.cols && s.rows == q.rows && s.cols == k.rows, "attention_scores", "Q is ",
                            q.rows, " x ", q.cols, ", K is ", k.rows, " x ", k.cols, ", S is ", s.rows, " x ", s.cols);
  impl::write_product(impl::quantized_operand(q, fmt, 1), impl::quantized_operand(k, fmt, 1), s);
}

// O = P V with P fake-quantised in blocks along its rows and V along its columns (positions).
inline void attention_mix(MatrixRef<const float> p, MatrixRef<const float> v, MatrixRef<float> o,
                          const Quantizer* fmt = nullptr) {
  detail::require(p.cols == v.rows && o.rows == p.rows && o.cols == v.cols, "attention_mix", "P is ",
                            p.rows, " x ", p.cols, ", V is ", v.rows, " x ", v.cols, ", O is ", o.rows, " x ", o.cols);
  const impl::RowMatrixF vq = impl::quantized_operand(v, fmt, 0);
  const impl::RowMatrixF vt = vq.transpose();
  impl::write_product(impl::quantized_operand(p, fmt, 1), vt, o);
}

// The float reference of both (Eigen, float arithmetic).
inline void attention_scores_reference(MatrixRef<const float> q, MatrixRef<const float> k, MatrixRef<float> s) {
  using Map = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
  detail::require(q.col_stride == 1 && k.col_stride == 1 && q.cols == k.cols, "attention_scores_reference",
                            "needs row-contiguous Q and K of the same width");
  const impl::RowMatrixF r = Map(q.data, q.rows, q.cols, Eigen::OuterStride<>(q.row_stride)) *
                               Map(k.data, k.rows, k.cols, Eigen::OuterStride<>(k.row_stride)).transpose();
  for (std::int64_t i = 0; i < s.rows; ++i)
    for (std::int64_t j = 0; j < s.cols; ++j) s(i, j) = r(i, j);
}

inline void attention_mix_reference(MatrixRef<const float> p, MatrixRef<const float> v, MatrixRef<float> o) {
  using Map = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
  detail::require(p.col_stride == 1 && v.col_stride == 1 && p.cols == v.rows, "attention_mix_reference",
                            "needs row-contiguous P and V with P's columns equal to V's rows");
  const impl::RowMatrixF r = Map(p.data, p.rows, p.cols, Eigen::OuterStride<>(p.row_stride)) *
                               Map(v.data, v.rows, v.cols, Eigen::OuterStride<>(v.row_stride));
  for (std::int64_t i = 0; i < o.rows; ++i)
    for (std::int64_t j = 0; j < o.cols; ++j) o(i, j) = r(i, j);
}

}  // namespace lowbit::nn
