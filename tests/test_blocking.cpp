// Blocking: how a tensor is cut into blocks, checked against the definition by quantising
// each block on its own (a block quantised alone is the 1 x n tensor of its values).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/fake_quant.hpp"

namespace {

using lowbit::Blocking;
using lowbit::MatrixRef;
using lowbit::QuantOptions;

std::vector<float> random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::student_t_distribution<double> t(3.0);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(t(g) * std::exp2(static_cast<double>(i % 7)));
  return x;
}

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

// Fake-quantises the values at the given coordinates as one block (a 1 x n row).
template <class F>
std::vector<float> one_block(const F& fmt, const std::vector<float>& x, std::int64_t cols,
                             const std::vector<std::pair<std::int64_t, std::int64_t>>& coords) {
  std::vector<float> v;
  for (auto [r, c] : coords) v.push_back(x[static_cast<std::size_t>(r * cols + c)]);
  std::vector<float> out(v.size());
  lowbit::fake_quant(fmt, MatrixRef<const float>::row_major(v.data(), 1, static_cast<std::int64_t>(v.size())),
                     MatrixRef<float>::row_major(out.data(), 1, static_cast<std::int64_t>(v.size())),
                     {lowbit::Rounding::NearestEven, 0, Blocking::per_tensor()});
  return out;
}

using Coords = std::vector<std::pair<std::int64_t, std::int64_t>>;

// The blocks the definition gives, in any order.
std::vector<Coords> expected_blocks(Blocking b, std::int64_t rows, std::int64_t cols, std::int64_t fmt_block) {
  std::vector<Coords> blocks;
  if (b.kind == Blocking::Kind::Along && b.block == 0 && fmt_block == lowbit::kPerTensor) b = Blocking::per_tensor();
  if (b.kind == Blocking::Kind::Along && b.block == 0 && fmt_block == lowbit::kPerChannel) b.block = -1;
  switch (b.kind) {
    case Blocking::Kind::Along: {
      const std::int64_t line = b.axis == 1 ? cols : rows, lines = b.axis == 1 ? rows : cols;
      const std::int64_t bs = b.block == 0 ? fmt_block : (b.block < 0 ? line : b.block);
      for (std::int64_t l = 0; l < lines; ++l)
        for (std::int64_t k = 0; k < line; k += bs) {
          Coords c;
          for (std::int64_t j = k; j < std::min(line, k + bs); ++j) c.push_back(b.axis == 1 ? std::pair{l, j} : std::pair{j, l});
          blocks.push_back(c);
        }
      break;
    }
    case Blocking::Kind::Tiles:
      for (std::int64_t r0 = 0; r0 < rows; r0 += b.tile_rows)
        for (std::int64_t c0 = 0; c0 < cols; c0 += b.tile_cols) {
          Coords c;
          for (std::int64_t r = r0; r < std::min(rows, r0 + b.tile_rows); ++r)
            for (std::int64_t j = c0; j < std::min(cols, c0 + b.tile_cols); ++j) c.push_back({r, j});
          blocks.push_back(c);
        }
      break;
    case Blocking::Kind::PerTensor: {
      Coords c;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < cols; ++j) c.push_back({r, j});
      if (!c.empty()) blocks.push_back(c);
      break;
    }
  }
  return blocks;
}

template <class F>
void check_blocking(const F& fmt, const Blocking& b, std::int64_t rows, std::int64_t cols, const std::string& what) {
  SCOPED_TRACE(what + " " + std::to_string(rows) + "x" + std::to_string(cols));
  const std::vector<float> x = random_matrix(rows, cols, static_cast<std::uint64_t>(rows * 1000 + cols));
  std::vector<float> got(x.size(), -1.0f);
  const QuantOptions opt{lowbit::Rounding::NearestEven, 0, b};
  lowbit::fake_quant(fmt, MatrixRef<const float>::row_major(x.data(), rows, cols),
                     MatrixRef<float>::row_major(got.data(), rows, cols), opt);
  std::vector<float> want(x.size(), -2.0f);
  const auto blocks = expected_blocks(b, rows, cols, lowbit::format_of(fmt).block_size);
  for (const Coords& blk : blocks) {
    const std::vector<float> q = one_block(fmt, x, cols, blk);
    for (std::size_t i = 0; i < blk.size(); ++i) want[static_cast<std::size_t>(blk[i].first * cols + blk[i].second)] = q[i];
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) bad += same(got[i], want[i]) ? 0 : 1;
  EXPECT_EQ(bad, 0u);
  // quantize -> dequantize is fake_quant, bit for bit, and has one header per block
  const lowbit::QuantizedTensor qt = lowbit::quantize(fmt, MatrixRef<const float>::row_major(x.data(), rows, cols), opt);
  EXPECT_EQ(qt.headers.size(), blocks.size());
  std::vector<float> deq(x.size(), -3.0f);
  lowbit::dequantize(fmt, qt, MatrixRef<float>::row_major(deq.data(), rows, cols));
  bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) bad += same(got[i], deq[i]) ? 0 : 1;
  EXPECT_EQ(bad, 0u) << "dequantize(quantize(x)) differs from fake_quant(x)";
}

TEST(Blocking, AlongEitherAxisWithTails) {
  for (std::int64_t bs : {1, 3, 5, 16, 32, 33, 100}) {
    check_blocking(lowbit::MXFP4{}, Blocking::along(1, bs), 7, 45, "axis 1 block " + std::to_string(bs));
    check_blocking(lowbit::MXFP4{}, Blocking::along(0, bs), 45, 7, "axis 0 block " + std::to_string(bs));
    check_blocking(lowbit::INT4_B32_FP16{}, Blocking::along(0, bs), 40, 9, "int4 axis 0 block " + std::to_string(bs));
    check_blocking(lowbit::UINT4_B32_FP16{}, Blocking::along(1, bs), 5, 70, "uint4 axis 1 block " + std::to_string(bs));
  }
}

TEST(Blocking, FormatDefaultBlock) {
  check_blocking(lowbit::MXFP4{}, Blocking::along(1, 0), 3, 100, "MXFP4 default (32)");
  check_blocking(lowbit::BFP6_B16{}, Blocking::along(0, 0), 50, 3, "BFP6 default (16) along axis 0");
  check_blocking(lowbit::NF4{}, Blocking::along(1), 2, 130, "NF4 default (64)");
  // the format's per-tensor default turns along(., 0) into one block
  check_blocking(lowbit::FP8_E4M3_PER_TENSOR{}, Blocking::along(1, 0), 9, 11, "FP8 per tensor");
}

TEST(Blocking, TilesWithSmallerEdgeTiles) {
  for (auto [tr, tc] : {std::pair<std::int64_t, std::int64_t>{2, 16}, {4, 4}, {3, 5}, {1, 1}, {8, 1}, {50, 50}}) {
    check_blocking(lowbit::MXFP4{}, Blocking::tiles(tr, tc), 10, 37, "tiles " + std::to_string(tr) + "x" + std::to_string(tc));
    check_blocking(lowbit::INT8_B32_FP16{}, Blocking::tiles(tr, tc), 13, 9, "int8 tiles");
  }
}

TEST(Blocking, PerTensorAndPerChannel) {
  check_blocking(lowbit::MXINT8{}, Blocking::per_tensor(), 6, 19, "per tensor");
  check_blocking(lowbit::INT4_B32_FP16{}, Blocking::per_channel(1), 6, 77, "per row");
  check_blocking(lowbit::INT4_B32_FP16{}, Blocking::per_channel(0), 77, 6, "per column");
  check_blocking(lowbit::NF4{}, Blocking::per_channel(0), 20, 5, "NF4 per column");
}

TEST(Blocking, DegenerateShapes) {
  for (auto [r, c] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {1, 40}, {40, 1}, {0, 8}, {8, 0}, {0, 0}}) {
    const std::string shape = std::to_string(r) + "x" + std::to_string(c);
    check_blocking(lowbit::MXFP4{}, Blocking::along(1, 0), r, c, "along 1 " + shape);
    check_blocking(lowbit::MXFP4{}, Blocking::along(0, 32), r, c, "along 0 " + shape);
    check_blocking(lowbit::MXFP4{}, Blocking::tiles(4, 4), r, c, "tiles " + shape);
    check_blocking(lowbit::MXFP4{}, Blocking::per_tensor(), r, c, "per tensor " + shape);
    check_blocking(lowbit::MXFP4{}, Blocking::per_channel(1), r, c, "per channel " + shape);
  }
}

TEST(Blocking, BlocksLargerThanTheTensorAllocateOnlyWhatTheTensorHolds) {
  // A block size far beyond the line is one block per line; it must not size buffers by
  // the nominal block (that would be 2^40 floats here).
  check_blocking(lowbit::MXFP4{}, Blocking::along(1, std::int64_t{1} << 40), 3, 10, "huge block");
  check_blocking(lowbit::MXFP4{}, Blocking::tiles(std::int64_t{1} << 30, std::int64_t{1} << 30), 3, 10, "huge tile");
}

TEST(Blocking, Nvfp4TensorScaleSpansEveryBlock) {
  // NVFP4's second-level scale comes from the whole tensor whatever the blocking: a column
  // block gives the same values in any tensor with the same maximum.
  const std::int64_t rows = 20, cols = 5;
  std::vector<float> x = random_matrix(rows, cols, 8);
  const QuantOptions opt{lowbit::Rounding::NearestEven, 0, Blocking::per_channel(0)};
  std::vector<float> got(x.size());
  lowbit::fake_quant(lowbit::NVFP4{}, MatrixRef<const float>::row_major(x.data(), rows, cols),
                     MatrixRef<float>::row_major(got.data(), rows, cols), opt);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  for (std::int64_t c = 0; c < cols; ++c) {
    std::vector<float> both(2 * static_cast<std::size_t>(rows));
    std::vector<float> in2(2 * static_cast<std::size_t>(rows), 0.0f);
    in2[0] = amax;
    for (std::int64_t r = 0; r < rows; ++r) in2[static_cast<std::size_t>(rows + r)] = x[static_cast<std::size_t>(r * cols + c)];
    // column 0 holds the max alone, column 1 this column: per-column blocks, one tensor scale
    lowbit::fake_quant(lowbit::NVFP4{}, MatrixRef<const float>::col_major(in2.data(), rows, 2),
                       MatrixRef<float>::col_major(both.data(), rows, 2), opt);
    for (std::int64_t r = 0; r < rows; ++r)
      EXPECT_TRUE(same(both[static_cast<std::size_t>(rows + r)], got[static_cast<std::size_t>(r * cols + c)])) << r << "," << c;
  }
}

TEST(Blocking, InPlace) {
  const std::int64_t rows = 9, cols = 70;
  const std::vector<float> x = random_matrix(rows, cols, 3);
  for (const Blocking& b : {Blocking::along(1, 16), Blocking::along(0, 4), Blocking::tiles(3, 8), Blocking::per_tensor()}) {
    std::vector<float> copy(x), out(x.size());
    const QuantOptions opt{lowbit::Rounding::Stochastic, 77, b};
    lowbit::fake_quant(lowbit::NVFP4{}, MatrixRef<const float>::row_major(x.data(), rows, cols),
                       MatrixRef<float>::row_major(out.data(), rows, cols), opt);
    const MatrixRef<float> io = MatrixRef<float>::row_major(copy.data(), rows, cols);
    lowbit::fake_quant(lowbit::NVFP4{}, io, io, opt);
    for (std::size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(same(copy[i], out[i])) << i;
  }
}

TEST(Blocking, NegativeAndPaddedStrides) {
  const std::int64_t rows = 6, cols = 40;
  const std::vector<float> x = random_matrix(rows, cols, 4);
  const QuantOptions opt{lowbit::Rounding::NearestEven, 0, Blocking::along(0, 4)};
  std::vector<float> want(x.size());
  lowbit::fake_quant(lowbit::MXINT8{}, MatrixRef<const float>::row_major(x.data(), rows, cols),
                     MatrixRef<float>::row_major(want.data(), rows, cols), opt);
  // rows stored bottom-up: data points at logical row 0, the last in memory
  std::vector<float> flipped(x.size()), out(x.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) flipped[static_cast<std::size_t>((rows - 1 - r) * cols + c)] = x[static_cast<std::size_t>(r * cols + c)];
  lowbit::fake_quant(lowbit::MXINT8{}, MatrixRef<const float>{flipped.data() + (rows - 1) * cols, rows, cols, -cols, 1},
                     MatrixRef<float>{out.data() + (rows - 1) * cols, rows, cols, -cols, 1}, opt);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      EXPECT_TRUE(same(out[static_cast<std::size_t>((rows - 1 - r) * cols + c)], want[static_cast<std::size_t>(r * cols + c)]));
  // quantize from a negative-stride view into a padded output
  const lowbit::QuantizedTensor qt =
      lowbit::quantize(lowbit::MXINT8{}, MatrixRef<const float>{flipped.data() + (rows - 1) * cols, rows, cols, -cols, 1}, opt);
  std::vector<float> padded(static_cast<std::size_t>(rows * (cols + 5)), 5.0f);
  lowbit::dequantize(lowbit::MXINT8{}, qt, MatrixRef<float>{padded.data(), rows, cols, cols + 5, 1});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols + 5; ++c) {
      const float v = padded[static_cast<std::size_t>(r * (cols + 5) + c)];
      if (c < cols) EXPECT_TRUE(same(v, want[static_cast<std::size_t>(r * cols + c)]));
      else EXPECT_EQ(v, 5.0f);
    }
}

// ---- errors -------------------------------------------------------------------------------
template <class Fn>
void expect_error(Fn&& fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "no lowbit::Error thrown (expected one mentioning '" << fragment << "')";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << "message: " << e.what();
  }
}

TEST(Blocking, ErrorsSayWhatIsWrong) {
  std::vector<float> x(12, 1.0f), y(12);
  const auto in = MatrixRef<const float>::row_major(x.data(), 3, 4);
  const auto out = MatrixRef<float>::row_major(y.data(), 3, 4);
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, MatrixRef<float>::row_major(y.data(), 4, 3)); }, "4 x 3");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, out, {lowbit::Rounding::NearestEven, 0, Blocking::along(2, 8)}); }, "axis");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, out, {lowbit::Rounding::NearestEven, 0, Blocking::along(-1, 8)}); }, "axis");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, out, {lowbit::Rounding::NearestEven, 0, Blocking::along(1, -7)}); }, "block size");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, out, {lowbit::Rounding::NearestEven, 0, Blocking::tiles(0, 4)}); }, "tile");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, in, out, {lowbit::Rounding::NearestEven, 0, Blocking::tiles(2, -1)}); }, "tile");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>{x.data(), -1, 4, 4, 1}, out); }, "negative shape");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>{nullptr, 3, 4, 4, 1}, out); }, "null");
  expect_error([&] { lowbit::quantize(lowbit::MXFP4{}, in, {lowbit::Rounding::NearestEven, 0, Blocking::along(7, 8)}); }, "axis");
  const lowbit::QuantizedTensor qt = lowbit::quantize(lowbit::MXFP4{}, in);
  expect_error([&] { lowbit::dequantize(lowbit::MXFP4{}, qt, MatrixRef<float>::row_major(y.data(), 2, 6)); }, "2 x 6");
  lowbit::QuantizedTensor broken = qt;
  broken.headers.pop_back();
  expect_error([&] { lowbit::dequantize(lowbit::MXFP4{}, broken, out); }, "inconsistent");
  broken = qt;
  broken.codes.resize(5);
  expect_error([&] { lowbit::dequantize(lowbit::MXFP4{}, broken, out); }, "inconsistent");
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, std::span<const float>(x), std::span<float>(y.data(), 5)); }, "12");
}

}  // namespace
