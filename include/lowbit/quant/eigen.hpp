// Eigen adapters: the fake-quant core on Eigen dense objects with direct access (Matrix,
// Map, Ref, blocks, rows, columns), row- or column-major, any inner and outer stride.
//
// as_matrix_ref(m) is the view the core works on; the rest forwards to it. The logical
// (row, column) indexing is kept, so blocking and stochastic rounding see the same tensor
// whatever the storage order: a row-major copy, a column-major copy and a strided view of
// one matrix quantise identically.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <type_traits>

#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/quantized_tensor.hpp"

namespace lowbit {

namespace detail {

// Deduction succeeds only for Eigen dense expressions; nothing else gets DenseBase<T>
// instantiated (which would be a hard error, not a failed constraint).
template <class D>
void eigen_dense_probe(const Eigen::DenseBase<D>&);

// A float Eigen expression whose coefficients live in memory at data() + strides.
template <class D>
concept EigenDirectFloat = requires(const D& d) { eigen_dense_probe(d); } &&
                           std::is_same_v<typename D::Scalar, float> &&
                           (static_cast<unsigned>(D::Flags) & Eigen::DirectAccessBit) != 0;

// ... which can also be written through.
template <class D>
concept EigenWritableFloat = EigenDirectFloat<D> && (static_cast<unsigned>(D::Flags) & Eigen::LvalueBit) != 0;

}  // namespace detail

// A read-only view of an Eigen object. For vector expressions Eigen reports the step
// between consecutive coefficients as the inner stride, which this mapping respects.
template <class D>
  requires detail::EigenDirectFloat<D>
MatrixRef<const float> as_matrix_ref(const Eigen::DenseBase<D>& m) {
  const D& d = m.derived();
  const std::int64_t inner = d.innerStride(), outer = d.outerStride();
  if constexpr (D::IsRowMajor) return {d.data(), d.rows(), d.cols(), outer, inner};
  else return {d.data(), d.rows(), d.cols(), inner, outer};
}

// A writable view. Takes temporaries too (m.block(...), m.col(j), Map objects), like the
// Eigen idiom for output arguments.
template <class Out>
  requires detail::EigenWritableFloat<std::remove_cvref_t<Out>>
MatrixRef<float> as_mutable_matrix_ref(Out&& m) {
  auto& d = const_cast<std::remove_cvref_t<Out>&>(m);
  const std::int64_t inner = d.innerStride(), outer = d.outerStride();
  if constexpr (std::remove_cvref_t<Out>::IsRowMajor) return {d.data(), d.rows(), d.cols(), outer, inner};
  else return {d.data(), d.rows(), d.cols(), inner, outer};
}

// fake_quant(fmt, in, out): out may be in itself (in place), a block, a Map or a Ref.
template <class F, class In, class Out>
  requires detail::EigenDirectFloat<In> && detail::EigenWritableFloat<std::remove_cvref_t<Out>>
void fake_quant(const F& format, const Eigen::DenseBase<In>& in, Out&& out, const QuantOptions& opt = {}) {
  fake_quant(format, as_matrix_ref(in), as_mutable_matrix_ref(std::forward<Out>(out)), opt);
}

// The fake-quantised copy, in the input's storage order.
template <class F, class In>
  requires detail::EigenDirectFloat<In>
typename In::PlainObject fake_quant(const F& format, const Eigen::DenseBase<In>& in, const QuantOptions& opt = {}) {
  typename In::PlainObject out(in.rows(), in.cols());
  fake_quant(format, as_matrix_ref(in), as_mutable_matrix_ref(out), opt);
  return out;
}

template <class F, class In>
  requires detail::EigenDirectFloat<In>
QuantizedTensor quantize(const F& format, const Eigen::DenseBase<In>& in, const QuantOptions& opt = {}) {
  return quantize(format, as_matrix_ref(in), opt);
}

template <class F, class Out>
  requires detail::EigenWritableFloat<std::remove_cvref_t<Out>>
void dequantize(const F& format, const QuantizedTensor& qt, Out&& out) {
  dequantize(format, qt, as_mutable_matrix_ref(std::forward<Out>(out)));
}

// The dequantised tensor as a new column-major matrix.
template <class F>
Eigen::MatrixXf dequantize_matrix(const F& format, const QuantizedTensor& qt) {
  Eigen::MatrixXf out(qt.rows, qt.cols);
  dequantize(format, qt, as_mutable_matrix_ref(out));
  return out;
}

}  // namespace lowbit
