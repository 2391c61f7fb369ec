// Calibration data for post-training quantisation: the inputs of every linear layer of a
// LLaMA model, collected by running the model (normally the float one) over calibration
// stories, each from position 0 as the evaluation runs them.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/llama_model.hpp"

namespace lowbit::algo {

// Rows of inputs to one layer (or to the layers that share that input).
struct LayerInputs {
  std::int64_t cols = 0;
  std::vector<float> values;  // row-major, rows() x cols

  std::int64_t rows() const { return cols > 0 ? static_cast<std::int64_t>(values.size()) / cols : 0; }
  MatrixRef<const float> matrix() const { return MatrixRef<const float>::row_major(values.data(), rows(), cols); }
};

// Per-input-channel statistics of a set of inputs.
inline std::vector<float> channel_absmax(MatrixRef<const float> x) {
  std::vector<float> m(static_cast<std::size_t>(x.cols), 0.0f);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) m[static_cast<std::size_t>(c)] = std::max(m[static_cast<std::size_t>(c)], std::fabs(x(r, c)));
  return m;
}
inline std::vector<float> channel_absmean(MatrixRef<const float> x) {
  std::vector<double> s(static_cast<std::size_t>(x.cols), 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::int64_t c = 0; c < x.cols; ++c) s[static_cast<std::size_t>(c)] += std::fabs(static_cast<double>(x(r, c)));
  std::vector<float> m(s.size());
  for (std::size_t c = 0; c < s.size(); ++c) m[c] = x.rows > 0 ? static_cast<float>(s[c] / static_cast<double>(x.rows)) : 0.0f;
  return m;
}

class LlamaCalibration {
 public:
  // The inputs of block `layer`'s layers that read `input`.
  const LayerInputs& inputs(int layer, nn::LinearInput input) const {
    detail::require(layer >= 0 && static_cast<std::size_t>(layer) < per_layer_.size(), "LlamaCalibration", "block ", layer,
                    " is outside the ", per_layer_.size(), " calibrated blocks");
    return per_layer_[static_cast<std::size_t>(layer)][static_cast<std::size_t>(input)];
  }
  const LayerInputs& inputs(int layer, nn::LinearName name) const { return inputs(layer, nn::input_of(name)); }
  std::int64_t tokens() const { return tokens_; }
  int layers() const { return static_cast<int>(per_layer_.size()); }

  // Runs `model` over the stories (each from position 0, cut to the context) until
  // max_tokens tokens have run (<= 0: all), keeping the input of every linear layer.
  static LlamaCalibration collect(nn::LlamaModel& model, const std::vector<std::vector<int>>& stories, std::int64_t max_tokens) {
    LlamaCalibration cal;
    cal.per_layer_.resize(static_cast<std::size_t>(model.config().n_layers));
    model.set_capture([&](int layer, nn::LinearInput input, MatrixRef<const float> x) {
      LayerInputs& d = cal.per_layer_[static_cast<std::size_t>(layer)][static_cast<std::size_t>(input)];
      d.cols = x.cols;
      for (std::int64_t r = 0; r < x.rows; ++r)
        for (std::int64_t c = 0; c < x.cols; ++c) d.values.push_back(x(r, c));
    });
    const std::int64_t limit = max_tokens > 0 ? max_tokens : std::numeric_limits<std::int64_t>::max();
    const int vocab = model.config().vocab_size;
    std::vector<float> logits;
    try {
      for (const std::vector<int>& story : stories) {
        const std::int64_t n = std::min<std::int64_t>({static_cast<std::int64_t>(story.size()), limit - cal.tokens_,
                                                       model.config().seq_len});
        if (n <= 0) {
          if (cal.tokens_ >= limit) break;
          continue;
        }
        logits.resize(static_cast<std::size_t>(n * vocab));
        model.forward(std::span<const int>(story.data(), static_cast<std::size_t>(n)), 0,
                      MatrixRef<float>::row_major(logits.data(), n, vocab));
        cal.tokens_ += n;
      }
    } catch (...) {
      model.set_capture({});
      throw;
    }
    model.set_capture({});
    return cal;
  }

 private:
  std::vector<std::array<LayerInputs, 4>> per_layer_;
  std::int64_t tokens_ = 0;
};

}  // namespace lowbit::algo
