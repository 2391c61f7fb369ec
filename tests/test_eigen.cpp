// The Eigen adapters: every dense object with direct access maps to the view of the same
// logical matrix, so results equal the core run on a plain row-major copy.
#include <gtest/gtest.h>

#include <Eigen/Core>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/eigen.hpp"
#include "lowbit/quant/fake_quant.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit::QuantOptions;
using RowMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::MatrixXf random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 g(seed);
  std::student_t_distribution<float> t(3.0f);
  Eigen::MatrixXf m(rows, cols);
  for (Eigen::Index c = 0; c < cols; ++c)
    for (Eigen::Index r = 0; r < rows; ++r) m(r, c) = t(g) * static_cast<float>(1 + (r * 7 + c) % 5);
  return m;
}

bool same(float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

// The core on a row-major copy: the expected result for any Eigen view of `m`.
template <class F, class D>
std::vector<float> reference(const F& fmt, const Eigen::DenseBase<D>& m, const QuantOptions& opt) {
  const Eigen::Index rows = m.rows(), cols = m.cols();
  std::vector<float> x(static_cast<std::size_t>(rows * cols)), y(x.size());
  for (Eigen::Index r = 0; r < rows; ++r)
    for (Eigen::Index c = 0; c < cols; ++c) x[static_cast<std::size_t>(r * cols + c)] = m.derived().coeff(r, c);
  lowbit::fake_quant(fmt, MatrixRef<const float>::row_major(x.data(), rows, cols),
                     MatrixRef<float>::row_major(y.data(), rows, cols), opt);
  return y;
}

template <class D>
::testing::AssertionResult equals(const Eigen::DenseBase<D>& got, const std::vector<float>& want) {
  const Eigen::Index cols = got.cols();
  for (Eigen::Index r = 0; r < got.rows(); ++r)
    for (Eigen::Index c = 0; c < cols; ++c)
      if (!same(got.derived().coeff(r, c), want[static_cast<std::size_t>(r * cols + c)]))
        return ::testing::AssertionFailure() << "differs at (" << r << "," << c << "): " << got.derived().coeff(r, c)
                                             << " vs " << want[static_cast<std::size_t>(r * cols + c)];
  return ::testing::AssertionSuccess();
}

const QuantOptions kStochastic{lowbit::Rounding::Stochastic, 99, lowbit::Blocking::along(1, 16)};
const QuantOptions kAxis0{lowbit::Rounding::NearestEven, 0, lowbit::Blocking::along(0, 8)};

TEST(Eigen, MatrixRefMapsStorageOrderAndStrides) {
  Eigen::MatrixXf cm = random_matrix(5, 7, 1);
  const MatrixRef<const float> a = lowbit::as_matrix_ref(cm);
  EXPECT_EQ(a.row_stride, 1);
  EXPECT_EQ(a.col_stride, 5);
  RowMajorXf rm = cm;
  const MatrixRef<const float> b = lowbit::as_matrix_ref(rm);
  EXPECT_EQ(b.row_stride, 7);
  EXPECT_EQ(b.col_stride, 1);
  // a block, a row and a column of each keep the parent's strides
  const auto blk = lowbit::as_matrix_ref(cm.block(1, 2, 3, 4));
  EXPECT_EQ(blk.data, &cm(1, 2));
  EXPECT_EQ(blk.rows, 3);
  EXPECT_EQ(blk.cols, 4);
  for (Eigen::Index r = 0; r < 3; ++r)
    for (Eigen::Index c = 0; c < 4; ++c) EXPECT_EQ(&blk(r, c), &cm(1 + r, 2 + c));
  const auto row = lowbit::as_matrix_ref(cm.row(3));
  const auto col = lowbit::as_matrix_ref(rm.col(4));
  for (Eigen::Index c = 0; c < 7; ++c) EXPECT_EQ(&row(0, c), &cm(3, c));
  for (Eigen::Index r = 0; r < 5; ++r) EXPECT_EQ(&col(r, 0), &rm(r, 4));
  // a Map with an inner stride (every other float of a buffer)
  std::vector<float> buf(40);
  Eigen::Map<Eigen::MatrixXf, 0, Eigen::Stride<12, 2>> strided(buf.data(), 4, 3);
  const auto s = lowbit::as_mutable_matrix_ref(strided);
  for (Eigen::Index r = 0; r < 4; ++r)
    for (Eigen::Index c = 0; c < 3; ++c) EXPECT_EQ(&s(r, c), &strided(r, c));
}

TEST(Eigen, FakeQuantAgreesForEveryStorage) {
  const Eigen::MatrixXf m = random_matrix(24, 40, 2);
  for (const QuantOptions& opt : {kStochastic, kAxis0, QuantOptions{}}) {
    const std::vector<float> want = reference(lowbit::MXFP4{}, m, opt);
    Eigen::MatrixXf out_cm(24, 40);
    lowbit::fake_quant(lowbit::MXFP4{}, m, out_cm, opt);
    EXPECT_TRUE(equals(out_cm, want));
    const RowMajorXf rm = m;
    RowMajorXf out_rm(24, 40);
    lowbit::fake_quant(lowbit::MXFP4{}, rm, out_rm, opt);
    EXPECT_TRUE(equals(out_rm, want));
    // the convenience returning a new matrix, in the input's order
    EXPECT_TRUE(equals(lowbit::fake_quant(lowbit::MXFP4{}, m, opt), want));
    const RowMajorXf r2 = lowbit::fake_quant(lowbit::MXFP4{}, rm, opt);
    EXPECT_TRUE(equals(r2, want));
    // Map and Ref over the same storage
    const Eigen::Map<const Eigen::MatrixXf> map(m.data(), 24, 40);
    Eigen::MatrixXf out_map(24, 40);
    lowbit::fake_quant(lowbit::MXFP4{}, map, Eigen::Map<Eigen::MatrixXf>(out_map.data(), 24, 40), opt);
    EXPECT_TRUE(equals(out_map, want));
    const Eigen::Ref<const RowMajorXf> ref(rm);
    Eigen::MatrixXf out_ref(24, 40);
    Eigen::Ref<Eigen::MatrixXf> out_ref_view(out_ref);
    lowbit::fake_quant(lowbit::MXFP4{}, ref, out_ref_view, opt);
    EXPECT_TRUE(equals(out_ref, want));
  }
}

TEST(Eigen, BlocksAndStridedViewsQuantiseAsTheirOwnTensor) {
  const Eigen::MatrixXf big = random_matrix(30, 50, 3);
  const RowMajorXf big_rm = big;
  for (const QuantOptions& opt : {kStochastic, kAxis0}) {
    const Eigen::MatrixXf sub = big.block(3, 5, 20, 33);  // plain copy of the logical tensor
    const std::vector<float> want = reference(lowbit::NVFP4{}, sub, opt);
    Eigen::MatrixXf out = Eigen::MatrixXf::Constant(30, 50, 7.0f);
    lowbit::fake_quant(lowbit::NVFP4{}, big.block(3, 5, 20, 33), out.block(3, 5, 20, 33), opt);
    EXPECT_TRUE(equals(out.block(3, 5, 20, 33), want));
    EXPECT_EQ(out(0, 0), 7.0f);  // outside the block: untouched
    EXPECT_EQ(out(29, 49), 7.0f);
    RowMajorXf out_rm = RowMajorXf::Zero(30, 50);
    lowbit::fake_quant(lowbit::NVFP4{}, big_rm.block(3, 5, 20, 33), out_rm.block(3, 5, 20, 33), opt);
    EXPECT_TRUE(equals(out_rm.block(3, 5, 20, 33), want));
  }
  // every other column through an inner stride, and a single column of a row-major matrix
  Eigen::Map<const Eigen::MatrixXf, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> every_other(
      big.data(), 30, 25, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(60, 1));
  const Eigen::MatrixXf eo_copy = every_other;
  EXPECT_TRUE(equals(lowbit::fake_quant(lowbit::MXINT8{}, every_other, kAxis0), reference(lowbit::MXINT8{}, eo_copy, kAxis0)));
  const Eigen::VectorXf col_copy = big_rm.col(9);
  Eigen::VectorXf col_out(30);
  lowbit::fake_quant(lowbit::BFP6_B16{}, big_rm.col(9), col_out, kAxis0);
  EXPECT_TRUE(equals(col_out, reference(lowbit::BFP6_B16{}, col_copy, kAxis0)));
}

TEST(Eigen, InPlaceAndRoundTrip) {
  Eigen::MatrixXf m = random_matrix(16, 64, 4);
  const Eigen::MatrixXf original = m;
  const std::vector<float> want = reference(lowbit::INT4_B32_FP16{}, original, {});
  lowbit::fake_quant(lowbit::INT4_B32_FP16{}, m, m);
  EXPECT_TRUE(equals(m, want));
  // quantize -> dequantize into a row-major matrix and a fresh one equal fake_quant
  const lowbit::QuantizedTensor qt = lowbit::quantize(lowbit::INT4_B32_FP16{}, original);
  RowMajorXf deq(16, 64);
  lowbit::dequantize(lowbit::INT4_B32_FP16{}, qt, deq);
  EXPECT_TRUE(equals(deq, want));
  EXPECT_TRUE(equals(lowbit::dequantize_matrix(lowbit::INT4_B32_FP16{}, qt), want));
}

TEST(Eigen, FixedSizeAndEmpty) {
  Eigen::Matrix4f f = Eigen::Matrix4f::Random();
  const Eigen::Matrix4f q = lowbit::fake_quant(lowbit::MXFP8_E4M3{}, f);
  EXPECT_TRUE(equals(q, reference(lowbit::MXFP8_E4M3{}, f, {})));
  Eigen::MatrixXf empty(0, 8), out(0, 8);
  lowbit::fake_quant(lowbit::MXFP4{}, empty, out);
  EXPECT_EQ(lowbit::fake_quant(lowbit::MXFP4{}, empty).size(), 0);
}

TEST(Eigen, ShapeMismatchIsAnError) {
  const Eigen::MatrixXf m = random_matrix(4, 6, 5);
  Eigen::MatrixXf wrong(6, 4);
  EXPECT_THROW(lowbit::fake_quant(lowbit::MXFP4{}, m, wrong), lowbit::Error);
  const lowbit::QuantizedTensor qt = lowbit::quantize(lowbit::MXFP4{}, m);
  EXPECT_THROW(lowbit::dequantize(lowbit::MXFP4{}, qt, wrong), lowbit::Error);
}

}  // namespace
