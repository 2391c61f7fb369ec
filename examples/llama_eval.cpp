// lowbit-llama-eval: a llama2.c checkpoint evaluated with its linear layers (and optionally
// its activations and attention matmuls) in lowbit formats, one table row per weight format.
//
//   lowbit-llama-eval --model stories260K.bin --tokenizer tok512.bin --text stories.txt
//                     [--tokens N] [--weights F1,F2[@A],...] [--acts F|same] [--attn F|same]
//                     [--method rtn,gptq,awq,smoothquant,outlier] [--calib-stories N]
//                     [--calib-tokens N] [--alpha A] [--outlier-channels K] [--act-order]
//                     [--inject-outliers] [--format md|csv|json] [--csv FILE] [--json FILE]
//                     [--check] [--expect-fp32-ppl X]
//
// A weight entry F@A gives that row its own activation format A (W4A8 and W6A6 rows in one
// run: mxfp4,mxfp4@mxint8,bfp6_b16@bfp6_b16).
//
// Methods (one row per weight format and method): rtn rounds every weight to nearest; gptq,
// awq, smoothquant and outlier (lowbit/algo) use the inputs of every linear layer collected by
// running the fp32 model on the first --calib-stories stories, which are then left out of the
// evaluation (the two never share text).
//
// Every row is scored on the same tokens and compared with the all-fp32 model: perplexity,
// mean KL(fp32 || row) of the next-token distributions, top-1 agreement, tokens per second.
// Memory density is the paper's 32 (Nw + Na) / (Nw bw + Na ba) with Nw the weights of the
// linear layers and Na the values one token feeds into them (bw, ba: stored bits per weight
// and per activation value).
// --check fails (exit 1) unless: every result is finite; the fp32 row reproduces
// --expect-fp32-ppl to 4 decimals; 8-bit integer block formats stay within 0.5% of the fp32
// perplexity; within a family (the same name up to the element width) more bits never give
// a perplexity worse by more than 0.5% (round-to-nearest rows). With methods: with weights of
// 4 bits and below (activations fp32) GPTQ lowers the output error of every linear layer (on
// evaluation inputs) and the KL against RTN of the same format; with --inject-outliers SmoothQuant lowers the KL against RTN.
#include <CLI/CLI.hpp>
#include <lowbit/algo/awq.hpp>
#include <lowbit/algo/calibration.hpp>
#include <lowbit/algo/gptq.hpp>
#include <lowbit/algo/outlier_split.hpp>
#include <lowbit/algo/smoothquant.hpp>
#include <lowbit/nn/eval.hpp>
#include <lowbit/nn/llama.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
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
  std::string method = "rtn", weights, acts, attn;
  double bits_per_weight = 32, bits_per_act = 32, density = 1;
  EvalMetrics m;
  double tokens_per_second = 0;
  std::vector<double> layer_errors;  // per linear layer on evaluation inputs (rtn and gptq rows)
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
  std::fprintf(f, "| method | weights | acts | attn | bits/weight | bits/act | memory density | PPL | KL | top-1 | tok/s |\n");
  std::fprintf(f, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows)
    std::fprintf(f, "| %s | %s | %s | %s | %.3f | %.3f | %.2fx | %.4f | %.5f | %.2f%% | %.0f |\n", r.method.c_str(), r.weights.c_str(),
                 r.acts.c_str(), r.attn.c_str(), r.bits_per_weight, r.bits_per_act, r.density, r.m.ppl, r.m.kl,
                 100.0 * r.m.top1, r.tokens_per_second);
}

void print_csv(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f, "method,weights,acts,attn,bits_per_weight,bits_per_act,memory_density,tokens,nll,ppl,kl,top1,tokens_per_second\n");
  for (const Row& r : rows)
    std::fprintf(f, "%s,%s,%s,%s,%.6f,%.6f,%.6f,%lld,%.8f,%.8f,%.8g,%.8f,%.1f\n", r.method.c_str(), r.weights.c_str(), r.acts.c_str(),
                 r.attn.c_str(), r.bits_per_weight, r.bits_per_act, r.density, static_cast<long long>(r.m.tokens),
                 r.m.nll, r.m.ppl, r.m.kl, r.m.top1, r.tokens_per_second);
}

void print_json(std::FILE* f, const std::vector<Row>& rows) {
  std::fprintf(f, "[\n");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::fprintf(f,
                 "  {\"method\": \"%s\", \"weights\": \"%s\", \"acts\": \"%s\", \"attn\": \"%s\", \"bits_per_weight\": %.6f, "
                 "\"bits_per_act\": %.6f, \"memory_density\": %.6f, \"tokens\": %lld, \"nll\": %.8f, \"ppl\": %.8f, "
                 "\"kl\": %.8g, \"top1\": %.8f, \"tokens_per_second\": %.1f}%s\n",
                 r.method.c_str(), r.weights.c_str(), r.acts.c_str(), r.attn.c_str(), r.bits_per_weight, r.bits_per_act,
                 r.density, static_cast<long long>(r.m.tokens), r.m.nll, r.m.ppl, r.m.kl, r.m.top1, r.tokens_per_second,
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

int element_bits_of(const std::string& name) { return lowbit::Quantizer(name).info().element_bits; }

int check(const std::vector<Row>& rows, double fp32_ppl, double expect_fp32, bool inject) {
  int failures = 0;
  const auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "check failed: %s\n", what.c_str());
    ++failures;
  };
  for (const Row& r : rows)
    if (!std::isfinite(r.m.ppl) || !std::isfinite(r.m.kl) || !std::isfinite(r.m.top1))
      fail(r.method + " " + r.weights + ": non-finite result");
  if (expect_fp32 > 0 && std::fabs(fp32_ppl - expect_fp32) >= 5e-5)
    fail("fp32 perplexity " + std::to_string(fp32_ppl) + " does not round to " + std::to_string(expect_fp32));
  for (const Row& r : rows)
    if (r.method == "rtn" && r.weights != "fp32" && is_8bit_int_block(r.weights) && is_8bit_int_block(r.acts) &&
        is_8bit_int_block(r.attn) && r.m.ppl > fp32_ppl * 1.005)
      fail(r.weights + ": perplexity " + std::to_string(r.m.ppl) + " is more than 0.5% above fp32's " +
           std::to_string(fp32_ppl));
  std::map<std::string, std::vector<const Row*>> families;
  for (const Row& r : rows)
    if (r.method == "rtn" && r.weights != "fp32") families[family_of(r.weights) + " (acts " + r.acts + ", attn " + r.attn + ")"].push_back(&r);
  for (const auto& [family, members] : families)
    for (const Row* a : members)
      for (const Row* b : members)
        if (a->bits_per_weight > b->bits_per_weight && a->m.ppl > b->m.ppl * 1.005)
          fail(family + ": " + a->weights + " (" + std::to_string(a->m.ppl) + ") is worse than " + b->weights + " (" +
               std::to_string(b->m.ppl) + ")");
  // The methods against round-to-nearest in the same formats.
  for (const Row& r : rows) {
    const Row* base = nullptr;
    for (const Row& b : rows)
      if (b.method == "rtn" && b.weights == r.weights && b.acts == r.acts && b.attn == r.attn) base = &b;
    if (!base || r.weights == "fp32") continue;
    if (r.method == "gptq" && r.acts == "fp32" && element_bits_of(r.weights) <= 4) {
      if (!(r.m.kl < base->m.kl))
        fail("gptq " + r.weights + "/" + r.acts + ": KL " + std::to_string(r.m.kl) + " is not below RTN's " + std::to_string(base->m.kl));
      std::size_t lower = 0;
      for (std::size_t i = 0; i < r.layer_errors.size() && i < base->layer_errors.size(); ++i) lower += r.layer_errors[i] < base->layer_errors[i] ? 1 : 0;
      std::fprintf(stderr, "gptq %s: %zu of %zu linear layers have a lower output error than RTN\n", r.weights.c_str(), lower,
                   r.layer_errors.size());
      if (r.layer_errors.empty()) fail("gptq " + r.weights + ": no layer errors were measured");
      for (std::size_t i = 0; i < r.layer_errors.size() && i < base->layer_errors.size(); ++i)
        if (!(r.layer_errors[i] < base->layer_errors[i]))
          fail("gptq " + r.weights + ": linear layer " + std::to_string(i) + " output error " +
               std::to_string(r.layer_errors[i]) + " is not below RTN's " + std::to_string(base->layer_errors[i]));
    }
    if (r.method == "smoothquant" && inject && !(r.m.kl < base->m.kl))
      fail("smoothquant " + r.weights + "/" + r.acts + ": KL " + std::to_string(r.m.kl) + " is not below RTN's " +
           std::to_string(base->m.kl) + " with injected outliers");
  }
  if (failures == 0) std::fprintf(stderr, "check passed: %zu rows\n", rows.size());
  return failures == 0 ? 0 : 1;
}

// What the methods need from the calibration run, computed once.
class MethodContext {
 public:
  MethodContext(const lowbit::nn::LlamaWeights& w, const lowbit::algo::LlamaCalibration& cal, bool inject)
      : w_(w), cal_(cal), inject_(inject) {}

  const Eigen::MatrixXd& hessian(int layer, lowbit::nn::LinearName name) {
    const int key = layer * 4 + static_cast<int>(lowbit::nn::input_of(name));
    auto it = hessians_.find(key);
    if (it == hessians_.end()) it = hessians_.emplace(key, lowbit::algo::input_hessian(cal_.inputs(layer, name).matrix())).first;
    return it->second;
  }
  const std::vector<float>& channel_absmax(int layer, lowbit::nn::LinearName name) {
    const int key = layer * 4 + static_cast<int>(lowbit::nn::input_of(name));
    auto it = absmax_.find(key);
    if (it == absmax_.end()) it = absmax_.emplace(key, lowbit::algo::channel_absmax(cal_.inputs(layer, name).matrix())).first;
    return it->second;
  }
  const lowbit::nn::LlamaWeights& weights() const { return w_; }
  const lowbit::algo::LlamaCalibration& calibration() const { return cal_; }
  bool inject() const { return inject_; }

 private:
  const lowbit::nn::LlamaWeights& w_;
  const lowbit::algo::LlamaCalibration& cal_;
  bool inject_;
  std::map<int, Eigen::MatrixXd> hessians_;
  std::map<int, std::vector<float>> absmax_;
};

struct MethodOptions {
  double alpha = 0.5;
  std::int64_t outlier_channels = 2;
  bool act_order = false;
};

// The model for one row: the weights (folded for awq and smoothquant) and the config.
std::optional<lowbit::nn::LlamaModel> build_model(const std::string& method, const lowbit::nn::LlamaQuantConfig& cfg,
                                                  MethodContext* ctx, const MethodOptions& mo,
                                                  const lowbit::nn::LlamaWeights& w) {
  using lowbit::MatrixRef;
  using lowbit::nn::LinearName;
  using lowbit::nn::QuantLinear;
  if (method == "rtn") return lowbit::nn::LlamaModel(w, cfg);
  if (!ctx) throw lowbit::Error("--method " + method, "needs calibration text: pass --calib-stories N");
  lowbit::nn::LlamaQuantConfig c = cfg;
  if (method == "gptq") {
    const lowbit::Quantizer q(cfg.weights);
    lowbit::algo::GptqOptions go;
    go.act_order = mo.act_order;
    c.make_linear = [&, q, go](int layer, LinearName name, MatrixRef<const float> m) {
      return std::visit(
          [&](const auto& f) -> QuantLinear {
            if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
              const auto res = lowbit::algo::gptq(f, m, ctx->hessian(layer, name), go);
              return QuantLinear::from_packed(res.packed(), q.name(), {}, res.output_scale);
            } else {
              throw lowbit::Error("gptq", "format '" + q.name() + "' is fake-quant only (it has no codes)");
            }
          },
          q.format());
    };
    return lowbit::nn::LlamaModel(w, c);
  }
  if (method == "outlier") {
    const std::int64_t k = mo.outlier_channels;
    c.make_linear = [&, k, wf = cfg.weights](int layer, LinearName name, MatrixRef<const float> m) {
      const auto channels = lowbit::algo::top_channels(ctx->channel_absmax(layer, name), k);
      return lowbit::algo::split_linear(wf, lowbit::algo::split_channels(m, channels));
    };
    return lowbit::nn::LlamaModel(w, c);
  }
  if (method == "smoothquant")
    return lowbit::nn::LlamaModel(lowbit::algo::smooth_llama(w, ctx->calibration(), mo.alpha, ctx->inject()), cfg);
  if (method == "awq") {
    const auto make = [&](int, LinearName, MatrixRef<const float> m) {
      QuantLinear l = QuantLinear::from_name(cfg.weights, m);
      l.set_activation_format(cfg.acts);
      return l;
    };
    return lowbit::nn::LlamaModel(lowbit::algo::awq_llama(w, ctx->calibration(), ctx->inject(), make), cfg);
  }
  throw lowbit::Error("--method", "unknown method '" + method + "' (rtn, gptq, awq, smoothquant, outlier)");
}

// Squared output error of every linear layer of `model` against the float layer on inputs x
// (captured from the fp32 model), layers in block order wq wk wv wo w1 w2 w3.
std::vector<double> layer_errors(const lowbit::nn::LlamaModel& model, const lowbit::nn::LlamaModel& reference,
                                 const lowbit::algo::LlamaCalibration& inputs) {
  std::vector<double> out;
  for (int l = 0; l < model.config().n_layers; ++l)
    for (int n = 0; n < 7; ++n) {
      const auto name = static_cast<lowbit::nn::LinearName>(n);
      const lowbit::MatrixRef<const float> x = inputs.inputs(l, name).matrix();
      const auto& q = model.linear(l, name);
      const std::vector<float> wf = reference.linear(l, name).dequantized_weight();
      const std::int64_t o = q.out_features();
      std::vector<float> y(static_cast<std::size_t>(x.rows * o));
      q.forward(x, lowbit::MatrixRef<float>::row_major(y.data(), x.rows, o));
      double e = 0;
      for (std::int64_t t = 0; t < x.rows; ++t)
        for (std::int64_t r = 0; r < o; ++r) {
          double ref = 0;
          for (std::int64_t c = 0; c < x.cols; ++c)
            ref += static_cast<double>(x(t, c)) * static_cast<double>(wf[static_cast<std::size_t>(r * x.cols + c)]);
          const double d = static_cast<double>(y[static_cast<std::size_t>(t * o + r)]) - ref;
          e += d * d;
        }
      out.push_back(e);
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Perplexity, KL and top-1 of a llama2.c model with its layers in lowbit formats"};
  std::string model_path, tokenizer_path, text_path, acts, attn, out_format = "md", csv_path, json_path;
  std::int64_t tokens = 2000, calib_stories = 0, calib_tokens = 2000;
  std::vector<std::string> weights = kDefaultWeights, methods = {"rtn"};
  bool inject = false, run_check = false;
  double expect_fp32 = 0;
  MethodOptions mo;
  app.add_option("--model", model_path, "llama2.c checkpoint (legacy format)")->required()->check(CLI::ExistingFile);
  app.add_option("--tokenizer", tokenizer_path, "llama2.c tokenizer file")->required()->check(CLI::ExistingFile);
  app.add_option("--text", text_path, "evaluation text, stories separated by <|endoftext|>")->required()->check(CLI::ExistingFile);
  app.add_option("--tokens", tokens, "score the first N tokens (0: all)")->capture_default_str();
  app.add_option("--weights", weights, "weight formats, one row each (F@A: with activation format A)")->delimiter(',');
  app.add_option("--acts", acts, "activation format of the linear layers ('same': the row's weight format)");
  app.add_option("--attn", attn, "format of the attention matmuls' operands ('same': the row's weight format)");
  app.add_option("--method", methods, "quantisation methods, one row each per weight format: rtn, gptq, awq, smoothquant, outlier")
      ->delimiter(',')
      ->check(CLI::IsMember({"rtn", "gptq", "awq", "smoothquant", "outlier"}));
  app.add_option("--calib-stories", calib_stories, "the first N stories calibrate the methods and are not evaluated")
      ->capture_default_str();
  app.add_option("--calib-tokens", calib_tokens, "calibrate on at most N tokens of those stories (0: all)")->capture_default_str();
  app.add_option("--alpha", mo.alpha, "SmoothQuant's migration strength a")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--outlier-channels", mo.outlier_channels, "input channels the outlier split keeps in float")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--act-order", mo.act_order, "GPTQ visits columns by decreasing Hessian diagonal");
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
    auto stories = lowbit::nn::encode_stories(tok, read_text(text_path));
    if (calib_stories < 0 || calib_stories >= static_cast<std::int64_t>(stories.size()))
      throw lowbit::Error("--calib-stories", "must leave stories to evaluate (the text has " + std::to_string(stories.size()) + ")");
    // Calibration and evaluation never share a story.
    const std::vector<std::vector<int>> calib(stories.begin(), stories.begin() + calib_stories);
    stories.erase(stories.begin(), stories.begin() + calib_stories);

    lowbit::nn::LlamaQuantConfig fp32_cfg;
    fp32_cfg.inject_outliers = inject;
    lowbit::nn::LlamaModel reference(w, fp32_cfg);
    std::optional<lowbit::algo::LlamaCalibration> cal, held_out;
    std::optional<MethodContext> ctx;
    if (!calib.empty()) {
      cal.emplace(lowbit::algo::LlamaCalibration::collect(reference, calib, calib_tokens));
      ctx.emplace(w, *cal, inject);
    }
    const bool want_layer_errors = std::find(methods.begin(), methods.end(), "gptq") != methods.end();
    if (want_layer_errors) held_out.emplace(lowbit::algo::LlamaCalibration::collect(reference, stories, 512));
    const lowbit::nn::NextTokenScores ref = lowbit::nn::score_stories(reference, stories, tokens);
    const double fp32_ppl = lowbit::nn::perplexity(ref).ppl;

    std::vector<Row> rows;
    for (const std::string& entry : weights)
      for (const std::string& method : methods) {
        const std::size_t at = entry.find('@');
        const std::string wf = entry.substr(0, at);
        const std::string row_acts = at == std::string::npos ? acts : entry.substr(at + 1);
        if (wf == "fp32" && method != "rtn") continue;  // nothing to quantise
        lowbit::nn::LlamaQuantConfig cfg = fp32_cfg;
        cfg.weights = wf;
        cfg.acts = row_acts == "same" ? wf : row_acts;
        cfg.attn = attn == "same" ? wf : attn;
        std::optional<lowbit::nn::LlamaModel> model = build_model(method, cfg, ctx ? &*ctx : nullptr, mo, w);
        const lowbit::nn::NextTokenScores s = lowbit::nn::score_stories(*model, stories, tokens);
        Row r;
        r.method = method;
        r.weights = wf;
        r.acts = shown(cfg.acts);
        r.attn = shown(cfg.attn);
        r.bits_per_weight = model->weight_bits_per_element();
        r.bits_per_act = act_bits(cfg.acts);
        const double nw = static_cast<double>(model->linear_weight_count());
        const double na = static_cast<double>(model->linear_input_count_per_token());
        r.density = 32.0 * (nw + na) / (nw * r.bits_per_weight + na * r.bits_per_act);
        r.m = lowbit::nn::compare(ref, s);
        r.tokens_per_second = s.seconds > 0 ? static_cast<double>(s.tokens_run) / s.seconds : 0.0;
        if (held_out && (method == "rtn" || method == "gptq")) r.layer_errors = layer_errors(*model, reference, *held_out);
        rows.push_back(r);
      }

    if (out_format == "csv") print_csv(stdout, rows);
    else if (out_format == "json") print_json(stdout, rows);
    else {
      std::printf("%lld tokens of %s, %zu stories", static_cast<long long>(ref.count()), text_path.c_str(), stories.size());
      if (cal) std::printf(" (calibration: the %zu stories before them, %lld tokens)", calib.size(), static_cast<long long>(cal->tokens()));
      std::printf("; reference: fp32%s\n\n", inject ? " with injected outliers (unchanged logits)" : "");
      print_markdown(stdout, rows);
    }
    if (!csv_path.empty()) write_file(csv_path, print_csv, rows);
    if (!json_path.empty()) write_file(json_path, print_json, rows);
    return run_check ? check(rows, fp32_ppl, expect_fp32, inject) : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
