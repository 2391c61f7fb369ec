// Every SIMD path this CPU runs produces exactly the scalar reference's bits: random values,
// random bit patterns, the golden inputs, every code and every midpoint of the element
// formats, ties, subnormals, saturation, NaN/Inf blocks and tails, in all rounding modes and
// for any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/io/npy.hpp"
#include "lowbit/lowbit.hpp"
#include "shared_data.hpp"
#include "simd_test_support.hpp"

namespace {

using lowbit_test::finite_only;
using lowbit_test::PathGuard;
using lowbit_test::random_values;
using lowbit_test::simd_formats;
using lowbit_test::simd_paths;

using lowbit::MatrixRef;
using lowbit::Quantizer;
using lowbit::Rounding;
using lowbit::SimdPath;





std::vector<float> run(const Quantizer& q, SimdPath path, const std::vector<float>& x, std::int64_t rows,
                       std::int64_t cols, const lowbit::QuantOptions& opt) {
  PathGuard g;
  lowbit::force_simd_path(path);
  std::vector<float> y(x.size());
  q.fake_quant(MatrixRef<const float>::row_major(x.data(), rows, cols), MatrixRef<float>::row_major(y.data(), rows, cols),
               opt);
  return y;
}

// Compares every compiled path with the scalar reference on x, in every rounding mode.
void expect_paths_match(const std::string& name, const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                        const std::string& what) {
  const Quantizer q(name);
  for (Rounding mode : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic}) {
    lowbit::QuantOptions opt;
    opt.rounding = mode;
    opt.seed = 1234;
    const std::vector<float> ref = run(q, SimdPath::Scalar, x, rows, cols, opt);
    for (SimdPath p : simd_paths()) {
      const std::vector<float> got = run(q, p, x, rows, cols, opt);
      std::size_t bad = 0, first = 0;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (std::memcmp(&ref[i], &got[i], sizeof(float)) != 0 && bad++ == 0) first = i;
      EXPECT_EQ(bad, 0u) << name << " " << lowbit::to_string(p) << " " << lowbit::to_string(mode) << " on " << what
                         << ": first at " << first << " x=" << std::hexfloat << x[first] << " scalar=" << ref[first]
                         << " simd=" << got[first];
    }
  }
}


TEST(SimdFakeQuant, RandomValuesAndBitPatterns) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const std::string& name : simd_formats()) {
    const bool specials = !finite_only(Quantizer(name));
    // odd shapes: tails of lanes and blocks in every row
    expect_paths_match(name, random_values(37 * 203, 1, specials), 37, 203, "random");
    expect_paths_match(name, random_values(5 * 1000, 2, specials), 5, 1000, "random wide");
  }
}

TEST(SimdFakeQuant, NanAndInfBlocks) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::vector<float> x = lowbit_test::nan_and_inf_blocks();
  for (const std::string& name : simd_formats())
    if (!finite_only(Quantizer(name))) expect_paths_match(name, x, 16, 96, "NaN/Inf blocks");
}

// Rows long enough for the kernels' grouped path (16 blocks at a time), with groups that hold
// a zero, subnormal, NaN or Inf block and groups that do not.
TEST(SimdFakeQuant, LongRowsWithExceptionalBlocks) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::int64_t rows = 6, cols = 4096 + 48;
  const std::vector<float> x = lowbit_test::long_rows_with_exceptional_blocks(rows, cols);
  for (const std::string& name : simd_formats())
    if (!finite_only(Quantizer(name))) expect_paths_match(name, x, rows, cols, "long rows");
}

TEST(SimdFakeQuant, ZeroBlocksAndTinyValues) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::vector<float> x = lowbit_test::zeros_and_tiny_values();
  for (const std::string& name : simd_formats()) expect_paths_match(name, x, 8, 64, "zeros and tiny values");
}

// Every code of an element format and every midpoint between neighbours (and one float on
// either side), as inputs to the per-element format and as block contents of scaled formats.
TEST(SimdFakeQuant, EveryCodeAndMidpoint) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const auto& [name, spec] : lowbit_test::code_sweep_elements()) {
    const std::vector<float> x = lowbit_test::every_code_and_midpoint(spec);
    const std::int64_t cols = 64, rows = static_cast<std::int64_t>(x.size()) / cols;
    expect_paths_match(name, x, rows, cols, "every code and midpoint");
    for (const std::string& scaled : lowbit_test::scaled_variants(name))
      expect_paths_match(scaled, x, rows, cols, "codes and midpoints in blocks");
  }
}

// Every code of the integer and fixed-point elements and every midpoint between neighbours
// (and one float on either side), per element and inside blocks.
TEST(SimdFakeQuant, EveryIntegerCodeAndMidpoint) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::pair<const char*, lowbit::FixedPointSpec> elements[] = {
      {"int8", {8, 0, lowbit::IntRange::TwosComplement}},   {"int4", {4, 0, lowbit::IntRange::TwosComplement}},
      {"fixed8_f4", {8, 4, lowbit::IntRange::TwosComplement}}, {"fixed16_f10", {16, 10, lowbit::IntRange::TwosComplement}},
      {"fixed8_f7", {8, 7, lowbit::IntRange::TwosComplement}}};
  for (const auto& [name, spec] : elements) {
    std::vector<float> x;
    const double step = spec.step();
    for (std::int64_t k = spec.min_int() - 2; k <= spec.max_int() + 2; ++k) {
      const float v = static_cast<float>(static_cast<double>(k) * step);
      const float mid = static_cast<float>((static_cast<double>(k) + 0.5) * step);
      for (float m : {v, mid, std::nextafter(mid, -1e38f), std::nextafter(mid, 1e38f)}) x.push_back(m);
    }
    while (x.size() % 64) x.push_back(0.0f);
    const std::int64_t cols = 64, rows = static_cast<std::int64_t>(x.size()) / cols;
    expect_paths_match(name, x, rows, cols, "every integer code and midpoint");
    if (spec.bits <= 8) {
      const std::string blocks = "bfp" + std::to_string(spec.bits) + "_b16";
      expect_paths_match(blocks, x, rows, cols, "integer codes and midpoints in blocks");
    }
  }
}

TEST(SimdFakeQuant, GoldenInputs) {
  LOWBIT_REQUIRE_SHARED("goldens/mx/in.npy");
  LOWBIT_REQUIRE_SHARED("goldens/mase/in.npy");
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const char* file : {"goldens/mx/in.npy", "goldens/mx/in_special.npy", "goldens/mase/in.npy"}) {
    const auto m = lowbit::npy::read_float32_matrix(lowbit_test::shared_file(file));
    for (const std::string& name : simd_formats()) {
      bool has_nan = false;
      for (float v : m.values) has_nan = has_nan || std::isnan(v);
      if (has_nan && finite_only(Quantizer(name))) continue;
      expect_paths_match(name, m.values, m.rows, m.cols, file);
    }
  }
}

TEST(SimdFakeQuant, NanIntoAFiniteOnlyFormatThrowsOnEveryPath) {
  std::vector<float> x(100, 1.0f);
  x[77] = std::numeric_limits<float>::quiet_NaN();
  for (const char* name : {"fp4_e2m1", "fixed8_f4", "int8"}) {
    for (SimdPath p : {SimdPath::Scalar, SimdPath::AVX2, SimdPath::AVX512}) {
      if (!lowbit::cpu_supports(p)) continue;
      PathGuard g;
      lowbit::force_simd_path(p);
      std::vector<float> y(x.size());
      EXPECT_THROW(Quantizer(name).fake_quant(MatrixRef<const float>::row_major(x.data(), 1, 100),
                                              MatrixRef<float>::row_major(y.data(), 1, 100)),
                   lowbit::Error)
          << name << " " << lowbit::to_string(p);
      // in place, too: the NaN must still be reported
      std::vector<float> z = x;
      EXPECT_THROW(Quantizer(name).fake_quant(MatrixRef<const float>::row_major(z.data(), 1, 100),
                                              MatrixRef<float>::row_major(z.data(), 1, 100)),
                   lowbit::Error);
    }
  }
}

TEST(SimdFakeQuant, AnyThreadCountGivesTheSameBits) {
  const std::int64_t rows = 300, cols = 1000;  // several chunks of work
  const std::vector<float> x = random_values(static_cast<std::size_t>(rows * cols), 9, false);
  for (const char* name : {"mxfp4", "nvfp4", "int4_b32_fp16", "nf4_b64", "bl_w8_b16", "fp8_e4m3"}) {
    const Quantizer q(name);
    for (Rounding mode : {Rounding::NearestEven, Rounding::Stochastic}) {
      lowbit::QuantOptions opt;
      opt.rounding = mode;
      opt.seed = 5;
      opt.threads = 1;
      const std::vector<float> one = run(q, lowbit::best_simd_path(), x, rows, cols, opt);
      for (int t : {2, 3, 8}) {
        opt.threads = t;
        EXPECT_TRUE(run(q, lowbit::best_simd_path(), x, rows, cols, opt) == one) << name << " threads " << t;
        EXPECT_TRUE(run(q, SimdPath::Scalar, x, rows, cols, opt) == one) << name << " scalar, threads " << t;
      }
      // a column-major copy goes through the scalar traversal: same values
      std::vector<float> xt(x.size()), yt(x.size());
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) xt[static_cast<std::size_t>(c * rows + r)] = x[static_cast<std::size_t>(r * cols + c)];
      opt.threads = 2;
      q.fake_quant(MatrixRef<const float>::col_major(xt.data(), rows, cols), MatrixRef<float>::col_major(yt.data(), rows, cols), opt);
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c)
          ASSERT_EQ(lowbit::float_bits(yt[static_cast<std::size_t>(c * rows + r)]),
                    lowbit::float_bits(one[static_cast<std::size_t>(r * cols + c)])) << name;
    }
  }
}

TEST(SimdFakeQuant, ForcingAPath) {
  {
    PathGuard g;
    lowbit::force_simd_path(SimdPath::Scalar);
    EXPECT_EQ(lowbit::active_simd_path(), SimdPath::Scalar);
  }
  EXPECT_EQ(lowbit::active_simd_path(), lowbit::best_simd_path());
  EXPECT_EQ(lowbit::parse_simd_path("avx2"), SimdPath::AVX2);
  EXPECT_THROW(lowbit::parse_simd_path("sse9"), lowbit::Error);
  if (!lowbit::cpu_supports(SimdPath::AVX512)) {
    EXPECT_THROW(lowbit::force_simd_path(SimdPath::AVX512), lowbit::Error);
  }
}

}  // namespace
