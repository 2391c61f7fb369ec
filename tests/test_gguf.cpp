// GGUF and ggml blocks. The references are written here from ggml's published layouts
// (ggml-common.h, gguf.cpp): a block decoder, an fp16 decoder and a byte-level GGUF builder,
// none of which share code with the library.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "lowbit/io/ggml_blocks.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/lowbit.hpp"

namespace {

namespace fs = std::filesystem;
using lowbit::ggml::Type;

// ---- references from ggml's layouts ---------------------------------------------------------

float fp16_ref(std::uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(1024 + m, e - 25);
  return static_cast<float>((h & 0x8000) ? -v : v);
}

// ggml's dequantize_row_* for one block, from the struct layouts.
std::vector<float> decode_ref(Type t, const std::byte* b) {
  auto u8 = [&](int i) { return static_cast<unsigned>(b[i]); };
  auto f16 = [&](int i) { return fp16_ref(static_cast<std::uint16_t>(u8(i) | (u8(i + 1) << 8))); };
  std::vector<float> y(32);
  static const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  for (int j = 0; j < 32; ++j) {
    switch (t) {
      case Type::Q8_0: y[static_cast<std::size_t>(j)] = static_cast<float>(static_cast<std::int8_t>(u8(2 + j))) * f16(0); break;
      case Type::Q4_0: {
        const unsigned q = j < 16 ? (u8(2 + j) & 15) : (u8(2 + j - 16) >> 4);
        y[static_cast<std::size_t>(j)] = static_cast<float>(static_cast<int>(q) - 8) * f16(0);
        break;
      }
      case Type::Q4_1: {
        const unsigned q = j < 16 ? (u8(4 + j) & 15) : (u8(4 + j - 16) >> 4);
        y[static_cast<std::size_t>(j)] = static_cast<float>(q) * f16(0) + f16(2);
        break;
      }
      case Type::MXFP4: {
        const unsigned q = j < 16 ? (u8(1 + j) & 15) : (u8(1 + j - 16) >> 4);
        const float half_scale = static_cast<float>(std::ldexp(1.0, static_cast<int>(u8(0)) - 128));
        y[static_cast<std::size_t>(j)] = static_cast<float>(kv[q]) * half_scale;
        break;
      }
      default: ADD_FAILURE();
    }
  }
  return y;
}

std::size_t block_bytes_ref(Type t) {  // sizeof(block_*) from ggml-common.h
  switch (t) {
    case Type::Q8_0: return 34;
    case Type::Q4_0: return 18;
    case Type::Q4_1: return 20;
    case Type::MXFP4: return 17;
    default: return 0;
  }
}

// Weights with the cases that matter: ordinary blocks, an all-zero block, an outlier,
// tiny values (subnormal scales), a block of one sign.
std::vector<float> test_weights(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  for (auto& v : w) v = nd(rng);
  for (int j = 0; j < 32; ++j) w[static_cast<std::size_t>(j)] = 0.0f;
  w[40] = 37.0f;
  for (int j = 64; j < 96; ++j) w[static_cast<std::size_t>(j)] *= 1e-6f;
  for (int j = 96; j < 128; ++j) w[static_cast<std::size_t>(j)] = std::fabs(w[static_cast<std::size_t>(j)]) + 3.0f;
  return w;
}

struct Mapped {
  const char* format;
  Type type;
};

TEST(GgmlBlocks, FormatsMapToTheirTypesAndSizesMatchGgml) {
  for (const Mapped m : {Mapped{"int8_b32_fp16", Type::Q8_0}, Mapped{"int4_b32_fp16", Type::Q4_0},
                         Mapped{"uint4_b32_fp16", Type::Q4_1}, Mapped{"mxfp4", Type::MXFP4}, Mapped{"mxfp4_rceil", Type::MXFP4}}) {
    EXPECT_EQ(lowbit::ggml::type_for(lowbit::Quantizer(m.format)), m.type) << m.format;
    EXPECT_EQ(lowbit::ggml::traits(static_cast<std::uint32_t>(m.type))->block_bytes, block_bytes_ref(m.type));
  }
  for (const char* other : {"int8_b32_fp32", "int4_b64_fp16", "mxfp4_b16", "nvfp4", "bfp6_b16", "fp16", "uint4_b32_bf16"})
    EXPECT_FALSE(lowbit::ggml::type_for(lowbit::Quantizer(other)).has_value()) << other;
}

TEST(GgmlBlocks, WrittenBlocksDecodeToLowbitsDequantisedValues) {
  const std::int64_t rows = 8, cols = 160;
  const std::vector<float> w = test_weights(rows, cols, 11);
  const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), rows, cols);
  for (const Mapped m : {Mapped{"int8_b32_fp16", Type::Q8_0}, Mapped{"int4_b32_fp16", Type::Q4_0},
                         Mapped{"uint4_b32_fp16", Type::Q4_1}, Mapped{"mxfp4", Type::MXFP4}}) {
    const lowbit::Quantizer q(m.format);
    const lowbit::QuantizedTensor qt = q.quantize(in);
    std::vector<float> want(w.size());
    q.dequantize(qt, lowbit::MatrixRef<float>::row_major(want.data(), rows, cols));
    const std::vector<std::byte> blocks = lowbit::ggml::encode(m.type, qt);
    ASSERT_EQ(blocks.size(), w.size() / 32 * block_bytes_ref(m.type)) << m.format;
    std::vector<float> lib(w.size());
    lowbit::ggml::decode(static_cast<std::uint32_t>(m.type), blocks, lib);
    std::size_t exact_blocks = 0;
    for (std::size_t b = 0; b < w.size() / 32; ++b) {
      const std::vector<float> got = decode_ref(m.type, blocks.data() + b * block_bytes_ref(m.type));
      // For Q4_1 the stored minimum m = fp16(-z s) may be rounded; everything else is exact.
      float tol = 0.0f;
      if (m.type == Type::Q4_1) {
        const double s = fp16_ref(static_cast<std::uint16_t>(qt.headers[b].scale));
        const double m_exact = -static_cast<double>(qt.headers[b].zero_point) * s;
        const double m_stored = decode_ref(Type::Q4_1, blocks.data() + b * 20)[0] -
                                static_cast<double>(qt.codes[b * 32]) * s;  // q*d + m - q*d
        tol = static_cast<float>(std::fabs(m_stored - m_exact) * 1.001 + 4.0 * std::ldexp(std::fabs(m_exact) + 16 * s, -24));
      }
      bool exact = true;
      for (std::size_t j = 0; j < 32; ++j) {
        EXPECT_NEAR(got[j], want[b * 32 + j], tol) << m.format << " block " << b << " element " << j;
        EXPECT_EQ(got[j], lib[b * 32 + j]) << m.format << " block " << b << " element " << j;  // lowbit's decoder = ggml's
        exact = exact && got[j] == want[b * 32 + j];
      }
      exact_blocks += exact;
    }
    if (m.type != Type::Q4_1) EXPECT_EQ(exact_blocks, w.size() / 32) << m.format;
    else EXPECT_GE(exact_blocks, 1u);  // at least the all-zero and one-sign blocks (z = 0)
  }
}

TEST(GgmlBlocks, ByteLayoutOfEachBlockType) {
  lowbit::QuantizedTensor qt;
  qt.rows = 1;
  qt.cols = 32;
  qt.blocking = lowbit::Blocking::along(1, 32);
  qt.codes.resize(32);
  qt.headers.resize(1);
  // Q4_0: symmetric int4 codes k = j % 15 - 7 (two's complement nibbles), scale fp16 1.5 = 0x3E00.
  const lowbit::FixedPointSpec int4{4, 0, lowbit::IntRange::Symmetric};
  for (int j = 0; j < 32; ++j) qt.codes[static_cast<std::size_t>(j)] = int4.code_of_int(j % 15 - 7);
  qt.headers[0].scale = 0x3E00;
  auto b = lowbit::ggml::encode(Type::Q4_0, qt);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(b[0], std::byte{0x00});
  EXPECT_EQ(b[1], std::byte{0x3E});
  for (int j = 0; j < 16; ++j) {
    const int lo = j % 15 - 7 + 8, hi = (j + 16) % 15 - 7 + 8;
    EXPECT_EQ(static_cast<int>(b[static_cast<std::size_t>(2 + j)]), lo | (hi << 4)) << j;
  }
  // Q8_0: the int8 bytes in order.
  for (int j = 0; j < 32; ++j) qt.codes[static_cast<std::size_t>(j)] = static_cast<std::uint32_t>((j * 8 - 127) & 0xFF);
  b = lowbit::ggml::encode(Type::Q8_0, qt);
  ASSERT_EQ(b.size(), 34u);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(static_cast<std::int8_t>(b[static_cast<std::size_t>(2 + j)]), j * 8 - 127);
  // Q4_1: d, then m = -z * d = -3 * 1.5 = -4.5 = fp16 0xC480, then nibbles as they are.
  for (int j = 0; j < 32; ++j) qt.codes[static_cast<std::size_t>(j)] = static_cast<std::uint32_t>(j % 16);
  qt.headers[0].zero_point = 3;
  b = lowbit::ggml::encode(Type::Q4_1, qt);
  ASSERT_EQ(b.size(), 20u);
  EXPECT_EQ(b[2], std::byte{0x80});
  EXPECT_EQ(b[3], std::byte{0xC4});
  EXPECT_EQ(b[4], std::byte{0x00});  // elements 0 and 16: codes 0 and 0
  EXPECT_EQ(b[5], std::byte{0x11});
  // MXFP4: the E8M0 byte first, E2M1 codes as nibbles.
  qt.headers[0].scale = 130;
  b = lowbit::ggml::encode(Type::MXFP4, qt);
  ASSERT_EQ(b.size(), 17u);
  EXPECT_EQ(b[0], std::byte{130});
  EXPECT_EQ(b[16], std::byte{0xFF});  // elements 15 and 31: codes 15 and 15
  qt.headers[0].scale = 0xFF;         // a NaN block has no MXFP4 encoding
  EXPECT_THROW(lowbit::ggml::encode(Type::MXFP4, qt), lowbit::Error);
  qt.blocking = lowbit::Blocking::along(1, 16);
  EXPECT_THROW(lowbit::ggml::encode(Type::Q4_1, qt), lowbit::Error);
}

// ---- a GGUF builder from the spec, for crafted files ------------------------------------------

struct Bytes {
  std::vector<std::byte> b;
  Bytes& u(std::uint64_t v, int n) {
    for (int k = 0; k < n; ++k) b.push_back(static_cast<std::byte>((v >> (8 * k)) & 0xFF));
    return *this;
  }
  Bytes& s(const std::string& v) {
    u(v.size(), 8);
    for (char c : v) b.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Bytes& pad(std::size_t a) {
    while (b.size() % a) b.push_back(std::byte{0});
    return *this;
  }
};

// A valid file: one u32 key, one 2 x 4 F32 tensor at offset 0 (values 0..7), alignment 32.
Bytes header(std::uint64_t n_tensors = 1, std::uint64_t n_kv = 1) {
  Bytes x;
  x.u(0x46554747, 4).u(3, 4).u(n_tensors, 8).u(n_kv, 8);
  return x;
}
std::vector<std::byte> valid_file() {
  Bytes x = header();
  x.s("general.quantization_version").u(4, 4).u(2, 4);
  x.s("w").u(2, 4).u(4, 8).u(2, 8).u(0, 4).u(0, 8);
  x.pad(32);
  for (int i = 0; i < 8; ++i) x.u(std::bit_cast<std::uint32_t>(static_cast<float>(i)), 4);
  return x.b;
}

std::string gguf_error(const std::vector<std::byte>& f) {
  try {
    lowbit::gguf::File::from_bytes(f, "m.gguf");
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, ReadsAFileBuiltFromTheSpec) {
  const auto f = lowbit::gguf::File::from_bytes(valid_file());
  EXPECT_EQ(f.version(), 3u);
  ASSERT_EQ(f.metadata().size(), 1u);
  EXPECT_EQ(f.metadata()[0].key, "general.quantization_version");
  EXPECT_EQ(f.metadata()[0].value.u, 2u);
  ASSERT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.tensors()[0].shape(), (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(lowbit::gguf::to_float(f.tensors()[0]), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Gguf, EveryTruncationIsAnErrorNeverACrash) {
  const auto f = valid_file();
  for (std::size_t n = 0; n < f.size(); ++n) {
    const std::string msg = gguf_error(std::vector<std::byte>(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n)));
    EXPECT_NE(msg.find("m.gguf"), std::string::npos) << n << ": " << msg;
  }
  EXPECT_EQ(gguf_error(f), "");
}

TEST(Gguf, MalformedFilesGiveOneClearErrorEach) {
  struct Case {
    const char* what;
    std::vector<std::byte> file;
    const char* message;
  };
  auto kv_file = [](auto add_value) {
    Bytes x = header(0, 1);
    x.s("k");
    add_value(x);
    return x.b;
  };
  auto tensor_file = [](auto add_info, std::size_t data = 64, std::vector<std::pair<std::string, std::uint64_t>> kv = {}) {
    Bytes x = header(1, kv.size());
    for (const auto& [k, v] : kv) x.s(k).u(4, 4).u(v, 4);
    add_info(x);
    x.pad(kv.empty() ? 32 : kv[0].second);
    x.b.resize(x.b.size() + data, std::byte{0});
    return x.b;
  };
  Bytes bad_magic = header();
  bad_magic.b[0] = std::byte{'X'};
  Bytes v1 = header(0, 0);
  v1.b[4] = std::byte{1};
  Bytes dup = header(0, 2);
  dup.s("k").u(4, 4).u(1, 4).s("k").u(4, 4).u(2, 4);
  Bytes two = header(2, 0);
  two.s("w").u(1, 4).u(32, 8).u(0, 4).u(0, 8).s("w").u(1, 4).u(32, 8).u(0, 4).u(128, 8).pad(32);
  two.b.resize(two.b.size() + 256);
  Bytes overlap = header(2, 0);
  overlap.s("a").u(1, 4).u(32, 8).u(0, 4).u(0, 8).s("b").u(1, 4).u(32, 8).u(0, 4).u(96, 8).pad(32);
  overlap.b.resize(overlap.b.size() + 256);
  const std::vector<Case> cases = {
      {"magic", bad_magic.b, "not a GGUF file (bad magic)"},
      {"version", v1.b, "unsupported GGUF version 1"},
      {"future version", [] { Bytes x = header(0, 0); x.b[4] = std::byte{4}; return x.b; }(), "unsupported GGUF version 4"},
      {"element type", kv_file([](Bytes& x) { x.u(9, 4).u(13, 4).u(0, 8); }), "key 'k' has invalid array element type 13"},
      {"kv count", header(0, std::uint64_t{1} << 60).b, "metadata entries cannot fit"},
      {"tensor count", header(std::uint64_t{1} << 60, 0).b, "tensor infos cannot fit"},
      {"value type", kv_file([](Bytes& x) { x.u(13, 4); }), "key 'k' has invalid value type 13"},
      {"nested", kv_file([](Bytes& x) { x.u(9, 4).u(9, 4).u(0, 8); }), "nested arrays"},
      {"bool", kv_file([](Bytes& x) { x.u(7, 4).u(2, 1); }), "bool value 2 is neither 0 nor 1"},
      {"string", kv_file([](Bytes& x) { x.u(8, 4).u(1000, 8); }), "truncated: the value of 'k' (1000 bytes)"},
      {"array", kv_file([](Bytes& x) { x.u(9, 4).u(4, 4).u(std::uint64_t{1} << 40, 8); }), "array 'k' claims 1099511627776"},
      {"duplicate key", dup.b, "metadata key 'k' appears twice"},
      {"valid base", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(32, 8).u(0, 4).u(0, 8); }, 128, {}), ""},
      {"dims", tensor_file([](Bytes& x) { x.s("w").u(5, 4).u(1, 8).u(1, 8).u(1, 8).u(1, 8).u(1, 8).u(0, 4).u(0, 8); }),
       "tensor 'w': 5 dimensions, at most 4"},
      {"type", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(32, 8).u(99, 4).u(0, 8); }), "tensor 'w': unknown ggml type 99"},
      {"blocks", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(33, 8).u(8, 4).u(0, 8); }),
       "rows of 33 elements are not a whole number of 32-blocks of Q8_0"},
      {"alignment", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(4, 8).u(0, 4).u(8, 8); }),
       "offset 8 is not a multiple of the alignment 32"},
      {"past end", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(32, 8).u(0, 4).u(0, 8); }, 100),
       "tensor 'w': bytes [0, 128) of the data section are past its end (100 bytes"},
      {"overflow", tensor_file([](Bytes& x) { x.s("w").u(2, 4).u(std::uint64_t{1} << 32, 8).u(std::uint64_t{1} << 32, 8).u(0, 4).u(0, 8); }),
       "element count overflows"},
      {"negative", tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(~std::uint64_t{0}, 8).u(0, 4).u(0, 8); }), "dimension 0 is negative"},
      {"duplicate tensor", two.b, "tensor name 'w' appears twice"},
      {"overlap", overlap.b, "tensors 'a' and 'b' overlap"},
      {"alignment not power of two",
       tensor_file([](Bytes& x) { x.s("w").u(1, 4).u(4, 8).u(0, 4).u(0, 8); }, 64, {{"general.alignment", 24}}),
       "general.alignment 24 is not a power of two"},
  };
  for (const Case& c : cases) {
    if (std::string(c.message).empty()) {
      EXPECT_EQ(gguf_error(c.file), "") << c.what;  // the base of the tensor cases is valid
      continue;
    }
    const std::string msg = gguf_error(c.file);
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.what << ": got \"" << msg << "\"";
    EXPECT_NE(msg.find("m.gguf"), std::string::npos) << c.what << ": " << msg;
  }
  Bytes u64_alignment = header(0, 1);
  u64_alignment.s("general.alignment").u(10, 4).u(64, 8);
  EXPECT_NE(gguf_error(u64_alignment.b).find("general.alignment must be a u32"), std::string::npos);
}

// ---- writing -------------------------------------------------------------------------------------

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("lowbit_gguf_" + std::to_string(::getpid()) + "_" + name);
}

TEST(Gguf, WrittenFilesRoundTripEveryValueAndTensorType) {
  using lowbit::gguf::Value;
  using lowbit::gguf::ValueType;
  std::vector<lowbit::gguf::KeyValue> md;
  auto scalar = [](ValueType t, std::uint64_t u, std::int64_t i, double f) {
    Value v;
    v.type = t;
    v.u = u;
    v.i = i;
    v.f = f;
    return v;
  };
  md.push_back({"general.architecture", Value::of_string("llama")});
  md.push_back({"u8", scalar(ValueType::UINT8, 200, 0, 0)});
  md.push_back({"i8", scalar(ValueType::INT8, 0, -100, 0)});
  md.push_back({"u16", scalar(ValueType::UINT16, 60000, 0, 0)});
  md.push_back({"i16", scalar(ValueType::INT16, 0, -30000, 0)});
  md.push_back({"u32", Value::of_u32(4000000000u)});
  md.push_back({"i32", Value::of_i32(-2000000000)});
  md.push_back({"f32", Value::of_f32(0.1f)});
  md.push_back({"bool", Value::of_bool(true)});
  md.push_back({"u64", Value::of_u64(std::uint64_t{1} << 63)});
  md.push_back({"i64", scalar(ValueType::INT64, 0, -(std::int64_t{1} << 62), 0)});
  md.push_back({"f64", scalar(ValueType::FLOAT64, 0, 0, 0.1)});
  md.push_back({"tokens", Value::of_array(ValueType::STRING, {Value::of_string("<s>"), Value::of_string("a b"), Value::of_string("")})});
  md.push_back({"scores", Value::of_array(ValueType::FLOAT32, {Value::of_f32(-1.5f), Value::of_f32(2.0f)})});
  md.push_back({"empty", Value::of_array(ValueType::INT32, {})});

  const std::int64_t rows = 3, cols = 64;
  const std::vector<float> w = test_weights(rows, cols, 4);
  const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), rows, cols);
  std::vector<std::pair<lowbit::gguf::TensorSpec, std::vector<std::byte>>> tensors;
  std::vector<std::vector<float>> want;
  const std::vector<std::uint64_t> ne{static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)};
  std::vector<std::byte> f32(w.size() * 4), f16(w.size() * 2), bf16(w.size() * 2);
  std::vector<float> w16(w.size()), wbf(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    std::memcpy(f32.data() + 4 * i, &w[i], 4);
    const auto h = static_cast<std::uint16_t>(lowbit::FP16::encode(w[i]));
    std::memcpy(f16.data() + 2 * i, &h, 2);
    w16[i] = fp16_ref(h);
    const auto bb = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(w[i]) >> 16);  // truncated: any bf16 will do
    std::memcpy(bf16.data() + 2 * i, &bb, 2);
    wbf[i] = std::bit_cast<float>(static_cast<std::uint32_t>(bb) << 16);
  }
  tensors.push_back({{"t.f32", ne, 0}, f32});
  want.push_back(w);
  tensors.push_back({{"t.f16", ne, 1}, f16});
  want.push_back(w16);
  tensors.push_back({{"t.bf16", ne, 30}, bf16});
  want.push_back(wbf);
  for (const Mapped m : {Mapped{"int8_b32_fp16", Type::Q8_0}, Mapped{"int4_b32_fp16", Type::Q4_0},
                         Mapped{"uint4_b32_fp16", Type::Q4_1}, Mapped{"mxfp4", Type::MXFP4}}) {
    const auto blocks = lowbit::ggml::encode(m.type, lowbit::Quantizer(m.format).quantize(in));
    std::vector<float> ref;
    for (std::size_t b = 0; b < w.size() / 32; ++b) {
      const auto y = decode_ref(m.type, blocks.data() + b * block_bytes_ref(m.type));
      ref.insert(ref.end(), y.begin(), y.end());
    }
    tensors.push_back({{std::string("t.") + m.format, ne, static_cast<std::uint32_t>(m.type)}, blocks});
    want.push_back(ref);
  }
  const fs::path path = temp_file("rt.gguf");
  {
    std::vector<lowbit::gguf::TensorSpec> specs;
    for (const auto& t : tensors) specs.push_back(t.first);
    lowbit::gguf::Writer wr(path, md, specs);
    for (const auto& t : tensors) wr.write(t.second);
    wr.finish();
  }
  // The streaming writer and the in-memory serialiser agree byte for byte.
  std::ifstream in_file(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in_file)), std::istreambuf_iterator<char>());
  const auto mem = lowbit::gguf::serialize(md, tensors);
  ASSERT_EQ(raw.size(), mem.size());
  EXPECT_EQ(std::memcmp(raw.data(), mem.data(), mem.size()), 0);

  const auto f = lowbit::gguf::File::open(path);
  ASSERT_EQ(f.metadata().size(), md.size());
  for (std::size_t i = 0; i < md.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].key, md[i].key);
    EXPECT_EQ(f.metadata()[i].value.repr(), md[i].value.type == ValueType::FLOAT32 ? Value::of_f32(static_cast<float>(md[i].value.f)).repr()
                                                                                    : md[i].value.repr())
        << md[i].key;
  }
  EXPECT_EQ(f.find("f32")->f, static_cast<double>(0.1f));
  EXPECT_EQ(f.find("f64")->f, 0.1);
  EXPECT_EQ(f.find("tokens")->items[1].s, "a b");
  EXPECT_EQ(f.find("u64")->u, std::uint64_t{1} << 63);
  EXPECT_EQ(f.find("i64")->i, -(std::int64_t{1} << 62));
  ASSERT_EQ(f.tensors().size(), tensors.size());
  std::uint64_t expect_offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = f.tensors()[i];
    EXPECT_EQ(t.name, tensors[i].first.name);
    EXPECT_EQ(t.shape(), (std::vector<std::int64_t>{rows, cols}));
    EXPECT_EQ(t.offset, expect_offset) << t.name;  // back to back, each padded to 32, as ggml checks
    expect_offset += (tensors[i].second.size() + 31) / 32 * 32;
    const auto got = lowbit::gguf::to_float(t);
    ASSERT_EQ(got.size(), want[i].size());
    for (std::size_t k = 0; k < got.size(); ++k) ASSERT_EQ(got[k], want[i][k]) << t.name << " " << k;
  }
  EXPECT_EQ(f.data_offset() % 32, 0u);
  fs::remove(path);
}

TEST(Gguf, WriterHonoursAlignmentAndRefusesWhatGgmlWouldReject) {
  using lowbit::gguf::Value;
  const std::vector<lowbit::gguf::KeyValue> md{{"general.alignment", Value::of_u32(64)}};
  const std::vector<std::byte> a(4 * 5), b(4 * 3);
  const auto mem = lowbit::gguf::serialize(md, {{{"a", {5}, 0}, a}, {{"b", {3}, 0}, b}});
  const auto f = lowbit::gguf::File::from_bytes(mem);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.tensors()[1].offset, 64u);
  EXPECT_THROW(lowbit::gguf::serialize({}, {{{std::string(64, 'x'), {1}, 0}, std::vector<std::byte>(4)}}), lowbit::Error);
  EXPECT_THROW(lowbit::gguf::serialize({}, {{{"q", {33}, 8}, std::vector<std::byte>(34)}}), lowbit::Error);
  EXPECT_THROW(lowbit::gguf::serialize({}, {{{"q", {32}, 8}, std::vector<std::byte>(33)}}), lowbit::Error);
  EXPECT_THROW(lowbit::gguf::serialize({{"general.alignment", Value::of_u32(3)}}, {}), lowbit::Error);
}

}  // namespace
