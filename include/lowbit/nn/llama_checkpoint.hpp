// llama2.c legacy (version 0) checkpoints: a header of 7 int32
//   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
// then fp32 arrays, little-endian, no padding, matrices row-major [out][in]:
//   token_embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim], wk [L][kv_dim][dim],
//   wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hidden][dim],
//   w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim],
//   freq_cis_real and freq_cis_imag [seq_len][head_size / 2] (unused: RoPE is recomputed),
//   wcls [vocab][dim] only when the header's vocab_size is negative (else the classifier is
//   the token embedding).
// The file size must match the header exactly; anything else is reported as lowbit::Error.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"

namespace lowbit::nn {

struct LlamaConfig {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int seq_len = 0;
  bool shared_classifier = true;

  int head_size() const { return dim / n_heads; }
  int kv_dim() const { return dim / n_heads * n_kv_heads; }
};

struct LlamaWeights {
  LlamaConfig config;
  std::vector<float> token_embedding;  // [vocab][dim]
  std::vector<float> rms_att, rms_ffn; // [L][dim]
  std::vector<float> wq, wk, wv, wo;   // [L][out][in]
  std::vector<float> w1, w2, w3;       // [L][out][in]
  std::vector<float> rms_final;        // [dim]
  std::vector<float> wcls;             // [vocab][dim]; empty when shared with the embedding

  const std::vector<float>& classifier() const { return config.shared_classifier ? token_embedding : wcls; }
};

namespace impl {

inline std::uint64_t checkpoint_floats(const LlamaConfig& c) {
  const auto d = static_cast<std::uint64_t>(c.dim), h = static_cast<std::uint64_t>(c.hidden_dim);
  const auto l = static_cast<std::uint64_t>(c.n_layers), v = static_cast<std::uint64_t>(c.vocab_size);
  const auto kv = static_cast<std::uint64_t>(c.kv_dim()), hs = static_cast<std::uint64_t>(c.head_size());
  std::uint64_t n = v * d + l * d * 2 + l * d * d * 2 + l * kv * d * 2 + l * h * d * 3 + d;
  n += static_cast<std::uint64_t>(c.seq_len) * hs;  // freq_cis_real and _imag, seq_len x head_size/2 each
  if (!c.shared_classifier) n += v * d;
  return n;
}

}  // namespace impl

inline LlamaWeights load_llama_checkpoint(const std::filesystem::path& path) {
  const std::string where = "llama checkpoint " + path.string();
  std::ifstream in(path, std::ios::binary);
  detail::require(static_cast<bool>(in), where, "cannot open the file");
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  detail::require(!ec, where, "cannot read the file size");
  detail::require(size >= 28, where, "file is ", size, " bytes, shorter than the 28-byte header");
  static_assert(std::endian::native == std::endian::little, "checkpoints are little-endian");
  std::array<std::int32_t, 7> h{};
  in.read(reinterpret_cast<char*>(h.data()), 28);
  detail::require(static_cast<bool>(in), where, "cannot read the header");

  LlamaWeights w;
  LlamaConfig& c = w.config;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.vocab_size = h[5] == std::numeric_limits<std::int32_t>::min() ? 0 : (h[5] > 0 ? h[5] : -h[5]);
  c.seq_len = h[6];
  const auto header_text = [&] {
    std::string s;
    for (int i = 0; i < 7; ++i) s += (i ? ", " : "") + std::to_string(h[static_cast<std::size_t>(i)]);
    return s;
  }();
  constexpr int kLimit = 1 << 18;  // above any llama2.c model; keeps the size arithmetic in 64 bits
  const auto positive = [&](int v) { return v > 0 && v <= kLimit; };
  detail::require(positive(c.dim) && positive(c.hidden_dim) && positive(c.n_layers) && positive(c.n_heads) &&
                      positive(c.n_kv_heads) && positive(c.vocab_size) && positive(c.seq_len),
                  where, "header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) = (",
                  header_text, ") must hold positive values up to ", kLimit, "; not a llama2.c legacy checkpoint?");
  detail::require(c.dim % c.n_heads == 0 && c.head_size() % 2 == 0, where, "dim ", c.dim,
                  " must split into n_heads ", c.n_heads, " heads of an even size");
  detail::require(c.n_kv_heads <= c.n_heads && c.n_heads % c.n_kv_heads == 0, where, "n_kv_heads ", c.n_kv_heads,
                  " must divide n_heads ", c.n_heads);
  const std::uint64_t floats = impl::checkpoint_floats(c);
  const std::uint64_t expected = 28 + 4 * floats;
  detail::require(size == expected, where, "file is ", size, " bytes but its header (", header_text, ", ",
                  c.shared_classifier ? "shared" : "separate", " classifier) implies ", expected, " bytes",
                  size < expected ? " (truncated?)" : " (trailing data?)");

  const auto d = static_cast<std::size_t>(c.dim), hd = static_cast<std::size_t>(c.hidden_dim);
  const auto l = static_cast<std::size_t>(c.n_layers), v = static_cast<std::size_t>(c.vocab_size);
  const auto kv = static_cast<std::size_t>(c.kv_dim());
  const auto read = [&](std::vector<float>& dst, std::size_t n, const char* name) {
    dst.resize(n);
    in.read(reinterpret_cast<char*>(dst.data()), static_cast<std::streamsize>(n * sizeof(float)));
    detail::require(static_cast<bool>(in), where, "cannot read ", name);
  };
  read(w.token_embedding, v * d, "token_embedding_table");
  read(w.rms_att, l * d, "rms_att_weight");
  read(w.wq, l * d * d, "wq");
  read(w.wk, l * kv * d, "wk");
  read(w.wv, l * kv * d, "wv");
  read(w.wo, l * d * d, "wo");
  read(w.rms_ffn, l * d, "rms_ffn_weight");
  read(w.w1, l * hd * d, "w1");
  read(w.w2, l * d * hd, "w2");
  read(w.w3, l * hd * d, "w3");
  read(w.rms_final, d, "rms_final_weight");
  std::vector<float> freq;
  read(freq, static_cast<std::size_t>(c.seq_len) * static_cast<std::size_t>(c.head_size()), "freq_cis tables");
  if (!c.shared_classifier) read(w.wcls, v * d, "wcls");
  return w;
}

}  // namespace lowbit::nn
