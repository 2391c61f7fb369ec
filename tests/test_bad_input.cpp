// Bad input, by design: what lowbit does with shapes that do not fit, empty and huge tensors,
// odd pointers and strides, special values, a caller's MXCSR and more threads than work.
// Every case either throws lowbit::Error with a message naming the problem, or has a defined
// result that the test checks against a model written here from the documented rules.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "lowbit/lowbit.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/npy.hpp"
#include "lowbit/io/safetensors.hpp"

namespace {

using lowbit::MatrixRef;

std::vector<float> student_t(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> v(n);
  for (float& x : v) x = scale * t(rng);
  return v;
}

std::uint32_t bits(float x) { return std::bit_cast<std::uint32_t>(x); }

// Equal bit for bit, any NaN equal to any NaN (payloads are not specified).
::testing::AssertionResult same_values(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (bits(a[i]) != bits(b[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  }
  return ::testing::AssertionSuccess();
}

// Runs f and expects a lowbit::Error whose message contains `needle`.
template <class F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no lowbit::Error (expected one mentioning '" << needle << "')";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

std::vector<float> fq(const char* name, const std::vector<float>& x, std::int64_t rows, lowbit::QuantOptions opt = {}) {
  const lowbit::Quantizer q(name);
  std::vector<float> y(x.size());
  const std::int64_t cols = static_cast<std::int64_t>(x.size()) / rows;
  q.fake_quant(MatrixRef<const float>::row_major(x.data(), rows, cols), MatrixRef<float>::row_major(y.data(), rows, cols), opt);
  return y;
}

// The SIMD paths this CPU has, scalar first.
std::vector<lowbit::SimdPath> paths() {
  std::vector<lowbit::SimdPath> p{lowbit::SimdPath::Scalar};
  for (auto s : {lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512})
    if (lowbit::cpu_supports(s)) p.push_back(s);
  return p;
}

struct ForcedPath {
  explicit ForcedPath(lowbit::SimdPath p) { lowbit::force_simd_path(p); }
  ~ForcedPath() { lowbit::clear_forced_simd_path(); }
};

// ---- shapes that do not fit ---------------------------------------------------------------

TEST(BadShapes, FakeQuantOutputOfAnotherShapeThrows) {
  std::vector<float> x(12, 1.0f), y(12);
  expect_error([&] {
    lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>::row_major(x.data(), 3, 4),
                       MatrixRef<float>::row_major(y.data(), 4, 3));
  }, "output is 4 x 3 but the input is 3 x 4");
  std::vector<float> shorter(11);
  expect_error([&] { lowbit::fake_quant(lowbit::MXFP4{}, std::span<const float>(x), std::span<float>(shorter)); },
               "input has 12 values, output 11");
}

TEST(BadShapes, DequantizeIntoAnotherShapeOrFromAnInconsistentTensorThrows) {
  const std::vector<float> x = student_t(64, 1);
  lowbit::QuantizedTensor qt = lowbit::quantize(lowbit::MXFP4{}, MatrixRef<const float>::row_major(x.data(), 2, 32));
  std::vector<float> y(64);
  expect_error([&] { lowbit::dequantize(lowbit::MXFP4{}, qt, MatrixRef<float>::row_major(y.data(), 1, 64)); },
               "output is 1 x 64 but the quantized tensor is 2 x 32");
  qt.codes.pop_back();
  expect_error([&] { lowbit::dequantize(lowbit::MXFP4{}, qt, MatrixRef<float>::row_major(y.data(), 2, 32)); },
               "quantized tensor is inconsistent");
}

TEST(BadShapes, MatmulWithMismatchedOperandsThrows) {
  const std::vector<float> w = student_t(8 * 64, 2);
  const auto pw = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>::row_major(w.data(), 8, 64));
  std::vector<float> x(2 * 32), y(2 * 8), bias(7);
  expect_error([&] {
    lowbit::matmul(MatrixRef<const float>::row_major(x.data(), 2, 32), pw, {}, MatrixRef<float>::row_major(y.data(), 2, 8));
  }, "X's columns must equal W's");
  std::vector<float> x64(2 * 64);
  expect_error([&] {
    lowbit::matmul(MatrixRef<const float>::row_major(x64.data(), 2, 64), pw, {}, MatrixRef<float>::row_major(y.data(), 8, 2));
  }, "expected 2 x 8");
  expect_error([&] {
    lowbit::matmul(MatrixRef<const float>::row_major(x64.data(), 2, 64), pw, bias, MatrixRef<float>::row_major(y.data(), 2, 8));
  }, "bias has 7 values, expected 8");
}

TEST(BadShapes, ErrorStatsOfDifferentShapesThrows) {
  std::vector<float> a(6), b(6);
  expect_error([&] {
    lowbit::error_stats(MatrixRef<const float>::row_major(a.data(), 2, 3), MatrixRef<const float>::row_major(b.data(), 3, 2));
  }, "shapes differ");
}

TEST(BadShapes, NegativeShapesAndNullDataThrow) {
  std::vector<float> x(4), y(4);
  expect_error([&] {
    lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>{x.data(), -1, 4, 4, 1}, MatrixRef<float>{y.data(), -1, 4, 4, 1});
  }, "negative shape");
  expect_error([&] {
    lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>{nullptr, 1, 4, 4, 1}, MatrixRef<float>::row_major(y.data(), 1, 4));
  }, "null data");
}

// ---- formats at the edge of the grammar -----------------------------------------------------------

// Found by fuzz/fuzz_format_name: a finite-only minifloat without mantissa bits (elements
// +-2^k) computed MinifloatSpec::nan_code on every encode, which shifted by -1 (undefined
// behaviour that UBSan stops on). Fixed; this must run clean under the asan preset.
TEST(BadFormats, FiniteOnlyMinifloatWithoutMantissaBits) {
  // e4m0, bias 7, finite only: 0 and +-2^k for k = -6 .. 8, saturating at 256.
  const std::vector<float> x = {1.0f, 2.5f, 5.0f, 0.7f, -11.0f, 1000.0f, 0.0f};
  const std::vector<float> want = {1.0f, 2.0f, 4.0f, 0.5f, -8.0f, 256.0f, 0.0f};
  EXPECT_TRUE(same_values(fq("minifloat_e4m0_fin", x, 1), want));
  // The same element under a block scale (BM, e3m0): must run without undefined behaviour.
  EXPECT_NO_THROW(fq("bm_e3m0_b16", student_t(32, 15), 1));
}

// ---- zero-sized dimensions: defined, empty results --------------------------------------------

TEST(ZeroSized, FakeQuantQuantizeAndDequantizeOfEmptyTensorsDoNothing) {
  for (const char* name : {"mxfp4", "nvfp4", "int8_pc_fp32", "fp8_e4m3_pt", "uint4_b32_fp16", "bfp8_b16"}) {
    SCOPED_TRACE(name);
    const lowbit::Quantizer q(name);
    for (auto [rows, cols] : {std::pair<std::int64_t, std::int64_t>{0, 64}, {5, 0}, {0, 0}}) {
      // A null pointer is accepted for an empty tensor.
      q.fake_quant(MatrixRef<const float>{nullptr, rows, cols, cols, 1}, MatrixRef<float>{nullptr, rows, cols, cols, 1});
      const lowbit::QuantizedTensor qt = q.quantize(MatrixRef<const float>{nullptr, rows, cols, cols, 1});
      EXPECT_EQ(qt.rows, rows);
      EXPECT_EQ(qt.cols, cols);
      EXPECT_TRUE(qt.codes.empty());
      q.dequantize(qt, MatrixRef<float>{nullptr, rows, cols, cols, 1});
    }
  }
}

TEST(ZeroSized, MatmulWithNoActivationRowsOrNoOutputs) {
  const std::vector<float> w = student_t(16 * 64, 3);
  const auto pw = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>::row_major(w.data(), 16, 64));
  // N = 0: nothing to compute.
  lowbit::matmul(MatrixRef<const float>{nullptr, 0, 64, 64, 1}, pw, {}, MatrixRef<float>{nullptr, 0, 16, 16, 1});
  lowbit::matmul(MatrixRef<const float>{nullptr, 0, 64, 64, 1}, lowbit::PanelMatrix<lowbit::MinifloatFormat>::from_packed(pw),
                 {}, MatrixRef<float>{nullptr, 0, 16, 16, 1});
  // M = 0: a weight with no rows packs to nothing and gives an N x 0 output.
  const auto empty = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>{nullptr, 0, 64, 64, 1});
  EXPECT_EQ(empty.rows(), 0);
  std::vector<float> x(2 * 64, 1.0f);
  lowbit::matmul(MatrixRef<const float>::row_major(x.data(), 2, 64), empty, {}, MatrixRef<float>{nullptr, 2, 0, 0, 1});
}

// Found by the asan preset (PackedMatrix.EveryFormatAndShape): serialize() copied each row of
// a matrix without columns with memcpy from a null pointer. Fixed; runs clean under UBSan.
TEST(ZeroSized, PackedMatrixWithoutColumnsSerializes) {
  const auto m = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>{nullptr, 3, 0, 0, 1});
  const auto again = lowbit::PackedMatrix<lowbit::MinifloatFormat>::deserialize(lowbit::MXFP4::format, m.serialize());
  EXPECT_EQ(again.rows(), 3);
  EXPECT_EQ(again.cols(), 0);
}

TEST(ZeroSized, ParallelForOverNothingNeverCallsTheBody) {
  int calls = 0;
  lowbit::parallel_for(0, 8, 4, [&](std::int64_t, std::int64_t) { ++calls; });
  lowbit::parallel_for(-5, 8, 4, [&](std::int64_t, std::int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

// ---- sizes whose byte counts overflow --------------------------------------------------------

std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

TEST(Overflow, NpyShapeWhoseByteSizeOverflowsThrows) {
  for (const char* shape : {"(4611686018427387904, 8)", "(9223372036854775807, 2)", "(4294967296, 4294967296, 2)"}) {
    std::string header = std::string("{'descr': '<f4', 'fortran_order': False, 'shape': ") + shape + ", }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string file = std::string("\x93NUMPY\x01\x00", 8);
    file += static_cast<char>(header.size() & 0xFF);
    file += static_cast<char>(header.size() >> 8);
    file += header;
    expect_error([&] { lowbit::npy::parse(to_bytes(file), "huge.npy"); }, "overflows");
  }
}

TEST(Overflow, SafetensorsShapeWhoseByteSizeOverflowsThrows) {
  std::string json = R"({"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}})";
  while (json.size() % 8 != 0) json += ' ';
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[static_cast<std::size_t>(i)] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
  file += json;
  expect_error([&] { lowbit::safetensors::File::from_bytes(to_bytes(file), "huge.safetensors"); }, "overflows");
}

TEST(Overflow, GgufElementCountThatOverflowsThrows) {
  std::string f = "GGUF";
  auto put = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) f += static_cast<char>((v >> (8 * i)) & 0xFF);
  };
  put(3, 4);  // version
  put(1, 8);  // tensors
  put(0, 8);  // metadata pairs
  put(1, 8);
  f += "w";
  put(2, 4);                       // dimensions
  put(std::uint64_t{1} << 40, 8);  // ne[0]
  put(std::uint64_t{1} << 40, 8);  // ne[1]: 2^80 elements
  put(0, 4);                       // F32
  put(0, 8);                       // offset
  while (f.size() % 32 != 0) f += '\0';
  expect_error([&] { lowbit::gguf::File::from_bytes(to_bytes(f), "huge.gguf"); }, "overflows");
}

// A view whose element count rows * cols does not fit in int64 (or whose byte count does not
// fit in size_t) cannot describe memory; it should be refused before any size is computed.
// MatrixRef::validate checks signs and null data only, so fake_quant computes rows * cols
// (signed overflow) and then reads far outside the one-element buffer.
// Enable once MatrixRef::validate (core/matrix_ref.hpp) refuses such shapes.
TEST(Overflow, ViewWhoseElementCountOverflowsThrows) {
  float x = 1.0f, y = 0.0f;
  const std::int64_t big = std::int64_t{1} << 33;
  expect_error([&] {
    lowbit::fake_quant(lowbit::MXFP4{}, MatrixRef<const float>{&x, big, big, big, 1}, MatrixRef<float>{&y, big, big, big, 1});
  }, "overflow");
}

// ---- unaligned and aliasing pointers ------------------------------------------------------------

// Any float-aligned address works (C++ requires 4-byte alignment of a float*; the kernels use
// unaligned vector loads), with the same bits as an aligned copy.
TEST(Pointers, EveryFloatOffsetFromAVectorBoundaryGivesTheSameBits) {
  const std::vector<float> x = student_t(3 * 96, 4);
  for (const char* name : {"mxfp4", "fp8_e4m3", "int8_b32_fp16", "nvfp4", "bf16"}) {
    SCOPED_TRACE(name);
    const std::vector<float> want = fq(name, x, 3);
    for (std::size_t offset = 1; offset < 16; ++offset) {
      std::vector<float> in(x.size() + 16), out(x.size() + 16);
      std::copy(x.begin(), x.end(), in.begin() + static_cast<std::ptrdiff_t>(offset));
      lowbit::Quantizer(name).fake_quant(MatrixRef<const float>::row_major(in.data() + offset, 3, 96),
                                         MatrixRef<float>::row_major(out.data() + offset, 3, 96));
      ASSERT_TRUE(same_values(want, std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(offset),
                                                       out.begin() + static_cast<std::ptrdiff_t>(offset + x.size()))))
          << "offset " << offset;
    }
  }
}

// File bytes at an odd address (a tensor's data inside a file is only byte-aligned): readers
// copy, never dereference a misaligned float*.
TEST(Pointers, ReadersAcceptDataAtOddAddresses) {
  const std::vector<float> v = student_t(6, 5);
  std::vector<std::byte> tensor(v.size() * 4);
  std::memcpy(tensor.data(), v.data(), tensor.size());
  const auto st = lowbit::safetensors::serialize({{{"w", lowbit::safetensors::Dtype::F32, {2, 3}}, tensor}});
  // The same file with one extra byte of header: every tensor byte moves to an odd offset.
  std::string json(reinterpret_cast<const char*>(st.data()) + 8, st.size() - 8 - tensor.size());
  json += ' ';
  std::vector<std::byte> odd(8);
  for (int i = 0; i < 8; ++i) odd[static_cast<std::size_t>(i)] = static_cast<std::byte>((json.size() >> (8 * i)) & 0xFF);
  for (char c : json) odd.push_back(static_cast<std::byte>(c));
  odd.insert(odd.end(), tensor.begin(), tensor.end());
  const auto f = lowbit::safetensors::File::from_bytes(odd);
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(f.tensor("w").data.data()) % 2, 1u);
  EXPECT_TRUE(same_values(lowbit::safetensors::to_float(f.tensor("w")), v));

  const std::vector<float> w = student_t(4 * 64, 6);
  const auto packed = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>::row_major(w.data(), 4, 64));
  const std::vector<std::byte> bytes = packed.serialize();
  std::vector<std::byte> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  const auto again = lowbit::PackedMatrix<lowbit::MinifloatFormat>::deserialize(
      lowbit::MXFP4::format, std::span<const std::byte>(shifted).subspan(1));
  EXPECT_TRUE(same_values(again.unpack(), packed.unpack()));
}

// In place (input and output the same view) is supported and gives the out-of-place bits, on
// every path. Views that overlap only partially are not detected: the result is unspecified.
TEST(Pointers, FakeQuantInPlaceEqualsOutOfPlace) {
  const std::vector<float> x = student_t(4 * 80, 7, 3.0f);
  for (const lowbit::SimdPath p : paths()) {
    ForcedPath forced(p);
    for (const char* name : {"mxfp4", "fp8_e5m2", "int4_b32_fp32", "nf4_b64", "uint8_b32_fp16", "fp8_e4m3_pt"}) {
      SCOPED_TRACE(std::string(name) + " on " + std::string(lowbit::to_string(p)));
      const std::vector<float> want = fq(name, x, 4);
      std::vector<float> y = x;
      const auto view = MatrixRef<float>::row_major(y.data(), 4, 80);
      lowbit::Quantizer(name).fake_quant(view, view);
      EXPECT_TRUE(same_values(want, y));
    }
  }
}

// ---- negative and overlapping strides -----------------------------------------------------------

// MatrixRef::validate refuses negative shapes and null data only; any stride is accepted.
// Negative strides walk memory backwards; a zero or overlapping input stride reads the same
// values more than once. Both are defined: the result is that of the same logical matrix
// copied out contiguously. (An output view whose elements overlap is not refused either, but
// several blocks then write one address: its value is unspecified.)
TEST(Strides, ValidateAcceptsAnyStride) {
  float v[4] = {};
  for (auto [rs, cs] : {std::pair<std::int64_t, std::int64_t>{-2, 1}, {2, -1}, {0, 0}, {1, 1}, {-1, -2}})
    EXPECT_NO_THROW((MatrixRef<float>{v + 3, 2, 2, rs, cs}.validate("test")));
}

TEST(Strides, NegativeAndOverlappingInputStridesReadTheLogicalMatrix) {
  const std::int64_t rows = 3, cols = 70;
  const std::vector<float> x = student_t(static_cast<std::size_t>(rows * cols), 8, 2.0f);
  lowbit::QuantOptions stochastic;
  stochastic.rounding = lowbit::Rounding::Stochastic;
  stochastic.seed = 99;
  for (const lowbit::SimdPath p : paths()) {
    ForcedPath forced(p);
    for (const char* name : {"mxfp4", "int8_pc_fp32", "fp6_e2m3", "bfp4_b16", "fp8_e4m3_pt"}) {
      for (const lowbit::QuantOptions& opt : {lowbit::QuantOptions{}, stochastic}) {
        SCOPED_TRACE(std::string(name) + " on " + std::string(lowbit::to_string(p)));
        const lowbit::Quantizer q(name);
        // (view over x, the logical matrix it shows)
        struct Case { MatrixRef<const float> view; std::vector<float> logical; const char* what; };
        std::vector<Case> cases;
        {
          std::vector<float> l(x.size());
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) l[static_cast<std::size_t>(r * cols + c)] = x[static_cast<std::size_t>((rows - 1 - r) * cols + c)];
          cases.push_back({{x.data() + (rows - 1) * cols, rows, cols, -cols, 1}, l, "rows reversed"});
        }
        {
          std::vector<float> l(x.size());
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) l[static_cast<std::size_t>(r * cols + c)] = x[static_cast<std::size_t>(r * cols + cols - 1 - c)];
          cases.push_back({{x.data() + cols - 1, rows, cols, cols, -1}, l, "columns reversed"});
        }
        {
          std::vector<float> l(x.size());
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) l[static_cast<std::size_t>(r * cols + c)] = x[static_cast<std::size_t>(c)];
          cases.push_back({{x.data(), rows, cols, 0, 1}, l, "one row read three times (row stride 0)"});
        }
        {
          std::vector<float> l(x.size());
          for (std::int64_t r = 0; r < rows; ++r)
            for (std::int64_t c = 0; c < cols; ++c) l[static_cast<std::size_t>(r * cols + c)] = x[static_cast<std::size_t>(r * 5 + c)];
          cases.push_back({{x.data(), rows, cols, 5, 1}, l, "rows overlapping (row stride 5)"});
        }
        for (const Case& k : cases) {
          SCOPED_TRACE(k.what);
          std::vector<float> want(x.size()), got(x.size());
          q.fake_quant(MatrixRef<const float>::row_major(k.logical.data(), rows, cols),
                       MatrixRef<float>::row_major(want.data(), rows, cols), opt);
          q.fake_quant(k.view, MatrixRef<float>::row_major(got.data(), rows, cols), opt);
          EXPECT_TRUE(same_values(want, got));
        }
        // A reversed output view receives the same values at the same logical places.
        std::vector<float> want(x.size()), back(x.size());
        q.fake_quant(MatrixRef<const float>::row_major(x.data(), rows, cols), MatrixRef<float>::row_major(want.data(), rows, cols), opt);
        q.fake_quant(MatrixRef<const float>::row_major(x.data(), rows, cols),
                     MatrixRef<float>{back.data() + (rows - 1) * cols, rows, cols, -cols, 1}, opt);
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = 0; c < cols; ++c)
            ASSERT_EQ(bits(back[static_cast<std::size_t>((rows - 1 - r) * cols + c)]), bits(want[static_cast<std::size_t>(r * cols + c)]));
      }
    }
  }
}

// ---- NaN, Inf, subnormals and all-zero blocks in every format -----------------------------------

// The formats with codes (lowbit's own arithmetic); the mase_* formats reproduce the paper's
// code, quirks included (block_log maps 0 to 2^-bias), and are tested against its goldens.
std::vector<std::string> own_formats() {
  std::vector<std::string> v;
  for (const std::string& n : lowbit::standard_format_names())
    if (lowbit::Quantizer(n).info().has_codes) v.push_back(n);
  return v;
}

// The columns of row r that share a block with column c, from the format's block size.
bool same_block(const lowbit::FormatInfo& info, std::int64_t c, std::int64_t other) {
  if (info.block_size == 0) return c == other;            // per element
  if (info.block_size < 0) return true;                   // per channel (this row) or per tensor
  return c / info.block_size == other / info.block_size;  // blocks along the row
}

TEST(SpecialValues, AllZeroTensorsAndBlocksGiveZeros) {
  const std::int64_t rows = 2, cols = 256;
  for (const std::string& name : own_formats()) {
    SCOPED_TRACE(name);
    for (const lowbit::SimdPath p : paths()) {
      ForcedPath forced(p);
      const std::vector<float> zeros(static_cast<std::size_t>(rows * cols), 0.0f);
      for (float y : fq(name.c_str(), zeros, rows)) ASSERT_EQ(y, 0.0f) << lowbit::to_string(p);
      // One block of zeros (columns 64..191 cover it for every block size up to 128) among
      // ordinary values.
      std::vector<float> x = student_t(static_cast<std::size_t>(rows * cols), 9);
      for (std::int64_t c = 64; c < 192; ++c) x[static_cast<std::size_t>(c)] = 0.0f;
      const std::vector<float> y = fq(name.c_str(), x, rows);
      for (std::int64_t c = 64; c < 192; ++c) ASSERT_EQ(y[static_cast<std::size_t>(c)], 0.0f) << lowbit::to_string(p) << " col " << c;
    }
  }
}

// A NaN or an infinity changes only its own block (per-tensor formats: the whole tensor);
// NaN comes out as NaN or, in a format that has no NaN, is refused with an Error saying so;
// an infinity comes out as an infinity of its sign, as NaN (MX: the block's scale is NaN), or
// saturated (finite, same sign).
TEST(SpecialValues, NanAndInfStayInTheirBlock) {
  const std::int64_t rows = 2, cols = 128, at = 37;
  const std::vector<float> x = student_t(static_cast<std::size_t>(rows * cols), 10);
  for (const std::string& name : own_formats()) {
    const lowbit::FormatInfo info = lowbit::Quantizer(name).info();
    for (const lowbit::SimdPath p : paths()) {
      ForcedPath forced(p);
      const std::vector<float> base = fq(name.c_str(), x, rows);
      for (const float s : {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY}) {
        SCOPED_TRACE(name + " on " + std::string(lowbit::to_string(p)) + " with " + std::to_string(s));
        std::vector<float> xs = x;
        xs[at] = s;
        std::vector<float> y;
        try {
          y = fq(name.c_str(), xs, rows);
        } catch (const lowbit::Error& e) {
          EXPECT_TRUE(std::isnan(s)) << e.what();
          EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
          continue;
        }
        const float v = y[at];
        if (std::isnan(s)) {
          EXPECT_TRUE(std::isnan(v)) << v;
        } else {
          EXPECT_TRUE(std::isnan(v) || (std::signbit(v) == std::signbit(s) && v != 0.0f)) << v;
        }
        if (info.block_size == lowbit::kPerTensor) continue;
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t c = 0; c < cols; ++c) {
            if (r == 0 && same_block(info, at, c)) continue;
            const std::size_t i = static_cast<std::size_t>(r * cols + c);
            ASSERT_EQ(bits(y[i]), bits(base[i])) << "(" << r << ", " << c << ") changed";
          }
      }
    }
  }
}

// Blocks of subnormal floats: finite results of the input's sign (or zero), never more than
// twice the block's largest magnitude (a value rounds at most to the next power of two).
TEST(SpecialValues, SubnormalBlocksGiveSmallFiniteResults) {
  const std::int64_t cols = 256;
  std::vector<float> x(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c)
    x[static_cast<std::size_t>(c)] = std::ldexp(static_cast<float>((c * 37) % 101 - 50), -133 - static_cast<int>(c % 13));
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  ASSERT_LT(amax, std::numeric_limits<float>::min());
  for (const std::string& name : own_formats()) {
    for (const lowbit::SimdPath p : paths()) {
      ForcedPath forced(p);
      SCOPED_TRACE(name + " on " + std::string(lowbit::to_string(p)));
      const std::vector<float> y = fq(name.c_str(), x, 1);
      for (std::size_t i = 0; i < x.size(); ++i) {
        ASSERT_TRUE(std::isfinite(y[i])) << i << ": " << x[i] << " -> " << y[i];
        ASSERT_LE(std::fabs(y[i]), 2.0f * amax) << i << ": " << x[i] << " -> " << y[i];
        if (y[i] != 0.0f) {
          ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << i;
        }
      }
    }
  }
}

// ---- denormals-are-zero / flush-to-zero set by the caller ---------------------------------------

#if defined(__x86_64__) || defined(__i386__)
// Sets FTZ and DAZ in MXCSR for its lifetime (as engines built with -ffast-math do at start-up).
struct FlushDenormals {
  unsigned saved = _mm_getcsr();
  FlushDenormals() { _mm_setcsr(saved | 0x8040u); }  // FTZ (bit 15) | DAZ (bit 6)
  ~FlushDenormals() { _mm_setcsr(saved); }
};

// Inputs, scales and outputs that are all normal floats: FTZ/DAZ cannot change a thing.
TEST(Mxcsr, FlushToZeroDoesNotChangeResultsWithoutSubnormals) {
  const std::int64_t rows = 4, cols = 256;
  const std::vector<float> x = student_t(static_cast<std::size_t>(rows * cols), 11);
  for (const std::string& name : own_formats()) {
    for (const lowbit::SimdPath p : paths()) {
      ForcedPath forced(p);
      SCOPED_TRACE(name + " on " + std::string(lowbit::to_string(p)));
      const std::vector<float> want = fq(name.c_str(), x, rows);
      bool subnormal_out = false;
      for (float v : want) subnormal_out |= std::fpclassify(v) == FP_SUBNORMAL;
      if (subnormal_out) continue;  // the format itself makes subnormal floats: see below
      FlushDenormals ftz;
      EXPECT_TRUE(same_values(want, fq(name.c_str(), x, rows)));
    }
  }
}

// With subnormal floats in play the difference is the hardware's, and only that: a result
// that is a subnormal float (or is computed from subnormal inputs or scales) comes out as
// zero, and a zero may change sign; every other result keeps its bits. The scalar and SIMD paths then need not agree with
// each other (fp32 and bf16 keep subnormals on the SIMD paths, which move bits, and flush
// them on the scalar path, which does arithmetic); with MXCSR at its default they always do.
TEST(Mxcsr, FlushToZeroOnlyZeroesSubnormalResults) {
  const std::int64_t cols = 256;
  std::vector<float> subnormal(static_cast<std::size_t>(cols)), mixed(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) {
    const auto i = static_cast<std::size_t>(c);
    subnormal[i] = std::ldexp(static_cast<float>((c * 37) % 101 - 50), -133 - static_cast<int>(c % 13));
    mixed[i] = c % 4 == 0 ? std::ldexp(1.0f + static_cast<float>(c) / 256.0f, -static_cast<int>(c % 40)) : subnormal[i];
  }
  int flushed = 0;
  for (const std::string& name : own_formats()) {
    for (const lowbit::SimdPath p : paths()) {
      ForcedPath forced(p);
      for (const std::vector<float>* x : {&subnormal, &mixed}) {
        SCOPED_TRACE(name + " on " + std::string(lowbit::to_string(p)) + (x == &mixed ? ", mixed" : ", subnormal"));
        const std::vector<float> want = fq(name.c_str(), *x, 1);
        std::vector<float> got;
        {
          FlushDenormals ftz;
          got = fq(name.c_str(), *x, 1);
        }
        for (std::size_t i = 0; i < want.size(); ++i) {
          if (bits(got[i]) == bits(want[i])) continue;
          ++flushed;
          if (want[i] == 0.0f && got[i] == 0.0f) continue;  // a flushed input may lose a zero's sign
          ASSERT_EQ(std::fpclassify(want[i]), FP_SUBNORMAL) << i << ": " << (*x)[i] << " -> " << want[i] << ", " << got[i] << " with FTZ/DAZ";
          ASSERT_EQ(got[i], 0.0f) << i;
        }
      }
    }
  }
  EXPECT_GT(flushed, 0);  // the inputs do reach the flushing hardware
}
#endif

// ---- more threads than work -----------------------------------------------------------------------

// A thread count above the number of chunks (or of cores) is clamped: the same results, every
// chunk run once. Zero means lowbit's default; negative counts are refused where they are set.
TEST(Threads, MoreThreadsThanWorkGiveTheSameResults) {
  const std::vector<float> tiny = {0.3f, -1.7f, 2.5f};
  const std::vector<float> x = student_t(3 * 300, 12);
  for (const char* name : {"mxfp4", "fp8_e4m3", "int8_pc_fp32", "nvfp4"}) {
    SCOPED_TRACE(name);
    lowbit::QuantOptions one, many;
    one.threads = 1;
    many.threads = 64;
    EXPECT_TRUE(same_values(fq(name, tiny, 1, one), fq(name, tiny, 1, many)));
    EXPECT_TRUE(same_values(fq(name, x, 3, one), fq(name, x, 3, many)));
  }
  const std::vector<float> w = student_t(16 * 64, 13);
  const auto pw = lowbit::pack_matrix(lowbit::MXFP4{}, MatrixRef<const float>::row_major(w.data(), 16, 64));
  const auto panels = lowbit::PanelMatrix<lowbit::MinifloatFormat>::from_packed(pw);
  const std::vector<float> xa = student_t(2 * 64, 14);
  std::vector<float> y1(2 * 16), y64(2 * 16), p1(2 * 16), p64(2 * 16);
  lowbit::MatmulOptions o1, o64;
  o1.threads = 1;
  o64.threads = 64;
  const auto xr = MatrixRef<const float>::row_major(xa.data(), 2, 64);
  lowbit::matmul(xr, pw, {}, MatrixRef<float>::row_major(y1.data(), 2, 16), o1);
  lowbit::matmul(xr, pw, {}, MatrixRef<float>::row_major(y64.data(), 2, 16), o64);
  lowbit::matmul(xr, panels, {}, MatrixRef<float>::row_major(p1.data(), 2, 16), o1);
  lowbit::matmul(xr, panels, {}, MatrixRef<float>::row_major(p64.data(), 2, 16), o64);
  EXPECT_TRUE(same_values(y1, y64));
  EXPECT_TRUE(same_values(p1, p64));
}

TEST(Threads, PoolAndParallelForClampThreadsAndChunks) {
  lowbit::ThreadPool pool(2);
  std::vector<int> hits(3, 0);
  std::mutex m;
  pool.run(3, 1000, 500, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
  });
  EXPECT_EQ(hits, (std::vector<int>{1, 1, 1}));
  std::vector<int> hits2(5, 0);
  lowbit::parallel_for(5, 0, 1000, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(m);
    for (std::int64_t i = b; i < e; ++i) ++hits2[static_cast<std::size_t>(i)];
  });
  EXPECT_EQ(hits2, (std::vector<int>(5, 1)));
  expect_error([] { lowbit::ThreadPool bad(0); }, "thread count must be >= 1");
  expect_error([] { lowbit::set_num_threads(-1); }, "thread count must be >= 0");
}

}  // namespace
