// The packed matmul (gemm/matmul.hpp, gemm/panel_matrix.hpp): every SIMD path equals the
// scalar kernels bit for bit; all paths stay within the float accumulation bound of the
// exact product of the dequantised operands (computed here in double with Eigen); the panel
// layout holds exactly the packed codes and scales; odd shapes, tails, thread counts, row
// ranges and bad arguments.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "lowbit/kernels/panel_avx2.hpp"
#include "lowbit/lowbit.hpp"
#include "matmul_test_support.hpp"
#include "simd_test_support.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit_test::random_matrix;
using lowbit_test::RowMat;
using lowbit_test::to_eigen;

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b) || (std::isnan(a) && std::isnan(b)); }

// The AVX2 path has two integer kernels on CPUs with AVX-VNNI (vpdpbusd, else vpmaddwd):
// both are checked there.
std::vector<bool> avx_vnni_settings(lowbit::SimdPath p) {
  if (p == lowbit::SimdPath::AVX2 && lowbit::avx_vnni_active()) return {true, false};
  return {true};
}
struct VnniGuard {
  explicit VnniGuard(bool allowed) { lowbit::allow_avx_vnni(allowed); }
  ~VnniGuard() { lowbit::allow_avx_vnni(true); }
};

struct Case {
  std::string weight, act;  // act empty: weight-only
  std::int64_t n, m, k;
};

// Y = X W^T (+ bias) on the scalar path, returned, and on every SIMD path (AVX2 with and
// without AVX-VNNI where the CPU has it), each checked against the scalar path bit for bit.
template <class P>
std::vector<float> expect_every_path_gives_scalar_bits(const P& pw, const std::vector<float>& xv, std::int64_t n, std::int64_t k,
                                                       std::int64_t m, const lowbit::MatmulOptions& opt,
                                                       std::span<const float> bias = {}) {
  auto run = [&](lowbit::SimdPath p) {
    lowbit_test::PathGuard g;
    lowbit::force_simd_path(p);
    std::vector<float> y(static_cast<std::size_t>(n * m), -7.0f);
    lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, bias, MatrixRef<float>::row_major(y.data(), n, m), opt);
    return y;
  };
  const std::vector<float> ys = run(lowbit::SimdPath::Scalar);
  for (lowbit::SimdPath p : lowbit_test::simd_paths())
    for (bool vnni : avx_vnni_settings(p)) {
      VnniGuard v(vnni);
      const std::vector<float> y = run(p);
      for (std::size_t e = 0; e < y.size(); ++e)
        if (!same_bits(y[e], ys[e])) {
          ADD_FAILURE() << to_string(p) << (vnni ? "" : " without AVX-VNNI") << " N=" << n << " output " << e << ": " << y[e]
                        << " vs scalar " << ys[e];
          break;
        }
    }
  return ys;
}

// Runs one case through every path, checks paths against scalar and all against the exact
// double product of the dequantised operands. Returns whether the integer kernel ran.
template <class F>
void check_case(const F& f, const Case& c, const std::vector<float>& wv, const std::vector<float>& xv,
                const std::vector<float>& bias, bool& integer) {
  const auto pm = lowbit::PackedMatrix<F>::pack(f, MatrixRef<const float>::row_major(wv.data(), c.m, c.k));
  const auto pw = lowbit::PanelMatrix<F>::from_packed(pm);
  lowbit::MatmulOptions opt;
  std::vector<float> xq = xv;
  if (!c.act.empty()) {
    opt.activation = lowbit::Quantizer(c.act);
    opt.activation->fake_quant(MatrixRef<const float>::row_major(xv.data(), c.n, c.k),
                               MatrixRef<float>::row_major(xq.data(), c.n, c.k));
  }
  const std::vector<float> wdq = pm.unpack();
  const RowMat exact = to_eigen(xq, c.n, c.k) * to_eigen(wdq, c.m, c.k).transpose();
  const RowMat mag = to_eigen(xq, c.n, c.k).cwiseAbs() * to_eigen(wdq, c.m, c.k).cwiseAbs().transpose();

  const std::vector<float> ys = expect_every_path_gives_scalar_bits(pw, xv, c.n, c.k, c.m, opt, bias);
  // Float accumulation: each output is a sum of k products (exact or rounded once) in float
  // with partial sums, then a scaled multiply-add per block and the bias.
  const double gamma = static_cast<double>(c.k + 8) * std::ldexp(1.0, -23);
  for (std::int64_t i = 0; i < c.n; ++i)
    for (std::int64_t j = 0; j < c.m; ++j) {
      const double want = exact(i, j) + bias[static_cast<std::size_t>(j)];
      const double got = ys[static_cast<std::size_t>(i * c.m + j)];
      const double tol = gamma * (mag(i, j) + std::fabs(bias[static_cast<std::size_t>(j)])) + 1e-30;
      ASSERT_NEAR(got, want, tol) << "scalar kernel, output (" << i << ", " << j << ")";
    }
  integer = lowbit::prepare_activations(MatrixRef<const float>::row_major(xv.data(), c.n, c.k), pw, opt).integer;
}

bool check_named(const Case& c, unsigned seed = 1) {
  SCOPED_TRACE(c.weight + " x " + (c.act.empty() ? "float" : c.act) + " N=" + std::to_string(c.n) +
               " M=" + std::to_string(c.m) + " K=" + std::to_string(c.k));
  const auto xv = random_matrix(c.n, c.k, seed, 1.0f);
  const auto wv = random_matrix(c.m, c.k, seed + 1, 0.05f);
  const auto bias = random_matrix(1, c.m, seed + 2, 0.1f);
  bool integer = false;
  std::visit(
      [&](const auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (lowbit::is_block_format<F>) check_case(f, c, wv, xv, bias, integer);
        else FAIL() << "not a block format";
      },
      lowbit::Quantizer(c.weight).format());
  return integer;
}

const std::vector<std::string> kPanelWeights = {"mxfp4",        "nvfp4",     "int4_b32_fp16", "int8_b32_fp16",
                                                "mxint8",       "bfp8_b16",  "bfp4_b32",      "nf4_b64",
                                                "mxfp8_e4m3",   "mxfp8_e5m2", "int4_b32_e8m0", "int8_pc_fp32",
                                                "int4_b128_bf16", "fp8_e4m3", "int8_b32_fp32", "mxfp6_e2m3",
                                                "mxfp6_e3m2",   "bfp6_b16",  "bfp6_b32"};

TEST(PanelMatmul, EveryFormatWeightOnlyMatchesExactProductOnOddShapes) {
  for (const auto& w : kPanelWeights)
    for (auto [n, m, k] : {std::array<std::int64_t, 3>{1, 1, 1}, {1, 33, 100}, {3, 17, 100}, {2, 16, 32}, {8, 33, 257},
                           {17, 15, 64}})
      EXPECT_FALSE(check_named({w, "", n, m, k}));
}

TEST(PanelMatmul, IntegerKernelRunsWhereBothFormatsAreIntegers) {
  const std::vector<std::string> int_weights = {"mxfp4", "nvfp4", "int4_b32_fp16", "int8_b32_fp16", "mxint8",
                                                "bfp8_b16", "bfp4_b32", "int8_pc_fp32", "int4_b128_bf16",
                                                "mxfp6_e2m3", "bfp6_b16", "bfp6_b32"};
  for (const auto& w : int_weights)
    for (const std::string a : {"int8_b32_fp16", "mxint8", "bfp8_b16", "mxfp4"})
      for (auto [n, m, k] : {std::array<std::int64_t, 3>{1, 16, 64}, {3, 17, 100}, {8, 40, 256}, {17, 5, 7}}) {
        const bool integer = check_named({w, a, n, m, k});
        EXPECT_TRUE(integer) << w << " x " << a;
      }
}

// One activation row against full 16-row panels with 16- and 32-column weight blocks and
// activation blocks of 16, 32 or 64 (the decode shapes, which have kernels of their own on
// AVX-512 and AVX2), for each kind of block scale, next to a short panel; also as the last
// row after groups of eight.
TEST(PanelMatmul, OneActivationRowWith16And32ColumnBlocks) {
  for (const std::string w : {"mxfp4", "int4_b32_fp16", "int4_b32_bf16", "int4_b32_fp32", "int4_b32_e8m0", "mxfp6_e2m3",
                              "bfp4_b32", "bfp6_b32", "mxint8", "int8_b32_fp16", "nvfp4", "bfp4_b16", "bfp6_b16",
                              "int4_b16_fp16", "bfp8_b16", "int8_b16_fp16"})
    for (const std::string a : {"mxint8", "int8_b32_fp16", "int8_b32_bf16", "int8_b16_fp16", "int8_b64_fp16"})
      for (auto [n, m, k] : {std::array<std::int64_t, 3>{1, 16, 32}, {1, 40, 512}, {9, 40, 96}, {1, 32, 4096}})
        EXPECT_TRUE(check_named({w, a, n, m, k}, 3)) << w << " x " << a;
}

TEST(PanelMatmul, NonIntegerFormatsTakeTheFloatKernelWithQuantisedActivations) {
  EXPECT_FALSE(check_named({"nf4_b64", "int8_b32_fp16", 3, 17, 100}));
  EXPECT_FALSE(check_named({"mxfp8_e4m3", "mxint8", 2, 20, 64}));
  EXPECT_FALSE(check_named({"mxfp4", "mxfp8_e4m3", 4, 16, 96}));
  EXPECT_FALSE(check_named({"int4_b32_fp16", "fp8_e4m3_pt", 4, 16, 96}));
}

TEST(PanelMatmul, LongRowsAndManyActivationRows) {
  EXPECT_TRUE(check_named({"mxfp4", "int8_b32_fp16", 9, 48, 1024}, 5));
  EXPECT_TRUE(check_named({"mxint8", "mxint8", 6, 32, 2048}, 6));
  EXPECT_TRUE(check_named({"mxfp6_e2m3", "mxint8", 5, 40, 1040}, 8));
  EXPECT_TRUE(check_named({"int4_b32_fp16", "int8_b32_fp16", 64, 33, 100}, 10));
  // More activation rows than one pass over the panels takes (64 int8 rows or 16 float rows
  // of K = 4096 a pass): the passes' seams.
  EXPECT_TRUE(check_named({"mxfp4", "int8_b32_fp16", 130, 20, 4096}, 12));
  EXPECT_FALSE(check_named({"int4_b32_fp16", "", 37, 20, 4096}, 13));
  EXPECT_FALSE(check_named({"nf4_b64", "", 64, 18, 130}, 11));
  EXPECT_FALSE(check_named({"mxfp6_e3m2", "", 3, 24, 1000}, 9));
  EXPECT_FALSE(check_named({"int4_b32_fp16", "", 5, 32, 2048}, 7));
}

// Every code of a six-bit table through the AVX2 decoder (kernels::avx2::Lookup64), less
// `offset`, as bytes; and which of its paths ran.
LOWBIT_TARGET_AVX2_BEGIN
std::vector<std::uint8_t> avx2_lookup64(const std::array<std::int8_t, 64>& table, int offset, int& path) {
  const lowbit::kernels::avx2::Lookup64 lut(table.data(), offset);
  path = lut.twos_complement ? 2 : lut.sign_magnitude ? 1 : 0;
  std::uint8_t idx[64];
  for (int c = 0; c < 64; ++c) idx[c] = static_cast<std::uint8_t>(c);
  std::vector<std::uint8_t> out(64);
  for (int h = 0; h < 2; ++h)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + 32 * h),
                        lut(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 32 * h))));
  return out;
}
LOWBIT_TARGET_END

// The six-bit decoder has a path for two's complement tables, one for sign-magnitude tables
// and a general one; the registered formats reach only the first two (BFP6, MXFP6 E2M3), so
// each is checked here on its own tables, and on tables one entry away from qualifying.
TEST(PanelMatmul, SixBitAvx2DecoderMatchesEveryKindOfTable) {
  if (!lowbit::cpu_supports(lowbit::SimdPath::AVX2)) GTEST_SKIP() << "this CPU has no AVX2";
  std::array<std::int8_t, 64> twos{}, sign_mag{}, general{};
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> any(-100, 100), mag(0, 100);
  for (int c = 0; c < 64; ++c) {
    twos[c] = static_cast<std::int8_t>((c ^ 32) - 32);
    general[c] = static_cast<std::int8_t>(any(rng));
  }
  for (int c = 1; c < 32; ++c) {
    sign_mag[c] = static_cast<std::int8_t>(mag(rng));
    sign_mag[c + 32] = static_cast<std::int8_t>(-sign_mag[c]);
  }
  std::array<std::int8_t, 64> twos_off = twos, sign_mag_off = sign_mag;
  twos_off[40] = 3;
  sign_mag_off[0] = 1;
  const std::pair<const std::array<std::int8_t, 64>*, int> cases[] = {
      {&twos, 2}, {&sign_mag, 1}, {&general, 0}, {&twos_off, 0}, {&sign_mag_off, 0}};
  for (const auto& [table, want_path] : cases) {
    const int lo = *std::min_element(table->begin(), table->end());
    for (const int offset : {0, lo}) {
      int path = -1;
      const std::vector<std::uint8_t> got = avx2_lookup64(*table, offset, path);
      EXPECT_EQ(path, want_path);
      for (int c = 0; c < 64; ++c)
        EXPECT_EQ(got[static_cast<std::size_t>(c)], static_cast<std::uint8_t>((*table)[static_cast<std::size_t>(c)] - offset))
            << "code " << c << ", path " << want_path << ", offset " << offset;
    }
  }
}

// The integer kernels' sums at their largest: weights of the format `name` with codes
// code(r, c, lo, hi, count) (lo, hi: the codes of the least and the greatest value) and valid
// block scales, times activations xv (n x k) quantised to `act`. Every path must give the
// exact product within float rounding, and the scalar path's bits.
template <class CodeOf>
void expect_exact_on_every_path(const std::string& name, std::int64_t m, std::int64_t k, std::int64_t n, CodeOf code,
                                const std::vector<float>& xv, const std::string& act, int least_q) {
  std::visit(
      [&](const auto& fmt) {
        using F = std::decay_t<decltype(fmt)>;
        if constexpr (lowbit::is_block_format<F>) {
          SCOPED_TRACE(name + " x " + act);
          const auto wv = random_matrix(m, k, 61, 0.1f);
          lowbit::QuantizedTensor qt;  // valid block scales; the codes are replaced below
          lowbit::quantize_into(fmt, MatrixRef<const float>::row_major(wv.data(), m, k), qt);
          const std::uint32_t codes = 1u << fmt.element_bits();
          std::uint32_t lo = 0, hi = 0;
          for (std::uint32_t c = 0; c < codes; ++c) {
            if (fmt.element.decode(c) < fmt.element.decode(lo)) lo = c;
            if (fmt.element.decode(c) > fmt.element.decode(hi)) hi = c;
          }
          for (std::int64_t r = 0; r < m; ++r)
            for (std::int64_t c = 0; c < k; ++c) qt.codes[static_cast<std::size_t>(r * k + c)] = code(r, c, lo, hi, codes);
          const auto pm = lowbit::PackedMatrix<F>::pack(fmt, qt);
          const auto pw = lowbit::PanelMatrix<F>::from_packed(pm);
          ASSERT_TRUE(pw.integer_elements());
          lowbit::MatmulOptions opt;
          opt.activation = lowbit::Quantizer(act);
          const auto act_q = lowbit::prepare_activations(MatrixRef<const float>::row_major(xv.data(), n, k), pw, opt);
          ASSERT_TRUE(act_q.integer);
          EXPECT_EQ(*std::min_element(act_q.q.begin(), act_q.q.end()), least_q);
          const std::vector<float> wdq = pm.unpack();
          const RowMat exact = to_eigen(xv, n, k) * to_eigen(wdq, m, k).transpose();
          const RowMat mag = to_eigen(xv, n, k).cwiseAbs() * to_eigen(wdq, m, k).cwiseAbs().transpose();
          std::vector<float> ys;
          for (lowbit::SimdPath p : [] { auto v = lowbit_test::simd_paths(); v.insert(v.begin(), lowbit::SimdPath::Scalar); return v; }())
            for (bool vnni : avx_vnni_settings(p)) {
              lowbit_test::PathGuard g;
              VnniGuard v(vnni);
              lowbit::force_simd_path(p);
              std::vector<float> y(static_cast<std::size_t>(n * m));
              lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, {}, MatrixRef<float>::row_major(y.data(), n, m), opt);
              for (std::int64_t i = 0; i < n; ++i)
                for (std::int64_t j = 0; j < m; ++j)  // a saturated or wrapped sum would be off by far more
                  ASSERT_NEAR(y[static_cast<std::size_t>(i * m + j)], exact(i, j), (k + 8) * std::ldexp(1.0, -23) * mag(i, j))
                      << to_string(p) << " vnni " << vnni;
              if (ys.empty()) ys = y;
              for (std::size_t e = 0; e < y.size(); ++e) ASSERT_TRUE(same_bits(y[e], ys[e])) << to_string(p) << " output " << e;
            }
        }
      },
      lowbit::Quantizer(name).format());
}

// Weights at their extreme values against activations of -128 and +127, with equal neighbours
// so that the integer kernels' pairs of products reach their largest magnitude (vpmaddubsw
// and vpmaddwd add pairs in 16/32 bits): no path may saturate. Every code appears too.
TEST(PanelMatmul, FullRangeInt8NeverSaturates) {
  const std::int64_t m = 18, k = 256, n = 3;
  // Activations in fixed8_f7 (two's complement, 1/128 steps): -128 and +127 codes, each on two
  // neighbouring columns.
  std::vector<float> xv(static_cast<std::size_t>(n * k));
  for (std::size_t i = 0; i < xv.size(); ++i) xv[i] = ((i / 2 + i / 256) % 2 == 0) ? -1.0f : 0.9921875f;
  for (const std::string name : {"int8_b32_fp32", "int4_b32_fp32", "mxfp4", "mxfp6_e2m3", "bfp6_b32", "int8_b32_fp16"})
    expect_exact_on_every_path(
        name, m, k, n,
        [&](std::int64_t r, std::int64_t c, std::uint32_t lo, std::uint32_t hi, std::uint32_t codes) {
          const std::int64_t pair = c / 2, i = r * k + c;
          return pair % 3 == 0 ? hi : pair % 3 == 1 ? lo : static_cast<std::uint32_t>((i * 37) % codes);
        },
        xv, "fixed8_f7", -128);
}

// One activation row of -127 units (-127/64: exact in int8 per block with scale 1/64, and in
// MXINT8) against a full panel of weights all at their greatest value: every
// product of a block has the same sign and the largest magnitude that the one-row kernels'
// unsigned weights (value less the least value) reach, so sums of vpmaddubsw results kept in
// int16 (UnsignedWeights::int16_products) would wrap if more were kept than fit.
TEST(PanelMatmul, OneRowInt16SumsNeverWrap) {
  const std::int64_t m = 16, k = 256, n = 1;
  const std::vector<float> xv(static_cast<std::size_t>(n * k), -127.0f / 64);
  for (const std::string name : {"mxfp4", "nvfp4", "int4_b32_fp16", "int4_b16_fp16", "bfp4_b16", "bfp6_b16", "mxfp6_e2m3"})
    for (const std::string act : {"int8_b32_fp16", "mxint8"})
      expect_exact_on_every_path(
          name, m, k, n, [](std::int64_t, std::int64_t, std::uint32_t, std::uint32_t hi, std::uint32_t) { return hi; }, xv, act, -127);
}

// Block scales at the ends of their range (E8M0 codes 0, 1 and 2, whose products with the
// element unit are subnormal; 254; 255 = NaN) next to ordinary ones: every path gives the
// scalar path's bits, NaN rows included, at N = 1 (the one-row kernels), 3 and 8.
// E8M0 scales at their extremes (0, 1, 2, 254, NaN); NVFP4's E4M3 block scales and MXFP8's
// E4M3 and E5M2 elements take every one of their 256 codes (zeros, subnormals, both signs, Inf,
// NaN), which the AVX-512 and AVX2 kernels decode arithmetically instead of from the scalar
// path's table; MXFP6 E2M3's integer codes go through the AVX2 float kernel's byte tables, and
// MXFP6 E3M2's 64 codes through its fp16 conversion.
TEST(PanelMatmul, ExtremeAndNaNBlockScalesMatchScalar) {
  for (const std::string name : {"mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxint8", "nvfp4", "mxfp8_e4m3", "mxfp8_e5m2"})
    std::visit(
        [&](const auto& fmt) {
          using F = std::decay_t<decltype(fmt)>;
          if constexpr (lowbit::is_block_format<F>) {
            SCOPED_TRACE(name);
            const std::int64_t m = 40, k = 128;
            const auto wv = random_matrix(m, k, 71, 0.1f);
            lowbit::QuantizedTensor qt;
            lowbit::quantize_into(fmt, MatrixRef<const float>::row_major(wv.data(), m, k), qt);
            const std::uint32_t extreme[] = {0, 1, 2, 254, 255};
            const bool e4m3 = name == "nvfp4";
            if (e4m3) {
              ASSERT_GE(qt.headers.size(), 256u);
            }
            for (std::size_t i = 0; i < qt.headers.size(); ++i)
              if (e4m3) qt.headers[i].scale = static_cast<std::uint32_t>((i * 97) % 256);
              else if (i % 7 == 3) qt.headers[i].scale = extreme[(i / 7) % 5];
            const bool e4m3_elements = name == "mxfp8_e4m3", e5m2_elements = name == "mxfp8_e5m2";
            if (e4m3_elements || e5m2_elements)
              for (std::size_t i = 0; i < qt.codes.size(); ++i) {  // Inf and NaN codes only in every third row
                auto c = static_cast<std::uint32_t>((i * 31) % 256);
                const bool special = e4m3_elements ? (c & 0x7Fu) == 0x7Fu : (c & 0x7Fu) >= 0x7Cu;
                if (special && (i / static_cast<std::size_t>(k)) % 3 != 0) c = (c & 0x80u) | 0x70u;
                qt.codes[i] = c;
              }
            if (name == "mxfp6_e3m2")  // every code, subnormals and both zeros included
              for (std::size_t i = 0; i < qt.codes.size(); ++i) qt.codes[i] = static_cast<std::uint32_t>((i * 31) % 64);
            const auto pw = lowbit::PanelMatrix<F>::from_packed(lowbit::PackedMatrix<F>::pack(fmt, qt));
            EXPECT_EQ(pw.panel(0, false).e3m2_unit != 0.0f, name == "mxfp6_e3m2");
            EXPECT_EQ(pw.panel(0, true).scale.lut_is_e4m3, e4m3);
            EXPECT_EQ(pw.panel(0, false).scale.lut_is_e4m3, e4m3);
            EXPECT_EQ(pw.panel(0, false).fvalue_is_e4m3, e4m3_elements);
            EXPECT_EQ(pw.panel(0, false).fvalue_is_e5m2, e5m2_elements);
            EXPECT_EQ(pw.panel(0, false).integer_codes, name == "mxfp4" || name == "mxfp6_e2m3" || name == "nvfp4");
            for (std::int64_t n : {1, 3, 8})  // 8: the AVX2 float kernel's decoded tile
              for (const char* act : {"mxint8", ""}) {
                const auto xv = random_matrix(n, k, 72, 1.0f);
                lowbit::MatmulOptions opt;
                if (*act) opt.activation = lowbit::Quantizer(act);
                SCOPED_TRACE(std::string("act ") + act);
                const std::vector<float> ys = expect_every_path_gives_scalar_bits(pw, xv, n, k, m, opt);
                EXPECT_TRUE(std::any_of(ys.begin(), ys.end(), [](float v) { return std::isnan(v); }));
              }
          }
        },
        lowbit::Quantizer(name).format());
}

// NVFP4's tensor scale at the ends of the float range, every E4M3 block-scale code beside it:
// the kernels fold 2^8 into the tensor scale to decode block scales through binary16, and take
// the two-case route where that product would overflow (2^120 here). Every path gives the
// scalar path's bits, infinities and NaNs included.
template <class F>
void expect_tensor_scale_extremes_match_scalar(const F& fmt) {
  const std::int64_t m = 40, k = 128;
  const auto wv = random_matrix(m, k, 73, 0.1f);
  for (const float ts : {0x1p120f, 0x1p119f, 0x1p-140f, 0x1p-149f}) {
    SCOPED_TRACE(ts);
    lowbit::QuantizedTensor qt;
    lowbit::quantize_into(fmt, MatrixRef<const float>::row_major(wv.data(), m, k), qt);
    ASSERT_GE(qt.headers.size(), 256u);
    for (std::size_t i = 0; i < qt.headers.size(); ++i) qt.headers[i].scale = static_cast<std::uint32_t>((i * 97) % 256);
    qt.tensor.tensor_scale = ts;
    const auto pw = lowbit::PanelMatrix<F>::from_packed(lowbit::PackedMatrix<F>::pack(fmt, qt));
    EXPECT_TRUE(pw.panel(0, false).scale.lut_is_e4m3);
    for (std::int64_t n : {1, 3, 8})
      for (const char* act : {"int8_b32_fp16", ""}) {
        const auto xv = random_matrix(n, k, 74, 1.0f);
        lowbit::MatmulOptions opt;
        if (*act) opt.activation = lowbit::Quantizer(act);
        SCOPED_TRACE(std::string("act ") + act);
        expect_every_path_gives_scalar_bits(pw, xv, n, k, m, opt);
      }
  }
}

TEST(PanelMatmul, NVFP4TensorScaleAtTheEndsOfTheRangeMatchesScalar) {
  std::visit(
      [](const auto& fmt) {
        if constexpr (lowbit::is_block_format<std::decay_t<decltype(fmt)>>) expect_tensor_scale_extremes_match_scalar(fmt);
        else FAIL() << "nvfp4 is not a block format";
      },
      lowbit::Quantizer("nvfp4").format());
}

// Activations at the ends of the float range against MXFP8 E4M3 weights: below 8 rows the
// float kernels multiply by X times 2^8 (FloatActArgs::x256), which must be left out
// where 2^8 x overflows (2^121 here); infinities, NaNs and subnormals go through it. Every
// path gives the scalar path's bits.
TEST(PanelMatmul, E4M3WeightsWithActivationsAtTheEndsOfTheRangeMatchScalar) {
  std::visit(
      [](const auto& fmt) {
        using F = std::decay_t<decltype(fmt)>;
        if constexpr (lowbit::is_block_format<F>) {
          const std::int64_t m = 40, k = 128;
          const auto wv = random_matrix(m, k, 75, 0.1f);
          const auto pw = lowbit::PanelMatrix<F>::from_packed(
              lowbit::PackedMatrix<F>::pack(fmt, MatrixRef<const float>::row_major(wv.data(), m, k)));
          for (const float big : {0x1p121f, 0x1p119f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                                  0x1p-149f}) {
            SCOPED_TRACE(big);
            for (std::int64_t n : {1, 3}) {
              auto xv = random_matrix(n, k, 76, 1.0f);
              for (std::int64_t r = 0; r < n; ++r) xv[static_cast<std::size_t>(r * k + (5 * r + 2) % k)] = r % 2 ? -big : big;
              const auto act = lowbit::prepare_activations(MatrixRef<const float>::row_major(xv.data(), n, k), pw);
              EXPECT_EQ(act.float_args().x256 != nullptr, big != 0x1p121f);
              expect_every_path_gives_scalar_bits(pw, xv, n, k, m, {});
            }
          }
        } else {
          FAIL() << "mxfp8_e4m3 is not a block format";
        }
      },
      lowbit::Quantizer("mxfp8_e4m3").format());
}

TEST(PanelMatrix, HoldsExactlyThePackedCodesAndScales) {
  for (const auto& name : kPanelWeights) {
    SCOPED_TRACE(name);
    const std::int64_t m = 37, k = 100;
    const auto wv = random_matrix(m, k, 11, 0.3f);
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) {
            const auto pm = lowbit::PackedMatrix<F>::pack(f, MatrixRef<const float>::row_major(wv.data(), m, k));
            const auto pw = lowbit::PanelMatrix<F>::from_packed(pm);
            EXPECT_EQ(pw.to_packed().serialize(), pm.serialize());
            const auto a = pw.unpack(), b = pm.unpack();
            ASSERT_EQ(a.size(), b.size());
            EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
            // Memory: the payload is the format's bits over K rounded up to 8 columns, plus
            // under two cache lines per panel (after the scales, after the codes).
            const std::uint64_t kp = f.element_bits() == 6 ? 112u : 104u;  // K = 100 padded to 16 or 8
            EXPECT_EQ(pw.payload_bits(), static_cast<std::uint64_t>(m) * (kp * static_cast<std::uint64_t>(f.element_bits()) +
                                                                        static_cast<std::uint64_t>(pm.blocks_per_row()) * (f.has_scale() ? f.scale.bits() : 0)));
            EXPECT_LT(pw.bytes() * 8, pw.payload_bits() + static_cast<std::uint64_t>(pw.panels()) * 1024u);
          }
        },
        lowbit::Quantizer(name).format());
  }
}

// 6-bit codes that the AVX2 float kernel converts through fp16 (e3m2_half_unit): E3M2 of any
// bias, subnormals included, no Inf or NaN codes; other 6-bit values keep the table.
TEST(PanelMatrix, E3M2ElementsConvertThroughHalf) {
  auto code_map = [](const std::string& name) {
    lowbit::detail::PanelCodeMap m;
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) m = lowbit::detail::make_panel_code_map(f);
        },
        lowbit::Quantizer(name).format());
    return m;
  };
  const auto e3m2 = code_map("mxfp6_e3m2");
  EXPECT_EQ(e3m2.e3m2_unit, 4096.0f);  // bias 3: the fp16 of code 4 (E3M2 2^-2) is 2^-14
  EXPECT_EQ(code_map("fp6_e3m2_b32").e3m2_unit, 4096.0f);
  EXPECT_EQ(code_map("mxfp6_e2m3").e3m2_unit, 0.0f);
  EXPECT_EQ(code_map("bfp6_b16").e3m2_unit, 0.0f);
  auto v = e3m2.fvalue;
  for (int c = 0; c < 64; ++c) v[static_cast<std::size_t>(c)] *= 4.0f;  // bias 1
  EXPECT_EQ(lowbit::detail::e3m2_half_unit(v), 16384.0f);
  v = e3m2.fvalue;
  v[1] = 0.0f;  // no subnormals
  EXPECT_EQ(lowbit::detail::e3m2_half_unit(v), 0.0f);
  v = e3m2.fvalue;
  v[31] = std::numeric_limits<float>::infinity();  // IEEE-like specials
  EXPECT_EQ(lowbit::detail::e3m2_half_unit(v), 0.0f);
  v = e3m2.fvalue;
  v[32] = 0.0f;  // -0 as +0: a bit differs
  EXPECT_EQ(lowbit::detail::e3m2_half_unit(v), 0.0f);
  for (int c = 0; c < 64; ++c) v[static_cast<std::size_t>(c)] = e3m2.fvalue[static_cast<std::size_t>(c)] * 3.0f;
  EXPECT_EQ(lowbit::detail::e3m2_half_unit(v), 0.0f);  // not a power of two
}

TEST(PanelMatrix, IntegerElementClassification) {
  auto integer = [](const std::string& name) {
    bool r = false;
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) r = lowbit::detail::make_panel_code_map(f).integer;
        },
        lowbit::Quantizer(name).format());
    return r;
  };
  EXPECT_TRUE(integer("mxfp4"));       // E2M1 values times 2 are -12..12
  EXPECT_TRUE(integer("mxint8"));      // 1.6 fixed point
  EXPECT_TRUE(integer("int4_b32_fp16"));
  EXPECT_TRUE(integer("mxfp6_e2m3"));  // times 8: -60..60
  EXPECT_FALSE(integer("mxfp6_e3m2")); // times 16 reaches 448
  EXPECT_FALSE(integer("mxfp8_e4m3"));
  EXPECT_FALSE(integer("nf4_b64"));
}

TEST(PanelMatmul, ThreadCountAndRowRangesGiveTheSameBits) {
  const std::int64_t n = 5, m = 70, k = 200;
  const auto xv = random_matrix(n, k, 21, 1.0f), wv = random_matrix(m, k, 22, 0.1f);
  const auto pw = lowbit::pack_panels(lowbit::MXFP4{}, MatrixRef<const float>::row_major(wv.data(), m, k));
  lowbit::MatmulOptions opt;
  opt.activation = lowbit::Quantizer("int8_b32_fp16");
  std::vector<float> y1(static_cast<std::size_t>(n * m)), y2 = y1, y3 = y1;
  opt.threads = 1;
  lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, {}, MatrixRef<float>::row_major(y1.data(), n, m), opt);
  opt.threads = 7;
  lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, {}, MatrixRef<float>::row_major(y2.data(), n, m), opt);
  const auto act = lowbit::prepare_activations(MatrixRef<const float>::row_major(xv.data(), n, k), pw, opt);
  const auto y3ref = MatrixRef<float>::row_major(y3.data(), n, m);
  lowbit::matmul_rows(act, pw, {}, y3ref, 48, 70);
  lowbit::matmul_rows(act, pw, {}, y3ref, 0, 16);
  lowbit::matmul_rows(act, pw, {}, y3ref, 16, 48);
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0);
  EXPECT_EQ(std::memcmp(y1.data(), y3.data(), y1.size() * 4), 0);
  // ranges of activation rows too
  std::vector<float> y4(y1.size(), -1.0f);
  const auto y4ref = MatrixRef<float>::row_major(y4.data(), n, m);
  lowbit::matmul_rows(act, pw, {}, y4ref, 0, 70, 3, 5);
  lowbit::matmul_rows(act, pw, {}, y4ref, 0, 32, 0, 3);
  lowbit::matmul_rows(act, pw, {}, y4ref, 32, 70, 0, 3);
  lowbit::matmul_rows(act, pw, {}, y4ref, 0, 70, 5, 5);  // empty
  EXPECT_EQ(std::memcmp(y1.data(), y4.data(), y1.size() * 4), 0);
}

// A W of one panel and many activation rows: the threads split the activation rows, with
// the bits of one thread.
TEST(PanelMatmul, NarrowWeightsSplitTheActivationRowsOverThreads) {
  const std::int64_t n = 45, m = 16, k = 96;
  const auto xv = random_matrix(n, k, 23, 1.0f), wv = random_matrix(m, k, 24, 0.1f);
  const auto pw = lowbit::pack_panels(lowbit::MXFP4{}, MatrixRef<const float>::row_major(wv.data(), m, k));
  for (const char* act : {"int8_b32_fp16", ""}) {
    lowbit::MatmulOptions opt;
    if (*act) opt.activation = lowbit::Quantizer(act);
    std::vector<float> y1(static_cast<std::size_t>(n * m)), y2(y1.size(), -1.0f);
    opt.threads = 1;
    lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, {}, MatrixRef<float>::row_major(y1.data(), n, m), opt);
    opt.threads = 4;
    lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), pw, {}, MatrixRef<float>::row_major(y2.data(), n, m), opt);
    EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0) << act;
  }
}

// bf16 activations give the bits of the same values passed as floats: on the integer kernel,
// the float kernel (weight-only and fake-quantised), with a tensor-scaled activation format,
// strided X, prepared activations with row ranges, and the row-layout path.
TEST(PanelMatmul, Bf16ActivationsGiveTheBitsOfTheirWidenedFloats) {
  using lowbit::bfloat16;
  const std::int64_t m = 37, k = 200;
  const auto wv = random_matrix(m, k, 51, 0.05f), bias = random_matrix(1, m, 53, 0.1f);
  for (std::int64_t n : {1, 3, 17}) {
    const auto xv = random_matrix(n, k, 52, 1.0f);
    std::vector<bfloat16> xb(xv.size()), xt(xv.size());  // xt: column-major copy
    std::vector<float> xf(xv.size());
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t c = 0; c < k; ++c) {
        const bfloat16 b{static_cast<std::uint16_t>(lowbit::BF16::encode(xv[static_cast<std::size_t>(r * k + c)]))};
        xb[static_cast<std::size_t>(r * k + c)] = b;
        xt[static_cast<std::size_t>(c * n + r)] = b;
        xf[static_cast<std::size_t>(r * k + c)] = b.to_float();
      }
    const auto xb_ref = MatrixRef<const bfloat16>::row_major(xb.data(), n, k);
    const auto xt_ref = MatrixRef<const bfloat16>::col_major(xt.data(), n, k);
    const auto xf_ref = MatrixRef<const float>::row_major(xf.data(), n, k);
    for (auto [w, a] : {std::pair<std::string, std::string>{"mxfp4", "mxint8"}, {"int4_b32_fp16", ""}, {"nf4_b64", "int8_b32_fp16"},
                        {"int8_b32_fp16", "nvfp4"}, {"mxfp6_e2m3", "mxint8"}}) {
      SCOPED_TRACE(w + " x " + (a.empty() ? "float" : a) + " N=" + std::to_string(n));
      lowbit::MatmulOptions opt;
      if (!a.empty()) opt.activation = lowbit::Quantizer(a);
      std::visit(
          [&](const auto& f) {
            using F = std::decay_t<decltype(f)>;
            if constexpr (lowbit::is_block_format<F>) {
              const auto pw = lowbit::PanelMatrix<F>::pack(f, MatrixRef<const float>::row_major(wv.data(), m, k));
              std::vector<float> yf(static_cast<std::size_t>(n * m)), yb(yf.size(), -1.0f), yt(yf.size(), -2.0f),
                  yr(yf.size(), -3.0f);
              const auto out = [&](std::vector<float>& y) { return MatrixRef<float>::row_major(y.data(), n, m); };
              lowbit::matmul(xf_ref, pw, std::span<const float>(bias), out(yf), opt);
              lowbit::matmul(xb_ref, pw, std::span<const float>(bias), out(yb), opt);
              lowbit::matmul(xt_ref, pw, std::span<const float>(bias), out(yt), opt);
              const auto act = lowbit::prepare_activations(xb_ref, pw, opt);
              EXPECT_EQ(act.integer, lowbit::prepare_activations(xf_ref, pw, opt).integer);
              lowbit::matmul_rows(act, pw, std::span<const float>(bias), out(yr), 16, m);
              lowbit::matmul_rows(act, pw, std::span<const float>(bias), out(yr), 0, 16);
              EXPECT_EQ(std::memcmp(yf.data(), yb.data(), yf.size() * 4), 0);
              EXPECT_EQ(std::memcmp(yf.data(), yt.data(), yf.size() * 4), 0);
              EXPECT_EQ(std::memcmp(yf.data(), yr.data(), yf.size() * 4), 0);
            }
          },
          lowbit::Quantizer(w).format());
    }
    // The row-layout path of formats without panels.
    const auto pm = lowbit::AnyPackedMatrix::pack("uint4_b32_fp16", MatrixRef<const float>::row_major(wv.data(), m, k));
    std::vector<float> yf(static_cast<std::size_t>(n * m)), yb(yf.size(), -1.0f);
    std::visit(
        [&](const auto& p) {
          lowbit::matmul(xf_ref, p, std::span<const float>(bias), MatrixRef<float>::row_major(yf.data(), n, m));
          lowbit::matmul(xt_ref, p, std::span<const float>(bias), MatrixRef<float>::row_major(yb.data(), n, m));
        },
        pm.matrix());
    EXPECT_EQ(std::memcmp(yf.data(), yb.data(), yf.size() * 4), 0);
  }
  // Bad bf16 input is refused like bad float input.
  const auto pw = lowbit::pack_panels(lowbit::MXFP4{}, MatrixRef<const float>::row_major(wv.data(), m, k));
  std::vector<bfloat16> x(2 * k);
  std::vector<float> y(2 * m);
  EXPECT_THROW(lowbit::matmul(MatrixRef<const bfloat16>::row_major(x.data(), 2, k - 1), pw, {},
                              MatrixRef<float>::row_major(y.data(), 2, m)),
               lowbit::Error);
  EXPECT_THROW(lowbit::matmul(MatrixRef<const bfloat16>::row_major(nullptr, 2, k), pw, {}, MatrixRef<float>::row_major(y.data(), 2, m)),
               lowbit::Error);
  lowbit::MatmulOptions opt;
  opt.activation = lowbit::Quantizer("mxint8");
  EXPECT_THROW(lowbit::prepare_activations(MatrixRef<const bfloat16>::row_major(x.data(), 2, k - 1), pw, opt), lowbit::Error);
  EXPECT_THROW(lowbit::prepare_activations(MatrixRef<const bfloat16>::row_major(x.data(), 2, k - 1), pw), lowbit::Error);
}

TEST(PanelMatmul, BadArgumentsThrowLowbitError) {
  const std::int64_t m = 20, k = 64;
  const auto wv = random_matrix(m, k, 31, 0.1f);
  const auto pw = lowbit::pack_panels(lowbit::MXFP4{}, MatrixRef<const float>::row_major(wv.data(), m, k));
  std::vector<float> x(2 * 63), y(2 * m);
  EXPECT_THROW(lowbit::matmul(MatrixRef<const float>::row_major(x.data(), 2, 63), pw, {}, MatrixRef<float>::row_major(y.data(), 2, m)),
               lowbit::Error);
  std::vector<float> x2(2 * k), b(3);
  EXPECT_THROW(lowbit::matmul(MatrixRef<const float>::row_major(x2.data(), 2, k), pw, std::span<const float>(b),
                              MatrixRef<float>::row_major(y.data(), 2, m)),
               lowbit::Error);
  const auto act = lowbit::prepare_activations(MatrixRef<const float>::row_major(x2.data(), 2, k), pw);
  EXPECT_THROW(lowbit::matmul_rows(act, pw, {}, MatrixRef<float>::row_major(y.data(), 2, m), 8, 20), lowbit::Error);
  EXPECT_THROW(lowbit::matmul_rows(act, pw, {}, MatrixRef<float>::row_major(y.data(), 2, m), 0, 21), lowbit::Error);
  EXPECT_THROW(lowbit::matmul_rows(act, pw, {}, MatrixRef<float>::row_major(y.data(), 2, m), 0, 16, 1, 3), lowbit::Error);
  EXPECT_THROW(lowbit::matmul_rows(act, pw, {}, MatrixRef<float>::row_major(y.data(), 2, m), 0, 16, 2, 1), lowbit::Error);
  // Formats without a panel layout say so.
  const auto bad = lowbit::Quantizer("uint4_b32_fp16");
  const auto& f = std::get<lowbit::FixedPointFormat>(bad.format());
  const auto pm = lowbit::PackedMatrix<lowbit::FixedPointFormat>::pack(f, MatrixRef<const float>::row_major(wv.data(), m, k));
  EXPECT_THROW(lowbit::PanelMatrix<lowbit::FixedPointFormat>::from_packed(pm), lowbit::Error);
}

// The row-layout path for formats without panels: within the float bound of the exact product.
TEST(PackedMatmul, AnyFormatThroughDecodedTiles) {
  for (const std::string w : {"mxfp6_e3m2", "bfp6_b16", "uint4_b32_fp16", "mxint2", "fp16", "bl_w8_b16"})
    for (const std::string a : {"", "mxint8"}) {
      SCOPED_TRACE(w + " x " + a);
      const std::int64_t n = 3, m = 70, k = 130;
      const auto xv = random_matrix(n, k, 41, 1.0f), wv = random_matrix(m, k, 42, 0.05f), bias = random_matrix(1, m, 43, 0.1f);
      const auto pm = lowbit::AnyPackedMatrix::pack(w, MatrixRef<const float>::row_major(wv.data(), m, k));
      lowbit::MatmulOptions opt;
      std::vector<float> xq = xv;
      if (!a.empty()) {
        opt.activation = lowbit::Quantizer(a);
        opt.activation->fake_quant(MatrixRef<const float>::row_major(xv.data(), n, k), MatrixRef<float>::row_major(xq.data(), n, k));
      }
      std::vector<float> y(static_cast<std::size_t>(n * m));
      std::visit([&](const auto& p) { lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, k), p, std::span<const float>(bias),
                                                     MatrixRef<float>::row_major(y.data(), n, m), opt); },
                 pm.matrix());
      const RowMat exact = to_eigen(xq, n, k) * to_eigen(pm.unpack(), m, k).transpose();
      const RowMat mag = to_eigen(xq, n, k).cwiseAbs() * to_eigen(pm.unpack(), m, k).cwiseAbs().transpose();
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < m; ++j)
          ASSERT_NEAR(y[static_cast<std::size_t>(i * m + j)], exact(i, j) + bias[static_cast<std::size_t>(j)],
                      (k + 8) * std::ldexp(1.0, -23) * (mag(i, j) + std::fabs(bias[static_cast<std::size_t>(j)])));
    }
}

}  // namespace
