// QuantLinear and the quantised attention matmuls against Eigen references built from
// quantisers written here from the formats' definitions: exact where every product and sum
// is exact (BFP and grid-aligned MX operands), otherwise within a bound from the step sizes.
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lowbit/nn/quant_attention.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/nn/quant_linear.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit::nn::QuantLinear;
using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMatF random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  RowMatF m(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m(r, c) = scale * g(rng);
  return m;
}

MatrixRef<const float> cref(const RowMatF& m) { return MatrixRef<const float>::row_major(m.data(), m.rows(), m.cols()); }
MatrixRef<float> ref(RowMatF& m) { return MatrixRef<float>::row_major(m.data(), m.rows(), m.cols()); }

// Block floating point from its definition: W-bit symmetric integers k (|k| <= 2^(W-1) - 1)
// times 2^e, e the smallest exponent with amax <= (2^(W-1) - 1) 2^e, k rounded half to even.
// Blocks of `block` values run along rows (axis 1) or columns (axis 0).
RowMatF bfp(const RowMatF& x, int bits, int block, int axis) {
  RowMatF out = x;
  const double qmax = std::ldexp(1.0, bits - 1) - 1.0;
  const auto lines = axis == 1 ? x.rows() : x.cols();
  const auto len = axis == 1 ? x.cols() : x.rows();
  auto at = [&](RowMatF& m, Eigen::Index line, Eigen::Index i) -> float& { return axis == 1 ? m(line, i) : m(i, line); };
  RowMatF in = x;
  for (Eigen::Index line = 0; line < lines; ++line)
    for (Eigen::Index b0 = 0; b0 < len; b0 += block) {
      const Eigen::Index b1 = std::min<Eigen::Index>(len, b0 + block);
      double amax = 0;
      for (Eigen::Index i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(static_cast<double>(at(in, line, i))));
      if (amax == 0) continue;
      int e = -200;
      while (qmax * std::ldexp(1.0, e) < amax) ++e;
      for (Eigen::Index i = b0; i < b1; ++i) {
        const double k = std::nearbyint(std::ldexp(static_cast<double>(at(in, line, i)), -e));  // ties to even
        at(out, line, i) = static_cast<float>(std::ldexp(std::clamp(k, -qmax, qmax), e));
      }
    }
  return out;
}

// Symmetric integers with an fp32 absmax scale per block along rows: s = fl32(amax / qmax),
// k = rne(fl32(x / s)) clamped to +-qmax, value fl32(k * s).
RowMatF int_block(const RowMatF& x, int bits, int block, std::vector<float>* scales = nullptr) {
  RowMatF out = x;
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index b0 = 0; b0 < x.cols(); b0 += block) {
      const Eigen::Index b1 = std::min<Eigen::Index>(x.cols(), b0 + block);
      float amax = 0;
      for (Eigen::Index c = b0; c < b1; ++c) amax = std::max(amax, std::fabs(x(r, c)));
      const float s = static_cast<float>(static_cast<double>(amax) / qmax);
      if (scales) scales->push_back(s);
      for (Eigen::Index c = b0; c < b1; ++c)
        out(r, c) = s > 0 ? std::clamp(std::nearbyint(x(r, c) / s), -qmax, qmax) * s : 0.0f;
    }
  return out;
}

// The expected output: fl32 of the double product plus bias (exact when every product and
// the sum are exact in double, which the exact tests arrange).
RowMatF product_rounded_once(const RowMatF& x, const RowMatF& w, const std::vector<float>& bias) {
  RowMatD y = x.cast<double>() * w.cast<double>().transpose();
  for (Eigen::Index r = 0; r < y.rows(); ++r)
    for (Eigen::Index c = 0; c < y.cols(); ++c) y(r, c) += bias.empty() ? 0.0 : static_cast<double>(bias[static_cast<std::size_t>(c)]);
  return y.cast<float>();
}

RowMatF run(const QuantLinear& l, const RowMatF& x) {
  RowMatF y(x.rows(), l.out_features());
  l.forward(cref(x), ref(y));
  return y;
}

std::vector<float> random_bias(std::int64_t n, unsigned seed) {
  const RowMatF b = random_matrix(1, n, seed, 0.25f);
  return std::vector<float>(b.data(), b.data() + n);
}

// ---- QuantLinear -------------------------------------------------------------------------

// The layer holds its weight once: for a panel format, the panels (the format's bits plus
// under 64 bytes per 16-row panel), not the panels and the packed matrix beside them; and the
// panels still unpack to what the packed matrix holds.
TEST(QuantLinear, HoldsTheWeightOnce) {
  const std::int64_t m = 256, k = 1024;
  std::vector<float> w(static_cast<std::size_t>(m * k));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (float& v : w) v = nd(rng);
  const auto wr = MatrixRef<const float>::row_major(w.data(), m, k);
  for (const char* name : {"mxfp4", "int8_b32_fp16", "bfp6_b16"}) {
    const QuantLinear l = QuantLinear::from_name(name, wr);
    const double payload_bytes = l.weight_bits_per_element() * static_cast<double>(m * k) / 8.0;
    EXPECT_LE(static_cast<double>(l.weight_bytes()), payload_bytes + 64.0 * static_cast<double>(m / 16)) << name;
    EXPECT_EQ(l.dequantized_weight(), lowbit::AnyPackedMatrix::pack(name, wr).unpack()) << name;
  }
}

TEST(QuantLinear, BfpWeightsAndActivationsAreExact) {
  // Odd shapes: K = 37 gives blocks of 16, 16 and a tail of 5.
  for (const auto& [n, m, k] : {std::array<int, 3>{5, 11, 37}, {1, 3, 16}, {7, 1, 1}, {3, 9, 50}}) {
    SCOPED_TRACE(std::to_string(n) + "x" + std::to_string(m) + "x" + std::to_string(k));
    const RowMatF x = random_matrix(n, k, 11, 1.5f);
    const RowMatF w = random_matrix(m, k, 12, 0.1f);
    const std::vector<float> b = random_bias(m, 13);
    QuantLinear l = QuantLinear::from_name("bfp8_b16", cref(w), b);
    l.set_activation_format("bfp6_b16");
    // Every product k1 k2 2^(e1 + e2) and their sum are exact in double: one rounding.
    const RowMatF expect = product_rounded_once(bfp(x, 6, 16, 1), bfp(w, 8, 16, 1), b);
    const RowMatF y = run(l, x);
    for (Eigen::Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], expect.data()[i]) << "element " << i;
  }
}

TEST(QuantLinear, WeightOnlyBfpIsExactAndActivationsStayFloat) {
  const RowMatF x = random_matrix(4, 33, 21, 1.0f);
  const RowMatF w = random_matrix(6, 33, 22, 0.2f);
  const QuantLinear l = QuantLinear::from_name("bfp4_b8", cref(w));
  // x is float: products of a 24-bit x and a 3-bit k are exact; the layer sums them in float
  // (the packed matmul's kernels), so allow the float summation bound (K + 8) 2^-23 sum |x w|.
  const RowMatF expect = product_rounded_once(x, bfp(w, 4, 8, 1), {});
  const RowMatF mag = x.cwiseAbs() * bfp(w, 4, 8, 1).cwiseAbs().transpose();
  const RowMatF y = run(l, x);
  for (Eigen::Index i = 0; i < y.size(); ++i)
    EXPECT_NEAR(y.data()[i], expect.data()[i], 41.0 * std::ldexp(1.0, -23) * mag.data()[i] + 1e-12) << i;
  EXPECT_FALSE(l.activation_format().has_value());
}

TEST(QuantLinear, MxOperandsOnTheGridAreExact) {
  // Weights already on the MXFP4 grid of their block (block max 6 * 2^e sets scale 2^e),
  // activations small integers: nothing rounds, so the float product must come out exactly.
  const float grid[] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const std::int64_t m = 5, k = 70, n = 3;  // K = 32 + 32 + 6
  std::mt19937 rng(5);
  RowMatF w(m, k), x(n, k);
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t c = 0; c < k; ++c) {
      const int e = static_cast<int>(c / 32) - 3 + static_cast<int>(r % 3);
      const float v = (c % 32 == 0) ? 6.0f : grid[rng() % 8];
      w(r, c) = std::ldexp((rng() % 2) ? -v : v, e);
    }
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(static_cast<int>(rng() % 15) - 7);
  QuantLinear l = QuantLinear::from_name("mxfp4", cref(w));
  l.set_activation_format("mxint8");  // integers up to 7 sit on MXINT8's grid of their block
  const RowMatF expect = product_rounded_once(x, w, {});
  const RowMatF y = run(l, x);
  for (Eigen::Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], expect.data()[i]) << i;
  const RowMatF floats = x * w.transpose();  // Eigen float: every partial sum is exact here too
  for (Eigen::Index i = 0; i < y.size(); ++i) ASSERT_EQ(y.data()[i], floats.data()[i]) << i;
}

TEST(QuantLinear, IntegerBlocksWithinTheirStepOfTheFloatLayer) {
  const std::int64_t n = 6, m = 13, k = 45;  // blocks of 32: 32 + 13
  const RowMatF x = random_matrix(n, k, 31, 1.0f);
  const RowMatF w = random_matrix(m, k, 32, 0.3f);
  const std::vector<float> b = random_bias(m, 33);
  for (const int bits : {8, 4}) {
    SCOPED_TRACE(bits);
    const QuantLinear l = QuantLinear::from_name("int" + std::to_string(bits) + "_b32_fp32", cref(w), b);
    const RowMatF y = run(l, x);
    // Against the independent integer quantiser: within the float summation bound.
    const RowMatF expect = product_rounded_once(x, int_block(w, bits, 32), b);
    const RowMatF mag = x.cwiseAbs() * int_block(w, bits, 32).cwiseAbs().transpose();
    for (Eigen::Index i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y.data()[i], expect.data()[i],
                  53.0 * std::ldexp(1.0, -23) * (mag.data()[i] + std::fabs(b[static_cast<std::size_t>(i % m)])) + 1e-9)
          << i;
    // Against the float layer: each weight moves by at most half a step s / 2 of its block.
    std::vector<float> scales;
    int_block(w, bits, 32, &scales);
    const RowMatF exact = product_rounded_once(x, w, b);
    double worst_ratio = 0;
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t j = 0; j < m; ++j) {
        double bound = 0;
        for (std::int64_t c = 0; c < k; ++c) bound += std::fabs(x(r, c)) * scales[static_cast<std::size_t>(j * 2 + c / 32)] / 2;
        const double err = std::fabs(static_cast<double>(y(r, j)) - exact(r, j));
        EXPECT_LE(err, bound * (1 + 1e-5) + 1e-6) << r << "," << j;
        worst_ratio = std::max(worst_ratio, err / bound);
      }
    EXPECT_GT(worst_ratio, 0.01);  // the weights really were quantised
  }
}

TEST(QuantLinear, PerTensorFp8WithinItsRelativeStep) {
  // FP8 E4M3 with one fp32 scale s = amax / 448: every weight within 2^-4 of itself (3
  // mantissa bits) or, below the normal range, within half the smallest step s 2^-10.
  const std::int64_t n = 3, m = 17, k = 29;
  const RowMatF x = random_matrix(n, k, 41, 1.0f);
  RowMatF w = random_matrix(m, k, 42, 0.5f);
  w(3, 4) = 9.0f;  // a large value sets the tensor scale
  const std::vector<float> b = random_bias(m, 43);
  const QuantLinear l = QuantLinear::from_name("fp8_e4m3_pt", cref(w), b);
  const RowMatF y = run(l, x);
  const double s = 9.0 / 448.0;
  const RowMatF exact = product_rounded_once(x, w, b);
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t j = 0; j < m; ++j) {
      double bound = 1e-6 * (1 + std::fabs(exact(r, j)));
      for (std::int64_t c = 0; c < k; ++c) bound += std::fabs(x(r, c)) * (std::fabs(w(j, c)) / 16 + s / 1024);
      EXPECT_LE(std::fabs(static_cast<double>(y(r, j)) - exact(r, j)), bound) << r << "," << j;
    }
  // The per-tensor path holds the element codes plus one scale, and the weight it uses is
  // what fake_quant gives for the whole tensor.
  std::vector<float> fq(static_cast<std::size_t>(m * k));
  lowbit::Quantizer("fp8_e4m3_pt").fake_quant(cref(w), MatrixRef<float>::row_major(fq.data(), m, k));
  const std::vector<float> dq = l.dequantized_weight();
  for (std::size_t i = 0; i < fq.size(); ++i) EXPECT_NEAR(dq[i], fq[i], std::fabs(fq[i]) * 2.4e-7) << i;
  EXPECT_NEAR(l.weight_bits_per_element(), 8.0 + 32.0 / static_cast<double>(m * k), 1e-12);
}

TEST(QuantLinear, CompileTimeAndRunTimeFormatsAgree) {
  const RowMatF x = random_matrix(4, 40, 51, 1.0f);
  const RowMatF w = random_matrix(9, 40, 52, 0.1f);
  const QuantLinear a = QuantLinear::from_format<lowbit::MXFP4>(cref(w), {}, "mxfp4");
  const QuantLinear b = QuantLinear::from_name("mxfp4", cref(w));
  const RowMatF ya = run(a, x), yb = run(b, x);
  for (Eigen::Index i = 0; i < ya.size(); ++i) ASSERT_EQ(ya.data()[i], yb.data()[i]);
  EXPECT_EQ(a.weight_format_name(), "mxfp4");
  EXPECT_NEAR(a.weight_bits_per_element(), 4.0 + 2 * 8.0 / 40.0, 1e-12);  // blocks of 32 and 8
}

TEST(QuantLinear, PerTensorActivationsAreScaledPerToken) {
  // A batch gives the same rows as one token at a time, even for formats whose scale
  // covers the whole tensor (one token's vector is the tensor).
  RowMatF x = random_matrix(6, 24, 61, 1.0f);
  x(2, 5) = 40.0f;  // one token with an outlier must not change the others' scales
  const RowMatF w = random_matrix(7, 24, 62, 0.2f);
  for (const char* act : {"fp8_e4m3_pt", "nvfp4", "int8_pt_fp32", "mxfp6_e2m3"}) {
    SCOPED_TRACE(act);
    QuantLinear l = QuantLinear::from_name("int8_b32_fp32", cref(w));
    l.set_activation_format(act);
    const RowMatF batch = run(l, x);
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      const RowMatF one = run(l, RowMatF(x.row(r)));
      for (Eigen::Index c = 0; c < batch.cols(); ++c) ASSERT_EQ(batch(r, c), one(0, c)) << r << "," << c;
    }
  }
}

TEST(QuantLinear, ReportsBadInput) {
  const RowMatF w = random_matrix(4, 8, 71, 1.0f);
  EXPECT_THROW(QuantLinear::from_name("no_such_format", cref(w)), lowbit::Error);
  EXPECT_THROW(QuantLinear::from_name("mase_bfp_w6_b16", cref(w)), lowbit::Error);  // no codes to pack
  EXPECT_THROW(QuantLinear::from_name("int8_b32_fp32", cref(w), std::vector<float>(3)), lowbit::Error);
  const QuantLinear l = QuantLinear::from_name("int8_b32_fp32", cref(w));
  RowMatF x = random_matrix(2, 9, 72, 1.0f), y(2, 4);
  EXPECT_THROW(l.forward(cref(x), ref(y)), lowbit::Error);
}

// ---- attention -----------------------------------------------------------------------------

TEST(QuantAttention, FloatPathsMatchTheEigenReference) {
  const RowMatF q = random_matrix(3, 8, 81, 1.0f), k = random_matrix(11, 8, 82, 1.0f);
  RowMatF s(3, 11), s_ref(3, 11);
  lowbit::nn::attention_scores(cref(q), cref(k), ref(s));
  lowbit::nn::attention_scores_reference(cref(q), cref(k), ref(s_ref));
  for (Eigen::Index i = 0; i < s.size(); ++i) EXPECT_NEAR(s.data()[i], s_ref.data()[i], 1e-5f);
  const RowMatF p = random_matrix(3, 11, 83, 0.3f), v = random_matrix(11, 8, 84, 1.0f);
  RowMatF o(3, 8), o_ref(3, 8);
  lowbit::nn::attention_mix(cref(p), cref(v), ref(o));
  lowbit::nn::attention_mix_reference(cref(p), cref(v), ref(o_ref));
  for (Eigen::Index i = 0; i < o.size(); ++i) EXPECT_NEAR(o.data()[i], o_ref.data()[i], 1e-5f);
}

TEST(QuantAttention, BfpScoresQuantiseAlongTheHeadDimension) {
  // Head size 10 with blocks of 4 (4 + 4 + 2): Q's and K's blocks run along each row.
  const RowMatF q = random_matrix(5, 10, 91, 1.0f), k = random_matrix(13, 10, 92, 2.0f);
  const lowbit::Quantizer fmt("bfp6_b4");
  RowMatF s(5, 13);
  lowbit::nn::attention_scores(cref(q), cref(k), ref(s), &fmt);
  const RowMatF expect = product_rounded_once(bfp(q, 6, 4, 1), bfp(k, 6, 4, 1), {});
  for (Eigen::Index i = 0; i < s.size(); ++i) ASSERT_EQ(s.data()[i], expect.data()[i]) << i;
  // Blocks across the head dimension (down K's columns) would give other scores.
  const RowMatF wrong = product_rounded_once(bfp(q, 6, 4, 1), bfp(k, 6, 4, 0), {});
  EXPECT_NE((s - wrong).cwiseAbs().maxCoeff(), 0.0f);
}

TEST(QuantAttention, BfpMixQuantisesAlongPositions) {
  // 9 positions with blocks of 4 (4 + 4 + 1): P along its rows, V down its columns.
  RowMatF p = random_matrix(3, 9, 101, 1.0f).cwiseAbs();
  for (Eigen::Index r = 0; r < p.rows(); ++r) p.row(r) /= p.row(r).sum();
  const RowMatF v = random_matrix(9, 6, 102, 1.0f);
  const lowbit::Quantizer fmt("bfp8_b4");
  RowMatF o(3, 6);
  lowbit::nn::attention_mix(cref(p), cref(v), ref(o), &fmt);
  const RowMatF pq = bfp(p, 8, 4, 1), vq = bfp(v, 8, 4, 0);
  const RowMatF expect = product_rounded_once(pq, RowMatF(vq.transpose()), {});
  for (Eigen::Index i = 0; i < o.size(); ++i) ASSERT_EQ(o.data()[i], expect.data()[i]) << i;
  const RowMatF wrong = product_rounded_once(pq, RowMatF(bfp(v, 8, 4, 1).transpose()), {});
  EXPECT_NE((o - wrong).cwiseAbs().maxCoeff(), 0.0f);
}

TEST(QuantAttention, StridedViewsOfACacheWork) {
  // K as a head's slice of a cache row of 16 (stride 16, width 8), one query row.
  const RowMatF cache = random_matrix(7, 16, 111, 1.0f);
  const RowMatF q = random_matrix(1, 8, 112, 1.0f);
  const lowbit::Quantizer fmt("mxint8");
  RowMatF s(1, 7);
  lowbit::nn::attention_scores(cref(q), MatrixRef<const float>{cache.data() + 8, 7, 8, 16, 1}, ref(s), &fmt);
  const RowMatF slice = cache.rightCols(8);
  RowMatF s2(1, 7);
  lowbit::nn::attention_scores(cref(q), cref(slice), ref(s2), &fmt);
  for (Eigen::Index i = 0; i < s.size(); ++i) ASSERT_EQ(s.data()[i], s2.data()[i]);
  RowMatF bad(2, 7);
  EXPECT_THROW(lowbit::nn::attention_scores(cref(q), cref(slice), ref(bad), &fmt), lowbit::Error);
}

}  // namespace
