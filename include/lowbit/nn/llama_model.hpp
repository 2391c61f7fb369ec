// The LLaMA forward pass of llama2.c's run.c with a KV cache, its seven linear layers per
// block (wq wk wv wo w1 w2 w3) held as QuantLinear and its two attention matmuls optionally
// quantised. Embeddings, RMSNorms, RoPE, softmax and the classifier stay fp32, as in the paper.
//
// forward() runs a run of tokens at consecutive positions in one call (the linear layers see
// them as one matrix); every position attends only to the cache up to itself, and
// activations are quantised per token, so the result is the same as one token at a time.
//
// Outlier injection (LlamaQuantConfig::inject_outliers): real LLMs have a few activation
// channels far larger than the rest, this model has none. With the option, channels
// kOutlierChannels of the input of every linear layer are multiplied by kOutlierFactor and
// the matching weight columns divided by it. The factor is a power of two, so in fp32 every
// product x_c * w_c is unchanged and the float model gives exactly the same logits; a
// quantised model now sees activation outliers (and tiny weight columns).
//
// Hooks for post-training quantisation (lowbit/algo): LlamaQuantConfig::make_linear builds
// each linear layer from its float weight (outliers injected) in place of round-to-nearest,
// and set_capture sees the input of every linear layer as the forward pass computes it.
#pragma once

#include <Eigen/Core>

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/llama_checkpoint.hpp"
#include "lowbit/nn/quant_attention.hpp"
#include "lowbit/nn/quant_linear.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit::nn {

// The seven linear layers of a block, and the four inputs they read (wq wk wv share the
// attention input, w1 w3 the feed-forward input).
enum class LinearName { wq, wk, wv, wo, w1, w2, w3 };
enum class LinearInput { attention, attention_output, ffn, ffn_hidden };
inline constexpr LinearInput input_of(LinearName n) {
  switch (n) {
    case LinearName::wq: case LinearName::wk: case LinearName::wv: return LinearInput::attention;
    case LinearName::wo: return LinearInput::attention_output;
    case LinearName::w1: case LinearName::w3: return LinearInput::ffn;
    case LinearName::w2: return LinearInput::ffn_hidden;
  }
  return LinearInput::attention;
}
inline constexpr const char* linear_name(LinearName n) {
  constexpr const char* names[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
  return names[static_cast<int>(n)];
}

struct LlamaQuantConfig {
  std::string weights = "fp32";  // format of the seven linear layers' weights
  std::string acts;              // format of their input activations; empty: fp32
  std::string attn;              // format of both attention matmuls' operands; empty: fp32
  bool inject_outliers = false;
  // Builds layer `name` of block `layer` from its float weight [out x in]; empty: the weight
  // format by round-to-nearest. The activation format is set on the result afterwards.
  std::function<QuantLinear(int layer, LinearName name, MatrixRef<const float> w)> make_linear;
};

inline constexpr float kOutlierFactor = 64.0f;
inline constexpr std::array<int, 2> kOutlierChannels = {2, 11};

class LlamaModel {
 public:
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  LlamaModel(const LlamaWeights& w, const LlamaQuantConfig& q) : c_(w.config), quant_(q) {
    const auto d = static_cast<std::size_t>(c_.dim), hd = static_cast<std::size_t>(c_.hidden_dim);
    const auto kv = static_cast<std::size_t>(c_.kv_dim());
    embedding_ = w.token_embedding;
    classifier_ = w.classifier();
    rms_att_ = w.rms_att;
    rms_ffn_ = w.rms_ffn;
    rms_final_ = w.rms_final;
    if (!q.attn.empty() && q.attn != "fp32") attn_.emplace(q.attn);
    const auto linear = [&](const std::vector<float>& all, std::size_t layer, LinearName name, std::size_t out, std::size_t in) {
      std::vector<float> m(all.begin() + static_cast<std::ptrdiff_t>(layer * out * in),
                           all.begin() + static_cast<std::ptrdiff_t>((layer + 1) * out * in));
      if (q.inject_outliers)
        for (std::size_t r = 0; r < out; ++r)
          for (const int ch : kOutlierChannels)
            if (static_cast<std::size_t>(ch) < in) m[r * in + static_cast<std::size_t>(ch)] /= kOutlierFactor;
      const auto wm = MatrixRef<const float>::row_major(m.data(), static_cast<std::int64_t>(out), static_cast<std::int64_t>(in));
      QuantLinear l = q.make_linear ? q.make_linear(static_cast<int>(layer), name, wm) : QuantLinear::from_name(q.weights, wm);
      l.set_activation_format(q.acts);
      return l;
    };
    for (std::size_t l = 0; l < static_cast<std::size_t>(c_.n_layers); ++l) {
      Layer L;
      L.wq = linear(w.wq, l, LinearName::wq, d, d);
      L.wk = linear(w.wk, l, LinearName::wk, kv, d);
      L.wv = linear(w.wv, l, LinearName::wv, kv, d);
      L.wo = linear(w.wo, l, LinearName::wo, d, d);
      L.w1 = linear(w.w1, l, LinearName::w1, hd, d);
      L.w2 = linear(w.w2, l, LinearName::w2, d, hd);
      L.w3 = linear(w.w3, l, LinearName::w3, hd, d);
      layers_.push_back(std::move(L));
    }
    const std::size_t cache = static_cast<std::size_t>(c_.n_layers) * static_cast<std::size_t>(c_.seq_len) * kv;
    key_cache_.assign(cache, 0.0f);
    value_cache_.assign(cache, 0.0f);
  }

  const LlamaConfig& config() const { return c_; }
  const LlamaQuantConfig& quant_config() const { return quant_; }

  // Called with the input of every linear layer (one call per shared input) as forward runs.
  using Capture = std::function<void(int layer, LinearInput input, MatrixRef<const float> x)>;
  void set_capture(Capture c) { capture_ = std::move(c); }

  // Linear layer `name` of block `layer`.
  const QuantLinear& linear(int layer, LinearName name) const {
    return *layers_.at(static_cast<std::size_t>(layer)).all()[static_cast<std::size_t>(name)];
  }

  // Stored bits per weight over the seven linear layers of every block.
  double weight_bits_per_element() const {
    double bits = 0, n = 0;
    for (const Layer& L : layers_)
      for (const QuantLinear* l : L.all()) {
        const double e = static_cast<double>(l->in_features() * l->out_features());
        bits += l->weight_bits_per_element() * e;
        n += e;
      }
    return n > 0 ? bits / n : 0.0;
  }
  // Weights of the linear layers, and the activation values one token feeds into them.
  std::int64_t linear_weight_count() const {
    std::int64_t n = 0;
    for (const Layer& L : layers_)
      for (const QuantLinear* l : L.all()) n += l->in_features() * l->out_features();
    return n;
  }
  std::int64_t linear_input_count_per_token() const {
    std::int64_t n = 0;
    for (const Layer& L : layers_)
      for (const QuantLinear* l : L.all()) n += l->in_features();
    return n;
  }

  // Runs tokens[i] at position pos + i; the cache must hold positions 0 .. pos - 1 (from
  // earlier calls). logits is tokens.size() x vocab_size.
  void forward(std::span<const int> tokens, int pos, MatrixRef<float> logits) {
    const auto n = static_cast<std::int64_t>(tokens.size());
    const int dim = c_.dim, kv_dim = c_.kv_dim(), hs = c_.head_size(), hidden = c_.hidden_dim;
    detail::require(pos >= 0 && pos + n <= c_.seq_len, "LlamaModel::forward", "positions ", pos, " .. ", pos + n - 1,
                    " are outside the model's context of ", c_.seq_len);
    detail::require(logits.rows == n && logits.cols == c_.vocab_size, "LlamaModel::forward", "logits is ", logits.rows,
                    " x ", logits.cols, ", expected ", n, " x ", c_.vocab_size);
    RowMatrix x(n, dim), xb(n, dim), q(n, dim), k(n, kv_dim), v(n, kv_dim), att_out(n, dim), proj(n, dim);
    RowMatrix h1(n, hidden), h3(n, hidden);
    for (std::int64_t t = 0; t < n; ++t) {
      const int tok = tokens[static_cast<std::size_t>(t)];
      detail::require(tok >= 0 && tok < c_.vocab_size, "LlamaModel::forward", "token id ", tok, " out of range");
      for (int j = 0; j < dim; ++j) x(t, j) = embedding_[static_cast<std::size_t>(tok) * static_cast<std::size_t>(dim) + static_cast<std::size_t>(j)];
    }
    std::vector<float> scores(static_cast<std::size_t>(c_.seq_len));
    const int kv_mul = c_.n_heads / c_.n_kv_heads;
    const Quantizer* attn = attn_ ? &*attn_ : nullptr;
    for (int l = 0; l < c_.n_layers; ++l) {
      const Layer& L = layers_[static_cast<std::size_t>(l)];
      rmsnorm(x, rms_att_.data() + static_cast<std::ptrdiff_t>(l) * dim, xb);
      inject(xb);
      captured(l, LinearInput::attention, xb);
      L.wq.forward(ref(xb), ref(q));
      L.wk.forward(ref(xb), ref(k));
      L.wv.forward(ref(xb), ref(v));
      float* kc = key_cache_.data() + static_cast<std::ptrdiff_t>(l) * c_.seq_len * kv_dim;
      float* vc = value_cache_.data() + static_cast<std::ptrdiff_t>(l) * c_.seq_len * kv_dim;
      for (std::int64_t t = 0; t < n; ++t) {
        rope(&q(t, 0), &k(t, 0), static_cast<int>(pos + t));
        for (int j = 0; j < kv_dim; ++j) {
          kc[(pos + t) * kv_dim + j] = k(t, j);
          vc[(pos + t) * kv_dim + j] = v(t, j);
        }
      }
      const float inv_sqrt = 1.0f / std::sqrt(static_cast<float>(hs));
      for (std::int64_t t = 0; t < n; ++t) {
        const std::int64_t len = pos + t + 1;  // this position and all before it
        const auto s = MatrixRef<float>::row_major(scores.data(), 1, len);
        for (int h = 0; h < c_.n_heads; ++h) {
          const std::int64_t kv_off = static_cast<std::int64_t>(h / kv_mul) * hs;
          attention_scores(MatrixRef<const float>{&q(t, 0) + static_cast<std::ptrdiff_t>(h) * hs, 1, hs, hs, 1},
                           MatrixRef<const float>{kc + kv_off, len, hs, kv_dim, 1}, s, attn);
          float mx = scores[0] * inv_sqrt;
          for (std::int64_t j = 0; j < len; ++j) {
            scores[static_cast<std::size_t>(j)] *= inv_sqrt;
            mx = std::max(mx, scores[static_cast<std::size_t>(j)]);
          }
          float sum = 0.0f;
          for (std::int64_t j = 0; j < len; ++j) {
            float& e = scores[static_cast<std::size_t>(j)];
            e = std::exp(e - mx);
            sum += e;
          }
          for (std::int64_t j = 0; j < len; ++j) scores[static_cast<std::size_t>(j)] /= sum;
          attention_mix(MatrixRef<const float>{scores.data(), 1, len, len, 1},
                        MatrixRef<const float>{vc + kv_off, len, hs, kv_dim, 1},
                        MatrixRef<float>{&att_out(t, 0) + static_cast<std::ptrdiff_t>(h) * hs, 1, hs, hs, 1}, attn);
        }
      }
      inject(att_out);
      captured(l, LinearInput::attention_output, att_out);
      L.wo.forward(ref(att_out), ref(proj));
      x += proj;
      rmsnorm(x, rms_ffn_.data() + static_cast<std::ptrdiff_t>(l) * dim, xb);
      inject(xb);
      captured(l, LinearInput::ffn, xb);
      L.w1.forward(ref(xb), ref(h1));
      L.w3.forward(ref(xb), ref(h3));
      for (std::int64_t t = 0; t < n; ++t)
        for (int j = 0; j < hidden; ++j) {
          float g = h1(t, j);
          g = g * (1.0f / (1.0f + std::exp(-g)));  // SiLU
          h1(t, j) = g * h3(t, j);
        }
      inject(h1);
      captured(l, LinearInput::ffn_hidden, h1);
      L.w2.forward(ref(h1), ref(proj));
      x += proj;
    }
    rmsnorm(x, rms_final_.data(), xb);
    // One matrix-vector product per token (a matrix product would sum in another order
    // for a batch than for one token).
    const Eigen::Map<const RowMatrix> classifier(classifier_.data(), c_.vocab_size, dim);
    Eigen::VectorXf out(c_.vocab_size);
    for (std::int64_t t = 0; t < n; ++t) {
      out.noalias() = classifier * xb.row(t).transpose();
      for (int j = 0; j < c_.vocab_size; ++j) logits(t, j) = out(j);
    }
  }

  std::vector<float> forward(int token, int pos) {
    std::vector<float> logits(static_cast<std::size_t>(c_.vocab_size));
    const int tok[1] = {token};
    forward(std::span<const int>(tok), pos, MatrixRef<float>::row_major(logits.data(), 1, c_.vocab_size));
    return logits;
  }

 private:
  struct Layer {
    QuantLinear wq, wk, wv, wo, w1, w2, w3;
    std::array<const QuantLinear*, 7> all() const { return {&wq, &wk, &wv, &wo, &w1, &w2, &w3}; }
  };

  static MatrixRef<float> ref(RowMatrix& m) { return MatrixRef<float>::row_major(m.data(), m.rows(), m.cols()); }
  static MatrixRef<const float> ref(const RowMatrix& m) {
    return MatrixRef<const float>::row_major(m.data(), m.rows(), m.cols());
  }

  // run.c's rmsnorm, row by row: o = w * (x / sqrt(mean(x^2) + 1e-5)), in float.
  static void rmsnorm(const RowMatrix& x, const float* w, RowMatrix& o) {
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      float ss = 0.0f;
      for (Eigen::Index j = 0; j < x.cols(); ++j) ss += x(t, j) * x(t, j);
      ss /= static_cast<float>(x.cols());
      ss += 1e-5f;
      ss = 1.0f / std::sqrt(ss);
      for (Eigen::Index j = 0; j < x.cols(); ++j) o(t, j) = w[j] * (ss * x(t, j));
    }
  }

  // run.c's RoPE: adjacent pairs within each head, q everywhere, k for i < kv_dim.
  void rope(float* q, float* k, int pos) const {
    const int hs = c_.head_size(), kv_dim = c_.kv_dim();
    for (int i = 0; i < c_.dim; i += 2) {
      const int head_dim = i % hs;
      const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(head_dim) / static_cast<float>(hs));
      const float val = static_cast<float>(pos) * freq;
      const float fcr = std::cos(val), fci = std::sin(val);
      for (float* vec : {q, k}) {
        if (vec == k && i >= kv_dim) break;
        const float v0 = vec[i], v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
      }
    }
  }

  void captured(int layer, LinearInput input, const RowMatrix& x) const {
    if (capture_) capture_(layer, input, ref(x));
  }

  void inject(RowMatrix& m) const {
    if (!quant_.inject_outliers) return;
    for (Eigen::Index t = 0; t < m.rows(); ++t)
      for (const int ch : kOutlierChannels)
        if (ch < m.cols()) m(t, ch) *= kOutlierFactor;
  }

  LlamaConfig c_;
  LlamaQuantConfig quant_;
  std::vector<float> embedding_, classifier_, rms_att_, rms_ffn_, rms_final_;
  std::vector<Layer> layers_;
  std::optional<Quantizer> attn_;
  std::vector<float> key_cache_, value_cache_;
  Capture capture_;
};

}  // namespace lowbit::nn
