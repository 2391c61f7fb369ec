// quantize and dequantize on every SIMD path this CPU runs give exactly the scalar
// reference's codes, block headers (scale and zero point) and dequantized bits: random values,
// random bit patterns, the golden inputs, every code and midpoint of the element formats,
// NaN/Inf blocks, zeros, subnormals and tails, in all rounding modes and for any thread count;
// and dequantize(quantize(x)) is fake_quant(x) bit for bit on every path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <variant>
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
using lowbit::QuantizedTensor;
using lowbit::Rounding;
using lowbit::SimdPath;





QuantizedTensor quantize_on(const Quantizer& q, SimdPath path, const std::vector<float>& x, std::int64_t rows,
                            std::int64_t cols, const lowbit::QuantOptions& opt) {
  PathGuard g;
  lowbit::force_simd_path(path);
  return q.quantize(MatrixRef<const float>::row_major(x.data(), rows, cols), opt);
}

std::vector<float> dequantize_on(const Quantizer& q, SimdPath path, const QuantizedTensor& qt) {
  PathGuard g;
  lowbit::force_simd_path(path);
  std::vector<float> y(static_cast<std::size_t>(qt.rows * qt.cols));
  q.dequantize(qt, MatrixRef<float>::row_major(y.data(), qt.rows, qt.cols));
  return y;
}

std::vector<float> fake_quant_on(const Quantizer& q, SimdPath path, const std::vector<float>& x, std::int64_t rows,
                                 std::int64_t cols, const lowbit::QuantOptions& opt) {
  PathGuard g;
  lowbit::force_simd_path(path);
  std::vector<float> y(x.size());
  q.fake_quant(MatrixRef<const float>::row_major(x.data(), rows, cols), MatrixRef<float>::row_major(y.data(), rows, cols),
               opt);
  return y;
}

// Index of the first differing float bit pattern, or -1.
std::int64_t first_bit_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<std::int64_t>(i);
  return a.size() == b.size() ? -1 : static_cast<std::int64_t>(a.size());
}

void expect_same_tensor(const QuantizedTensor& ref, const QuantizedTensor& got, const std::vector<float>& x,
                        const std::string& what) {
  ASSERT_EQ(ref.codes.size(), got.codes.size()) << what;
  ASSERT_EQ(ref.headers.size(), got.headers.size()) << what;
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < ref.codes.size(); ++i)
    if (ref.codes[i] != got.codes[i] && bad++ == 0) first = i;
  EXPECT_EQ(bad, 0u) << what << ": codes differ, first at " << first << " x=" << std::hexfloat << x[first]
                     << std::hex << " scalar=0x" << ref.codes[first] << " simd=0x" << got.codes[first];
  bad = 0;
  for (std::size_t g = 0; g < ref.headers.size(); ++g)
    if ((ref.headers[g].scale != got.headers[g].scale || ref.headers[g].zero_point != got.headers[g].zero_point) &&
        bad++ == 0)
      first = g;
  EXPECT_EQ(bad, 0u) << what << ": headers differ, first block " << first << std::hex << " scalar scale=0x"
                     << ref.headers[first].scale << " zp=" << ref.headers[first].zero_point << " simd scale=0x"
                     << got.headers[first].scale << " zp=" << got.headers[first].zero_point;
  EXPECT_EQ(ref.tensor.tensor_scale, got.tensor.tensor_scale) << what;
}

void expect_same_floats(const std::vector<float>& ref, const std::vector<float>& got, const std::string& what) {
  const std::int64_t i = first_bit_difference(ref, got);
  EXPECT_EQ(i, -1) << what << ": first at " << i << std::hex << " expected=0x"
                   << (i >= 0 && i < static_cast<std::int64_t>(ref.size()) ? lowbit::float_bits(ref[static_cast<std::size_t>(i)]) : 0u)
                   << " got=0x"
                   << (i >= 0 && i < static_cast<std::int64_t>(got.size()) ? lowbit::float_bits(got[static_cast<std::size_t>(i)]) : 0u);
}

// Every compiled path against the scalar reference on x, in every rounding mode: codes and
// headers; dequantized bits of the scalar's codes; and the round trip against fake_quant.
void expect_paths_match(const std::string& name, const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                        const std::string& what) {
  const Quantizer q(name);
  for (Rounding mode : {Rounding::NearestEven, Rounding::NearestAway, Rounding::TowardZero, Rounding::Stochastic}) {
    lowbit::QuantOptions opt;
    opt.rounding = mode;
    opt.seed = 1234;
    const QuantizedTensor ref = quantize_on(q, SimdPath::Scalar, x, rows, cols, opt);
    const std::vector<float> ref_y = dequantize_on(q, SimdPath::Scalar, ref);
    for (SimdPath p : simd_paths()) {
      const std::string tag = name + " " + std::string(lowbit::to_string(p)) + " " +
                              std::string(lowbit::to_string(mode)) + " on " + what;
      const QuantizedTensor got = quantize_on(q, p, x, rows, cols, opt);
      expect_same_tensor(ref, got, x, tag);
      expect_same_floats(ref_y, dequantize_on(q, p, ref), tag + " (dequantize)");
      expect_same_floats(fake_quant_on(q, p, x, rows, cols, opt), dequantize_on(q, p, got),
                         tag + " (dequantize(quantize) vs fake_quant)");
    }
  }
}


TEST(SimdCodes, RandomValuesAndBitPatterns) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const std::string& name : simd_formats()) {
    const bool specials = !finite_only(Quantizer(name));
    expect_paths_match(name, random_values(37 * 203, 1, specials), 37, 203, "random");  // tails everywhere
    expect_paths_match(name, random_values(3 * 1000, 2, specials), 3, 1000, "random wide");
  }
}

TEST(SimdCodes, NanAndInfBlocks) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::vector<float> x = lowbit_test::nan_and_inf_blocks();
  for (const std::string& name : simd_formats())
    if (!finite_only(Quantizer(name))) expect_paths_match(name, x, 16, 96, "NaN/Inf blocks");
}

// Rows long enough for the grouped header path (16 blocks at a time on AVX-512), with groups
// that hold a zero, subnormal, NaN or Inf block and groups that do not.
TEST(SimdCodes, LongRowsWithExceptionalBlocks) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::int64_t rows = 6, cols = 4096 + 48;
  const std::vector<float> x = lowbit_test::long_rows_with_exceptional_blocks(rows, cols);
  for (const std::string& name : simd_formats())
    if (!finite_only(Quantizer(name))) expect_paths_match(name, x, rows, cols, "long rows");
}

TEST(SimdCodes, ZeroBlocksAndTinyValues) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::vector<float> x = lowbit_test::zeros_and_tiny_values();
  for (const std::string& name : simd_formats()) expect_paths_match(name, x, 8, 64, "zeros and tiny values");
}

// Every code of an element format and every midpoint between neighbours (and one float on
// either side), per element and as block contents of scaled formats.
TEST(SimdCodes, EveryCodeAndMidpoint) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const auto& [name, spec] : lowbit_test::code_sweep_elements()) {
    const std::vector<float> x = lowbit_test::every_code_and_midpoint(spec);
    const std::int64_t cols = 64, rows = static_cast<std::int64_t>(x.size()) / cols;
    expect_paths_match(name, x, rows, cols, "every code and midpoint");
    for (const std::string& scaled : lowbit_test::scaled_variants(name))
      expect_paths_match(scaled, x, rows, cols, "codes and midpoints in blocks");
  }
}

// Every code of every element format decodes on each path as the element's own decode, cast
// to float (the spec's definition), with and without a scale; codes carry stray high bits too.
TEST(SimdCodes, EveryCodeDecodes) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const std::string& name : simd_formats()) {
    const Quantizer q(name);
    const std::int64_t cols = 256;
    const std::vector<float> x = random_values(static_cast<std::size_t>(4 * cols), 11, false);
    QuantizedTensor qt = quantize_on(q, SimdPath::Scalar, x, 4, cols, {});
    const int bits = q.info().element_bits;
    const std::uint32_t count = bits >= 16 ? 1u << 16 : 1u << bits;
    std::mt19937 rng(7);
    for (std::size_t i = 0; i < qt.codes.size(); ++i) {
      std::uint32_t c = static_cast<std::uint32_t>(i) % count;
      if (bits > 16) c = static_cast<std::uint32_t>(rng());  // wide formats: random codes
      if (i % 7 == 3 && bits < 32) c |= 1u << bits;           // bits above the element: ignored
      qt.codes[i] = c;
    }
    const std::vector<float> ref = dequantize_on(q, SimdPath::Scalar, qt);
    for (SimdPath p : simd_paths())
      expect_same_floats(ref, dequantize_on(q, p, qt), name + " " + std::string(lowbit::to_string(p)) + " every code");
  }
}

// Every minifloat shape the registry can name (any E/M split up to 16 bits, each special-value
// policy, with and without subnormals, two biases): every code decodes on each path as in the
// scalar reference; up to 9 bits also every code and midpoint quantizes to the same codes.
// (A NaN code without mantissa bits, e4m0 with one NaN code, once decoded as Inf on SIMD paths.)
TEST(SimdCodes, EveryMinifloatShape) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  int formats = 0;
  for (int e = 1; e <= 8; ++e)
    for (int m = 0; 1 + e + m <= 16; ++m)
      for (const char* specials : {"", "_fn", "_fin"})
        for (const char* sub : {"", "_nosub"})
          for (int bias_shift : {0, 3}) {
            const int bias = lowbit::MinifloatSpec::default_bias(e) - bias_shift;
            const std::string name = "minifloat_e" + std::to_string(e) + "m" + std::to_string(m) + "_bias" +
                                     std::to_string(bias) + sub + specials +
                                     (std::string(specials) == "_fin" ? "_sat" : "");
            std::unique_ptr<Quantizer> q;
            try {
              q = std::make_unique<Quantizer>(name);
            } catch (const lowbit::Error&) {
              continue;  // not a format (e.g. an IEEE-like e1)
            }
            ++formats;
            const int bits = 1 + e + m;
            if (bias_shift == 0 || bits <= 12) {
              const std::int64_t cols = 64, rows = std::max<std::int64_t>(1, (std::int64_t{1} << bits) / cols);
              QuantizedTensor qt = quantize_on(*q, SimdPath::Scalar, std::vector<float>(rows * cols, 0.0f), rows, cols, {});
              for (std::size_t i = 0; i < qt.codes.size(); ++i) qt.codes[i] = static_cast<std::uint32_t>(i);
              const std::vector<float> ref = dequantize_on(*q, SimdPath::Scalar, qt);
              for (SimdPath p : simd_paths())
                expect_same_floats(ref, dequantize_on(*q, p, qt), name + " " + std::string(lowbit::to_string(p)) + " every code");
            }
            if (bits <= 9) {
              const lowbit::MinifloatSpec spec{e,
                                               m,
                                               bias,
                                               std::string(sub).empty(),
                                               std::string(specials) == "_fn"    ? lowbit::Specials::FiniteNaN
                                               : std::string(specials) == "_fin" ? lowbit::Specials::FiniteOnly
                                                                                 : lowbit::Specials::IEEE,
                                               lowbit::Overflow::Saturate};
              std::vector<float> x = lowbit_test::every_code_and_midpoint(spec);
              if (spec.has_nan()) {
                x.push_back(std::numeric_limits<float>::quiet_NaN());
                x.push_back(std::numeric_limits<float>::infinity());
                x.push_back(-std::numeric_limits<float>::infinity());
                while (x.size() % 64) x.push_back(1.0f);
              }
              expect_paths_match(name, x, static_cast<std::int64_t>(x.size()) / 64, 64, "every code and midpoint");
              expect_paths_match(name + "_sat", x, static_cast<std::int64_t>(x.size()) / 64, 64, "every code and midpoint");
            }
            if (::testing::Test::HasFailure()) return;  // one format's report, not thousands
          }
  EXPECT_GT(formats, 400);
}

TEST(SimdCodes, GoldenInputs) {
  LOWBIT_REQUIRE_SHARED("goldens/mx/in.npy");
  LOWBIT_REQUIRE_SHARED("goldens/mase/in.npy");
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  for (const char* file : {"goldens/mx/in.npy", "goldens/mx/in_special.npy", "goldens/mase/in.npy"}) {
    const auto m = lowbit::npy::read_float32_matrix(lowbit_test::shared_file(file));
    bool has_nan = false;
    for (float v : m.values) has_nan = has_nan || std::isnan(v);
    for (const std::string& name : simd_formats()) {
      if (has_nan && finite_only(Quantizer(name))) continue;
      expect_paths_match(name, m.values, m.rows, m.cols, file);
    }
  }
}

TEST(SimdCodes, NanIntoAFiniteOnlyFormatThrowsOnEveryPath) {
  std::vector<float> x(100, 1.0f);
  x[77] = std::numeric_limits<float>::quiet_NaN();
  for (const char* name : {"fp4_e2m1", "fixed8_f4", "int8"})
    for (SimdPath p : {SimdPath::Scalar, SimdPath::AVX2, SimdPath::AVX512}) {
      if (!lowbit::cpu_supports(p)) continue;
      EXPECT_THROW(quantize_on(Quantizer(name), p, x, 1, 100, {}), lowbit::Error) << name << " " << lowbit::to_string(p);
    }
}

// Rows built on the edge cases of two SIMD shortcuts for float block scales:
//  - elements exactly halfway between two integer steps of their block's scale (and one
//    float either side), where x * RN(1 / s) instead of x / s could round the other way;
//  - block maxima at ties (and one float either side) of the scale format's rounding of
//    amax / elem_max, where amax * RN(1 / elem_max) instead of the division could.
// Every row shares one block maximum, so blocks of any length see the same scale.
std::vector<float> scale_and_element_ties(double elem_max, std::int64_t rows, std::int64_t cols) {
  std::mt19937 rng(21);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  const auto k_max = static_cast<int>(elem_max);
  std::uniform_int_distribution<int> pick_k(-k_max, std::max(k_max - 1, -k_max));
  std::uniform_int_distribution<int> pick_j(0, 7), pick_e(-12, 2), pick_side(-1, 1), pick_p(0, 3);
  // (a block of another length than 32 takes the largest of its maxima: also a tie)
  const int precisions[] = {3, 7, 10, 23};  // e4m3, bf16, fp16, fp32 mantissas
  for (std::int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    const int e = pick_e(rng);
    auto nudged = [&](double v) {
      const float f = static_cast<float>(v);
      const int side = pick_side(rng);
      return side == 0 ? f : std::nextafter(f, side > 0 ? INFINITY : -INFINITY);
    };
    if (r % 2 == 0) {
      // a scale on every format's grid, then elements at (k + 1/2) * s
      const double s = std::ldexp(1.0 + pick_j(rng) / 8.0, e);
      for (std::int64_t c = 0; c < cols; ++c)
        row[c] = c % 32 == 0 ? static_cast<float>((c % 64 == 0 ? 1 : -1) * elem_max * s)
                             : nudged((pick_k(rng) + 0.5) * s);
    } else {
      // a maximum of each 32 values at elem_max times a midpoint of a scale format's grid
      for (std::int64_t c0 = 0; c0 < cols; c0 += 32) {
        const int p = precisions[pick_p(rng)];
        std::uniform_int_distribution<int> pick_m(0, (1 << std::min(p, 12)) - 1);
        const double t = std::ldexp(1.0 + (2.0 * pick_m(rng) + 1.0) / std::ldexp(1.0, p + 1), pick_e(rng));
        const float amax = nudged(elem_max * t);
        std::uniform_real_distribution<float> rest(-amax / 2, amax / 2);
        for (std::int64_t c = c0; c < std::min(cols, c0 + 32); ++c) row[c] = c == c0 ? amax : rest(rng);
      }
    }
  }
  return x;
}

TEST(SimdCodes, TiesOfTheScaledElementsAndOfTheScales) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const std::int64_t rows = 64, cols = 1024 + 64;  // two groups of 16 blocks of 32, and a tail
  for (const std::string& name : simd_formats()) {
    const Quantizer q(name);
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) {
            if (!f.has_scale()) return;
            const std::vector<float> x = scale_and_element_ties(f.element.max_value(), rows, cols);
            expect_paths_match(name, x, rows, cols, "ties");
            // and the packed bytes, which take the codes without the uint32 buffer
            const auto w = MatrixRef<const float>::row_major(x.data(), rows, cols);
            PathGuard g;
            lowbit::force_simd_path(SimdPath::Scalar);
            const auto reference = lowbit::PackedMatrix<F>::pack(f, w).serialize();
            for (SimdPath p : simd_paths()) {
              lowbit::force_simd_path(p);
              EXPECT_TRUE(lowbit::PackedMatrix<F>::pack(f, w).serialize() == reference)
                  << name << " packed on " << lowbit::to_string(p);
            }
          }
        },
        q.format());
  }
}

// Codes far outside an asymmetric format's range (not what quantize writes) still dequantize
// as the scalar reference does.
TEST(SimdCodes, WideZeroPointCodes) {
  if (simd_paths().empty()) GTEST_SKIP() << "no SIMD path on this CPU";
  const Quantizer q("uint4_b32_fp16");
  const std::vector<float> x = random_values(4 * 64, 13, false);
  QuantizedTensor qt = quantize_on(q, SimdPath::Scalar, x, 4, 64, {});
  qt.codes[5] = 0xFFFFFFFFu;
  qt.codes[70] = 1u << 24;
  qt.headers[6].zero_point = 1u << 30;
  const std::vector<float> ref = dequantize_on(q, SimdPath::Scalar, qt);
  for (SimdPath p : simd_paths()) expect_same_floats(ref, dequantize_on(q, p, qt), "wide zero-point codes");
}

TEST(SimdCodes, AnyThreadCountGivesTheSameResult) {
  const std::int64_t rows = 300, cols = 1000;  // several chunks of work
  const std::vector<float> x = random_values(static_cast<std::size_t>(rows * cols), 9, false);
  for (const char* name : {"mxfp4", "nvfp4", "int4_b32_fp16", "uint4_b32_fp16", "fp8_e4m3", "nf4_b64"}) {
    const Quantizer q(name);
    for (Rounding mode : {Rounding::NearestEven, Rounding::Stochastic}) {
      lowbit::QuantOptions opt;
      opt.rounding = mode;
      opt.seed = 5;
      opt.threads = 1;
      const QuantizedTensor one = quantize_on(q, lowbit::best_simd_path(), x, rows, cols, opt);
      const std::vector<float> y = dequantize_on(q, lowbit::best_simd_path(), one);
      for (int t : {2, 3, 8}) {
        opt.threads = t;
        for (SimdPath p : {lowbit::best_simd_path(), SimdPath::Scalar}) {
          const std::string tag = std::string(name) + " " + std::string(lowbit::to_string(p)) + " threads " + std::to_string(t);
          expect_same_tensor(one, quantize_on(q, p, x, rows, cols, opt), x, tag);
          lowbit::set_num_threads(t);
          expect_same_floats(y, dequantize_on(q, p, one), tag);
        }
      }
      lowbit::set_num_threads(0);
    }
  }
}

}  // namespace
