// Language-model evaluation: perplexity, and against a reference model on the same tokens the
// mean KL divergence of the next-token distributions and the top-1 agreement (the measures
// llama.cpp reports for its quantisation types).
//
// Protocol (the one ../shared/data/README.md states): the text is split on <|endoftext|>,
// each story is stripped of surrounding whitespace and encoded with BOS; every story starts
// at position 0, and each next token after BOS is scored; the first N scored tokens of the
// text count (the last story used may be cut short). A story longer than the model's
// context is cut to its first seq_len tokens (BOS included), so it scores seq_len - 1.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/nn/llama_model.hpp"
#include "lowbit/nn/llama_tokenizer.hpp"

namespace lowbit::nn {

// Stories split on the separator and stripped as Python's str.strip() does; empty ones dropped.
inline std::vector<std::string> split_stories(std::string_view text, std::string_view separator = "<|endoftext|>") {
  const auto is_space = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; };
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(separator, start), text.size());
    std::string_view s = text.substr(start, end - start);
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    if (!s.empty()) out.emplace_back(s);
    if (end == text.size()) break;
    start = end + separator.size();
  }
  return out;
}

inline std::vector<std::vector<int>> encode_stories(const LlamaTokenizer& tok, std::string_view text) {
  std::vector<std::vector<int>> out;
  for (const std::string& s : split_stories(text)) out.push_back(tok.encode(s, true, false));
  return out;
}

// The model's next-token log-probabilities at every scored position.
struct NextTokenScores {
  int vocab = 0;
  std::vector<int> targets;          // the token that came next
  std::vector<double> log_probs;     // [targets.size()][vocab], log-softmax of the logits
  double seconds = 0.0;              // time spent in the forward pass
  std::int64_t tokens_run = 0;       // tokens the forward pass ran (BOS included)

  std::int64_t count() const { return static_cast<std::int64_t>(targets.size()); }
  std::span<const double> row(std::int64_t i) const {
    return std::span<const double>(log_probs).subspan(static_cast<std::size_t>(i * vocab), static_cast<std::size_t>(vocab));
  }
};

// Runs the model over the stories (each from position 0) and keeps the first max_tokens
// scored positions (max_tokens <= 0: all).
inline NextTokenScores score_stories(LlamaModel& model, const std::vector<std::vector<int>>& stories,
                                     std::int64_t max_tokens) {
  NextTokenScores s;
  const LlamaConfig& c = model.config();
  s.vocab = c.vocab_size;
  const std::int64_t limit = max_tokens > 0 ? max_tokens : std::numeric_limits<std::int64_t>::max();
  std::vector<float> logits;
  for (const std::vector<int>& story : stories) {
    const std::int64_t left = limit - s.count();
    if (left <= 0) break;
    // Inputs story[0 .. n) predict story[1 .. n].
    std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(story.size()) - 1, left);
    n = std::min<std::int64_t>(n, c.seq_len - 1);
    if (n <= 0) continue;
    logits.resize(static_cast<std::size_t>(n * s.vocab));
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(std::span<const int>(story.data(), static_cast<std::size_t>(n)), 0,
                  MatrixRef<float>::row_major(logits.data(), n, s.vocab));
    s.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.tokens_run += n;
    for (std::int64_t t = 0; t < n; ++t) {
      const float* z = logits.data() + t * s.vocab;
      double mx = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < s.vocab; ++j) mx = std::max(mx, static_cast<double>(z[j]));
      double sum = 0.0;
      for (int j = 0; j < s.vocab; ++j) sum += std::exp(static_cast<double>(z[j]) - mx);
      const double lse = mx + std::log(sum);
      for (int j = 0; j < s.vocab; ++j) s.log_probs.push_back(static_cast<double>(z[j]) - lse);
      s.targets.push_back(story[static_cast<std::size_t>(t + 1)]);
    }
  }
  return s;
}

struct EvalMetrics {
  std::int64_t tokens = 0;
  double nll = 0.0;   // mean negative log-likelihood of the next token (nats)
  double ppl = 0.0;   // exp(nll)
  double kl = 0.0;    // mean KL(reference || this), nats; 0 without a reference
  double top1 = 1.0;  // share of positions whose most likely token equals the reference's
};

inline EvalMetrics perplexity(const NextTokenScores& s) {
  EvalMetrics m;
  m.tokens = s.count();
  double nll = 0.0;
  for (std::int64_t i = 0; i < s.count(); ++i) nll -= s.row(i)[static_cast<std::size_t>(s.targets[static_cast<std::size_t>(i)])];
  m.nll = m.tokens > 0 ? nll / static_cast<double>(m.tokens) : 0.0;
  m.ppl = std::exp(m.nll);
  return m;
}

// Perplexity of `s`, and its KL divergence from and top-1 agreement with `ref` (same tokens).
inline EvalMetrics compare(const NextTokenScores& ref, const NextTokenScores& s) {
  detail::require(ref.count() == s.count() && ref.vocab == s.vocab && ref.targets == s.targets, "compare",
                  "the two runs scored different tokens (", ref.count(), " vs ", s.count(), ")");
  EvalMetrics m = perplexity(s);
  double kl = 0.0;
  std::int64_t agree = 0;
  const auto argmax = [](std::span<const double> r) {
    std::size_t best = 0;
    for (std::size_t j = 1; j < r.size(); ++j)
      if (r[j] > r[best]) best = j;
    return best;
  };
  for (std::int64_t i = 0; i < s.count(); ++i) {
    const auto p = ref.row(i), q = s.row(i);
    for (std::size_t j = 0; j < p.size(); ++j) kl += std::exp(p[j]) * (p[j] - q[j]);
    agree += argmax(p) == argmax(q) ? 1 : 0;
  }
  if (m.tokens > 0) {
    m.kl = kl / static_cast<double>(m.tokens);
    m.top1 = static_cast<double>(agree) / static_cast<double>(m.tokens);
  }
  return m;
}

}  // namespace lowbit::nn
