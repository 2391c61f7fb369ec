// The `lowbit` command-line tool, run as a user runs it: its output files must equal what
// the library computes, and bad input must give a clear error and a non-zero exit.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lowbit/io/gguf.hpp"
#include "lowbit/io/npy.hpp"
#include "lowbit/io/packed_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/lowbit.hpp"

namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int status;
  std::string output;  // stdout and stderr together
};

ToolRun run_tool(const std::string& args, const std::string& env = "") {
  const fs::path log = fs::temp_directory_path() / ("lowbit_tool_" + std::to_string(::getpid()) + ".log");
  const std::string cmd = env + " " + std::string(LOWBIT_TOOL_PATH) + " " + args + " > " + log.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  fs::remove(log);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ss.str()};
}

fs::path temp_file(const std::string& name) { return fs::temp_directory_path() / (std::to_string(::getpid()) + "_" + name); }

TEST(Tool, FormatsListsEveryStandardFormat) {
  const ToolRun r = run_tool("formats");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const std::string& n : lowbit::standard_format_names())
    EXPECT_NE(r.output.find(n + " "), std::string::npos) << n;
  const ToolRun csv = run_tool("formats --csv");
  ASSERT_EQ(csv.status, 0);
  EXPECT_NE(csv.output.find("mxfp4,mx/bm,4.25,4,8,32,6,1,0.5"), std::string::npos) << csv.output;
}

void check_quant(const std::string& format, const std::string& extra, const lowbit::QuantOptions& opt,
                 std::int64_t rows, std::int64_t cols) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (auto& v : x) v = nd(rng);
  const fs::path in = temp_file("in.npy"), out = temp_file("out.npy");
  lowbit::npy::write_float32(in, rows, cols, x.data());
  const ToolRun r = run_tool("quant --format " + format + " " + extra + " " + in.string() + " " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("SQNR"), std::string::npos);
  const lowbit::npy::FloatMatrix got = lowbit::npy::read_float32_matrix(out);
  ASSERT_EQ(got.rows, rows);
  ASSERT_EQ(got.cols, cols);
  std::vector<float> want(x.size());
  lowbit::Quantizer(format).fake_quant(lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols),
                                       lowbit::MatrixRef<float>::row_major(want.data(), rows, cols), opt);
  EXPECT_EQ(std::memcmp(got.values.data(), want.data(), want.size() * sizeof(float)), 0) << format << " " << extra;
  fs::remove(in);
  fs::remove(out);
}

TEST(Tool, QuantMatchesTheLibrary) {
  check_quant("mxfp4", "", {}, 9, 70);
  lowbit::QuantOptions away;
  away.rounding = lowbit::Rounding::NearestAway;
  check_quant("bfp6_b16", "--round away", away, 5, 33);
  lowbit::QuantOptions sr;
  sr.rounding = lowbit::Rounding::Stochastic;
  sr.seed = 99;
  check_quant("int4_b32_fp16", "--round stochastic --seed 99", sr, 4, 65);
  lowbit::QuantOptions col;
  col.blocking = lowbit::Blocking::along(0, 8);
  check_quant("nvfp4", "--axis 0 --block 8", col, 20, 3);
}

TEST(Tool, InfoNamesTheSimdPath) {
  const ToolRun r = run_tool("info");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("simd path: " + std::string(lowbit::to_string(lowbit::active_simd_path()))), std::string::npos)
      << r.output;
  const ToolRun forced = run_tool("info", "LOWBIT_SIMD=scalar");
  EXPECT_EQ(forced.status, 0);
  EXPECT_NE(forced.output.find("simd path: scalar"), std::string::npos) << forced.output;
  const ToolRun bad = run_tool("info", "LOWBIT_SIMD=sse9");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("sse9"), std::string::npos) << bad.output;
}

TEST(Tool, BadInputFailsClearly) {
  const fs::path junk = temp_file("junk.npy");
  std::ofstream(junk) << "not an npy file";
  ToolRun r = run_tool("quant --format mxfp4 " + junk.string() + " " + temp_file("o.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("lowbit: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(junk.string()), std::string::npos) << r.output;
  fs::remove(junk);
  r = run_tool("quant --format mxfp5 in.npy out.npy");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("accepted:"), std::string::npos) << r.output;
  r = run_tool("quant --format mxfp4 --round sideways in.npy out.npy");
  EXPECT_NE(r.status, 0);
  r = run_tool("bogus");
  EXPECT_NE(r.status, 0);
}

// ---- inspect, compare, quantize on small files made here ----------------------------------------

namespace st = lowbit::safetensors;

std::vector<float> gaussian(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// A small model: two weights of different sizes (so the summary's weighting shows) and a norm.
struct SmallModel {
  fs::path path = temp_file("model.safetensors");
  std::vector<float> q = gaussian(16 * 64, 1), k = gaussian(8 * 96, 2), norm = gaussian(64, 3);
  SmallModel() {
    q[7] = 30.0f;  // an outlier
    st::Writer w(path, {{"blk.0.attn_q.weight", st::Dtype::F32, {16, 64}}, {"blk.0.attn_k.weight", st::Dtype::F32, {8, 96}},
                        {"blk.0.attn_norm.weight", st::Dtype::F32, {64}}},
                 {{"format", "pt"}});
    w.write_floats(q);
    w.write_floats(k);
    w.write_floats(norm);
    w.finish();
  }
  ~SmallModel() { fs::remove(path); }
};

TEST(Tool, InspectReportsShapesAndStatistics) {
  // flat: +-1 with mean 0 (std 1, kurtosis 1, no outliers); spiky: column 3 is +-10.
  std::vector<float> flat(4 * 8), spiky(4 * 8);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 8; ++c) {
      const float s = (r + c) % 2 ? -1.0f : 1.0f;
      flat[static_cast<std::size_t>(r * 8 + c)] = s;
      spiky[static_cast<std::size_t>(r * 8 + c)] = c == 3 ? 10.0f * s : s;
    }
  const fs::path p = temp_file("stats.safetensors");
  {
    st::Writer w(p, {{"flat", st::Dtype::F32, {4, 8}}, {"spiky", st::Dtype::BF16, {4, 8}}});
    w.write_floats(flat);
    w.write_floats(spiky);
    w.finish();
  }
  const ToolRun r = run_tool("inspect " + p.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 tensors, 64 elements"), std::string::npos) << r.output;
  std::istringstream lines(r.output);
  std::string line, flat_line, spiky_line;
  while (std::getline(lines, line)) {
    if (line.rfind("flat ", 0) == 0) flat_line = line;
    if (line.rfind("spiky ", 0) == 0) spiky_line = line;
  }
  std::istringstream fl(flat_line), sl(spiky_line);
  std::string name, dtype, shape1, shape2, size, unit, absmax, stdev, kurt, outl;
  fl >> name >> dtype >> shape1 >> shape2 >> size >> unit >> absmax >> stdev >> kurt >> outl;
  EXPECT_EQ(dtype, "F32");
  EXPECT_EQ(shape1 + shape2, "[4,8]");
  EXPECT_EQ(size, "128");
  EXPECT_EQ(std::stod(absmax), 1.0);
  EXPECT_EQ(std::stod(stdev), 1.0);
  EXPECT_EQ(std::stod(kurt), 1.0);
  EXPECT_EQ(outl, "0.00%");
  sl >> name >> dtype >> shape1 >> shape2 >> size >> unit >> absmax >> stdev >> kurt >> outl;
  EXPECT_EQ(dtype, "BF16");
  EXPECT_EQ(std::stod(absmax), 10.0);
  // mean 0, E[x^2] = (7 + 100) / 8, E[x^4] = (7 + 10^4) / 8
  EXPECT_NEAR(std::stod(stdev), std::sqrt(107.0 / 8), 1e-3);
  EXPECT_NEAR(std::stod(kurt), (10007.0 / 8) / (107.0 / 8 * 107.0 / 8), 1e-3);
  EXPECT_EQ(outl, "12.50%");  // one column of eight
  fs::remove(p);
}

// SQNR of fake_quant computed here, and MX saturation from the OCP rule: in a block of 32
// with absmax a, the scale is 2^(floor(log2 a) - 2) and anything above 7 scales (half a step past 6) clips.
struct Expected {
  double signal = 0, noise = 0;
  std::int64_t mx_saturated = 0;
};
Expected expected(const std::string& format, const std::vector<float>& x, std::int64_t rows, std::int64_t cols) {
  std::vector<float> y(x.size());
  lowbit::Quantizer(format).fake_quant(lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols),
                                       lowbit::MatrixRef<float>::row_major(y.data(), rows, cols));
  Expected e;
  for (std::size_t i = 0; i < x.size(); ++i) {
    e.signal += static_cast<double>(x[i]) * x[i];
    e.noise += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
  }
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t b = 0; b < cols; b += 32) {
      double a = 0;
      for (std::int64_t c = b; c < std::min(cols, b + 32); ++c) a = std::max(a, std::fabs(static_cast<double>(x[static_cast<std::size_t>(r * cols + c)])));
      const double top = 6.0 * std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 2);
      // Clipped: beyond half a step (FP4's top step, 6 - 4 = 2 scales) past the top; closer
      // values round to the top value on an unbounded grid too.
      for (std::int64_t c = b; c < std::min(cols, b + 32); ++c)
        e.mx_saturated += std::fabs(x[static_cast<std::size_t>(r * cols + c)]) > top * 7.0 / 6.0;
    }
  return e;
}

TEST(Tool, CompareJsonMatchesIndependentMetricsAndWeightsTheSummary) {
  const SmallModel m;
  const ToolRun r = run_tool("compare " + m.path.string() + " --formats mxfp4,bfp6_b16,int4_b32_fp16 --tensors attn_[qk] --output json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["tensors"].size(), 2u);  // the norm is not selected
  const std::vector<std::string> formats{"mxfp4", "bfp6_b16", "int4_b32_fp16"};
  const std::vector<double> bits{4.25, 6.5, 4.5};
  for (std::size_t f = 0; f < formats.size(); ++f) {
    const Expected eq = expected(formats[f], m.q, 16, 64), ek = expected(formats[f], m.k, 8, 96);
    const auto& rq = j["tensors"][0]["results"][f];
    const auto& rk = j["tensors"][1]["results"][f];
    EXPECT_EQ(j["tensors"][0]["name"], "blk.0.attn_q.weight");
    EXPECT_EQ(rq["format"], formats[f]);
    EXPECT_EQ(rq["bits_per_element"].get<double>(), bits[f]);
    EXPECT_NEAR(rq["sqnr_db"].get<double>(), 10 * std::log10(eq.signal / eq.noise), 1e-9) << formats[f];
    EXPECT_NEAR(rk["sqnr_db"].get<double>(), 10 * std::log10(ek.signal / ek.noise), 1e-9) << formats[f];
    EXPECT_NEAR(rq["mse"].get<double>(), eq.noise / 1024, 1e-12);
    const auto& s = j["summary"]["results"][f];
    EXPECT_NEAR(s["sqnr_db"].get<double>(), 10 * std::log10((eq.signal + ek.signal) / (eq.noise + ek.noise)), 1e-9);
    EXPECT_NEAR(s["mse"].get<double>(), (eq.noise + ek.noise) / (1024 + 768), 1e-12);
    if (formats[f] == "mxfp4") {
      EXPECT_EQ(rq["saturated"].get<std::int64_t>(), eq.mx_saturated);
      EXPECT_EQ(rk["saturated"].get<std::int64_t>(), ek.mx_saturated);
      EXPECT_GT(eq.mx_saturated, 0);
    }
    if (formats[f] == "bfp6_b16") {
      EXPECT_EQ(s["saturated"].get<std::int64_t>(), 0);  // BFP never clips
    }
  }
  EXPECT_EQ(j["summary"]["elements"].get<std::int64_t>(), 1024 + 768);
}

TEST(Tool, CompareGivesTheSameResultsOnAnyNumberOfThreads) {
  const SmallModel m;
  const std::string args = "compare " + m.path.string() + " --formats mxfp4,nf4_b64,bfp4_b16 --output json";
  const ToolRun one = run_tool(args + " --threads 1"), three = run_tool(args + " --threads 3");
  ASSERT_EQ(one.status, 0) << one.output;
  ASSERT_EQ(three.status, 0) << three.output;
  EXPECT_EQ(one.output, three.output);
  const auto j = nlohmann::json::parse(three.output);
  EXPECT_EQ(j["tensors"][2]["name"], "blk.0.attn_norm.weight");  // file order kept
}

TEST(Tool, CompareTablesMarkdownAndCsv) {
  const SmallModel m;
  const ToolRun csv = run_tool("compare " + m.path.string() + " --formats mxfp4,nvfp4 --output csv");
  ASSERT_EQ(csv.status, 0) << csv.output;
  std::istringstream in(csv.output);
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) rows += !line.empty();
  EXPECT_EQ(rows, 1 + 3 * 2 + 2);  // header, 3 tensors x 2 formats, 2 summary rows
  EXPECT_NE(csv.output.find("tensor,elements,format,bits_per_element,sqnr_db,mse,max_abs_error,saturated"), std::string::npos);
  const ToolRun md = run_tool("compare " + m.path.string() + " --formats mxfp4 --output md --tensors norm");
  ASSERT_EQ(md.status, 0) << md.output;
  EXPECT_NE(md.output.find("| blk.0.attn_norm.weight | 64 | mxfp4 | 4.25 |"), std::string::npos) << md.output;
  const ToolRun table = run_tool("compare " + m.path.string() + " --formats fp32");
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_NE(table.output.find("inf"), std::string::npos) << table.output;  // fp32 is exact
}

// Checks tags are balanced and properly nested (enough to know a browser can parse it).
bool well_formed(const std::string& x) {
  std::vector<std::string> stack;
  for (std::size_t i = x.find('<'); i != std::string::npos; i = x.find('<', i + 1)) {
    const std::size_t e = x.find('>', i);
    if (e == std::string::npos) return false;
    const std::string tag = x.substr(i + 1, e - i - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!' || tag.back() == '/') continue;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return false;
      stack.pop_back();
    } else {
      stack.push_back(tag.substr(0, tag.find(' ')));
    }
  }
  return stack.empty();
}

TEST(Tool, ComparePlotsOnePointPerFormatWithTheParetoFront) {
  const SmallModel m;
  const fs::path svg = temp_file("plot.svg");
  const std::string formats = "mxfp4,nvfp4,int4_b32_fp16,bfp6_b16,mxfp6_e2m3,bfp8_b16";
  const ToolRun r = run_tool("compare " + m.path.string() + " --formats " + formats + " --output json --plot " + svg.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream f(svg);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string x = ss.str();
  EXPECT_EQ(x.rfind("<?xml", 0), 0u);
  EXPECT_TRUE(well_formed(x));
  std::size_t circles = 0, front = 0;
  for (std::size_t i = x.find("<circle"); i != std::string::npos; i = x.find("<circle", i + 1)) {
    ++circles;
    front += x.compare(x.find("fill=", i), 14, "fill=\"#d62728\"") == 0;
  }
  EXPECT_EQ(circles, 6u);
  // The front from the summary: not beaten on both bits and SQNR by another format.
  const auto res = nlohmann::json::parse(r.output)["summary"]["results"];
  std::size_t want_front = 0;
  for (const auto& a : res) {
    bool dominated = false;
    for (const auto& b : res)
      dominated = dominated || (b["bits_per_element"] <= a["bits_per_element"] && b["sqnr_db"] >= a["sqnr_db"] &&
                                (b["bits_per_element"] < a["bits_per_element"] || b["sqnr_db"] > a["sqnr_db"]));
    want_front += !dominated;
  }
  EXPECT_EQ(front, want_front);
  EXPECT_GE(want_front, 2u);
  EXPECT_LT(want_front, 6u);
  fs::remove(svg);
}

TEST(Tool, QuantizeToGgufWritesGgmlBlocksOfLowbitsValues) {
  const SmallModel m;
  const fs::path out = temp_file("q8.gguf");
  const ToolRun r = run_tool("quantize " + m.path.string() + " " + out.string() + " --format int8_b32_fp16 --skip attn_k");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto g = lowbit::gguf::File::open(out);
  ASSERT_EQ(g.tensors().size(), 3u);
  EXPECT_EQ(g.tensors()[0].type, 8u);  // Q8_0
  EXPECT_EQ(g.tensors()[1].type, 0u);  // skipped: F32
  EXPECT_EQ(g.tensors()[2].type, 0u);  // 1-D: F32
  EXPECT_EQ(g.tensors()[0].ne, (std::vector<std::uint64_t>{64, 16}));
  ASSERT_NE(g.find("general.quantization_version"), nullptr);
  EXPECT_EQ(g.find("safetensors.format")->s, "pt");
  EXPECT_EQ(g.find("general.file_type")->u, 7u);  // LLAMA_FTYPE_MOSTLY_Q8_0
  std::vector<float> want(m.q.size());
  lowbit::Quantizer("int8_b32_fp16").fake_quant(lowbit::MatrixRef<const float>::row_major(m.q.data(), 16, 64),
                                                lowbit::MatrixRef<float>::row_major(want.data(), 16, 64));
  EXPECT_EQ(lowbit::gguf::to_float(g.tensors()[0]), want);
  EXPECT_EQ(lowbit::gguf::to_float(g.tensors()[1]), m.k);
  EXPECT_EQ(lowbit::gguf::to_float(g.tensors()[2]), m.norm);

  // GGUF in, GGUF out: the metadata is copied and F16 weights are requantised.
  using lowbit::gguf::Value;
  std::vector<std::byte> f16(m.q.size() * 2);
  std::vector<float> q16(m.q.size());
  for (std::size_t i = 0; i < m.q.size(); ++i) {
    const auto h = static_cast<std::uint16_t>(lowbit::FP16::encode(m.q[i]));
    std::memcpy(f16.data() + 2 * i, &h, 2);
    q16[i] = static_cast<float>(lowbit::FP16::decode(h));
  }
  const auto src = lowbit::gguf::serialize({{"general.architecture", Value::of_string("llama")},
                                            {"general.file_type", Value::of_u32(1)},
                                            {"llama.block_count", Value::of_u32(1)}},
                                           {{{"blk.0.attn_q.weight", {64, 16}, 1}, f16}});
  const fs::path in = temp_file("src.gguf"), out2 = temp_file("mx.gguf");
  std::ofstream(in, std::ios::binary).write(reinterpret_cast<const char*>(src.data()), static_cast<std::streamsize>(src.size()));
  const ToolRun r2 = run_tool("quantize " + in.string() + " " + out2.string() + " --format mxfp4");
  ASSERT_EQ(r2.status, 0) << r2.output;
  const auto g2 = lowbit::gguf::File::open(out2);
  EXPECT_EQ(g2.find("general.architecture")->s, "llama");
  EXPECT_EQ(g2.find("llama.block_count")->u, 1u);
  EXPECT_EQ(g2.find("lowbit.format")->s, "mxfp4");
  EXPECT_EQ(g2.find("general.file_type")->u, 38u);  // updated from MOSTLY_F16 to MOSTLY_MXFP4_MOE
  EXPECT_EQ(g2.metadata().size(), 5u);              // three copied, two added
  EXPECT_EQ(g2.tensors()[0].type, 39u);
  lowbit::Quantizer("mxfp4").fake_quant(lowbit::MatrixRef<const float>::row_major(q16.data(), 16, 64),
                                        lowbit::MatrixRef<float>::row_major(want.data(), 16, 64));
  EXPECT_EQ(lowbit::gguf::to_float(g2.tensors()[0]), want);
  for (const fs::path& p : {out, in, out2}) fs::remove(p);
}

TEST(Tool, QuantizeToPackedSafetensorsLoadsBackAsPackedMatrices) {
  const SmallModel m;
  const fs::path out = temp_file("packed.safetensors");
  const ToolRun r = run_tool("quantize " + m.path.string() + " " + out.string() + " --format nvfp4 --skip norm");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto pf = lowbit::packed::PackedFile::open(out);
  EXPECT_EQ(pf.format("blk.0.attn_q.weight"), "nvfp4");
  EXPECT_FALSE(pf.format("blk.0.attn_norm.weight").has_value());
  const lowbit::AnyPackedMatrix k = pf.load("blk.0.attn_k.weight");
  std::vector<float> want(m.k.size());
  lowbit::Quantizer("nvfp4").fake_quant(lowbit::MatrixRef<const float>::row_major(m.k.data(), 8, 96),
                                        lowbit::MatrixRef<float>::row_major(want.data(), 8, 96));
  EXPECT_EQ(k.unpack(), want);
  EXPECT_EQ(st::to_float(pf.file().tensor("blk.0.attn_norm.weight")), m.norm);
  // The packed file is itself an input: compare reads the packed values.
  const ToolRun c = run_tool("compare " + out.string() + " --formats fp32 --tensors attn_k --output csv");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("blk.0.attn_k.weight,768,fp32,32,inf,0,0,0"), std::string::npos) << c.output;
  fs::remove(out);
}

TEST(Tool, ShardedModelsAreOneInput) {
  const fs::path dir = temp_file("shards");
  fs::create_directories(dir);
  const std::vector<float> a = gaussian(64, 7), b = gaussian(32, 8);
  {
    st::Writer w(dir / "m-1.safetensors", {{"a", st::Dtype::F32, {2, 32}}});
    w.write_floats(a);
    w.finish();
    st::Writer w2(dir / "m-2.safetensors", {{"b", st::Dtype::F16, {1, 32}}});
    w2.write_floats(b);
    w2.finish();
  }
  std::ofstream(dir / "m.safetensors.index.json") << R"({"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors"}})";
  const ToolRun r = run_tool("inspect " + dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("safetensors (2 shards), 2 tensors, 96 elements"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

TEST(Tool, ExitCodesSayUsageErrorOrBadInput) {
  const SmallModel m;
  EXPECT_EQ(run_tool("compare " + m.path.string()).status, 2);  // --formats missing
  EXPECT_EQ(run_tool("compare " + m.path.string() + " --formats mxfp4 --output xml").status, 2);
  EXPECT_EQ(run_tool("quantize " + m.path.string()).status, 2);
  EXPECT_EQ(run_tool("inspect").status, 2);
  EXPECT_EQ(run_tool("inspect --bogus x").status, 2);
  EXPECT_EQ(run_tool("inspect --help").status, 0);
  ToolRun r = run_tool("compare " + m.path.string() + " --formats mxfp9");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("mxfp9"), std::string::npos) << r.output;
  r = run_tool("compare " + m.path.string() + " --formats mxfp4 --tensors '('");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--tensors"), std::string::npos) << r.output;
  r = run_tool("quantize " + m.path.string() + " " + temp_file("x.gguf").string() + " --format nvfp4");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no ggml block type"), std::string::npos) << r.output;
  const fs::path junk = temp_file("junk.safetensors");
  std::ofstream(junk) << "definitely not a model";
  r = run_tool("inspect " + junk.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find(junk.string()), std::string::npos) << r.output;
  fs::remove(junk);
}

}  // namespace
