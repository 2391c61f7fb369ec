// lowbit-llama-eval: a llama2.c checkpoint evaluated with its linear layers (and optionally
// its activations and attention matmuls) in lowbit formats, one table row per weight format.
//
//   lowbit-llama-eval --model stories260K.bin --tokenizer tok512.bin --text stories.txt
//                     [--tokens N] [--weights F1,F2,...] [--acts F|same] [--attn F|same]
//                     [--inject-outliers] [--format md|csv|json] [--csv FILE] [--json FILE]
//                     [--check] [--expect-fp32-ppl X]
//
// Every row is scored on the same tokens and compared with the all-fp32 model: perplexity,
// mean KL(fp32 || row) of the next-token distributions, top-1 agreement, tokens per second.
// Memory density is the paper's 32 (Nw + Na) / (Nw bw + Na ba) with Nw the weights of the
// linear layers and Na the values one token feeds into them (bw, ba: stored bits per weight
// and per activation value).
// --check fails (exit 1) unless: every result is finite; the fp32 row reproduces
// --expect-fp32-ppl to 4 decimals; 8-bit integer block formats stay within 0.5% of the fp32
// perplexity; within a family (the same name up to the element width) more bits never give
// a perplexity worse by more than 0.5%.
#include <CLI/CLI.hpp>
#include <lowbit/nn/eval.hpp>
#include <lowbit/nn/llama.hpp>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

namespace {

using lowbit::nn::EvalMetrics;

const std::vector<std::string> kDefaultWeights = {
    "fp32",     "mxfp8_e4m3", "mxfp6_e3m2", "mxfp6_e2m3",    "mxfp4",         "mxint8",      "bfp8_b16", "bfp8_b32",
    "bfp6_b16", "bfp6_b32",   "bfp4_b16",   "bfp4_b32",      "int8_b32_fp32", "int4_b32_fp32", "int8_pt_fp32", "fp8_e4m3_pt",
    "nvfp4",    "nf4_b64"};

struct Row {
  std::string weights, acts, attn;
  double bits_per_weight = 32, bits_per_act = 32, density = 1;
  EvalMetrics m;
  double tokens_per_second = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw lowbit::Error("text " + path, "cannot open the file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double act_bits(const std::string& name) {
  return name.empty() || name == "fp32" ? 32.0 : lowbit::Quantizer(name).info().bits_per_element;
}

std::string shown(const std::string& f) { return f.empty() ? "fp32" : f; }

// The name with its element width replaced by '#' and an _e<E>m<M> split dropped:
// bfp6_b16 -> bfp#_b16, mxfp6_e2m3 -> mxfp#, int4_b32_fp32 -> int#_b32_fp32.
std::string family_of(const std::string& name) {
  std::string out;
  bool replaced = false;
  for (std::size_t i = 0; i < name.size();) {
    if (!replaced && std::isdigit(static_cast<unsigned char>(name[i]))) {
      out += '#';
      while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
      replaced = true;
      continue;
    }
    if (name[i] == '_' && i + 1 < name.size() && name[i + 1] == 'e' && name.find('m', i) != std::string::npos &&
        i + 2 < name.size() && std::isdigit(static_cast<unsigned char>(name[i + 2]))) {
      std::size_t j = i + 2;
      while (j < name.size() && name[j] != '_') ++j;
      i = j;
      continue;
    }
    out += name[i++];
  }
  return out;
}

void print_markdown(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f, "| weights | acts | attn | bits/weight | bits/act | memory density | PPL | KL | top-1 | tok/s |\n");
  std::fprintf(f, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows)
    std::fprintf(f, "| %s | %s | %s | %.3f | %.3f | %.2fx | %.4f | %.5f | %.2f%% | %.0f |\n", r.weights.c_str(),
                 r.acts.c_str(), r.attn.c_str(), r.bits_per_weight, r.bits_per_act, r.density, r.m.ppl, r.m.kl,
                 100.0 * r.m.top1, r.tokens_per_second);
}

void print_csv(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f, "weights,acts,attn,bits_per_weight,bits_per_act,memory_density,tokens,nll,ppl,kl,top1,tokens_per_second\n");
  for (const Row& r : rows)
    std::fprintf(f, "%s,%s,%s,%.6f,%.6f,%.6f,%lld,%.8f,%.8f,%.8g,%.8f,%.1f\n", r.weights.c_str(), r.acts.c_str(),
                 r.attn.c_str(), r.bits_per_weight, r.bits_per_act, r.density, static_cast<long long>(r.m.tokens),
                 r.m.nll, r.m.ppl, r.m.kl, r.m.top1, r.tokens_per_second);
}

void print_json(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f, "[\n");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::fprintf(f,
                 "  {\"weights\": \"%s\", \"acts\": \"%s\", \"attn\": \"%s\", \"bits_per_weight\": %.6f, "
                 "\"bits_per_act\": %.6f, \"memory_density\": %.6f, \"tokens\": %lld, \"nll\": %.8f, \"ppl\": %.8f, "
                 "\"kl\": %.8g, \"top1\": %.8f, \"tokens_per_second\": %.1f}%s\n",
                 r.weights.c_str(), r.acts.c_str(), r.attn.c_str(), r.bits_per_weight, r.bits_per_act, r.density,
                 static_cast<long long>(r.m.tokens), r.m.nll, r.m.ppl, r.m.kl, r.m.top1, r.tokens_per_second,
                 i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "]\n");
}

void write_file(const std::string& path, void (*print)(std::FILE*, const std::vector<Row>&), const std::vector<Row>& rows) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw lowbit::Error("output " + path, "cannot open for writing");
  print(f, rows);
  std::fclose(f);
}

// 8-bit integer elements with a block scale (mxint8, bfp8_b*, int8_b*): the formats held to
// 0.5% of fp32. FP8 elements keep 3 mantissa bits and lose about 1% on this small model.
bool is_8bit_int_block(const std::string& name) {
  if (name.empty() || name == "fp32") return true;  // float operands do not count against the check
  const lowbit::Quantizer q(name);
  return std::holds_alternative<lowbit::FixedPointFormat>(q.format()) && q.info().element_bits == 8 &&
         q.info().block_size > 0;
}

int check(const std::vector<Row>& rows, double fp32_ppl, double expect_fp32) {
  int failures = 0;
  const auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "check failed: %s\n", what.c_str());
    ++failures;
  };
  for (const Row& r : rows)
    if (!std::isfinite(r.m.ppl) || !std::isfinite(r.m.kl) || !std::isfinite(r.m.top1))
      fail(r.weights + ": non-finite result");
  if (expect_fp32 > 0 && std::fabs(fp32_ppl - expect_fp32) >= 5e-5)
    fail("fp32 perplexity " + std::to_string(fp32_ppl) + " does not round to " + std::to_string(expect_fp32));
  for (const Row& r : rows)
    if (r.weights != "fp32" && is_8bit_int_block(r.weights) && is_8bit_int_block(r.acts) && is_8bit_int_block(r.attn) &&
        r.m.ppl > fp32_ppl * 1.005)
      fail(r.weights + ": perplexity " + std::to_string(r.m.ppl) + " is more than 0.5% above fp32's " +
           std::to_string(fp32_ppl));
  std::map<std::string, std::vector<const Row*>> families;
  for (const Row& r : rows)
    if (r.weights != "fp32") families[family_of(r.weights)].push_back(&r);
  for (const auto& [family, members] : families)
    for (const Row* a : members)
      for (const Row* b : members)
        if (a->bits_per_weight > b->bits_per_weight && a->m.ppl > b->m.ppl * 1.005)
          fail(family + ": " + a->weights + " (" + std::to_string(a->m.ppl) + ") is worse than " + b->weights + " (" +
               std::to_string(b->m.ppl) + ")");
  if (failures == 0) std::fprintf(stderr, "check passed: %zu rows\n", rows.size());
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Perplexity, KL and top-1 of a llama2.c model with its layers in lowbit formats"};
  std::string model_path, tokenizer_path, text_path, acts, attn, out_format = "md", csv_path, json_path;
  std::int64_t tokens = 2000;
  std::vector<std::string> weights = kDefaultWeights;
  bool inject = false, run_check = false;
  double expect_fp32 = 0;
  app.add_option("--model", model_path, "llama2.c checkpoint (legacy format)")->required()->check(CLI::ExistingFile);
  app.add_option("--tokenizer", tokenizer_path, "llama2.c tokenizer file")->required()->check(CLI::ExistingFile);
  app.add_option("--text", text_path, "evaluation text, stories separated by <|endoftext|>")->required()->check(CLI::ExistingFile);
  app.add_option("--tokens", tokens, "score the first N tokens (0: all)")->capture_default_str();
  app.add_option("--weights", weights, "weight formats, one row each")->delimiter(',');
  app.add_option("--acts", acts, "activation format of the linear layers ('same': the row's weight format)");
  app.add_option("--attn", attn, "format of the attention matmuls' operands ('same': the row's weight format)");
  app.add_flag("--inject-outliers", inject, "scale input channels 2 and 11 of every linear layer by 64 (weights by 1/64)");
  app.add_option("--format", out_format, "table on stdout: md, csv or json")->check(CLI::IsMember({"md", "csv", "json"}))->capture_default_str();
  app.add_option("--csv", csv_path, "also write the table as CSV");
  app.add_option("--json", json_path, "also write the table as JSON");
  app.add_flag("--check", run_check, "exit 1 unless the results hold what CI asserts");
  app.add_option("--expect-fp32-ppl", expect_fp32, "with --check: the fp32 perplexity to reproduce (4 decimals)");
  CLI11_PARSE(app, argc, argv);

  try {
    const lowbit::nn::LlamaWeights w = lowbit::nn::load_llama_checkpoint(model_path);
    const auto tok = lowbit::nn::LlamaTokenizer::load(tokenizer_path, w.config.vocab_size);
    const auto stories = lowbit::nn::encode_stories(tok, read_text(text_path));

    lowbit::nn::LlamaQuantConfig fp32_cfg;
    fp32_cfg.inject_outliers = inject;
    lowbit::nn::LlamaModel reference(w, fp32_cfg);
    const lowbit::nn::NextTokenScores ref = lowbit::nn::score_stories(reference, stories, tokens);
    const double fp32_ppl = lowbit::nn::perplexity(ref).ppl;

    std::vector<Row> rows;
    for (const std::string& wf : weights) {
      lowbit::nn::LlamaQuantConfig cfg = fp32_cfg;
      cfg.weights = wf;
      cfg.acts = acts == "same" ? wf : acts;
      cfg.attn = attn == "same" ? wf : attn;
      lowbit::nn::LlamaModel model(w, cfg);
      const lowbit::nn::NextTokenScores s = lowbit::nn::score_stories(model, stories, tokens);
      Row r;
      r.weights = wf;
      r.acts = shown(cfg.acts);
      r.attn = shown(cfg.attn);
      r.bits_per_weight = model.weight_bits_per_element();
      r.bits_per_act = act_bits(cfg.acts);
      const double nw = static_cast<double>(model.linear_weight_count());
      const double na = static_cast<double>(model.linear_input_count_per_token());
      r.density = 32.0 * (nw + na) / (nw * r.bits_per_weight + na * r.bits_per_act);
      r.m = lowbit::nn::compare(ref, s);
      r.tokens_per_second = s.seconds > 0 ? static_cast<double>(s.tokens_run) / s.seconds : 0.0;
      rows.push_back(r);
    }

    if (out_format == "csv") print_csv(stdout, rows);
    else if (out_format == "json") print_json(stdout, rows);
    else {
      std::printf("%lld tokens of %s, %zu stories; reference: fp32%s\n\n", static_cast<long long>(ref.count()),
                  text_path.c_str(), stories.size(), inject ? " with injected outliers (unchanged logits)" : "");
      print_markdown(stdout, rows);
    }
    if (!csv_path.empty()) write_file(csv_path, print_csv, rows);
    if (!json_path.empty()) write_file(json_path, print_json, rows);
    return run_check ? check(rows, fp32_ppl, expect_fp32) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
