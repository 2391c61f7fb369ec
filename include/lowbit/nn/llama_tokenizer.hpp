// The llama2.c tokenizer file and its BPE encoder, as run.c implements them.
//
// File: uint32 max_token_length, then for each of vocab_size tokens (the count comes from the
// checkpoint): float32 score, uint32 byte length, the bytes (no terminator).
// Encoding: optional BOS (id 1), a dummy-prefix " " token when the text is not empty, every
// UTF-8 code point looked up (unknown ones fall back to byte tokens, byte b = id b + 3), then
// the adjacent pair whose concatenation is the highest-scoring token is merged (the first such
// pair on ties) until no pair merges; optional EOS (id 2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lowbit/core/error.hpp"

namespace lowbit::nn {

class LlamaTokenizer {
 public:
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;

  static LlamaTokenizer load(const std::filesystem::path& path, int vocab_size) {
    const std::string where = "llama tokenizer " + path.string();
    detail::require(vocab_size > 0, where, "vocab size must be positive, got ", vocab_size);
    std::ifstream in(path, std::ios::binary);
    detail::require(static_cast<bool>(in), where, "cannot open the file");
    LlamaTokenizer t;
    std::uint32_t max_len = 0;
    in.read(reinterpret_cast<char*>(&max_len), 4);
    detail::require(static_cast<bool>(in), where, "file is shorter than its 4-byte header");
    t.max_token_length_ = static_cast<int>(max_len);
    t.pieces_.resize(static_cast<std::size_t>(vocab_size));
    t.scores_.resize(static_cast<std::size_t>(vocab_size));
    for (int i = 0; i < vocab_size; ++i) {
      std::uint32_t len = 0;
      float score = 0.0f;
      in.read(reinterpret_cast<char*>(&score), 4);
      in.read(reinterpret_cast<char*>(&len), 4);
      detail::require(static_cast<bool>(in), where, "truncated at token ", i, " of ", vocab_size);
      detail::require(len <= max_len, where, "token ", i, " is ", len, " bytes, longer than max_token_length ", max_len);
      std::string s(len, '\0');
      in.read(s.data(), static_cast<std::streamsize>(len));
      detail::require(static_cast<bool>(in), where, "truncated in the bytes of token ", i, " of ", vocab_size);
      t.scores_[static_cast<std::size_t>(i)] = score;
      t.ids_.emplace(s, i);  // a repeated piece keeps its first id
      t.pieces_[static_cast<std::size_t>(i)] = std::move(s);
    }
    in.peek();
    detail::require(in.eof(), where, "trailing bytes after ", vocab_size, " tokens (wrong vocabulary size?)");
    return t;
  }

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  int max_token_length() const { return max_token_length_; }
  const std::string& piece(int id) const { return pieces_.at(static_cast<std::size_t>(id)); }
  float score(int id) const { return scores_.at(static_cast<std::size_t>(id)); }
  // Id of an exact piece, -1 when there is none.
  int lookup(std::string_view s) const {
    const auto it = ids_.find(std::string(s));
    return it == ids_.end() ? -1 : it->second;
  }

  std::vector<int> encode(std::string_view text, bool bos, bool eos) const {
    std::vector<int> tokens;
    if (bos) tokens.push_back(kBos);
    if (!text.empty()) {
      const int space = lookup(" ");
      detail::require(space >= 0, "llama tokenizer", "the vocabulary has no \" \" piece for the dummy prefix");
      tokens.push_back(space);
    }
    // Code points (a lead byte and up to three continuation bytes), byte fallback.
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = 1;
      while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
      const std::string_view cp = text.substr(i, n);
      const int id = lookup(cp);
      if (id >= 0) {
        tokens.push_back(id);
      } else {
        for (const char ch : cp) tokens.push_back(static_cast<unsigned char>(ch) + 3);
      }
      i += n;
    }
    // Merges: the best-scoring pair each round, the leftmost on ties.
    std::string pair;
    while (true) {
      float best_score = -1e10f;
      int best_id = -1;
      std::size_t best_at = 0;
      for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
        pair = piece(tokens[i]);
        pair += piece(tokens[i + 1]);
        const int id = lookup(pair);
        if (id >= 0 && score(id) > best_score) {
          best_score = score(id);
          best_id = id;
          best_at = i;
        }
      }
      if (best_id < 0) break;
      tokens[best_at] = best_id;
      tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    if (eos) tokens.push_back(kEos);
    return tokens;
  }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int> ids_;
  int max_token_length_ = 0;
};

}  // namespace lowbit::nn
