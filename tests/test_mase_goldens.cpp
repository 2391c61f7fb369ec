// MaseFormat against the MASE / llm-mixed-q golden vectors (../shared/goldens/mase, produced by
// the reference PyTorch code), the quirks measured on the reference, and the documented
// differences from lowbit's exact formats (each checked by running both).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "lowbit/formats/mase_compat.hpp"
#include "lowbit/formats/standard.hpp"
#include "lowbit/io/npy.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "shared_data.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit::mase::MaseFormat;

const char* const kDir = "goldens/mase/";

lowbit::npy::FloatMatrix load(const std::string& file) {
  return lowbit::npy::read_float32_matrix(lowbit_test::shared_file(kDir + file));
}

std::string describe(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g (0x%08x)", static_cast<double>(v), std::bit_cast<std::uint32_t>(v));
  return buf;
}

// Number of elements where got != want (exact float equality, so -0 == +0); the first few are
// reported with their coordinates and inputs.
std::int64_t count_mismatches(const std::vector<float>& in, const std::vector<float>& want, const std::vector<float>& got,
                              std::int64_t cols, std::int64_t row_offset, const std::string& label) {
  std::int64_t bad = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (got[i] == want[i]) continue;
    if (++bad <= 8) {
      const auto r = static_cast<std::int64_t>(i) / cols + row_offset, c = static_cast<std::int64_t>(i) % cols;
      ADD_FAILURE() << label << " at (" << r << ", " << c << "): in " << describe(in[i]) << ", expected "
                    << describe(want[i]) << ", got " << describe(got[i]);
    }
  }
  return bad;
}

struct Golden {
  const char* file;
  const char* format;
};

void PrintTo(const Golden& g, std::ostream* os) { *os << g.format << " vs " << g.file; }

class MaseGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(MaseGolden, ReproducesEveryValue) {
  const Golden g = GetParam();
  LOWBIT_REQUIRE_SHARED(std::string(kDir) + "in.npy");
  LOWBIT_REQUIRE_SHARED(std::string(kDir) + g.file);
  const auto in = load("in.npy");
  const auto want = load(g.file);
  ASSERT_EQ(in.rows, 64);
  ASSERT_EQ(in.cols, 256);
  ASSERT_EQ(want.rows, in.rows);
  ASSERT_EQ(want.cols, in.cols);
  const MaseFormat fmt = MaseFormat::parse(g.format);

  std::vector<float> out(in.values.size(), std::numeric_limits<float>::quiet_NaN());
  fmt.fake_quant(MatrixRef<const float>::row_major(in.values.data(), in.rows, in.cols),
                 MatrixRef<float>::row_major(out.data(), in.rows, in.cols));
  EXPECT_EQ(count_mismatches(in.values, want.values, out, in.cols, 0, g.format), 0);

  // In place, on a column-major copy (blocks still run along each row).
  std::vector<float> col(in.values.size());
  for (std::int64_t r = 0; r < in.rows; ++r)
    for (std::int64_t c = 0; c < in.cols; ++c)
      col[static_cast<std::size_t>(c * in.rows + r)] = in.values[static_cast<std::size_t>(r * in.cols + c)];
  const auto view = MatrixRef<float>::col_major(col.data(), in.rows, in.cols);
  fmt.fake_quant(view, view);
  std::vector<float> back(in.values.size());
  for (std::int64_t r = 0; r < in.rows; ++r)
    for (std::int64_t c = 0; c < in.cols; ++c) back[static_cast<std::size_t>(r * in.cols + c)] = view(r, c);
  EXPECT_EQ(count_mismatches(in.values, want.values, back, in.cols, 0, std::string(g.format) + " in place"), 0);
}

INSTANTIATE_TEST_SUITE_P(
    AllFiles, MaseGolden,
    ::testing::Values(Golden{"out_block_fp_w8e8_b1x16.npy", "mase_bfp_w8_b16"},
                      Golden{"out_block_fp_w6e8_b1x16.npy", "mase_bfp_w6_b16"},
                      Golden{"out_block_fp_w4e8_b1x16.npy", "mase_bfp_w4_b16"},
                      Golden{"out_block_fp_w4e8_b1x32.npy", "mase_bfp_w4_b32"},
                      Golden{"out_minifloat_denorm_e4m3.npy", "mase_dmf_e4m3"},
                      Golden{"out_minifloat_denorm_e3m2.npy", "mase_dmf_e3m2"},
                      Golden{"out_minifloat_ieee_e4m3.npy", "mase_minifloat_e4m3"},
                      Golden{"out_block_minifloat_w8e4_bw8_b1x16.npy", "mase_bm_w8e4_b16"},
                      Golden{"out_block_log_w8_bw8_b1x16.npy", "mase_bl_w8_b16"},
                      Golden{"out_integer_w8_f4.npy", "mase_int_w8_f4"},
                      Golden{"out_integer_w4_f2.npy", "mase_int_w4_f2"},
                      Golden{"out_integer_w8_f7.npy", "mase_int_w8_f7"}),
    [](const ::testing::TestParamInfo<Golden>& info) { return std::string(info.param.format); });

// The reference applied to in[32:40] alone: its all-zero blocks take the smallest non-zero block
// maximum of that sub-tensor, which differs from the whole tensor's.
TEST(MaseGoldenSubTensor, BlockLogRows32To39) {
  LOWBIT_REQUIRE_SHARED(std::string(kDir) + "in.npy");
  LOWBIT_REQUIRE_SHARED(std::string(kDir) + "out_block_log_w8_bw8_b1x16_rows32-39.npy");
  const auto in = load("in.npy");
  const auto want = load("out_block_log_w8_bw8_b1x16_rows32-39.npy");
  ASSERT_EQ(want.rows, 8);
  ASSERT_EQ(want.cols, in.cols);
  const auto sub = MatrixRef<const float>::row_major(in.values.data() + 32 * in.cols, 8, in.cols);
  std::vector<float> sub_in(sub.data, sub.data + 8 * in.cols);
  std::vector<float> out(sub_in.size());
  const MaseFormat fmt = MaseFormat::parse("mase_bl_w8_b16");
  fmt.fake_quant(sub, MatrixRef<float>::row_major(out.data(), 8, in.cols));
  EXPECT_EQ(count_mismatches(sub_in, want.values, out, in.cols, 32, "block_log rows 32-39"), 0);

  // The rule is visible: some outputs differ from the same rows quantised within the whole tensor.
  LOWBIT_REQUIRE_SHARED(std::string(kDir) + "out_block_log_w8_bw8_b1x16.npy");
  const auto whole = load("out_block_log_w8_bw8_b1x16.npy");
  int differ = 0;
  for (std::size_t i = 0; i < out.size(); ++i) differ += whole.values[32 * 256 + i] != out[i];
  EXPECT_GT(differ, 0);
}

// ---- quirks measured on the reference (docs/MASE_QUANTISERS.md) -------------------------------

// Fake quantisation of one row (blocks of the format's size along it).
std::vector<float> run(const MaseFormat& f, std::vector<float> row) {
  const auto view = MatrixRef<float>::row_major(row.data(), 1, static_cast<std::int64_t>(row.size()));
  f.fake_quant(view, view);
  return row;
}
float one(const MaseFormat& f, float x) { return run(f, {x})[0]; }

TEST(MaseQuirks, MinifloatDenormPullsPowersOfTwoDown) {
  const auto e4m3 = MaseFormat::parse("mase_dmf_e4m3");
  EXPECT_EQ(one(e4m3, 1.0f), 0.875f);
  EXPECT_EQ(one(e4m3, 0.5f), 0.4375f);
  EXPECT_EQ(one(e4m3, 0.95f), 0.875f);
  EXPECT_EQ(one(e4m3, 1.97f), 1.75f);
  EXPECT_EQ(one(e4m3, -1.0f), -0.875f);
  // 2^-6 + eps has a float32 log2 of exactly -6, so its exponent is -6 and it is pulled down too.
  EXPECT_EQ(one(e4m3, 0.015625f), 0.013671875f);
  EXPECT_EQ(one(e4m3, 1e6f), 224.0f);
  EXPECT_EQ(e4m3.max_value(), 224.0);
  const auto e3m2 = MaseFormat::parse("mase_dmf_e3m2");
  EXPECT_EQ(one(e3m2, 1.0f), 0.75f);
  EXPECT_EQ(one(e3m2, 100.0f), 12.0f);
  EXPECT_EQ(e3m2.max_value(), 12.0);
}

TEST(MaseQuirks, MinifloatIeeeNeverCarries) {
  const auto f = MaseFormat::parse("mase_minifloat_e4m3");
  EXPECT_EQ(one(f, 1.97f), 1.875f);
  EXPECT_EQ(one(f, -1.97f), -1.875f);
  EXPECT_EQ(one(f, 0.015f), 0.013671875f);
  EXPECT_EQ(one(f, 1000.0f), 480.0f);
  EXPECT_EQ(one(f, 496.0f), 480.0f);
  EXPECT_EQ(f.max_value(), 480.0);
}

TEST(MaseQuirks, BlockFpClipsAPowerOfTwoMaximum) {
  EXPECT_EQ(one(MaseFormat::parse("mase_bfp_w4_b16"), 1.0f), 0.875f);
  EXPECT_EQ(one(MaseFormat::parse("mase_bfp_w6_b16"), 1.0f), 0.96875f);
}

TEST(MaseQuirks, BlockMinifloatWindowMovesTheWrongWay) {
  const auto bm = MaseFormat::parse("mase_bm_w8e4_b16");
  const auto big = run(bm, {1000.0f, 480.0f});
  EXPECT_EQ(big[1], 120.0f);
  const float huge = one(bm, 1e30f);
  EXPECT_NEAR(huge, 9.69e-26, 0.005e-26);
  EXPECT_EQ(huge, std::ldexp(1.875f, -84));
  // Block max below 2: bias 0, subnormal steps of 0.25, so |x| < 0.125 flushes to zero.
  const auto small = run(bm, {1.5f, 0.1f, -0.124f, 0.02f, 0.126f});
  EXPECT_EQ(small[0], 1.5f);
  EXPECT_EQ(small[1], 0.0f);
  EXPECT_EQ(small[2], 0.0f);
  EXPECT_EQ(small[3], 0.0f);
  EXPECT_EQ(small[4], 0.25f);
}

TEST(MaseQuirks, BlockLogHasNoZero) {
  const auto bl = MaseFormat::parse("mase_bl_w8_b16");
  // Block max 1.5 * 2^-20: bias 127 - (-19) = 146, and 0.1 * 2^-146 still rounds to 2^-149.
  std::vector<float> row(16, 0.0f);
  row[0] = std::ldexp(1.5f, -20);
  EXPECT_EQ(run(bl, row)[5], std::ldexp(1.0f, -146));
  // One binade lower, bias 147: the offset underflows to 0 and so does the zero.
  row[0] = std::ldexp(1.5f, -21);
  EXPECT_EQ(run(bl, row)[5], 0.0f);
}

TEST(MaseQuirks, ZeroBlocksTakeTheSmallestNonZeroBlockMaximum) {
  const auto bl = MaseFormat::parse("mase_bl_w4_b2");  // blocks of 2 along each row
  // Row 0: blocks {0.3, 0} and {0, 0}; row 1: {6, 0}, {0, 0}. Smallest non-zero max 0.3:
  // ceil(log2 0.3) = -1, bias 7 - (-1) = 8, so every zero becomes 2^-8, in every block.
  std::vector<float> m{0.3f, 0.0f, 0.0f, 0.0f, 6.0f, 0.0f, 0.0f, 0.0f};
  const auto view = MatrixRef<float>::row_major(m.data(), 2, 4);
  bl.fake_quant(view, view);
  EXPECT_EQ(m[1], std::ldexp(1.0f, -8));   // own block (max 0.3)
  EXPECT_EQ(m[2], std::ldexp(1.0f, -8));   // zero block
  EXPECT_EQ(m[5], std::ldexp(1.0f, -4));   // own block (max 6: bias 7 - 3 = 4)
  EXPECT_EQ(m[7], std::ldexp(1.0f, -8));   // zero block in the other row
  // An all-zero tensor uses block max 1: bias 7.
  EXPECT_EQ(run(bl, {0.0f, 0.0f, 0.0f})[2], std::ldexp(1.0f, -7));
}

TEST(MaseQuirks, NearZeroValuesPassThrough) {
  const float tol = 1e-8f, above = std::nextafter(1e-8f, 1.0f);
  for (const char* name : {"mase_bfp_w4_b16", "mase_dmf_e4m3", "mase_minifloat_e4m3", "mase_bm_w8e4_b16"}) {
    const auto f = MaseFormat::parse(name);
    EXPECT_EQ(one(f, tol), tol) << name;
    EXPECT_EQ(one(f, -tol), -tol) << name;
    EXPECT_EQ(one(f, 3e-41f), 3e-41f) << name;  // subnormal input, kept
  }
  // Just above the tolerance the value is quantised: flushed to 0 by the per-element minifloats.
  EXPECT_EQ(one(MaseFormat::parse("mase_dmf_e4m3"), above), 0.0f);
  EXPECT_EQ(one(MaseFormat::parse("mase_minifloat_e4m3"), above), 0.0f);
  // Integer and block log have no pass-through.
  EXPECT_EQ(one(MaseFormat::parse("mase_int_w8_f4"), tol), 0.0f);
  EXPECT_NE(one(MaseFormat::parse("mase_bl_w8_b16"), tol), tol);
}

TEST(MaseQuirks, TailBlocksAreSeparate) {
  // 17 values in blocks of 16: the last value is a block of its own (max 1.5, step 0.25), not
  // part of the first block (max 8, step 1, where 1.5 would round to 2).
  std::vector<float> row(17, 0.0f);
  row[0] = 8.0f;
  row[16] = 1.5f;
  const auto out = run(MaseFormat::parse("mase_bfp_w4_b16"), row);
  EXPECT_EQ(out[0], 7.0f);
  EXPECT_EQ(out[16], 1.5f);
}

// ---- differences from lowbit's exact formats (the list at the top of mase_compat.hpp) -------

float lowbit_one(const auto& fmt, std::vector<float> row, std::size_t i = 0) {
  return lowbit::fake_quant(fmt, std::span<const float>(row))[i];
}

TEST(MaseVersusLowbit, BlockFp) {
  const auto mase = MaseFormat::parse("mase_bfp_w4_b16");
  const auto exact = lowbit::bfp_format(4, 16);
  EXPECT_EQ(one(mase, 1.0f), 0.875f);
  EXPECT_EQ(lowbit_one(exact, {1.0f}), 1.0f);
  const std::vector<float> tie{0.01171875f, 0.0048828125f};  // 0.75 * 2^-6 and 2.5 * 2^-9
  EXPECT_EQ(run(mase, tie)[1], 0.005859375f);
  EXPECT_EQ(lowbit_one(exact, tie, 1), 0.00390625f);
  EXPECT_EQ(one(mase, 1e-8f), 1e-8f);
  EXPECT_EQ(lowbit_one(exact, {1e-8f}), std::ldexp(5.0f, -29));
}

TEST(MaseVersusLowbit, Minifloats) {
  const lowbit::MinifloatSpec no_specials{4, 3, 7, true, lowbit::Specials::FiniteOnly, lowbit::Overflow::Saturate};
  const auto exact = lowbit::element_format(no_specials);
  const auto dmf = MaseFormat::parse("mase_dmf_e4m3");
  EXPECT_EQ(one(dmf, 1.0f), 0.875f);
  EXPECT_EQ(lowbit_one(exact, {1.0f}), 1.0f);
  EXPECT_EQ(one(dmf, 1000.0f), 224.0f);
  EXPECT_EQ(lowbit_one(exact, {1000.0f}), 480.0f);
  const auto ieee = MaseFormat::parse("mase_minifloat_e4m3");
  EXPECT_EQ(one(ieee, 1.97f), 1.875f);
  EXPECT_EQ(lowbit_one(exact, {1.97f}), 2.0f);
  EXPECT_EQ(one(ieee, 0.015f), 0.013671875f);
  EXPECT_EQ(lowbit_one(exact, {0.015f}), 0.015625f);
  EXPECT_EQ(one(ieee, 1e-9f), 1e-9f);
  EXPECT_EQ(lowbit_one(exact, {1e-9f}), 0.0f);
  EXPECT_EQ(ieee.max_value(), no_specials.max_value());
}

TEST(MaseVersusLowbit, BlockMinifloat) {
  const auto mase = MaseFormat::parse("mase_bm_w8e4_b16");
  const auto exact = lowbit::block_minifloat_format(4, 3, 16);
  EXPECT_EQ(run(mase, {1.0f, 0.05f})[1], 0.0f);
  EXPECT_EQ(lowbit_one(exact, {1.0f, 0.05f}, 1), 0.05078125f);
  EXPECT_EQ(run(mase, {1000.0f, 480.0f})[1], 120.0f);
  EXPECT_EQ(lowbit_one(exact, {1000.0f, 480.0f}, 1), 480.0f);
}

TEST(MaseVersusLowbit, BlockLog) {
  const auto mase = MaseFormat::parse("mase_bl_w8_b16");
  const auto exact = lowbit::block_log_format(8, 16);
  EXPECT_EQ(run(mase, {1.0f, 0.0f})[1], std::ldexp(1.0f, -127));
  EXPECT_EQ(lowbit_one(exact, {1.0f, 0.0f}, 1), 0.0f);
}

TEST(MaseVersusLowbit, Integer) {
  const auto mase = MaseFormat::parse("mase_int_w8_f4");
  const auto exact = lowbit::element_format(lowbit::FixedPointSpec{8, 4, lowbit::IntRange::TwosComplement});
  EXPECT_EQ(one(mase, 0.53125f), 0.5f);
  EXPECT_EQ(lowbit_one(exact, {0.53125f}), 0.5f);
  EXPECT_EQ(one(mase, -9.0f), -8.0f);
  EXPECT_EQ(lowbit_one(exact, {-9.0f}), -8.0f);
  EXPECT_TRUE(std::isnan(one(mase, std::numeric_limits<float>::quiet_NaN())));
  EXPECT_THROW(lowbit_one(exact, {std::numeric_limits<float>::quiet_NaN()}), lowbit::Error);
}

// ---- names, sizes, errors -------------------------------------------------------------------

TEST(MaseFormatNames, RoundTripAndDescribe) {
  struct Case {
    const char* name;
    double bits;
    double max;
  };
  const Case cases[] = {
      {"mase_bfp_w6_b16", 6.5, 0.96875},         {"mase_bfp_w4_b32", 4.25, 0.875},
      {"mase_dmf_e4m3", 8.0, 224.0},             {"mase_minifloat_e4m3", 8.0, 480.0},
      {"mase_bm_w8e4_b16", 8.5, 1.875 * 32768},  {"mase_bl_w8_b16", 8.5, std::ldexp(1.0, 127)},
      {"mase_int_w8_f4", 8.0, 7.9375},           {"mase_int_w4_f2", 4.0, 1.75},
      {"mase_int_w8_f7", 8.0, 0.9921875},
  };
  for (const Case& c : cases) {
    const auto f = MaseFormat::parse(c.name);
    EXPECT_EQ(f.name(), c.name);
    EXPECT_EQ(MaseFormat::parse(f.name()), f);
    EXPECT_EQ(f.bits_per_element(), c.bits) << c.name;
    EXPECT_EQ(f.max_value(), c.max) << c.name;
  }
  EXPECT_EQ(MaseFormat::parse("mase_bm_w8e4_b16").man_bits(), 3);
  EXPECT_EQ(MaseFormat::parse("mase_dmf_e3m2").width(), 6);
}

TEST(MaseFormatNames, MalformedNamesListTheGrammar) {
  for (const char* bad : {"", "mase", "mase_bfp_w6", "mase_bfp_w6_b", "mase_bfp_w6_b16_", "mase_bfp_w06_b16",
                          "mase_bfp_w-6_b16", "mase_dmf_e4", "mase_dmf_e4m3x", "mase_minifloat_e4_m3",
                          "mase_bm_w8_b16", "mase_bl_w8", "mase_int_w8", "MASE_BFP_W6_B16", "bfp_w6_b16",
                          "mase_int_w8_f12345678901"}) {
    try {
      (void)MaseFormat::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const lowbit::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("mase_bfp_w{W}_b{B}"), std::string::npos) << msg;
      EXPECT_NE(msg.find("mase_int_w{W}_f{F}"), std::string::npos) << msg;
    }
  }
}

TEST(MaseFormatNames, OutOfRangeParametersAreRejected) {
  for (const char* bad : {"mase_bfp_w1_b16", "mase_bfp_w6_b0", "mase_dmf_e0m3", "mase_dmf_e9m3", "mase_dmf_e4m0",
                          "mase_bm_w5e4_b16", "mase_bl_w10_b16", "mase_bl_w1_b16", "mase_int_w1_f0",
                          "mase_int_w8_f127"}) {
    EXPECT_THROW((void)MaseFormat::parse(bad), lowbit::Error) << bad;
  }
}

TEST(MaseFormatNames, ShapeMismatchThrows) {
  std::vector<float> a(4), b(6);
  EXPECT_THROW(MaseFormat::parse("mase_bfp_w4_b16")
                   .fake_quant(MatrixRef<const float>::row_major(a.data(), 2, 2), MatrixRef<float>::row_major(b.data(), 2, 3)),
               lowbit::Error);
}

}  // namespace
