// SmoothQuant (Xiao et al., ICML 2023): activation outliers moved into the weights by
// per-input-channel factors s_j = max|X_j|^a / max|W_j|^(1-a) (W_j: column j of every layer
// reading the input), x / s and W * s computing the same product. The division is folded into
// the operation producing x (for LLaMA the RMSNorm gain, see llama_fold.hpp), so it costs
// nothing at run time. a = 0.5 balances the two: max|X_j / s_j| = max|W_j s_j|.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/llama_fold.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/llama_checkpoint.hpp"

namespace lowbit::algo {

// Largest |w| of each input channel over all the given weights [out x in].
inline std::vector<float> weight_column_absmax(std::span<const MatrixRef<const float>> weights) {
  detail::require(!weights.empty(), "weight_column_absmax", "no weights");
  std::vector<float> m(static_cast<std::size_t>(weights[0].cols), 0.0f);
  for (const MatrixRef<const float>& w : weights) {
    detail::require(w.cols == weights[0].cols, "weight_column_absmax", "weights read ", w.cols, " and ", weights[0].cols,
                    " inputs");
    for (std::int64_t r = 0; r < w.rows; ++r)
      for (std::int64_t c = 0; c < w.cols; ++c) m[static_cast<std::size_t>(c)] = std::max(m[static_cast<std::size_t>(c)], std::fabs(w(r, c)));
  }
  return m;
}

// s_j = act_j^a / weight_j^(1-a) from the channels' absolute maxima; a channel with a zero
// statistic keeps s = 1 (nothing to balance). s is clamped below at 1e-5, as in the paper's code.
inline std::vector<float> smoothing_factors(std::span<const float> act_absmax, std::span<const float> weight_absmax,
                                            double alpha) {
  detail::require(act_absmax.size() == weight_absmax.size(), "smoothing_factors", act_absmax.size(),
                  " activation channels, ", weight_absmax.size(), " weight channels");
  detail::require(alpha >= 0.0 && alpha <= 1.0, "smoothing_factors", "alpha must be in [0, 1], got ", alpha);
  std::vector<float> s(act_absmax.size(), 1.0f);
  for (std::size_t j = 0; j < s.size(); ++j) {
    const double a = act_absmax[j], w = weight_absmax[j];
    if (!(a > 0.0) || !(w > 0.0)) continue;
    s[j] = static_cast<float>(std::max(std::pow(a, alpha) / std::pow(w, 1.0 - alpha), 1e-5));
  }
  return s;
}

// x / s, column by column (what the folded model feeds the layer).
inline void divide_columns(MatrixRef<float> x, std::span<const float> s) {
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) x(r, c) /= s[static_cast<std::size_t>(c)];
}
inline void multiply_columns(MatrixRef<float> w, std::span<const float> s) {
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) w(r, c) *= s[static_cast<std::size_t>(c)];
}

// The checkpoint with SmoothQuant factors (from the calibration inputs of a model run with
// the same outlier injection) folded into every block's four inputs.
inline nn::LlamaWeights smooth_llama(const nn::LlamaWeights& w, const LlamaCalibration& cal, double alpha,
                                     bool inject_outliers) {
  nn::LlamaWeights out = w;
  const nn::LlamaConfig& c = w.config;
  for (int l = 0; l < c.n_layers; ++l)
    for (const nn::LinearInput input : {nn::LinearInput::attention, nn::LinearInput::attention_output, nn::LinearInput::ffn,
                                        nn::LinearInput::ffn_hidden}) {
      std::vector<MatrixRef<const float>> ws;
      for (const nn::LinearName name : readers_of(input)) ws.push_back(weight_matrix(w, l, name));
      std::vector<float> wmax = weight_column_absmax(ws);
      for (std::size_t k = 0; k < wmax.size(); ++k) wmax[k] *= injected_column_factor(inject_outliers, static_cast<std::int64_t>(k));
      std::vector<float> amax = channel_absmax(cal.inputs(l, input).matrix());
      if (input == nn::LinearInput::attention_output) {
        tie_attention_output(c, amax);
        tie_attention_output(c, wmax);
      }
      const std::vector<float> s = smoothing_factors(amax, wmax, alpha);
      fold_input_scales(out, l, input, s);
    }
  return out;
}

}  // namespace lowbit::algo
