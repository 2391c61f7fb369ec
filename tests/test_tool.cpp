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

#include "lowbit/io/npy.hpp"
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

}  // namespace
