// .npy reading and writing: byte-exact agreement with numpy's own files, round trips for
// every dtype and order, the golden files under ../shared, and malformed input.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/io/npy.hpp"
#include "shared_data.hpp"

namespace {

using lowbit::npy::NpyArray;

// Reference files written by numpy 1.24 (np.save unless noted), embedded byte for byte.
// np.save of a <f4 array of shape (2, 3)
constexpr char kF4C[] =
    "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }           "
    "                                               \012\000\000\200\077\000\000\000\300\000\000\000"
    "\077\000\000P@\000\000\000\200o\022\203:";
// np.save of a <f4 array of shape (2, 3), Fortran order
constexpr char kF4F[] =
    "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }            "
    "                                               \012\000\000\200\077\000\000P@\000\000\000\300"
    "\000\000\000\200\000\000\000\077o\022\203:";
// np.save of a <f2 array of shape (5,)
constexpr char kF2[] =
    "\223NUMPY\001\000v\000{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }             "
    "                                               \012\000<\000\300\0008\377{\001\000";
// np.save of a <f8 array of shape (2, 2)
constexpr char kF8[] =
    "\223NUMPY\001\000v\000{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }           "
    "                                               \012UUUUUU\325\077\234u\000\210<\3447\376\000"
    "\000\000\000\000\000\004@+\346p\213h\022\000\000";
// np.save of a |i1 array of shape (2, 2)
constexpr char kI1[] =
    "\223NUMPY\001\000v\000{'descr': '|i1', 'fortran_order': False, 'shape': (2, 2), }           "
    "                                               \012\200\177\000\377";
// np.save of a |u1 array of shape (2, 3), Fortran order
constexpr char kU1F[] =
    "\223NUMPY\001\000v\000{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }            "
    "                                               \012\000\001\377\002\007\003";
// np.save of a >f4 array of shape (2,)
constexpr char kF4BE[] =
    "\223NUMPY\001\000v\000{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }             "
    "                                               \012\077\300\000\000\300@\000\000";
// np.lib.format.write_array(version=(2, 0)) of a <f4 array of shape (1, 2)
constexpr char kF4V2[] =
    "\223NUMPY\002\000t\000\000\000{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }   "
    "                                                     \012\000\000\200>\000\000\000A";
// np.lib.format.write_array(version=(3, 0)) of a <f4 array of shape (1, 2)
constexpr char kF4V3[] =
    "\223NUMPY\003\000t\000\000\000{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }   "
    "                                                     \012\000\000\200>\000\000\000A";
// np.save of a <f4 array of shape ()
constexpr char kF4Scalar[] =
    "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (), }               "
    "                                               \012\000\000\360@";
// np.save of a <f4 array of shape (0, 3)
constexpr char kF4Empty[] =
    "\223NUMPY\001\000v\000{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }           "
    "                                               \012";

template <std::size_t N>
std::vector<std::byte> bytes_of(const char (&lit)[N]) {
  std::vector<std::byte> b(N - 1);  // without the literal's terminating NUL
  std::memcpy(b.data(), lit, N - 1);
  return b;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// An .npy file from a header dict text, a version and raw data, built by hand (no padding
// rules applied beyond the final newline) to produce malformed variants.
std::string make_file(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict + "\n";
  std::string f = std::string("\x93NUMPY", 6);
  f += static_cast<char>(major);
  f += '\0';
  const std::size_t len_size = major == 1 ? 2 : 4;
  for (std::size_t i = 0; i < len_size; ++i) f += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return f + header + data;
}

std::string float_bytes(std::initializer_list<float> v) {
  std::string s;
  for (float x : v) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
    for (int i = 0; i < 4; ++i) s += static_cast<char>((b >> (8 * i)) & 0xFF);
  }
  return s;
}

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::path(testing::TempDir()) / ("lowbit_npy_" + name + ".npy");
}

void expect_matrix(const lowbit::npy::FloatMatrix& m, std::int64_t rows, std::int64_t cols,
                   const std::vector<float>& want) {
  ASSERT_EQ(m.rows, rows);
  ASSERT_EQ(m.cols, cols);
  ASSERT_EQ(m.values.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(same_bits(m.values[i], want[i])) << "element " << i << ": " << m.values[i] << " vs " << want[i];
}

// ---- numpy's own files ----------------------------------------------------------------------

TEST(NpyNumpyFiles, Float32COrder) {
  const NpyArray a = lowbit::npy::parse(bytes_of(kF4C));
  EXPECT_EQ(a.dtype, "<f4");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_FALSE(a.fortran_order);
  expect_matrix(lowbit::npy::to_float32_matrix(a), 2, 3, {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-3f});
}

TEST(NpyNumpyFiles, Float32FortranOrderIsTransposedToRowMajor) {
  const NpyArray a = lowbit::npy::parse(bytes_of(kF4F));
  EXPECT_TRUE(a.fortran_order);
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  expect_matrix(lowbit::npy::to_float32_matrix(a), 2, 3, {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-3f});
}

TEST(NpyNumpyFiles, Float16OneDimensional) {
  const NpyArray a = lowbit::npy::parse(bytes_of(kF2));
  EXPECT_EQ(a.dtype, "<f2");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{5}));
  expect_matrix(lowbit::npy::to_float32_matrix(a), 1, 5, {1.0f, -2.0f, 0.5f, 65504.0f, std::ldexp(1.0f, -24)});
}

TEST(NpyNumpyFiles, Float64) {
  const NpyArray a = lowbit::npy::parse(bytes_of(kF8));
  EXPECT_EQ(a.dtype, "<f8");
  // -1e300 overflows float32 and 1e-310 underflows it: float conversion rounds as a cast does.
  expect_matrix(lowbit::npy::to_float32_matrix(a), 2, 2,
                {static_cast<float>(1.0 / 3), -std::numeric_limits<float>::infinity(), 2.5f, 0.0f});
}

TEST(NpyNumpyFiles, Int8AndUint8) {
  const NpyArray i = lowbit::npy::parse(bytes_of(kI1));
  EXPECT_EQ(i.dtype, "|i1");
  expect_matrix(lowbit::npy::to_float32_matrix(i), 2, 2, {-128.0f, 127.0f, 0.0f, -1.0f});
  const NpyArray u = lowbit::npy::parse(bytes_of(kU1F));
  EXPECT_EQ(u.dtype, "|u1");
  EXPECT_TRUE(u.fortran_order);
  expect_matrix(lowbit::npy::to_float32_matrix(u), 2, 3, {0.0f, 255.0f, 7.0f, 1.0f, 2.0f, 3.0f});
}

TEST(NpyNumpyFiles, BigEndianIsConvertedToLittleEndian) {
  const NpyArray a = lowbit::npy::parse(bytes_of(kF4BE));
  EXPECT_EQ(a.dtype, "<f4");
  expect_matrix(lowbit::npy::to_float32_matrix(a), 1, 2, {1.5f, -3.0f});
  // Re-serialised, it is the little-endian file numpy would write for the same values.
  const std::vector<std::byte> out = lowbit::npy::serialize(a);
  const NpyArray back = lowbit::npy::parse(out);
  EXPECT_EQ(back.data, a.data);
}

TEST(NpyNumpyFiles, Versions2And3) {
  for (const auto& bytes : {bytes_of(kF4V2), bytes_of(kF4V3)}) {
    const NpyArray a = lowbit::npy::parse(bytes);
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 2}));
    expect_matrix(lowbit::npy::to_float32_matrix(a), 1, 2, {0.25f, 8.0f});
  }
}

TEST(NpyNumpyFiles, ScalarAndEmpty) {
  const NpyArray s = lowbit::npy::parse(bytes_of(kF4Scalar));
  EXPECT_TRUE(s.shape.empty());
  expect_matrix(lowbit::npy::to_float32_matrix(s), 1, 1, {7.5f});
  const NpyArray e = lowbit::npy::parse(bytes_of(kF4Empty));
  EXPECT_EQ(e.shape, (std::vector<std::int64_t>{0, 3}));
  EXPECT_TRUE(e.data.empty());
  expect_matrix(lowbit::npy::to_float32_matrix(e), 0, 3, {});
  // A huge dimension beside a zero one holds no values and converts at once (it once looped
  // over the 10^11 empty rows).
  NpyArray wide;
  wide.dtype = "<i2";
  wide.shape = {111111111111, 0};
  const lowbit::npy::FloatMatrix w = lowbit::npy::to_float32_matrix(wide);
  EXPECT_EQ(w.rows, 111111111111);
  EXPECT_EQ(w.cols, 0);
  EXPECT_TRUE(w.values.empty());
}

// Serialising what was parsed reproduces numpy's bytes exactly (header layout and padding).
TEST(NpyNumpyFiles, SerializeMatchesNumpyByteForByte) {
  for (const auto& ref : {bytes_of(kF4C), bytes_of(kF4F), bytes_of(kF2), bytes_of(kF8), bytes_of(kI1),
                          bytes_of(kU1F), bytes_of(kF4Scalar), bytes_of(kF4Empty)}) {
    const NpyArray a = lowbit::npy::parse(ref);
    EXPECT_EQ(lowbit::npy::serialize(a), ref) << "dtype " << a.dtype;
  }
}

// ---- round trips ----------------------------------------------------------------------------

TEST(NpyRoundTrip, EveryDtypeAndOrderThroughAFile) {
  std::mt19937 rng(12345);
  const char* dtypes[] = {"<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8"};
  const std::size_t sizes[] = {2, 4, 8, 1, 1, 2, 4, 8, 2, 4, 8};
  for (std::size_t d = 0; d < std::size(dtypes); ++d)
    for (bool fortran : {false, true})
      for (const std::vector<std::int64_t>& shape :
           {std::vector<std::int64_t>{3, 5}, std::vector<std::int64_t>{7}, std::vector<std::int64_t>{2, 3, 4},
            std::vector<std::int64_t>{}, std::vector<std::int64_t>{4, 0}}) {
        NpyArray a;
        a.dtype = dtypes[d];
        a.shape = shape;
        a.fortran_order = fortran;
        std::int64_t n = 1;
        for (auto s : shape) n *= s;
        a.data.resize(static_cast<std::size_t>(n) * sizes[d]);
        for (auto& b : a.data) b = static_cast<std::byte>(rng() & 0xFF);  // any bits, NaN payloads included
        const auto path = temp_path("roundtrip");
        lowbit::npy::write(path, a);
        const NpyArray back = lowbit::npy::read(path);
        EXPECT_EQ(back.dtype, a.dtype);
        EXPECT_EQ(back.shape, a.shape);
        EXPECT_EQ(back.fortran_order, a.fortran_order);
        EXPECT_EQ(back.data, a.data) << a.dtype;
        // The file's data starts on a 64-byte boundary, as numpy writes it.
        EXPECT_EQ((std::filesystem::file_size(path) - a.data.size()) % 64, 0u);
        std::filesystem::remove(path);
      }
}

TEST(NpyRoundTrip, Float32MatrixKeepsEveryBit) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v = {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                                std::bit_cast<float>(0x7FA00001u), std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::max(), -1.0f / 3.0f, 1e-30f, 42.0f, -7.25f};
  const auto path = temp_path("f32");
  lowbit::npy::write_float32(path, 3, 4, v.data());
  const lowbit::npy::FloatMatrix m = lowbit::npy::read_float32_matrix(path);
  expect_matrix(m, 3, 4, v);
  std::filesystem::remove(path);
}

TEST(NpyRoundTrip, Float16ConvertsThroughTheMinifloatDecoder) {
  // Every fp16 bit pattern: finite values exactly, infinities as infinities, NaNs as NaNs.
  NpyArray a;
  a.dtype = "<f2";
  a.shape = {65536};
  for (std::uint32_t c = 0; c < 65536; ++c) {
    a.data.push_back(static_cast<std::byte>(c & 0xFF));
    a.data.push_back(static_cast<std::byte>(c >> 8));
  }
  const lowbit::npy::FloatMatrix m = lowbit::npy::to_float32_matrix(lowbit::npy::parse(lowbit::npy::serialize(a)));
  ASSERT_EQ(m.values.size(), 65536u);
  for (std::uint32_t c = 0; c < 65536; ++c) {
    // Independent decode: sign, 5-bit exponent (bias 15), 10-bit mantissa.
    const int e = static_cast<int>((c >> 10) & 31), f = static_cast<int>(c & 1023);
    double want = e == 0 ? std::ldexp(f, -24) : e == 31 ? (f ? std::nan("") : INFINITY) : std::ldexp(1024 + f, e - 25);
    if (c & 0x8000) want = -want;
    const float got = m.values[c];
    if (std::isnan(want)) EXPECT_TRUE(std::isnan(got)) << c;
    else EXPECT_TRUE(same_bits(got, static_cast<float>(want))) << c;
  }
}

TEST(NpyRoundTrip, LargeHeaderVersion2IsRead) {
  // A 2.0 header longer than 65535 bytes (whitespace padded), which 1.0 cannot express.
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + std::string(70000, ' ');
  const NpyArray a = lowbit::npy::parse(bytes_of(make_file(dict, float_bytes({1.0f, 2.0f}), 2)));
  expect_matrix(lowbit::npy::to_float32_matrix(a), 1, 2, {1.0f, 2.0f});
}

TEST(NpyRoundTrip, HeaderVariantsPythonAccepts) {
  // Double quotes, other key order, extra whitespace, no trailing comma, Python 2 longs.
  const char* dicts[] = {
      R"({"shape": (2,), "fortran_order": False, "descr": "<f4"})",
      "{ 'descr' : '<f4' ,\t'fortran_order':False,'shape':( 2 , ) }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2L,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}",
  };
  for (const char* d : dicts) {
    const NpyArray a = lowbit::npy::parse(bytes_of(make_file(d, float_bytes({1.0f, 2.0f}))));
    EXPECT_EQ(a.size(), 2) << d;
    EXPECT_EQ(a.dtype, "<f4") << d;
  }
}

// ---- golden files -----------------------------------------------------------------------------

TEST(NpySharedFiles, MxGoldenInputs) {
  LOWBIT_REQUIRE_SHARED("goldens/mx/in.npy");
  const auto in = lowbit::npy::read_float32_matrix(lowbit_test::shared_file("goldens/mx/in.npy"));
  ASSERT_EQ(in.rows, 64);
  ASSERT_EQ(in.cols, 256);
  for (float v : in.values) EXPECT_TRUE(std::isfinite(v));  // README: every value of in.npy is finite
  for (std::int64_t c = 0; c < 256; ++c) EXPECT_TRUE(same_bits(in.values[20 * 256 + c], 0.0f));  // row 20: +0.0
  for (std::int64_t c = 0; c < 32; ++c) EXPECT_TRUE(same_bits(in.values[21 * 256 + c], -0.0f));  // row 21 b0: -0.0

  const auto special = lowbit::npy::read_float32_matrix(lowbit_test::shared_file("goldens/mx/in_special.npy"));
  ASSERT_EQ(special.rows, 16);
  ASSERT_EQ(special.cols, 256);
  // README: row 0, block 0 holds one NaN.
  EXPECT_EQ(std::count_if(special.values.begin(), special.values.begin() + 32, [](float v) { return std::isnan(v); }), 1);

  for (const char* rel : {"goldens/mx/log2_edge_blocks.npy", "goldens/mx/log2_edge_blocks_special.npy"}) {
    const NpyArray mask = lowbit::npy::read(lowbit_test::shared_file(rel));
    EXPECT_EQ(mask.dtype, "|u1");
    EXPECT_EQ(mask.shape[1], 8);
    int flagged = 0;
    for (std::byte b : mask.data) {
      EXPECT_LE(static_cast<int>(b), 1);
      flagged += static_cast<int>(b);
    }
    // README: 10 flagged blocks in the main set, 8 in the special set.
    EXPECT_EQ(flagged, mask.shape[0] == 64 ? 10 : 8) << rel;
  }
}

TEST(NpySharedFiles, EveryMxGoldenOutputParses) {
  LOWBIT_REQUIRE_SHARED("goldens/mx/in.npy");
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(lowbit_test::shared_file("goldens/mx"))) {
    if (entry.path().extension() != ".npy") continue;
    const NpyArray a = lowbit::npy::read(entry.path());
    EXPECT_EQ(a.shape.size(), 2u) << entry.path();
    EXPECT_FALSE(a.fortran_order) << entry.path();
    // Re-serialising reproduces numpy's file exactly.
    std::ifstream f(entry.path(), std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(lowbit::npy::serialize(a), bytes_of(raw)) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 36);  // the 36 files the README lists
}

// ---- malformed input ------------------------------------------------------------------------

struct Malformed {
  const char* what;
  std::string bytes;
  const char* message;  // a piece of the expected error message
};

std::vector<Malformed> malformed_cases() {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two = float_bytes({1.0f, 2.0f});
  const std::string good = make_file(ok_dict, two);
  auto with_dict = [&](const std::string& d) { return make_file(d, two); };
  return {
      {"empty file", "", "truncated"},
      {"magic cut short", "\x93NUM", "truncated"},
      {"bad magic", "\x93NUMPX" + good.substr(6), "magic"},
      {"text file", std::string("descr,shape\n1,2\n") + std::string(64, 'x'), "magic"},
      {"version 4.0", good.substr(0, 6) + std::string("\x04\x00", 2) + good.substr(8), "version"},
      {"version 1.1", good.substr(0, 6) + std::string("\x01\x01", 2) + good.substr(8), "version"},
      {"header length field cut off", good.substr(0, 9), "truncated"},
      {"v2 header length field cut off", make_file(ok_dict, two, 2).substr(0, 10), "truncated"},
      {"header longer than the file", good.substr(0, 40), "truncated"},
      {"huge header length", std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12) + ok_dict, "truncated"},
      {"header not a dict", with_dict("[1, 2]"), "expected '{'"},
      {"empty dict", with_dict("{}"), "missing key 'descr'"},
      {"missing shape", with_dict("{'descr': '<f4', 'fortran_order': False}"), "missing key 'shape'"},
      {"missing fortran_order", with_dict("{'descr': '<f4', 'shape': (2,)}"), "missing key 'fortran_order'"},
      {"duplicate key", with_dict("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"),
       "twice"},
      {"unknown key", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"),
       "unexpected key"},
      {"unterminated dict", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)"), "expected ','"},
      {"unterminated string", with_dict("{'descr: '<f4'"), "expected ':'"},
      {"string runs off the end", with_dict("{'descr"), "unterminated string"},
      {"bad bool", with_dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}"), "True or False"},
      {"lowercase bool", with_dict("{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}"), "True or False"},
      {"shape is a list", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}"), "expected '('"},
      {"shape without comma", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}"),
       "trailing comma"},
      {"shape with text", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (two,)}"), "integer"},
      {"text after the dict", with_dict(ok_dict + " junk"), "after the closing"},
      {"escape in a string", with_dict("{'descr': '<f\\x34', 'fortran_order': False, 'shape': (2,)}"), "escape"},
      {"negative shape", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2)}"), "negative"},
      {"shape entry over 64 bits", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
       "overflows"},
      {"element count overflows", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}"),
       "overflow"},
      {"byte size overflows", with_dict("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}"),
       "overflow"},
      {"data too short", make_file(ok_dict, two.substr(0, 7)), "data length mismatch"},
      {"data too long", make_file(ok_dict, two + "x"), "trailing bytes"},
      {"no data", make_file(ok_dict, ""), "data length mismatch"},
      {"big shape, little data", with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000)}"),
       "data length mismatch"},
      {"complex dtype", with_dict("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
      {"string dtype", with_dict("{'descr': '<U2', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
      {"object dtype", with_dict("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}"), "unsupported dtype"},
      {"bool dtype", with_dict("{'descr': '|b1', 'fortran_order': False, 'shape': (8,)}"), "unsupported dtype"},
      {"one-byte float", with_dict("{'descr': '|f1', 'fortran_order': False, 'shape': (8,)}"), "unsupported dtype"},
      {"'|' on a wide type", with_dict("{'descr': '|f4', 'fortran_order': False, 'shape': (2,)}"),
       "unsupported dtype"},
      {"structured dtype", with_dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
       "structured"},
  };
}

TEST(NpyMalformed, EveryCaseThrowsAnErrorNamingTheFile) {
  for (const Malformed& m : malformed_cases()) {
    try {
      (void)lowbit::npy::parse(bytes_of(m.bytes), "case.npy");
      ADD_FAILURE() << m.what << ": no error";
    } catch (const lowbit::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("case.npy"), std::string::npos) << m.what << ": " << msg;
      EXPECT_NE(msg.find(m.message), std::string::npos) << m.what << ": " << msg;
    }
  }
}

TEST(NpyMalformed, FileErrorsNameThePath) {
  const auto missing = temp_path("does_not_exist");
  std::filesystem::remove(missing);
  try {
    (void)lowbit::npy::read(missing);
    ADD_FAILURE() << "no error";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  try {
    (void)lowbit::npy::read(testing::TempDir());  // a directory
    ADD_FAILURE() << "no error";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("regular file"), std::string::npos) << e.what();
  }
  const auto path = temp_path("bad_magic");
  {
    std::ofstream f(path, std::ios::binary);
    f << "not an npy file at all";
  }
  try {
    (void)lowbit::npy::read_float32_matrix(path);
    ADD_FAILURE() << "no error";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(NpyMalformed, MatrixNeedsAtMostTwoDimensions) {
  NpyArray a;
  a.dtype = "<f4";
  a.shape = {1, 1, 1};
  a.data.resize(4);
  EXPECT_THROW((void)lowbit::npy::to_float32_matrix(a), lowbit::Error);
}

TEST(NpyMalformed, SerializeRejectsInconsistentArrays) {
  NpyArray a;
  a.dtype = "<f4";
  a.shape = {3};
  a.data.resize(8);  // 12 needed
  EXPECT_THROW((void)lowbit::npy::serialize(a), lowbit::Error);
  a.data.resize(12);
  a.dtype = "<c8";
  EXPECT_THROW((void)lowbit::npy::serialize(a), lowbit::Error);
  a.dtype = ">f4";
  EXPECT_THROW((void)lowbit::npy::serialize(a), lowbit::Error);
  a.dtype = "<f4";
  a.shape = {-3};
  EXPECT_THROW((void)lowbit::npy::serialize(a), lowbit::Error);
}

// Every prefix of a valid file, and every single-byte change to it, either parses or throws
// lowbit::Error: nothing else escapes (and, under sanitizers, nothing reads out of bounds).
TEST(NpyMalformed, TruncationsAndByteFlipsNeverEscapeAsAnythingButError) {
  const std::vector<std::byte> ref = bytes_of(kF4C);
  for (std::size_t len = 0; len < ref.size(); ++len) {
    const std::vector<std::byte> cut(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_THROW((void)lowbit::npy::parse(cut), lowbit::Error) << "prefix of " << len << " bytes";
  }
  int parsed = 0, rejected = 0;
  for (std::size_t i = 0; i < ref.size(); ++i)
    for (int v : {0x00, 0x20, 0x27, 0x28, 0x29, 0x2C, 0x2D, 0x39, 0x7B, 0x7D, 0xFF}) {
      std::vector<std::byte> b = ref;
      b[i] = static_cast<std::byte>(v);
      try {
        const NpyArray a = lowbit::npy::parse(b);
        (void)lowbit::npy::to_float32_matrix(a);
        ++parsed;
      } catch (const lowbit::Error&) {
        ++rejected;
      }
    }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
