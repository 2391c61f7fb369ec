// Per-input-channel scales folded into a LLaMA checkpoint: the layers reading an input get
// their weight columns multiplied by s, and the operation producing that input divides its
// output by s, so the float model computes the same function (up to rounding) while the
// quantisers see rescaled weights and activations.
//
//   attention input  (wq wk wv)  the attention RMSNorm gain / s
//   feed-forward input (w1 w3)   the feed-forward RMSNorm gain / s
//   attention output (wo)        rows of wv / s (attention mixes each value channel on its
//                                own); with grouped-query attention several output channels
//                                read one value channel, so their scales must be equal
//   feed-forward hidden (w2)     rows of w3 / s (silu(w1 x) * (w3 x) is linear in w3 x)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/nn/llama_checkpoint.hpp"
#include "lowbit/nn/llama_model.hpp"

namespace lowbit::algo {

// Value channel read by attention-output channel j.
inline int value_channel_of(const nn::LlamaConfig& c, int j) {
  const int hs = c.head_size(), kv_mul = c.n_heads / c.n_kv_heads;
  return (j / hs) / kv_mul * hs + j % hs;
}

// Makes a per-channel statistic of the attention output equal across the channels that share
// a value channel (their largest value), so scales computed from it can be folded into wv.
inline void tie_attention_output(const nn::LlamaConfig& c, std::span<float> stat) {
  std::vector<float> m(static_cast<std::size_t>(c.kv_dim()), 0.0f);
  for (int j = 0; j < c.dim; ++j) {
    float& v = m[static_cast<std::size_t>(value_channel_of(c, j))];
    v = std::max(v, stat[static_cast<std::size_t>(j)]);
  }
  for (int j = 0; j < c.dim; ++j) stat[static_cast<std::size_t>(j)] = m[static_cast<std::size_t>(value_channel_of(c, j))];
}

// The layers reading `input`.
inline std::vector<nn::LinearName> readers_of(nn::LinearInput input) {
  using nn::LinearName;
  switch (input) {
    case nn::LinearInput::attention: return {LinearName::wq, LinearName::wk, LinearName::wv};
    case nn::LinearInput::attention_output: return {LinearName::wo};
    case nn::LinearInput::ffn: return {LinearName::w1, LinearName::w3};
    case nn::LinearInput::ffn_hidden: return {LinearName::w2};
  }
  return {};
}

// Block `layer`'s weight `name` [out x in] inside the checkpoint.
inline MatrixRef<const float> weight_matrix(const nn::LlamaWeights& w, int layer, nn::LinearName name) {
  const nn::LlamaConfig& c = w.config;
  const std::int64_t d = c.dim, kv = c.kv_dim(), hd = c.hidden_dim;
  const std::vector<float>* all = nullptr;
  std::int64_t rows = 0, cols = 0;
  switch (name) {
    case nn::LinearName::wq: all = &w.wq; rows = d; cols = d; break;
    case nn::LinearName::wk: all = &w.wk; rows = kv; cols = d; break;
    case nn::LinearName::wv: all = &w.wv; rows = kv; cols = d; break;
    case nn::LinearName::wo: all = &w.wo; rows = d; cols = d; break;
    case nn::LinearName::w1: all = &w.w1; rows = hd; cols = d; break;
    case nn::LinearName::w2: all = &w.w2; rows = d; cols = hd; break;
    case nn::LinearName::w3: all = &w.w3; rows = hd; cols = d; break;
  }
  return MatrixRef<const float>::row_major(all->data() + static_cast<std::ptrdiff_t>(layer) * rows * cols, rows, cols);
}
struct WeightSlice {
  float* data = nullptr;
  std::int64_t rows = 0, cols = 0;
};
inline WeightSlice weight_slice(nn::LlamaWeights& w, int layer, nn::LinearName name) {
  const MatrixRef<const float> m = weight_matrix(w, layer, name);
  return {const_cast<float*>(m.data), m.rows, m.cols};  // w itself is writable
}

// Folds scales s (one per channel of `input` of block `layer`) into the checkpoint.
inline void fold_input_scales(nn::LlamaWeights& w, int layer, nn::LinearInput input, std::span<const float> s) {
  const nn::LlamaConfig& c = w.config;
  const char* where = "fold_input_scales";
  for (const nn::LinearName name : readers_of(input)) {
    const WeightSlice m = weight_slice(w, layer, name);
    detail::require(static_cast<std::int64_t>(s.size()) == m.cols, where, s.size(), " scales for ", m.cols, " inputs");
    for (std::int64_t r = 0; r < m.rows; ++r)
      for (std::int64_t k = 0; k < m.cols; ++k) m.data[r * m.cols + k] *= s[static_cast<std::size_t>(k)];
  }
  const auto divide_rows = [&](const WeightSlice& m) {
    for (std::int64_t r = 0; r < m.rows; ++r)
      for (std::int64_t k = 0; k < m.cols; ++k) m.data[r * m.cols + k] /= s[static_cast<std::size_t>(r)];
  };
  switch (input) {
    case nn::LinearInput::attention:
    case nn::LinearInput::ffn: {
      std::vector<float>& gain = input == nn::LinearInput::attention ? w.rms_att : w.rms_ffn;
      for (int j = 0; j < c.dim; ++j) gain[static_cast<std::size_t>(layer * c.dim + j)] /= s[static_cast<std::size_t>(j)];
      break;
    }
    case nn::LinearInput::attention_output: {
      std::vector<float> sv(static_cast<std::size_t>(c.kv_dim()), 0.0f);
      for (int j = 0; j < c.dim; ++j) {
        float& v = sv[static_cast<std::size_t>(value_channel_of(c, j))];
        detail::require(v == 0.0f || v == s[static_cast<std::size_t>(j)], where,
                        "attention-output channels sharing a value channel need equal scales (channel ", j, ")");
        v = s[static_cast<std::size_t>(j)];
      }
      const WeightSlice wv = weight_slice(w, layer, nn::LinearName::wv);
      for (std::int64_t r = 0; r < wv.rows; ++r)
        for (std::int64_t k = 0; k < wv.cols; ++k) wv.data[r * wv.cols + k] /= sv[static_cast<std::size_t>(r)];
      break;
    }
    case nn::LinearInput::ffn_hidden: divide_rows(weight_slice(w, layer, nn::LinearName::w3)); break;
  }
}

// The factor the model applies to weight column k when it injects outlier channels.
inline float injected_column_factor(bool inject, std::int64_t k) {
  if (!inject) return 1.0f;
  for (const int ch : nn::kOutlierChannels)
    if (ch == k) return 1.0f / nn::kOutlierFactor;
  return 1.0f;
}

}  // namespace lowbit::algo
