// lowbit demo: every standard format on one deterministic LLM-like weight tensor, one table
// sorted by bits per element. `--check` also verifies the properties the table should show.
#include <lowbit/lowbit.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sample_weights.hpp"

namespace {

struct Row {
  std::string name;
  double bits;
  lowbit::ErrorStats err;
};

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  const auto w = lowbit_examples::sample_weights();
  const auto in = lowbit::MatrixRef<const float>::row_major(w.values.data(), w.rows, w.cols);
  std::vector<float> out(w.values.size());
  const auto outref = lowbit::MatrixRef<float>::row_major(out.data(), w.rows, w.cols);

  std::vector<Row> rows;
  for (const std::string& name : lowbit::standard_format_names()) {
    const lowbit::Quantizer q(name);
    q.fake_quant(in, outref);  // blocks along each row (the input features), nearest-even
    rows.push_back({name, q.info().bits_per_element, lowbit::error_stats(in, outref)});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.bits < b.bits; });

  std::printf("lowbit demo: %lld x %lld sample weight tensor (Student-t tails, outlier channels every 97 columns)\n\n",
              static_cast<long long>(w.rows), static_cast<long long>(w.cols));
  std::printf("| %-18s | %9s | %8s | %9s | %11s |\n", "format", "bits/elem", "density", "SQNR (dB)", "max error");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(20, '-').c_str(), std::string(11, '-').c_str(),
              std::string(10, '-').c_str(), std::string(11, '-').c_str(), std::string(13, '-').c_str());
  for (const Row& r : rows)
    std::printf("| %-18s | %9.3f | %7.2fx | %9.2f | %11.4g |\n", r.name.c_str(), r.bits, lowbit::memory_density(r.bits),
                r.err.sqnr_db, r.err.max_abs_error);

  if (!check) return 0;
  // What the table must show, or something is broken:
  auto find = [&](const std::string& n) { return *std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == n; }); };
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    if (!ok) { std::printf("CHECK FAILED: %s\n", what); ++failures; }
  };
  expect(std::isinf(find("fp32").err.sqnr_db), "fp32 is the identity");
  expect(find("bfp4_b16").err.sqnr_db > find("fixed8_f7").err.sqnr_db,
         "4-bit blocks beat a per-tensor 8-bit fixed point on outlier channels");
  expect(find("mxfp6_e2m3").err.sqnr_db > find("mxfp4").err.sqnr_db, "more bits, less error (MX)");
  expect(find("bfp8_b16").err.sqnr_db > find("bfp6_b16").err.sqnr_db && find("bfp6_b16").err.sqnr_db > find("bfp4_b16").err.sqnr_db,
         "more bits, less error (BFP)");
  expect(find("bfp6_b16").err.sqnr_db > find("bfp6_b32").err.sqnr_db, "smaller blocks, less error");
  expect(find("int4_b32_fp16").err.sqnr_db > find("fp8_e4m3_pt").err.sqnr_db - 20.0, "int4 per block is competitive");
  for (const Row& r : rows) expect(r.err.count == w.rows * w.cols && r.err.skipped == 0, "every value compared");
  std::printf("\n%s\n", failures == 0 ? "demo checks: all passed" : "demo checks: FAILED");
  return failures == 0 ? 0 : 1;
}
