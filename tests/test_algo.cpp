// Post-training quantisation algorithms on small synthetic layers whose answer is known: GPTQ
// against a direct double-precision implementation of the paper's update (no Cholesky, no lazy
// batches) and against RTN when the Hessian is diagonal; SmoothQuant and AWQ at a = 0; the
// outlier split at k = 0 and k = every channel; and the layer-error property (GPTQ never does
// worse than RTN on the inputs it was calibrated on).
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "lowbit/algo/awq.hpp"
#include "lowbit/algo/calibration.hpp"
#include "lowbit/algo/gptq.hpp"
#include "lowbit/algo/outlier_split.hpp"
#include "lowbit/algo/smoothquant.hpp"
#include "lowbit/nn/llama_model.hpp"
#include "lowbit/nn/quant_linear.hpp"
#include "lowbit/quant/registry.hpp"

namespace {

using lowbit::MatrixRef;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMatF gaussian(std::int64_t rows, std::int64_t cols, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  RowMatF m(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) m(r, c) = scale * g(rng);
  return m;
}

// Inputs with correlated channels of different sizes (what makes error feedback pay off).
RowMatF correlated_inputs(std::int64_t n, std::int64_t cols, unsigned seed) {
  const RowMatF z = gaussian(n, cols, seed);
  RowMatF mix = gaussian(cols, cols, seed + 1, 1.0f / std::sqrt(static_cast<float>(cols)));
  mix.diagonal().array() += 1.0f;
  RowMatF x = z * mix;
  for (std::int64_t c = 0; c < cols; ++c) x.col(c) *= 0.5f + static_cast<float>(c % 7) * 0.4f;
  return x;
}

MatrixRef<const float> cref(const RowMatF& m) { return MatrixRef<const float>::row_major(m.data(), m.rows(), m.cols()); }

template <class Fn>
void with_format(const std::string& name, Fn&& fn) {
  const lowbit::Quantizer q(name);
  std::visit(
      [&](const auto& f) {
        if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) fn(f);
        else FAIL() << name << " is not a block format";
      },
      q.format());
}

RowMatF rtn(const std::string& name, const RowMatF& w) {
  RowMatF out(w.rows(), w.cols());
  lowbit::Quantizer(name).fake_quant(cref(w), MatrixRef<float>::row_major(out.data(), out.rows(), out.cols()));
  return out;
}

// Mean squared output error ||X W^T - X Q^T||^2 / n, in double.
double output_error(const RowMatF& x, const RowMatF& w, const RowMatF& q) {
  const RowMatD d = x.cast<double>() * (w.cast<double>() - q.cast<double>()).transpose();
  return d.squaredNorm() / static_cast<double>(x.rows());
}

RowMatF as_matrix(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return Eigen::Map<const RowMatF>(v.data(), rows, cols);
}

// ---- GPTQ ------------------------------------------------------------------------------------

// A diagonal Hessian couples no columns: no error is fed forward, every block keeps its
// original values and GPTQ is round-to-nearest, bit for bit.
TEST(Gptq, DiagonalHessianIsRoundToNearest) {
  const RowMatF w = gaussian(12, 96, 1, 0.05f);
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(96, 96);
  for (int c = 0; c < 96; ++c) h(c, c) = 0.3 + 0.1 * (c % 11);
  for (const std::string name : {"int4_b32_fp32", "mxfp4", "bfp4_b16", "nf4_b64", "uint4_b32_fp16", "nvfp4", "int4",
                                 "int8_pc_fp32", "fp8_e4m3_pt", "mxint8"}) {
    const RowMatF want = rtn(name, name == std::string("int4") ? (w * 100.0f).eval() : w);
    for (const bool act_order : {false, true}) {
      with_format(name, [&](const auto& f) {
        lowbit::algo::GptqOptions opt;
        opt.act_order = act_order;
        opt.batch = 40;  // batches that do not line up with the blocks
        const RowMatF in = name == std::string("int4") ? (w * 100.0f).eval() : w;
        const auto res = lowbit::algo::gptq(f, cref(in), h, opt);
        const RowMatF got = as_matrix(res.weight, w.rows(), w.cols());
        EXPECT_TRUE(got == want) << name << " act_order " << act_order << ": max diff "
                                 << (got - want).cwiseAbs().maxCoeff();
      });
    }
  }
}

// The paper's algorithm written directly in double: columns in visit order, each rounded with
// its block's scale (chosen when the block's first column is visited, from the current
// weights), its error spread through the inverse Hessian, which then drops that column
// (Gaussian elimination). `scale_of` gives the scale from a block's absmax, `round` the
// grid value of y = w / s.
template <class ScaleOf, class Round>
RowMatD naive_gptq(RowMatD w, Eigen::MatrixXd h, int group, bool act_order, ScaleOf scale_of, Round round) {
  const int cols = static_cast<int>(w.cols());
  const double damp = 0.01 * h.diagonal().mean();
  std::vector<int> order(static_cast<std::size_t>(cols));
  std::iota(order.begin(), order.end(), 0);
  if (act_order) std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return h(a, a) > h(b, b); });
  h.diagonal().array() += damp;
  Eigen::MatrixXd hinv = h.inverse();
  RowMatD scale = RowMatD::Zero(w.rows(), (cols + group - 1) / group);
  std::vector<bool> seen(static_cast<std::size_t>(scale.cols()), false);
  RowMatD q = RowMatD::Zero(w.rows(), cols);
  std::vector<bool> done(static_cast<std::size_t>(cols), false);
  for (const int c : order) {
    const int g = c / group;
    if (!seen[static_cast<std::size_t>(g)]) {
      for (Eigen::Index r = 0; r < w.rows(); ++r)
        scale(r, g) = scale_of(w.row(r).segment(g * group, std::min(group, cols - g * group)).cwiseAbs().maxCoeff());
      seen[static_cast<std::size_t>(g)] = true;
    }
    for (Eigen::Index r = 0; r < w.rows(); ++r) {
      const double s = scale(r, g);
      q(r, c) = s > 0 ? round(w(r, c) / s) * s : 0.0;
      const double e = (w(r, c) - q(r, c)) / hinv(c, c);
      for (int j = 0; j < cols; ++j)
        if (!done[static_cast<std::size_t>(j)] && j != c) w(r, j) -= e * hinv(c, j);
    }
    done[static_cast<std::size_t>(c)] = true;
    const Eigen::VectorXd col = hinv.col(c);
    hinv -= col * col.transpose() / hinv(c, c);
  }
  return q;
}

double round_half_even(double y) { return std::nearbyint(y); }

TEST(Gptq, MatchesTheDirectAlgorithmOnIntegers) {
  const int rows = 16, cols = 64;
  const RowMatF x = correlated_inputs(256, cols, 7);
  const Eigen::MatrixXd h = lowbit::algo::input_hessian(cref(x));
  // 2 X^T X / n, independently.
  const Eigen::MatrixXd h_ref = 2.0 * x.cast<double>().transpose() * x.cast<double>() / 256.0;
  ASSERT_LT((h - h_ref).cwiseAbs().maxCoeff(), 1e-9 * h_ref.cwiseAbs().maxCoeff());

  struct Case {
    std::string name;
    int group;
    float weight_scale;
    double qmin, qmax;
    bool float_scale;
  };
  // int4: plain integers -8..7; int4_b32_fp32: symmetric -7..7 with fl32(amax / 7) per block.
  for (const Case& k : {Case{"int4", 1, 3.0f, -8, 7, false}, Case{"int4_b32_fp32", 32, 0.05f, -7, 7, true}}) {
    const RowMatF w = gaussian(rows, cols, 11, k.weight_scale);
    for (const bool act_order : {false, true}) {
      const RowMatD want = naive_gptq(
          w.cast<double>(), h, k.group, act_order,
          [&](double amax) { return k.float_scale ? static_cast<double>(static_cast<float>(amax / 7.0)) : 1.0; },
          [&](double y) { return std::clamp(round_half_even(y), k.qmin, k.qmax); });
      with_format(k.name, [&](const auto& f) {
        lowbit::algo::GptqOptions opt;
        opt.act_order = act_order;
        opt.batch = 16;
        const auto res = lowbit::algo::gptq(f, cref(w), h, opt);
        const RowMatF got = as_matrix(res.weight, rows, cols);
        // float vs double may flip a tie-close rounding, which then changes what follows:
        // nearly every value must agree, and the output error must be the same to 2%.
        int same = 0;
        for (int r = 0; r < rows; ++r)
          for (int c = 0; c < cols; ++c) same += std::fabs(got(r, c) - want(r, c)) <= 1e-6 * std::fabs(want(r, c)) ? 1 : 0;
        EXPECT_GE(same, rows * cols * 97 / 100) << k.name << " act_order " << act_order;
        const double e_got = output_error(x, w, got), e_want = output_error(x, w, want.cast<float>());
        EXPECT_NEAR(e_got, e_want, 0.02 * e_want) << k.name << " act_order " << act_order;
      });
    }
  }
}

// The layer-error property: on its calibration inputs GPTQ's output error is below RTN's, for
// every 4-bit family (integer blocks, MX, BFP, NF4, asymmetric, NVFP4).
TEST(Gptq, LowersTheLayerOutputErrorAgainstRoundToNearest) {
  const int rows = 48, cols = 128;
  const RowMatF x = correlated_inputs(512, cols, 21);
  const RowMatF w = gaussian(rows, cols, 22, 0.04f);
  for (const std::string name : {"int4_b32_fp32", "mxfp4", "bfp4_b16", "nf4_b64", "uint4_b32_fp16", "nvfp4", "mxint4"}) {
    for (const bool act_order : {false, true}) {
      with_format(name, [&](const auto& f) {
        lowbit::algo::GptqOptions opt;
        opt.act_order = act_order;
        const auto res = lowbit::algo::gptq(f, cref(w), cref(x), opt);
        const double e_gptq = output_error(x, w, as_matrix(res.weight, rows, cols));
        const double e_rtn = output_error(x, w, rtn(name, w));
        EXPECT_LT(e_gptq, 0.8 * e_rtn) << name << " act_order " << act_order;
      });
    }
  }
}

// The codes are the result: packing them decodes to exactly the returned weight, and the
// QuantLinear built from them multiplies by it.
TEST(Gptq, PackedResultDecodesToTheWeight) {
  const RowMatF x = correlated_inputs(128, 80, 31);
  const RowMatF w = gaussian(10, 80, 32, 0.05f);
  for (const std::string name : {"int4_b32_fp32", "mxfp4", "bfp4_b16", "nf4_b64", "uint4_b32_fp16", "nvfp4", "int8_pt_fp32",
                                 "fp8_e4m3_pt", "bl_w5_b16", "mxfp6_e2m3"}) {
    with_format(name, [&](const auto& f) {
      const auto res = lowbit::algo::gptq(f, cref(w), cref(x));
      std::vector<float> unpacked = res.packed().unpack();
      if (res.output_scale)
        for (float& v : unpacked) v *= *res.output_scale;
      EXPECT_TRUE(unpacked == res.weight) << name;
      const auto layer = lowbit::nn::QuantLinear::from_packed(res.packed(), name, {}, res.output_scale);
      EXPECT_TRUE(layer.dequantized_weight() == res.weight) << name;
    });
  }
}

TEST(Gptq, RejectsAHessianOfTheWrongSize) {
  const RowMatF w = gaussian(4, 32, 41);
  with_format("mxfp4", [&](const auto& f) {
    EXPECT_THROW(lowbit::algo::gptq(f, cref(w), Eigen::MatrixXd::Identity(16, 16)), lowbit::Error);
  });
}

// ---- SmoothQuant -------------------------------------------------------------------------------

TEST(SmoothQuant, FactorsFollowTheDefinition) {
  const std::vector<float> act = {4.0f, 1.0f, 0.0f, 9.0f, 8.0f};
  const std::vector<float> wt = {1.0f, 4.0f, 2.0f, 0.0f, 2.0f};
  // sqrt(4)/sqrt(1), sqrt(1)/sqrt(4), no activation, no weight, 8^0.75 / 2^0.25 = 2^(9/4 - 1/4)
  const std::vector<float> want = {2.0f, 0.5f, 1.0f, 1.0f, 4.0f};
  const std::vector<float> s = lowbit::algo::smoothing_factors(act, wt, 0.5);
  for (std::size_t j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(s[j], want[j]) << j;
  EXPECT_FLOAT_EQ(lowbit::algo::smoothing_factors(act, wt, 0.75)[4], want[4]);
  EXPECT_THROW(lowbit::algo::smoothing_factors(act, wt, 1.5), lowbit::Error);
}

// a = 0 moves nothing from the activations: s_j = 1 / max|W_j|, every smoothed weight column
// peaks at exactly 1, and the layer's float output is unchanged; a = 0.5 balances the ranges.
TEST(SmoothQuant, AlphaZeroOnlyNormalisesTheWeightsAndTheProductIsUnchanged) {
  const RowMatF x = correlated_inputs(64, 32, 51);
  RowMatF w = gaussian(20, 32, 52, 0.1f);
  const std::vector<MatrixRef<const float>> ws = {cref(w)};
  const std::vector<float> amax = lowbit::algo::channel_absmax(cref(x));
  const std::vector<float> wmax = lowbit::algo::weight_column_absmax(ws);
  for (const double alpha : {0.0, 0.5, 0.8}) {
    const std::vector<float> s = lowbit::algo::smoothing_factors(amax, wmax, alpha);
    RowMatF xs = x, w2 = w;
    lowbit::algo::divide_columns(MatrixRef<float>::row_major(xs.data(), xs.rows(), xs.cols()), s);
    lowbit::algo::multiply_columns(MatrixRef<float>::row_major(w2.data(), w2.rows(), w2.cols()), s);
    const Eigen::MatrixXd y0 = x.cast<double>() * w.cast<double>().transpose();
    const Eigen::MatrixXd y1 = xs.cast<double>() * w2.cast<double>().transpose();
    EXPECT_LT((y1 - y0).cwiseAbs().maxCoeff(), 1e-5 * y0.cwiseAbs().maxCoeff()) << alpha;
    for (int j = 0; j < 32; ++j) {
      const double xm = xs.col(j).cwiseAbs().maxCoeff(), wm = w2.col(j).cwiseAbs().maxCoeff();
      if (alpha == 0.0) {
        EXPECT_NEAR(wm, 1.0, 1e-6) << j;
      }
      if (alpha == 0.5) {
        EXPECT_NEAR(xm, wm, 1e-5 * wm) << j;
      }
    }
  }
}

// An activation outlier channel ruins per-token 8-bit activations; smoothing restores them.
TEST(SmoothQuant, LowersTheErrorOfQuantisedActivationsWithAnOutlierChannel) {
  RowMatF x = correlated_inputs(128, 64, 61);
  x.col(5) *= 64.0f;
  x.col(40) *= 64.0f;
  const RowMatF w = gaussian(32, 64, 62, 0.1f);
  const auto make = [](MatrixRef<const float> m) {
    auto l = lowbit::nn::QuantLinear::from_name("int8_pc_fp32", m);
    l.set_activation_format("int8_pt_fp32");
    return l;
  };
  const std::vector<MatrixRef<const float>> ws = {cref(w)};
  const std::vector<float> ones(64, 1.0f);
  const double plain = lowbit::algo::scaled_layer_error(cref(x), ws, ones, make);
  const std::vector<float> s =
      lowbit::algo::smoothing_factors(lowbit::algo::channel_absmax(cref(x)), lowbit::algo::weight_column_absmax(ws), 0.5);
  const double smooth = lowbit::algo::scaled_layer_error(cref(x), ws, s, make);
  EXPECT_LT(smooth, 0.25 * plain);
}

// ---- AWQ ---------------------------------------------------------------------------------------

TEST(Awq, ScalesFollowTheDefinition) {
  const std::vector<float> m = {1.0f, 4.0f, 16.0f, 0.0f};
  // s = m^0.5 = {1, 2, 4, 1 (no statistic)}, divided by sqrt(4 * 1)
  const std::vector<float> s = lowbit::algo::awq_scales(m, 0.5);
  const std::vector<float> want = {0.5f, 1.0f, 2.0f, 0.5f};
  for (std::size_t j = 0; j < m.size(); ++j) EXPECT_FLOAT_EQ(s[j], want[j]) << j;
  for (const float v : lowbit::algo::awq_scales(m, 0.0)) EXPECT_EQ(v, 1.0f);
}

// With a = 0 alone the search is round-to-nearest: scales of 1 and RTN's output error.
TEST(Awq, AlphaZeroIsRoundToNearest) {
  const RowMatF x = correlated_inputs(96, 64, 71);
  const RowMatF w = gaussian(24, 64, 72, 0.05f);
  const std::vector<MatrixRef<const float>> ws = {cref(w)};
  lowbit::algo::AwqOptions opt;
  opt.grid = 1;
  const auto r = lowbit::algo::awq_search(
      cref(x), ws, [](MatrixRef<const float> m) { return lowbit::nn::QuantLinear::from_name("int4_b32_fp32", m); }, opt);
  EXPECT_EQ(r.alpha, 0.0);
  for (const float v : r.scales) EXPECT_EQ(v, 1.0f);
  const double want = output_error(x, w, rtn("int4_b32_fp32", w));
  EXPECT_NEAR(r.error, want, 1e-3 * want);
  EXPECT_EQ(r.error, r.rtn_error);
}

// Channels with large mean activations: protecting them pays off, the search picks a > 0.
TEST(Awq, SearchLowersTheErrorWhenSomeChannelsAreSalient) {
  RowMatF x = correlated_inputs(256, 64, 81);
  for (const int c : {3, 17, 33, 50}) x.col(c) = x.col(c).cwiseAbs() * 12.0f + RowMatF::Constant(256, 1, 6.0f);
  const RowMatF w = gaussian(32, 64, 82, 0.05f);
  const std::vector<MatrixRef<const float>> ws = {cref(w)};
  for (const std::string name : {"int4_b32_fp32", "mxfp4", "bfp4_b16"}) {
    const auto r = lowbit::algo::awq_search(
        cref(x), ws, [&](MatrixRef<const float> m) { return lowbit::nn::QuantLinear::from_name(name, m); });
    EXPECT_GT(r.alpha, 0.0) << name;
    EXPECT_LT(r.error, 0.9 * r.rtn_error) << name;
  }
}

// ---- outlier split -----------------------------------------------------------------------------

TEST(OutlierSplit, TopChannelsAreTheLargest) {
  const std::vector<float> score = {1.0f, 9.0f, 3.0f, 9.0f, 0.5f, 7.0f};
  EXPECT_EQ(lowbit::algo::top_channels(score, 3), (std::vector<std::int32_t>{1, 3, 5}));
  EXPECT_EQ(lowbit::algo::top_channels(score, 0), (std::vector<std::int32_t>{}));
  EXPECT_EQ(lowbit::algo::top_channels(score, 10).size(), 6u);
}

TEST(OutlierSplit, NoChannelsIsRoundToNearest) {
  const RowMatF x = correlated_inputs(16, 64, 91);
  const RowMatF w = gaussian(24, 64, 92, 0.05f);
  for (const std::string name : {"mxfp4", "int4_b32_fp32"}) {
    const auto split = lowbit::algo::split_channels(cref(w), {});
    auto a = lowbit::algo::split_linear(name, split);
    auto b = lowbit::nn::QuantLinear::from_name(name, cref(w));
    a.set_activation_format("mxint8");
    b.set_activation_format("mxint8");
    EXPECT_FALSE(a.sparse().has_value());
    RowMatF ya(16, 24), yb(16, 24);
    a.forward(cref(x), MatrixRef<float>::row_major(ya.data(), 16, 24));
    b.forward(cref(x), MatrixRef<float>::row_major(yb.data(), 16, 24));
    EXPECT_TRUE(ya == yb) << name;
  }
}

// Every channel in float: nothing is quantised (activations included) and the layer is the
// float product, to float summation error.
TEST(OutlierSplit, AllChannelsIsExact) {
  const RowMatF x = correlated_inputs(16, 64, 101);
  const RowMatF w = gaussian(24, 64, 102, 0.05f);
  std::vector<float> score(64, 1.0f);
  const auto split = lowbit::algo::split_channels(cref(w), lowbit::algo::top_channels(score, 64));
  auto l = lowbit::algo::split_linear("mxfp4", split);
  l.set_activation_format("mxfp4");
  RowMatF y(16, 24);
  l.forward(cref(x), MatrixRef<float>::row_major(y.data(), 16, 24));
  const Eigen::MatrixXd want = x.cast<double>() * w.cast<double>().transpose();
  const Eigen::MatrixXd bound = x.cast<double>().cwiseAbs() * w.cast<double>().cwiseAbs().transpose();
  for (int t = 0; t < 16; ++t)
    for (int o = 0; o < 24; ++o) EXPECT_LE(std::fabs(y(t, o) - want(t, o)), 64 * 6e-8 * bound(t, o)) << t << " " << o;
  EXPECT_TRUE(l.dequantized_weight() == std::vector<float>(w.data(), w.data() + w.size()));
}

// Outlier channels in float: the rest of the layer quantises far better than RTN of the whole.
TEST(OutlierSplit, KeepingOutlierChannelsLowersTheError) {
  RowMatF x = correlated_inputs(128, 64, 111);
  x.col(9) *= 64.0f;
  x.col(30) *= 64.0f;
  const RowMatF w = gaussian(32, 64, 112, 0.05f);
  const auto layer_error = [&](lowbit::nn::QuantLinear l) {
    l.set_activation_format("int8_pt_fp32");
    RowMatF y(128, 32);
    l.forward(cref(x), MatrixRef<float>::row_major(y.data(), 128, 32));
    const Eigen::MatrixXd d = y.cast<double>() - x.cast<double>() * w.cast<double>().transpose();
    return d.squaredNorm();
  };
  const auto channels = lowbit::algo::top_channels(lowbit::algo::channel_absmax(cref(x)), 2);
  EXPECT_EQ(channels, (std::vector<std::int32_t>{9, 30}));
  const double split = layer_error(lowbit::algo::split_linear("int8_b32_fp32", lowbit::algo::split_channels(cref(w), channels)));
  const double plain = layer_error(lowbit::nn::QuantLinear::from_name("int8_b32_fp32", cref(w)));
  EXPECT_LT(split, 0.25 * plain);
}

TEST(OutlierSplit, ThresholdKeepsTheLargeWeights) {
  RowMatF w = gaussian(16, 64, 121, 0.05f);
  w(3, 7) = 2.0f;
  w(10, 40) = -3.0f;
  const auto split = lowbit::algo::split_threshold(cref(w), 0.5f);
  EXPECT_EQ(split.sparse.nonzeros(), 2);
  EXPECT_EQ(split.dense[static_cast<std::size_t>(3 * 64 + 7)], 0.0f);
  EXPECT_EQ(split.dense[static_cast<std::size_t>(10 * 64 + 40)], 0.0f);
  const auto l = lowbit::algo::split_linear("int4_b32_fp32", split);
  const std::vector<float> dq = l.dequantized_weight();
  EXPECT_EQ(dq[static_cast<std::size_t>(3 * 64 + 7)], 2.0f);
  EXPECT_EQ(dq[static_cast<std::size_t>(10 * 64 + 40)], -3.0f);
  // The rest of each block no longer shares its scale with the outlier.
  const RowMatF plain = rtn("int4_b32_fp32", w);
  const RowMatF got = as_matrix(dq, 16, 64);
  EXPECT_LT((got - w).squaredNorm(), 0.2 * (plain - w).squaredNorm());
}

// ---- calibration and folding on a small random LLaMA ------------------------------------------

lowbit::nn::LlamaWeights tiny_llama(unsigned seed) {
  lowbit::nn::LlamaWeights w;
  auto& c = w.config;
  c.dim = 16;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;  // grouped-query attention: the attention-output scales must be tied
  c.vocab_size = 32;
  c.seq_len = 16;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.3f);
  const auto fill = [&](std::vector<float>& v, std::size_t n) {
    v.resize(n);
    for (float& e : v) e = g(rng);
  };
  const std::size_t L = static_cast<std::size_t>(c.n_layers), d = 16, kv = static_cast<std::size_t>(c.kv_dim()), h = 24;
  fill(w.token_embedding, 32 * d);
  fill(w.rms_att, L * d);
  fill(w.rms_ffn, L * d);
  for (float& v : w.rms_att) v += 1.0f;
  for (float& v : w.rms_ffn) v += 1.0f;
  fill(w.wq, L * d * d);
  fill(w.wk, L * kv * d);
  fill(w.wv, L * kv * d);
  fill(w.wo, L * d * d);
  fill(w.w1, L * h * d);
  fill(w.w2, L * d * h);
  fill(w.w3, L * h * d);
  fill(w.rms_final, d);
  return w;
}

std::vector<float> logits_of(const lowbit::nn::LlamaWeights& w, const lowbit::nn::LlamaQuantConfig& q,
                             const std::vector<int>& tokens) {
  lowbit::nn::LlamaModel m(w, q);
  std::vector<float> out(tokens.size() * 32);
  m.forward(tokens, 0, MatrixRef<float>::row_major(out.data(), static_cast<std::int64_t>(tokens.size()), 32));
  return out;
}

TEST(Calibration, CollectsTheInputsOfEveryLinearLayer) {
  const auto w = tiny_llama(131);
  lowbit::nn::LlamaModel m(w, {});
  const std::vector<std::vector<int>> stories = {{1, 5, 9, 2}, {1, 7, 7}, {1, 3, 4, 5, 6}};
  const auto cal = lowbit::algo::LlamaCalibration::collect(m, stories, 9);
  EXPECT_EQ(cal.tokens(), 9);  // 4 + 3 + the first 2 of the last story
  EXPECT_EQ(cal.inputs(1, lowbit::nn::LinearInput::attention).rows(), 9);
  EXPECT_EQ(cal.inputs(1, lowbit::nn::LinearName::w2).cols, 24);
  EXPECT_EQ(cal.inputs(0, lowbit::nn::LinearName::wo).cols, 16);
  // Block 0's attention input for the first token: RMSNorm of its embedding times the gain.
  const auto x = cal.inputs(0, lowbit::nn::LinearInput::attention).matrix();
  double ss = 0;
  for (int j = 0; j < 16; ++j) ss += static_cast<double>(w.token_embedding[16 + j]) * w.token_embedding[16 + j];
  const double inv = 1.0 / std::sqrt(ss / 16.0 + 1e-5);
  for (int j = 0; j < 16; ++j) EXPECT_NEAR(x(0, j), w.rms_att[static_cast<std::size_t>(j)] * w.token_embedding[16 + j] * inv, 1e-5);
}

// Folding moves scales between operations; the float model computes the same logits.
TEST(Folding, SmoothQuantAndAwqLeaveTheFloatModelUnchanged) {
  const auto w = tiny_llama(141);
  const std::vector<int> tokens = {1, 4, 8, 15, 16, 23, 2};
  for (const bool inject : {false, true}) {
    lowbit::nn::LlamaQuantConfig q;
    q.inject_outliers = inject;
    lowbit::nn::LlamaModel m(w, q);
    const auto cal = lowbit::algo::LlamaCalibration::collect(m, {tokens}, 0);
    const std::vector<float> want = logits_of(w, q, tokens);
    const auto check = [&](const lowbit::nn::LlamaWeights& folded, const char* what) {
      const std::vector<float> got = logits_of(folded, q, tokens);
      double worst = 0, scale = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, static_cast<double>(std::fabs(got[i] - want[i])));
        scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
      }
      EXPECT_LT(worst, 1e-4 * scale) << what << " inject " << inject;
      EXPECT_NE(folded.wq, w.wq) << what;  // something was folded
    };
    check(lowbit::algo::smooth_llama(w, cal, 0.5, inject), "smoothquant");
    check(lowbit::algo::smooth_llama(w, cal, 0.0, inject), "smoothquant a=0");
    check(lowbit::algo::awq_llama(w, cal, inject,
                                  [](int, lowbit::nn::LinearName, MatrixRef<const float> m) {
                                    return lowbit::nn::QuantLinear::from_name("int4_b32_fp32", m);
                                  }),
          "awq");
  }
}

// The per-layer hook: the model's layers are the ones it returns.
TEST(Hooks, MakeLinearBuildsEveryLayer) {
  const auto w = tiny_llama(151);
  int calls = 0;
  lowbit::nn::LlamaQuantConfig q;
  q.make_linear = [&](int, lowbit::nn::LinearName, MatrixRef<const float> m) {
    ++calls;
    return lowbit::nn::QuantLinear::from_name("bfp4_b16", m);
  };
  lowbit::nn::LlamaModel hooked(w, q);
  lowbit::nn::LlamaQuantConfig plain;
  plain.weights = "bfp4_b16";
  lowbit::nn::LlamaModel rtn_model(w, plain);
  EXPECT_EQ(calls, 14);
  for (int l = 0; l < 2; ++l)
    for (int n = 0; n < 7; ++n) {
      const auto name = static_cast<lowbit::nn::LinearName>(n);
      EXPECT_TRUE(hooked.linear(l, name).dequantized_weight() == rtn_model.linear(l, name).dequantized_weight());
    }
}

}  // namespace
