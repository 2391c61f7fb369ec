// The llama2.c loader, tokenizer and forward pass, and the evaluation protocol, on the real
// model in ../shared/data: the figures come from its README (independent float evaluators).
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/nn/eval.hpp"
#include "lowbit/nn/llama.hpp"
#include "shared_data.hpp"

namespace {

namespace fs = std::filesystem;
using lowbit::nn::LlamaModel;
using lowbit::nn::LlamaQuantConfig;

const char* kModel = "data/stories260K.bin";
const char* kTokenizer = "data/tok512.bin";
const char* kText = "data/tinystories_valid_head.txt";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Files written by the tests live in one directory, removed at exit.
struct ScratchDir {
  fs::path dir = fs::temp_directory_path() / ("lowbit_test_llama_" + std::to_string(::getpid()));
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

fs::path scratch(const std::string& name) {
  static const ScratchDir d;
  fs::create_directories(d.dir);
  return d.dir / name;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects load to throw a lowbit::Error whose message contains `part`.
template <class F>
void expect_error(F&& load, const std::string& part) {
  try {
    load();
    ADD_FAILURE() << "no error; expected one mentioning '" << part << "'";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// A tiny checkpoint written from the layout: header, then float k at the k-th position.
std::string tiny_checkpoint(int vocab_field, int extra_floats = 0) {
  const int dim = 4, hidden = 6, layers = 1, heads = 2, kv_heads = 1, seq = 3;
  const int vocab = vocab_field < 0 ? -vocab_field : vocab_field;
  const int kv = dim / heads * kv_heads, hs = dim / heads;
  std::int64_t floats = static_cast<std::int64_t>(vocab) * dim + 2 * layers * dim + 2 * layers * dim * dim +
                        2 * layers * kv * dim + 3 * layers * hidden * dim + dim + seq * hs;
  if (vocab_field < 0) floats += static_cast<std::int64_t>(vocab) * dim;
  floats += extra_floats;
  std::string bytes;
  for (int v : {dim, hidden, layers, heads, kv_heads, vocab_field, seq}) bytes.append(reinterpret_cast<const char*>(&v), 4);
  for (std::int64_t i = 0; i < floats; ++i) {
    const float f = 0.01f * static_cast<float>(i % 97) - 0.3f;
    bytes.append(reinterpret_cast<const char*>(&f), 4);
  }
  return bytes;
}

TEST(LlamaCheckpoint, LoadsTheRealModel) {
  LOWBIT_REQUIRE_SHARED(kModel);
  const auto w = lowbit::nn::load_llama_checkpoint(lowbit_test::shared_file(kModel));
  const auto& c = w.config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(w.wk.size(), 5u * 32 * 64);
  EXPECT_EQ(w.w2.size(), 5u * 64 * 172);
  EXPECT_EQ(&w.classifier(), &w.token_embedding);
}

TEST(LlamaCheckpoint, SeparateClassifierIsReadAfterTheFreqTables) {
  const fs::path p = scratch("separate.bin");
  const std::string bytes = tiny_checkpoint(-5);
  write_bytes(p, bytes);
  const auto w = lowbit::nn::load_llama_checkpoint(p);
  EXPECT_FALSE(w.config.shared_classifier);
  EXPECT_EQ(w.config.vocab_size, 5);
  ASSERT_EQ(w.wcls.size(), 20u);
  // wcls is the last 20 floats of the file.
  for (std::size_t i = 0; i < 20; ++i) {
    float f;
    std::memcpy(&f, bytes.data() + bytes.size() - 80 + 4 * i, 4);
    EXPECT_EQ(w.wcls[i], f) << i;
  }
  EXPECT_EQ(&w.classifier(), &w.wcls);
  LlamaModel m(w, LlamaQuantConfig{});
  const std::vector<float> logits = m.forward(3, 0);
  ASSERT_EQ(logits.size(), 5u);
  for (float v : logits) EXPECT_TRUE(std::isfinite(v));
  // Shared: the same file without wcls, vocab positive.
  write_bytes(p, tiny_checkpoint(5));
  EXPECT_TRUE(lowbit::nn::load_llama_checkpoint(p).config.shared_classifier);
}

TEST(LlamaCheckpoint, RejectsTruncatedAndCorruptFiles) {
  const fs::path p = scratch("bad.bin");
  expect_error([&] { lowbit::nn::load_llama_checkpoint(scratch("missing.bin")); }, "cannot open");
  write_bytes(p, std::string(20, '\0'));
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "shorter than the 28-byte header");
  const std::string good = tiny_checkpoint(5);
  write_bytes(p, good.substr(0, good.size() - 4));
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "truncated");
  write_bytes(p, tiny_checkpoint(5, 1));
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "trailing");
  // A separate classifier announced (vocab < 0) but not present.
  write_bytes(p, tiny_checkpoint(-5).substr(0, good.size()));
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "separate classifier");
  std::string zero = good;
  std::memset(zero.data(), 0, 4);  // dim = 0
  write_bytes(p, zero);
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "positive");
  std::string heads = good;
  const int three = 3;
  std::memcpy(heads.data() + 12, &three, 4);  // n_heads = 3 does not divide dim = 4
  write_bytes(p, heads);
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "n_heads");
}

TEST(LlamaCheckpoint, RejectsATruncatedCopyOfTheRealModel) {
  LOWBIT_REQUIRE_SHARED(kModel);
  const std::string bytes = read_all(lowbit_test::shared_file(kModel));
  const fs::path p = scratch("truncated.bin");
  write_bytes(p, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { lowbit::nn::load_llama_checkpoint(p); }, "implies 1056540 bytes");
}

TEST(LlamaTokenizer, FirstStoryEncodesAsRunC) {
  LOWBIT_REQUIRE_SHARED(kTokenizer);
  LOWBIT_REQUIRE_SHARED(kText);
  const auto tok = lowbit::nn::LlamaTokenizer::load(lowbit_test::shared_file(kTokenizer), 512);
  EXPECT_EQ(tok.max_token_length(), 7);
  EXPECT_EQ(tok.piece(1), "\n<s>\n");
  EXPECT_EQ(tok.piece(2), "\n</s>\n");
  EXPECT_EQ(tok.lookup(" "), 410);
  const auto stories = lowbit::nn::split_stories(read_all(lowbit_test::shared_file(kText)));
  ASSERT_EQ(stories.size(), 22u);
  const std::vector<int> ids = tok.encode(stories[0], true, false);
  EXPECT_EQ(ids.size(), 170u);
  const std::vector<int> head = {1, 301, 427, 309, 426, 301, 427, 309, 394, 265, 262, 415,
                                 271, 422, 280, 295, 269, 336, 432, 313, 448, 327, 432, 410};
  ASSERT_GE(ids.size(), head.size());
  EXPECT_EQ(std::vector<int>(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(head.size())), head);
  // Byte fallback: a code point not in the vocabulary becomes its UTF-8 bytes + 3.
  ASSERT_EQ(tok.lookup("\xE4\xB8\xAD"), -1);  // U+4E2D
  EXPECT_EQ(tok.encode("\xE4\xB8\xAD", false, true), (std::vector<int>{410, 0xE4 + 3, 0xB8 + 3, 0xAD + 3, 2}));
  EXPECT_EQ(tok.encode("", true, false), std::vector<int>{1});
}

TEST(LlamaTokenizer, RejectsTruncatedFilesAndWrongVocabularySizes) {
  LOWBIT_REQUIRE_SHARED(kTokenizer);
  const std::string bytes = read_all(lowbit_test::shared_file(kTokenizer));
  const fs::path p = scratch("tok.bin");
  write_bytes(p, bytes.substr(0, bytes.size() - 3));
  expect_error([&] { lowbit::nn::LlamaTokenizer::load(p, 512); }, "truncated");
  write_bytes(p, bytes.substr(0, 2));
  expect_error([&] { lowbit::nn::LlamaTokenizer::load(p, 512); }, "header");
  expect_error([&] { lowbit::nn::LlamaTokenizer::load(lowbit_test::shared_file(kTokenizer), 500); }, "trailing");
}

TEST(LlamaEval, SplitsAndStripsStories) {
  const auto s = lowbit::nn::split_stories("  one\n<|endoftext|>\n two \n<|endoftext|>\n\n<|endoftext|>\n");
  EXPECT_EQ(s, (std::vector<std::string>{"one", "two"}));
}

struct RealModel {
  lowbit::nn::LlamaWeights weights;
  std::vector<std::vector<int>> stories;
};

const RealModel& real_model() {
  static const RealModel m = [] {
    RealModel r;
    r.weights = lowbit::nn::load_llama_checkpoint(lowbit_test::shared_file(kModel));
    const auto tok = lowbit::nn::LlamaTokenizer::load(lowbit_test::shared_file(kTokenizer), r.weights.config.vocab_size);
    r.stories = lowbit::nn::encode_stories(tok, read_all(lowbit_test::shared_file(kText)));
    return r;
  }();
  return m;
}

#define REQUIRE_REAL_MODEL()          \
  LOWBIT_REQUIRE_SHARED(kModel);      \
  LOWBIT_REQUIRE_SHARED(kTokenizer);  \
  LOWBIT_REQUIRE_SHARED(kText)

lowbit::nn::EvalMetrics perplexity_of(const std::string& weights, std::int64_t tokens) {
  LlamaQuantConfig q;
  q.weights = weights;
  LlamaModel m(real_model().weights, q);
  return lowbit::nn::perplexity(lowbit::nn::score_stories(m, real_model().stories, tokens));
}

TEST(LlamaEval, Fp32PerplexityMatchesTheReference) {
  REQUIRE_REAL_MODEL();
  const auto m = perplexity_of("fp32", 2000);
  EXPECT_EQ(m.tokens, 2000);
  EXPECT_NEAR(m.nll, 1.17310, 5e-6);
  EXPECT_NEAR(m.ppl, 3.2320, 5e-5);
}

TEST(LlamaEval, IntegerBlock32RowsMatchTheReference) {
  // The README's int8 / int4 rows: symmetric, scale = amax / qmax (fp32), nearest-even,
  // blocks of 32 along the input dimension: lowbit's int<W>_b32_fp32.
  REQUIRE_REAL_MODEL();
  EXPECT_NEAR(perplexity_of("int8_b32_fp32", 2000).ppl, 3.2315, 5e-5);
  EXPECT_NEAR(perplexity_of("int4_b32_fp32", 2000).ppl, 3.6562, 5e-5);
}

TEST(LlamaEval, AllTokensAndLongStoriesFollowTheProtocol) {
  // The second story (619 tokens after BOS) is cut to the 512-token context: 7158 in all.
  REQUIRE_REAL_MODEL();
  const auto m = perplexity_of("fp32", 0);
  EXPECT_EQ(m.tokens, 7158);
  EXPECT_NEAR(m.ppl, 3.3169, 5e-5);
}

TEST(LlamaModel, BatchedForwardEqualsOneTokenAtATime) {
  REQUIRE_REAL_MODEL();
  const std::vector<int>& story = real_model().stories[0];
  const int n = 40;
  for (const auto& [w, a, at] : {std::array<const char*, 3>{"fp32", "", ""},
                                 {"mxfp4", "mxint8", "bfp8_b16"},
                                 {"int4_b32_fp32", "fp8_e4m3_pt", "mxfp8_e4m3"}}) {
    SCOPED_TRACE(std::string(w) + " " + a + " " + at);
    LlamaQuantConfig q;
    q.weights = w;
    q.acts = a;
    q.attn = at;
    LlamaModel batch(real_model().weights, q), single(real_model().weights, q);
    std::vector<float> all(static_cast<std::size_t>(n) * 512);
    // Two calls (0..24, 25..39) through the cache, against 40 calls of one token.
    batch.forward(std::span<const int>(story.data(), 25), 0, lowbit::MatrixRef<float>::row_major(all.data(), 25, 512));
    batch.forward(std::span<const int>(story.data() + 25, n - 25), 25,
                  lowbit::MatrixRef<float>::row_major(all.data() + 25 * 512, n - 25, 512));
    for (int t = 0; t < n; ++t) {
      const std::vector<float> one = single.forward(story[static_cast<std::size_t>(t)], t);
      for (int j = 0; j < 512; ++j) ASSERT_EQ(all[static_cast<std::size_t>(t) * 512 + static_cast<std::size_t>(j)], one[static_cast<std::size_t>(j)]) << t << "," << j;
    }
  }
}

TEST(LlamaModel, InjectedOutliersLeaveTheFloatModelUnchanged) {
  REQUIRE_REAL_MODEL();
  const std::vector<int>& story = real_model().stories[1];
  const std::int64_t n = 60;
  LlamaQuantConfig plain, outliers;
  outliers.inject_outliers = true;
  LlamaModel a(real_model().weights, plain), b(real_model().weights, outliers);
  std::vector<float> la(static_cast<std::size_t>(n) * 512), lb(la.size());
  a.forward(std::span<const int>(story.data(), static_cast<std::size_t>(n)), 0, lowbit::MatrixRef<float>::row_major(la.data(), n, 512));
  b.forward(std::span<const int>(story.data(), static_cast<std::size_t>(n)), 0, lowbit::MatrixRef<float>::row_major(lb.data(), n, 512));
  EXPECT_EQ(la, lb);
  // ... while a per-tensor integer format now sees them and loses accuracy.
  outliers.weights = "int8_b32_fp32";
  outliers.acts = "int8_pt_fp32";
  LlamaModel c(real_model().weights, outliers);
  plain.weights = outliers.weights;
  plain.acts = outliers.acts;
  LlamaModel d(real_model().weights, plain);
  const auto ref = lowbit::nn::score_stories(a, real_model().stories, 300);
  const double kl_outliers = lowbit::nn::compare(ref, lowbit::nn::score_stories(c, real_model().stories, 300)).kl;
  const double kl_plain = lowbit::nn::compare(ref, lowbit::nn::score_stories(d, real_model().stories, 300)).kl;
  EXPECT_GT(kl_outliers, 10 * kl_plain);
}

TEST(LlamaEval, CompareMeasuresAgainstTheReference) {
  REQUIRE_REAL_MODEL();
  LlamaModel fp32(real_model().weights, LlamaQuantConfig{});
  const auto ref = lowbit::nn::score_stories(fp32, real_model().stories, 200);
  const auto self = lowbit::nn::compare(ref, ref);
  EXPECT_EQ(self.kl, 0.0);
  EXPECT_EQ(self.top1, 1.0);
  LlamaQuantConfig q;
  q.weights = "int4_b32_fp32";
  LlamaModel int4(real_model().weights, q);
  const auto s = lowbit::nn::score_stories(int4, real_model().stories, 200);
  // KL and agreement recomputed here from the stored distributions.
  double kl = 0;
  std::int64_t agree = 0;
  for (std::int64_t i = 0; i < ref.count(); ++i) {
    const auto p = ref.row(i), r = s.row(i);
    std::size_t ap = 0, ar = 0;
    for (std::size_t j = 0; j < p.size(); ++j) {
      kl += std::exp(p[j]) * (p[j] - r[j]);
      if (p[j] > p[ap]) ap = j;
      if (r[j] > r[ar]) ar = j;
    }
    agree += ap == ar;
  }
  const auto m = lowbit::nn::compare(ref, s);
  EXPECT_NEAR(m.kl, kl / 200, 1e-12);
  EXPECT_NEAR(m.top1, static_cast<double>(agree) / 200, 1e-12);
  EXPECT_GT(m.kl, 0.01);
  EXPECT_LT(m.top1, 1.0);
  const auto shorter = lowbit::nn::score_stories(int4, real_model().stories, 100);
  EXPECT_THROW(lowbit::nn::compare(ref, shorter), lowbit::Error);
}

}  // namespace
