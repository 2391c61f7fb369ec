// AWQ (Lin et al., 2023): activation-aware weight quantisation. Input channels that carry
// large activations matter most, so their weight columns are scaled up before rounding (and
// the inputs down, folded into the previous operation): s_j = mean|X_j|^a, normalised to
// a geometric middle of 1 as in the paper's code, with a chosen by a grid search over
// {0, 1/n, ..., (n-1)/n} minimising the layer's output error on calibration inputs,
// sum over the layers reading the input of ||X W^T - layer(W s)(X / s)||^2. a = 0 gives s = 1,
// round-to-nearest itself, so the search never does worse than RTN on its own inputs.
//
// The layer is whatever make_layer builds from a weight (any lowbit format, with or without
// an activation format), so the search sees exactly the arithmetic the model will run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/llama_fold.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/llama_checkpoint.hpp"
#include "lowbit/nn/quant_linear.hpp"

namespace lowbit::algo {

struct AwqOptions {
  int grid = 20;                  // a in {0, 1/grid, ..., (grid-1)/grid}
  std::int64_t max_rows = 512;    // calibration rows the error is measured on (evenly spaced)
};

struct AwqResult {
  double alpha = 0.0;
  std::vector<float> scales;  // s, one per input channel
  double error = 0.0;         // output error at alpha (per calibration row)
  double rtn_error = 0.0;     // the same at a = 0 (round-to-nearest)
};

// s_j = m_j^a over channels with m_j > 0 (others 1), divided by sqrt(max s * min s).
inline std::vector<float> awq_scales(std::span<const float> absmean, double alpha) {
  std::vector<double> s(absmean.size(), 1.0);
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (std::size_t j = 0; j < s.size(); ++j) {
    if (absmean[j] > 0.0f) s[j] = std::pow(static_cast<double>(absmean[j]), alpha);
    lo = std::min(lo, s[j]);
    hi = std::max(hi, s[j]);
  }
  const double mid = s.empty() ? 1.0 : std::sqrt(hi * lo);
  std::vector<float> out(s.size());
  for (std::size_t j = 0; j < s.size(); ++j) out[j] = static_cast<float>(s[j] / mid);
  return out;
}

// Output error of the layers built from W * s on inputs X / s, against X W^T in double.
template <class MakeLayer>
double scaled_layer_error(MatrixRef<const float> x, std::span<const MatrixRef<const float>> weights, std::span<const float> s,
                          MakeLayer&& make_layer) {
  std::vector<float> xs(static_cast<std::size_t>(x.rows * x.cols));
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) xs[static_cast<std::size_t>(r * x.cols + c)] = x(r, c) / s[static_cast<std::size_t>(c)];
  double err = 0.0;
  for (const MatrixRef<const float>& w : weights) {
    std::vector<float> ws(static_cast<std::size_t>(w.rows * w.cols));
    for (std::int64_t r = 0; r < w.rows; ++r)
      for (std::int64_t c = 0; c < w.cols; ++c) ws[static_cast<std::size_t>(r * w.cols + c)] = w(r, c) * s[static_cast<std::size_t>(c)];
    const nn::QuantLinear layer = make_layer(MatrixRef<const float>::row_major(ws.data(), w.rows, w.cols));
    std::vector<float> y(static_cast<std::size_t>(x.rows * w.rows));
    layer.forward(MatrixRef<const float>::row_major(xs.data(), x.rows, x.cols),
                  MatrixRef<float>::row_major(y.data(), x.rows, w.rows));
    for (std::int64_t t = 0; t < x.rows; ++t)
      for (std::int64_t o = 0; o < w.rows; ++o) {
        double ref = 0.0;
        for (std::int64_t c = 0; c < x.cols; ++c) ref += static_cast<double>(x(t, c)) * static_cast<double>(w(o, c));
        const double d = static_cast<double>(y[static_cast<std::size_t>(t * w.rows + o)]) - ref;
        err += d * d;
      }
  }
  return x.rows > 0 ? err / static_cast<double>(x.rows) : 0.0;
}

// The grid search for the layers `weights` (all reading x). `absmean`: the statistic the
// scales come from (empty: mean|X_j| of x; pass a tied one when scales must be equal across
// channels).
template <class MakeLayer>
AwqResult awq_search(MatrixRef<const float> x, std::span<const MatrixRef<const float>> weights, MakeLayer&& make_layer,
                     const AwqOptions& opt = {}, std::span<const float> absmean = {}) {
  const char* where = "awq_search";
  x.validate(where);
  detail::require(opt.grid >= 1 && opt.max_rows >= 1, where, "grid and max_rows must be positive");
  for (const MatrixRef<const float>& w : weights)
    detail::require(w.cols == x.cols, where, "a weight reads ", w.cols, " inputs, the calibration has ", x.cols);
  std::vector<float> stat = absmean.empty() ? channel_absmean(x) : std::vector<float>(absmean.begin(), absmean.end());
  detail::require(static_cast<std::int64_t>(stat.size()) == x.cols, where, stat.size(), " channel statistics for ", x.cols,
                  " inputs");
  // Evenly spaced rows bound the cost of the search.
  std::vector<float> sub;
  MatrixRef<const float> xe = x;
  if (x.rows > opt.max_rows) {
    sub.resize(static_cast<std::size_t>(opt.max_rows * x.cols));
    for (std::int64_t i = 0; i < opt.max_rows; ++i) {
      const std::int64_t r = i * x.rows / opt.max_rows;
      for (std::int64_t c = 0; c < x.cols; ++c) sub[static_cast<std::size_t>(i * x.cols + c)] = x(r, c);
    }
    xe = MatrixRef<const float>::row_major(sub.data(), opt.max_rows, x.cols);
  }
  AwqResult best;
  best.error = std::numeric_limits<double>::infinity();
  for (int g = 0; g < opt.grid; ++g) {
    const double alpha = static_cast<double>(g) / static_cast<double>(opt.grid);
    std::vector<float> s = awq_scales(stat, alpha);
    const double err = scaled_layer_error(xe, weights, s, make_layer);
    if (g == 0) best.rtn_error = err;
    if (err < best.error) {
      best.error = err;
      best.alpha = alpha;
      best.scales = std::move(s);
    }
  }
  return best;
}

// The checkpoint with AWQ scales searched and folded for every block's four inputs.
// make_layer(layer, name, w) builds the quantised layer the model will use from a weight
// with outliers injected as the model injects them.
template <class MakeLayer>
nn::LlamaWeights awq_llama(const nn::LlamaWeights& w, const LlamaCalibration& cal, bool inject_outliers, MakeLayer&& make_layer,
                           const AwqOptions& opt = {}) {
  nn::LlamaWeights out = w;
  const nn::LlamaConfig& c = w.config;
  for (int l = 0; l < c.n_layers; ++l)
    for (const nn::LinearInput input : {nn::LinearInput::attention, nn::LinearInput::attention_output, nn::LinearInput::ffn,
                                        nn::LinearInput::ffn_hidden}) {
      const MatrixRef<const float> x = cal.inputs(l, input).matrix();
      std::vector<std::vector<float>> copies;
      std::vector<MatrixRef<const float>> ws;
      const std::vector<nn::LinearName> names = readers_of(input);
      for (const nn::LinearName name : names) {
        const MatrixRef<const float> m = weight_matrix(w, l, name);
        std::vector<float> v(static_cast<std::size_t>(m.rows * m.cols));
        for (std::int64_t r = 0; r < m.rows; ++r)
          for (std::int64_t k = 0; k < m.cols; ++k) v[static_cast<std::size_t>(r * m.cols + k)] = m(r, k) * injected_column_factor(inject_outliers, k);
        copies.push_back(std::move(v));
        ws.push_back(MatrixRef<const float>::row_major(copies.back().data(), m.rows, m.cols));
      }
      std::vector<float> stat = channel_absmean(x);
      if (input == nn::LinearInput::attention_output) tie_attention_output(c, stat);
      // One search per input: every layer reading it is built by its own maker.
      std::size_t which = 0;
      const auto maker = [&](MatrixRef<const float> m) {
        const nn::QuantLinear q = make_layer(l, names[which], m);
        which = (which + 1) % names.size();
        return q;
      };
      const AwqResult r = awq_search(x, ws, maker, opt, stat);
      fold_input_scales(out, l, input, r.scales);
    }
  return out;
}

}  // namespace lowbit::algo
