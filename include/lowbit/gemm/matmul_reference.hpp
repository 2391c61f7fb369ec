// The packed matmul's reference path: Y[N x M] = X[N x K] * W^T (+ bias) with W a
// PackedMatrix in any format, in two modes:
//   weight-only      X stays float; W is decoded one row at a time (never a full float copy)
//   weight + act     X is fake-quantised per block along K in an activation format first
//                    (the values the quantised-activation kernels multiply)
// Every output is a dot product accumulated in double in index order and rounded once to
// float, with the bias added before the rounding: the most accurate order, the same for any
// thread count. This is the reference the SIMD kernels are held against (within the bound of
// their float or integer accumulation), not the fast path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/core/parallel.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit {

struct MatmulOptions {
  // Activation format (blocks along K); empty: weight-only (X stays float).
  std::optional<Quantizer> activation{};
  Rounding activation_rounding = Rounding::NearestEven;
  std::uint64_t seed = 0;
  int threads = 0;  // 0: lowbit's default; results never depend on it
};

namespace detail {

template <class T>
void check_matmul_shapes(MatrixRef<const T> x, std::int64_t m, std::int64_t k, std::span<const float> bias,
                                MatrixRef<float> y) {
  const char* where = "matmul";
  x.validate(where);
  y.validate(where);
  require(x.cols == k, where, "X is ", x.rows, " x ", x.cols, " but W is ", m, " x ", k, " (X's columns must equal W's)");
  require(y.rows == x.rows && y.cols == m, where, "Y is ", y.rows, " x ", y.cols, ", expected ", x.rows, " x ", m);
  require(bias.empty() || static_cast<std::int64_t>(bias.size()) == m, where, "bias has ", bias.size(),
          " values, expected ", m, " (one per output) or none");
}

// How every matmul path quantises X: blocks along K, the options' rounding, seed and threads.
inline QuantOptions activation_quant_options(const MatmulOptions& opt) {
  QuantOptions q;
  q.rounding = opt.activation_rounding;
  q.seed = opt.seed;
  q.threads = opt.threads;
  q.blocking = Blocking::along(1);
  return q;
}

}  // namespace detail

// Y = X * W^T + bias on the reference path (see the top of this file).
template <class F>
void matmul_reference(MatrixRef<const float> x, const PackedMatrix<F>& w, std::span<const float> bias, MatrixRef<float> y,
                      const MatmulOptions& opt = {}) {
  const std::int64_t n = x.rows, m = w.rows(), k = w.cols();
  detail::check_matmul_shapes(x, m, k, bias, y);
  // Activations: contiguous float rows, fake-quantised when an activation format is set.
  std::vector<float> xa(static_cast<std::size_t>(n * k));
  const auto xa_ref = MatrixRef<float>::row_major(xa.data(), n, k);
  if (opt.activation) {
    opt.activation->fake_quant(x, xa_ref, detail::activation_quant_options(opt));
  } else {
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t c = 0; c < k; ++c) xa_ref(r, c) = x(r, c);
  }
  // Output features split over threads; each decodes its rows of W once and serves all of X.
  const std::int64_t chunks = std::clamp<std::int64_t>(m * k / (1 << 16), 1, std::max<std::int64_t>(m, 1));
  parallel_for(m, chunks, opt.threads, [&](std::int64_t m0, std::int64_t m1) {
    typename PackedMatrix<F>::RowDecoder dec(w);
    std::vector<float> wrow(static_cast<std::size_t>(k));
    for (std::int64_t j = m0; j < m1; ++j) {
      dec.decode(j, wrow.data());
      const double b = bias.empty() ? 0.0 : static_cast<double>(bias[static_cast<std::size_t>(j)]);
      for (std::int64_t i = 0; i < n; ++i) {
        const float* xr = xa.data() + i * k;
        double acc = 0.0;
        for (std::int64_t c = 0; c < k; ++c) acc += static_cast<double>(xr[c]) * static_cast<double>(wrow[static_cast<std::size_t>(c)]);
        y(i, j) = static_cast<float>(acc + b);
      }
    }
  });
}

}  // namespace lowbit
