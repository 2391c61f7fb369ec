// The runtime registry: names parse into the same formats the compile-time aliases name,
// malformed names fail with the grammar, every listed format runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace {

std::vector<float> random_tensor(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = 0.5f * t(rng);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <class Alias>
void expect_same_as_alias(const std::string& name) {
  const auto x = random_tensor(1000, 7);
  const lowbit::Quantizer q(name);
  EXPECT_TRUE(same_bits(q.fake_quant(std::span<const float>(x)), lowbit::fake_quant(Alias{}, std::span<const float>(x))))
      << name;
  EXPECT_DOUBLE_EQ(q.info().bits_per_element, lowbit::format_of(Alias{}).bits_per_element()) << name;
}

TEST(Registry, NamesMatchTheCompileTimeAliases) {
  expect_same_as_alias<lowbit::MXFP8_E4M3>("mxfp8_e4m3");
  expect_same_as_alias<lowbit::MXFP8_E5M2>("mxfp8_e5m2");
  expect_same_as_alias<lowbit::MXFP6_E3M2>("mxfp6_e3m2");
  expect_same_as_alias<lowbit::MXFP6_E2M3>("mxfp6_e2m3");
  expect_same_as_alias<lowbit::MXFP4>("mxfp4");
  expect_same_as_alias<lowbit::MXINT8>("mxint8");
  expect_same_as_alias<lowbit::MXINT4>("mxint4");
  expect_same_as_alias<lowbit::MXINT2>("mxint2");
  expect_same_as_alias<lowbit::NVFP4>("nvfp4");
  expect_same_as_alias<lowbit::NF4>("nf4_b64");
  expect_same_as_alias<lowbit::SF4>("sf4_b64");
  expect_same_as_alias<lowbit::BFP8_B16>("bfp8_b16");
  expect_same_as_alias<lowbit::BFP6_B16>("bfp6_b16");
  expect_same_as_alias<lowbit::BFP4_B16>("bfp4_b16");
  expect_same_as_alias<lowbit::INT8_B32_FP16>("int8_b32_fp16");
  expect_same_as_alias<lowbit::INT4_B32_FP16>("int4_b32_fp16");
  expect_same_as_alias<lowbit::UINT4_B32_FP16>("uint4_b32_fp16");
  expect_same_as_alias<lowbit::FP8_E4M3_PER_TENSOR>("fp8_e4m3_pt");
  expect_same_as_alias<lowbit::BM8_E4M3_B16>("bm_e4m3_b16");
  expect_same_as_alias<lowbit::BL8_B16>("bl_w8_b16");
}

TEST(Registry, ElementFormatsAreTheMinifloatTemplate) {
  auto spec_of = [](const std::string& n) {
    return std::get<lowbit::MinifloatFormat>(lowbit::Quantizer(n).format()).element;
  };
  EXPECT_EQ(spec_of("fp32"), lowbit::FP32::spec);
  EXPECT_EQ(spec_of("fp16"), lowbit::FP16::spec);
  EXPECT_EQ(spec_of("bf16"), lowbit::BF16::spec);
  EXPECT_EQ(spec_of("fp8_e4m3"), lowbit::FP8_E4M3::spec);
  EXPECT_EQ(spec_of("fp8_e5m2"), lowbit::FP8_E5M2::spec);
  EXPECT_EQ(spec_of("fp4_e2m1"), lowbit::FP4_E2M1::spec);
  const lowbit::MinifloatSpec e3m2b3{3, 2, 3, true, lowbit::Specials::IEEE, lowbit::Overflow::Infinity};
  EXPECT_EQ(spec_of("minifloat_e3m2_bias3"), e3m2b3);
  const lowbit::MinifloatSpec odd{4, 3, 5, false, lowbit::Specials::FiniteNaN, lowbit::Overflow::Saturate};
  EXPECT_EQ(spec_of("minifloat_e4m3_bias5_nosub_fn_sat"), odd);
  const lowbit::MinifloatSpec fin{3, 2, 3, true, lowbit::Specials::FiniteOnly, lowbit::Overflow::Saturate};
  EXPECT_EQ(spec_of("minifloat_e3m2_fin"), fin);
  EXPECT_EQ(spec_of("minifloat_e3m2_fin").max_value(), 28.0);  // = OCP FP6 E3M2
}

TEST(Registry, BlockParameters) {
  auto fixed = [](const std::string& n) { return std::get<lowbit::FixedPointFormat>(lowbit::Quantizer(n).format()); };
  EXPECT_EQ(fixed("int4_b128_bf16").block_size, 128);
  EXPECT_EQ(fixed("int4_b128_bf16").scale.format, lowbit::float_scale(lowbit::BF16::spec).format);
  EXPECT_EQ(fixed("int8_pc_fp32").block_size, lowbit::kPerChannel);
  EXPECT_EQ(fixed("int8_pt_fp32").block_size, lowbit::kPerTensor);
  EXPECT_EQ(fixed("uint4_b32_fp16").scale.rule, lowbit::ScaleRule::MinMax);
  EXPECT_TRUE(fixed("uint4_b32_fp16").scale.zero_point);
  EXPECT_EQ(fixed("int4_b32_e8m0").scale.kind, lowbit::ScaleKind::E8M0);
  EXPECT_EQ(fixed("fixed8_f7").element, (lowbit::FixedPointSpec{8, 7, lowbit::IntRange::TwosComplement}));
  auto mf = [](const std::string& n) { return std::get<lowbit::MinifloatFormat>(lowbit::Quantizer(n).format()); };
  EXPECT_EQ(mf("mxfp4_rceil").scale.rule, lowbit::ScaleRule::Fit);
  EXPECT_EQ(mf("mxfp8_e4m3_b16_ceil").block_size, 16);
  EXPECT_EQ(mf("mxfp8_e4m3_b16_ceil").scale.rule, lowbit::ScaleRule::Ceil);
  EXPECT_EQ(mf("mxfp6_e2m3_even").scale.rule, lowbit::ScaleRule::Even);
  EXPECT_EQ(mf("fp8_e4m3_b32_bf16").scale.format, lowbit::float_scale(lowbit::BF16::spec).format);
}

TEST(Registry, BitsPerElementIncludeScales) {
  const std::vector<std::pair<std::string, double>> expected{
      {"mxfp4", 4.25},         {"mxfp6_e2m3", 6.25},    {"mxfp8_e4m3", 8.25},     {"mxint8", 8.25},
      {"nvfp4", 4.5},          {"bfp6_b16", 6.5},       {"bfp4_b32", 4.25},        {"int4_b32_fp16", 4.5},
      {"int8_b32_fp32", 9.0},  {"uint4_b32_fp16", 4.625}, {"nf4_b64", 4.5},         {"bm_e4m3_b16", 8.5},
      {"bl_w8_b16", 8.5},      {"fp16", 16.0},          {"fp8_e4m3", 8.0},        {"fixed8_f7", 8.0}};
  for (const auto& [name, bits] : expected) EXPECT_DOUBLE_EQ(lowbit::Quantizer(name).info().bits_per_element, bits) << name;
  EXPECT_DOUBLE_EQ(lowbit::memory_density(6.5), 32.0 / 6.5);
}

TEST(Registry, MalformedNamesListWhatIsAccepted) {
  for (const char* bad : {"", "mxfp5", "mxfp8", "mxfp8_e4m4", "bfp17_b16", "bfp4", "bfp4_b0", "bfp4_b16_x", "int4_b32",
                          "int4_b32_fp64", "uint4_b32_e8m0", "int1_b32_fp16", "minifloat_e9m2", "minifloat_e4m3_bogus",
                          "minifloat_e1m2", "minifloat_e3", "fp8_e4m3_b32_int", "nf4", "nf4_b", "nf4_bx", "bl_w1_b16",
                          "fixed8", "int8_b-3_fp16", "int8_b99999999999_fp16", "MXFP4", "foo"}) {
    try {
      lowbit::Quantizer q(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const lowbit::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("accepted:"), std::string::npos) << msg;
      EXPECT_NE(msg.find("'" + std::string(bad) + "'"), std::string::npos) << msg;
    }
  }
}

TEST(Registry, EveryStandardFormatRunsAndRoundTripsThroughCodes) {
  const auto x = random_tensor(37 * 70, 11);
  const auto in = lowbit::MatrixRef<const float>::row_major(x.data(), 37, 70);
  for (const std::string& name : lowbit::standard_format_names()) {
    const lowbit::Quantizer q(name);
    std::vector<float> fq(x.size()), back(x.size());
    q.fake_quant(in, lowbit::MatrixRef<float>::row_major(fq.data(), 37, 70));
    for (float v : fq) ASSERT_TRUE(std::isfinite(v)) << name;
    const auto err = lowbit::error_stats(in, lowbit::MatrixRef<const float>::row_major(fq.data(), 37, 70));
    EXPECT_GT(err.sqnr_db, 3.0) << name;
    if (!q.info().has_codes) continue;
    const lowbit::QuantizedTensor qt = q.quantize(in);
    q.dequantize(qt, lowbit::MatrixRef<float>::row_major(back.data(), 37, 70));
    EXPECT_TRUE(same_bits(fq, back)) << name;
  }
}

TEST(Registry, FormatInfoRanges) {
  const auto e4m3 = lowbit::Quantizer("fp8_e4m3").info();
  EXPECT_EQ(e4m3.max_value, 448.0);
  EXPECT_EQ(e4m3.min_normal, 0.015625);
  EXPECT_EQ(e4m3.min_subnormal, 0.001953125);
  const auto e5m2 = lowbit::Quantizer("fp8_e5m2").info();
  EXPECT_EQ(e5m2.max_value, 57344.0);
  EXPECT_EQ(e5m2.min_normal, std::ldexp(1.0, -14));
  EXPECT_EQ(e5m2.min_subnormal, std::ldexp(1.0, -16));
  const auto bf = lowbit::Quantizer("bf16").info();
  EXPECT_EQ(bf.max_value, static_cast<double>(std::numeric_limits<float>::max()) * (1.0 - std::ldexp(1.0, -8)) /
                              (1.0 - std::ldexp(1.0, -24)));
  const auto nosub = lowbit::Quantizer("minifloat_e4m3_nosub").info();
  EXPECT_EQ(nosub.min_subnormal, nosub.min_normal);
  EXPECT_EQ(lowbit::Quantizer("mxint8").info().max_value, 127.0 / 64.0);
}

}  // namespace
