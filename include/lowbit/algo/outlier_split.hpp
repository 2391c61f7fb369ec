// Dense-and-sparse outlier split (LLM.int8(); SpQR and SqueezeLLM): a few weights stay in
// float in a sparse side matrix and the rest is quantised. Two ways to choose them:
//
//   channels   the k input channels with the largest score (normally max|X_j| on
//              calibration inputs, the activation outliers of LLM.int8()): their whole weight
//              columns go to the side matrix and those inputs skip the activation format
//   threshold  every weight with |w| > t (SpQR's individual outliers)
//
// The quantised part is the weight with those entries zeroed; QuantLinear adds the side
// matrix in float (nn/quant_linear.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/quant_linear.hpp"

namespace lowbit::algo {

struct OutlierSplit {
  std::int64_t rows = 0, cols = 0;
  std::vector<float> dense;   // [rows x cols], the part to quantise
  nn::SparseWeights sparse;   // the part kept in float
  MatrixRef<const float> dense_matrix() const { return MatrixRef<const float>::row_major(dense.data(), rows, cols); }
};

// The k input channels of highest score (ties: the lower index), ascending.
inline std::vector<std::int32_t> top_channels(std::span<const float> score, std::int64_t k) {
  detail::require(k >= 0, "top_channels", "k must be >= 0, got ", k);
  std::vector<std::int32_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(k), idx.size());
  std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) {
    return score[static_cast<std::size_t>(a)] > score[static_cast<std::size_t>(b)];
  });
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  return idx;
}

inline OutlierSplit split_channels(MatrixRef<const float> w, std::span<const std::int32_t> channels) {
  w.validate("split_channels");
  OutlierSplit out;
  out.rows = w.rows;
  out.cols = w.cols;
  out.dense.resize(static_cast<std::size_t>(w.rows * w.cols));
  std::vector<float> side(out.dense.size(), 0.0f);
  std::vector<char> keep(static_cast<std::size_t>(w.cols), 0);
  for (const std::int32_t c : channels) {
    detail::require(c >= 0 && c < w.cols, "split_channels", "channel ", c, " is outside ", w.cols, " inputs");
    keep[static_cast<std::size_t>(c)] = 1;
  }
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const auto i = static_cast<std::size_t>(r * w.cols + c);
      (keep[static_cast<std::size_t>(c)] ? side[i] : out.dense[i]) = w(r, c);
    }
  out.sparse = nn::SparseWeights::from_dense(MatrixRef<const float>::row_major(side.data(), w.rows, w.cols),
                                             std::vector<std::int32_t>(channels.begin(), channels.end()));
  return out;
}

inline OutlierSplit split_threshold(MatrixRef<const float> w, float threshold) {
  w.validate("split_threshold");
  OutlierSplit out;
  out.rows = w.rows;
  out.cols = w.cols;
  out.dense.resize(static_cast<std::size_t>(w.rows * w.cols));
  std::vector<float> side(out.dense.size(), 0.0f);
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const auto i = static_cast<std::size_t>(r * w.cols + c);
      (std::fabs(w(r, c)) > threshold ? side[i] : out.dense[i]) = w(r, c);
    }
  out.sparse = nn::SparseWeights::from_dense(MatrixRef<const float>::row_major(side.data(), w.rows, w.cols));
  return out;
}

// The layer: the dense part in `weight_format` by round-to-nearest, the side matrix in float.
inline nn::QuantLinear split_linear(std::string_view weight_format, const OutlierSplit& s, std::span<const float> bias = {}) {
  nn::QuantLinear l = nn::QuantLinear::from_name(weight_format, s.dense_matrix(), bias);
  if (s.sparse.nonzeros() > 0 || !s.sparse.float_inputs.empty()) l.set_sparse(s.sparse);
  return l;
}

}  // namespace lowbit::algo
