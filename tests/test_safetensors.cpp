// safetensors reading and writing, sharded models, lowbit's packed files, and every
// validation of an untrusted header (each malformed case with the message it must give).
// Float references are decoders written here from the IEEE / OCP bit layouts.
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

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "lowbit/io/packed_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/lowbit.hpp"

namespace {

namespace fs = std::filesystem;
namespace st = lowbit::safetensors;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lowbit_st_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// A file from a raw header text and `data_len` data bytes (the length field says `claimed`
// when given).
std::vector<std::byte> raw_file(const std::string& header, std::size_t data_len, std::int64_t claimed = -1) {
  const std::uint64_t n = claimed < 0 ? header.size() : static_cast<std::uint64_t>(claimed);
  std::vector<std::byte> b(8);
  for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xFF);
  const auto h = bytes_of(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + data_len, std::byte{0x11});
  return b;
}

std::string error_of(const std::vector<std::byte>& file) {
  try {
    st::File::from_bytes(file, "model.safetensors");
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

// ---- independent decoders from the bit layouts ----------------------------------------------
double ieee_like(std::uint32_t bits, int e, int m, bool has_inf, bool e4m3fn) {
  const int bias = (1 << (e - 1)) - 1;
  const bool neg = (bits >> (e + m)) & 1;
  const std::uint32_t ef = (bits >> m) & ((1u << e) - 1), mf = bits & ((1u << m) - 1);
  double v;
  if (e4m3fn && ef == 15 && mf == 7) return std::nan("");
  if (has_inf && ef == (1u << e) - 1) {
    if (mf != 0) return std::nan("");
    v = INFINITY;
  } else if (ef == 0) {
    v = std::ldexp(static_cast<double>(mf), 1 - bias - m);
  } else {
    v = std::ldexp(1.0 + std::ldexp(static_cast<double>(mf), -m), static_cast<int>(ef) - bias);
  }
  return neg ? -v : v;
}

void expect_same(float got, double want, const std::string& what) {
  if (std::isnan(want)) EXPECT_TRUE(std::isnan(got)) << what;
  else EXPECT_EQ(got, static_cast<float>(want)) << what;
}

TEST(Safetensors, EveryF8AndManyF16AndBf16CodesDecodeAsTheirBitLayouts) {
  std::vector<std::byte> e4(256), e5(256), h(2 * 4096), b(2 * 4096);
  for (int i = 0; i < 256; ++i) e4[static_cast<std::size_t>(i)] = e5[static_cast<std::size_t>(i)] = static_cast<std::byte>(i);
  std::mt19937 rng(3);
  std::vector<std::uint16_t> hc(4096), bc(4096);
  for (std::size_t i = 0; i < 4096; ++i) {
    hc[i] = i < 2048 ? static_cast<std::uint16_t>(i * 32 + 1) : static_cast<std::uint16_t>(rng());
    bc[i] = static_cast<std::uint16_t>(rng());
    h[2 * i] = static_cast<std::byte>(hc[i] & 0xFF);
    h[2 * i + 1] = static_cast<std::byte>(hc[i] >> 8);
    b[2 * i] = static_cast<std::byte>(bc[i] & 0xFF);
    b[2 * i + 1] = static_cast<std::byte>(bc[i] >> 8);
  }
  const auto file = st::serialize({{{"e4", st::Dtype::F8_E4M3, {16, 16}}, e4},
                                   {{"e5", st::Dtype::F8_E5M2, {256}}, e5},
                                   {{"h", st::Dtype::F16, {4096}}, h},
                                   {{"b", st::Dtype::BF16, {64, 64}}, b}});
  const st::File f = st::File::from_bytes(file);
  const auto ve4 = st::to_float(f.tensor("e4")), ve5 = st::to_float(f.tensor("e5"));
  for (std::uint32_t i = 0; i < 256; ++i) {
    expect_same(ve4[i], ieee_like(i, 4, 3, false, true), "e4m3 code " + std::to_string(i));
    expect_same(ve5[i], ieee_like(i, 5, 2, true, false), "e5m2 code " + std::to_string(i));
  }
  const auto vh = st::to_float(f.tensor("h")), vb = st::to_float(f.tensor("b"));
  for (std::size_t i = 0; i < 4096; ++i) {
    expect_same(vh[i], ieee_like(hc[i], 5, 10, true, false), "f16 " + std::to_string(hc[i]));
    expect_same(vb[i], ieee_like(bc[i], 8, 7, true, false), "bf16 " + std::to_string(bc[i]));
  }
  EXPECT_EQ(ve4[0x7E], 448.0f);
  EXPECT_EQ(ve5[0x7B], 57344.0f);
}

TEST(Safetensors, WrittenFilesReadBackOnDiskWithMetadataAndLayout) {
  const fs::path dir = temp_dir("rw");
  std::vector<float> a(6 * 7), c(5);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::ldexp(static_cast<float>(i) - 20.5f, -3);
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = -static_cast<float>(i) * 0.25f;
  {
    st::Writer w(dir / "m.safetensors", {{"a", st::Dtype::F32, {6, 7}}, {"c", st::Dtype::F16, {5}}, {"d", st::Dtype::F32, {0, 3}}},
                 {{"who", "test"}});
    w.write_floats(a);
    w.write_floats(c);  // all exactly representable in fp16
    w.write({});
    w.finish();
  }
  const st::File f = st::File::open(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.metadata().at("who"), "test");
  EXPECT_EQ(f.tensor("a").shape, (std::vector<std::int64_t>{6, 7}));
  EXPECT_EQ(st::to_float(f.tensor("a")), a);
  EXPECT_EQ(st::to_float(f.tensor("c")), c);
  EXPECT_TRUE(st::to_float(f.tensor("d")).empty());
  // Layout as the format defines it: length, JSON padded to 8, offsets back to back.
  std::ifstream in(dir / "m.safetensors", std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(raw[static_cast<std::size_t>(i)])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  const auto j = nlohmann::json::parse(std::string(raw.data() + 8, n));
  EXPECT_EQ(j["a"]["dtype"], "F32");
  EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json({0, 168}));
  EXPECT_EQ(j["c"]["data_offsets"], nlohmann::json({168, 178}));
  EXPECT_EQ(raw.size(), 8 + n + 178);
  float first = 0;
  std::memcpy(&first, raw.data() + 8 + n, 4);
  EXPECT_EQ(first, a[0]);
  fs::remove_all(dir);
}

TEST(Safetensors, WriterLeavesNoFileUnlessFinished) {
  const fs::path dir = temp_dir("partial");
  {
    st::Writer w(dir / "x.safetensors", {{"a", st::Dtype::F32, {2}}, {"b", st::Dtype::F32, {1}}});
    w.write(std::vector<std::byte>(8));
  }  // abandoned
  EXPECT_TRUE(fs::is_empty(dir));
  EXPECT_THROW(st::Writer(dir / "y.safetensors", {{"a", st::Dtype::F32, {-1}}}), lowbit::Error);
  EXPECT_TRUE(fs::is_empty(dir));
  {
    st::Writer w(dir / "z.safetensors", {{"a", st::Dtype::F32, {1}}});
    w.write(std::vector<std::byte>(4));
    w.finish();
  }
  EXPECT_TRUE(fs::exists(dir / "z.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "z.safetensors.partial"));
  fs::remove_all(dir);
}

TEST(Safetensors, WriterRefusesWrongSizesAndMissingTensors) {
  const fs::path dir = temp_dir("werr");
  st::Writer w(dir / "x.safetensors", {{"a", st::Dtype::F32, {2}}, {"b", st::Dtype::F32, {1}}});
  std::vector<std::byte> three(3);
  EXPECT_THROW(w.write(three), lowbit::Error);
  w.write(std::vector<std::byte>(8));
  EXPECT_THROW(w.finish(), lowbit::Error);
  EXPECT_THROW(st::make_header({{"a", st::Dtype::F32, {1}}, {"a", st::Dtype::F32, {1}}}, {}), lowbit::Error);
  // Nothing at the path until finish(): an unfinished file is removed, a bad plan creates none.
  EXPECT_FALSE(fs::exists(dir / "x.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "x.safetensors.partial"));
  fs::remove_all(dir);
}

struct BadCase {
  const char* what;
  std::vector<std::byte> file;
  const char* message;
};

TEST(Safetensors, MalformedFilesGiveOneClearErrorEach) {
  const std::string ok_entry = R"("w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]})";
  std::string rank65 = "1";
  for (int i = 1; i < 65; ++i) rank65 += ",1";
  const std::vector<BadCase> cases = {
      {"short", bytes_of("abc"), "shorter than the 8-byte header length"},
      {"huge header", raw_file("{}", 0, std::int64_t{1} << 40), "exceeds the limit"},
      {"truncated header", raw_file("{}", 0, 50), "truncated: the header claims 50 bytes but only 2 follow"},
      {"not json", raw_file("{\"w\": ", 0), "not valid JSON"},
      {"not object", raw_file("[1, 2]", 0), "must be a JSON object"},
      {"duplicate", raw_file("{" + ok_entry + ", " + ok_entry + "}", 16), "key 'w' appears twice"},
      {"metadata", raw_file(R"({"__metadata__": {"a": 1}})", 0), "__metadata__ value of 'a' is not a string"},
      {"entry", raw_file(R"({"w": 3})", 0), "tensor 'w': entry is not an object"},
      {"missing", raw_file(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4), "tensor 'w': missing field 'dtype'"},
      {"dtype", raw_file(R"({"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}})", 4), "unsupported dtype 'F7'"},
      {"negative", raw_file(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4), "a dimension is negative"},
      {"offsets", raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4), "data_offsets must be [begin, end]"},
      {"backwards", raw_file(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8), "run backwards"},
      {"past end", raw_file(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 12),
       "data_offsets end 16 is past the end of the data (12 bytes"},
      {"size", raw_file(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16),
       "shape [2, 2] of F32 needs 16 bytes but data_offsets span 12"},
      {"overflow", raw_file(R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0),
       "overflows"},
      {"metadata object", raw_file(R"({"__metadata__": [1]})", 0), "__metadata__ must be an object of strings"},
      {"dtype type", raw_file(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4), "tensor 'w': dtype is not a string"},
      {"shape type", raw_file(R"({"w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}})", 4), "tensor 'w': shape is not an array"},
      {"rank", raw_file(R"({"w": {"dtype": "F32", "shape": [)" + rank65 + R"(], "data_offsets": [0, 4]}})", 4),
       "more than 64 dimensions"},
      {"huge dimension", raw_file(R"({"w": {"dtype": "F32", "shape": [9223372036854775808], "data_offsets": [0, 4]}})", 4),
       "dimension 9223372036854775808 is too large"},
      {"fractional", raw_file(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4),
       "a dimension must be a non-negative integer, got 1.5"},
      {"overlap", raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
       "tensors 'a' and 'b' overlap"},
  };
  for (const BadCase& c : cases) {
    const std::string msg = error_of(c.file);
    EXPECT_NE(msg.find(c.message), std::string::npos) << c.what << ": got \"" << msg << "\"";
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << c.what << ": " << msg;
  }
  // The same well-formed pieces are accepted (the cases fail for their fault alone).
  EXPECT_NO_THROW(st::File::from_bytes(raw_file("{" + ok_entry + "}", 16)));
  EXPECT_NO_THROW(st::File::from_bytes(raw_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", 16)));
}

TEST(Safetensors, MissingAndEmptyFilesNameThePath) {
  const fs::path dir = temp_dir("missing");
  try {
    st::File::open(dir);
    FAIL();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  // A directory with several files and no index is ambiguous.
  std::ofstream(dir / "a.safetensors").close();
  std::ofstream(dir / "b.safetensors").close();
  try {
    st::Model::open(dir);
    FAIL();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("several .safetensors files and no *.index.json"), std::string::npos) << e.what();
  }
  fs::remove(dir / "a.safetensors");
  fs::remove(dir / "b.safetensors");
  try {
    st::File::open(dir / "nope.safetensors");
    FAIL();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "empty.safetensors").close();
  try {
    st::File::open(dir / "empty.safetensors");
    FAIL();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.safetensors: truncated"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

void write_bytes(const fs::path& p, const std::vector<std::byte>& b) {
  std::ofstream o(p, std::ios::binary);
  o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

TEST(Safetensors, ShardedModelsThroughTheirIndex) {
  const fs::path dir = temp_dir("shards");
  const std::vector<float> x{1, 2, 3}, y{4, 5};
  write_bytes(dir / "m-1.safetensors", st::serialize({{{"x", st::Dtype::F32, {3}}, st::encode_floats(st::Dtype::F32, x)}}));
  write_bytes(dir / "m-2.safetensors", st::serialize({{{"y", st::Dtype::BF16, {2}}, st::encode_floats(st::Dtype::BF16, y)}}));
  std::ofstream(dir / "m.safetensors.index.json") << R"({"metadata": {}, "weight_map": {"x": "m-1.safetensors", "y": "m-2.safetensors"}})";
  for (const fs::path& p : {dir / "m.safetensors.index.json", dir}) {
    const st::Model m = st::Model::open(p);
    ASSERT_EQ(m.entries().size(), 2u);
    EXPECT_EQ(m.files().size(), 2u);
    std::map<std::string, std::vector<float>> got;
    for (const auto& e : m.entries()) got[e.tensor->name] = st::to_float(*e.tensor);
    EXPECT_EQ(got["x"], x);
    EXPECT_EQ(got["y"], y);
  }
  auto index_error = [&](const std::string& json) {
    std::ofstream(dir / "m.safetensors.index.json") << json;
    try {
      st::Model::open(dir / "m.safetensors.index.json");
    } catch (const lowbit::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(index_error(R"({"weight_map": {"x": "../m-1.safetensors"}})").find("not a plain file name"), std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {"x": "m-2.safetensors"}})").find("tensor 'x' is not in its shard m-2.safetensors"),
            std::string::npos);
  EXPECT_NE(index_error(R"({"weights": {}})").find("missing the object 'weight_map'"), std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {"x": "m-9.safetensors"}})").find("m-9.safetensors"), std::string::npos);
  write_bytes(dir / "m-2.safetensors", st::serialize({{{"x", st::Dtype::F32, {3}}, st::encode_floats(st::Dtype::F32, x)}}));
  EXPECT_NE(index_error(R"({"weight_map": {"x": "m-1.safetensors", "z": "m-2.safetensors"}})").find("tensor 'z' is not in its shard"),
            std::string::npos);
  EXPECT_NE(index_error(R"({"weight_map": {"x": "m-1.safetensors", "x2": "m-1.safetensors", "q": "m-2.safetensors"}})")
                .find("is not in its shard"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(Safetensors, ShardsMayNotHoldTheSameTensorTwice) {
  const fs::path dir = temp_dir("dup");
  const std::vector<float> x{1, 2, 3};
  for (const char* n : {"a.safetensors", "b.safetensors"})
    write_bytes(dir / n, st::serialize({{{"x", st::Dtype::F32, {3}}, st::encode_floats(st::Dtype::F32, x)}}));
  std::ofstream(dir / "m.index.json") << R"({"weight_map": {"x": "a.safetensors", "x ": "b.safetensors"}})";
  try {
    st::Model::open(dir / "m.index.json");
    FAIL();
  } catch (const lowbit::Error& e) {
    // "x " is missing from b, which is reported first; make the map consistent and check the duplicate.
    EXPECT_NE(std::string(e.what()).find("is not in its shard"), std::string::npos) << e.what();
  }
  write_bytes(dir / "b.safetensors", st::serialize({{{"x", st::Dtype::F32, {3}}, st::encode_floats(st::Dtype::F32, x)},
                                                     {{"x ", st::Dtype::F32, {3}}, st::encode_floats(st::Dtype::F32, x)}}));
  try {
    st::Model::open(dir / "m.index.json");
    FAIL();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'x' is in two shards"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// ---- lowbit's packed files --------------------------------------------------------------------

std::vector<float> normal(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(PackedSafetensors, PackedTensorsLoadBackWithoutRepackingAndOthersStayFloat) {
  const fs::path dir = temp_dir("packed");
  const std::vector<float> w = normal(2 * 3 * 40, 1), n = normal(40, 2);
  const std::vector<std::string> formats{"nvfp4", "mxfp6_e2m3", "nf4_b64", "int4_b32_fp16"};
  std::vector<lowbit::packed::TensorPlan> plans;
  for (const auto& f : formats) plans.push_back({"w." + f, {2, 3, 40}, f, {}});
  plans.push_back({"norm", {40}, "", st::Dtype::F32});
  const auto [specs, meta] = lowbit::packed::plan_file(plans, {{"source", "test"}});
  std::vector<std::vector<std::byte>> packed;
  {
    st::Writer wr(dir / "p.safetensors", specs, meta);
    for (const auto& f : formats) {
      const auto m = lowbit::AnyPackedMatrix::pack(f, lowbit::MatrixRef<const float>::row_major(w.data(), 6, 40));
      packed.push_back(m.serialize());
      wr.write(packed.back());
    }
    wr.write_floats(n);
    wr.finish();
  }
  // Any safetensors reader sees U8 tensors and the metadata.
  const st::File plain = st::File::open(dir / "p.safetensors");
  EXPECT_EQ(plain.metadata().at("format"), "lowbit-packed");
  EXPECT_EQ(plain.metadata().at("lowbit.format:w.nvfp4"), "nvfp4");
  EXPECT_EQ(plain.metadata().at("source"), "test");
  EXPECT_EQ(plain.tensor("w.nvfp4").dtype, st::Dtype::U8);

  const auto pf = lowbit::packed::PackedFile::open(dir / "p.safetensors");
  for (std::size_t i = 0; i < formats.size(); ++i) {
    const std::string name = "w." + formats[i];
    ASSERT_EQ(pf.format(name), formats[i]);
    EXPECT_EQ(pf.shape(name), (std::vector<std::int64_t>{2, 3, 40}));
    const lowbit::AnyPackedMatrix m = pf.load(name);
    EXPECT_EQ(m.serialize(), packed[i]) << name;  // the same bytes: nothing was requantised
    std::vector<float> want(w.size());
    lowbit::Quantizer(formats[i]).fake_quant(lowbit::MatrixRef<const float>::row_major(w.data(), 6, 40),
                                             lowbit::MatrixRef<float>::row_major(want.data(), 6, 40));
    EXPECT_EQ(m.unpack(), want) << name;
  }
  EXPECT_FALSE(pf.format("norm").has_value());
  EXPECT_EQ(st::to_float(pf.file().tensor("norm")), n);
  const auto typed = pf.load_as("w.nvfp4", lowbit::NVFP4{});
  EXPECT_EQ(typed.rows(), 6);
  EXPECT_THROW(pf.load_as("w.nvfp4", lowbit::MXFP4{}), lowbit::Error);  // fingerprint differs
  EXPECT_THROW(pf.load("norm"), lowbit::Error);
  fs::remove_all(dir);
}

TEST(PackedSafetensors, EveryStandardFormatWithCodesRoundTrips) {
  const std::vector<float> w = normal(5 * 70, 9);
  const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), 5, 70);
  std::size_t packed_formats = 0;
  for (const std::string& f : lowbit::standard_format_names()) {
    const lowbit::Quantizer q(f);
    if (!q.info().has_codes) continue;
    const std::vector<lowbit::packed::TensorPlan> plans{{"w", {5, 70}, f, {}}};
    if (q.info().block_size == lowbit::kPerTensor) {  // one scale per tensor: not row-packable
      EXPECT_THROW(lowbit::packed::plan_file(plans), lowbit::Error) << f;
      continue;
    }
    const auto [specs, meta] = lowbit::packed::plan_file(plans);
    const auto bytes = lowbit::AnyPackedMatrix::pack(q, in).serialize();
    ASSERT_EQ(specs[0].bytes(), bytes.size()) << f;  // the size planned before packing
    const auto pf = lowbit::packed::PackedFile::from_bytes(st::serialize({{specs[0], bytes}}, meta));
    std::vector<float> want(w.size());
    q.fake_quant(in, lowbit::MatrixRef<float>::row_major(want.data(), 5, 70));
    const std::vector<float> got = pf.load("w").unpack();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * sizeof(float)), 0) << f;
    ++packed_formats;
  }
  EXPECT_GE(packed_formats, 30u);
}

TEST(PackedSafetensors, CorruptOrMislabelledPackedTensorsAreRefused) {
  const std::vector<float> w = normal(4 * 64, 5);
  const auto m = lowbit::AnyPackedMatrix::pack("mxfp4", lowbit::MatrixRef<const float>::row_major(w.data(), 4, 64));
  auto file = [&](std::vector<std::byte> bytes, const std::string& shape, const std::string& fmt = "mxfp4") {
    return st::serialize({{{"w", st::Dtype::U8, {static_cast<std::int64_t>(bytes.size())}}, bytes}},
                         {{"format", "lowbit-packed"}, {"lowbit.version", "1"}, {"lowbit.format:w", fmt}, {"lowbit.shape:w", shape}});
  };
  auto error = [](const std::vector<std::byte>& f) {
    try {
      lowbit::packed::PackedFile::from_bytes(f, "p.safetensors").load("w");
    } catch (const lowbit::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error(file(m.serialize(), "[4, 64]")), "");
  std::vector<std::byte> flipped = m.serialize();
  flipped[100] ^= std::byte{1};
  EXPECT_NE(error(file(flipped, "[4, 64]")).find("CRC"), std::string::npos);
  EXPECT_NE(error(file(m.serialize(), "[2, 64]")).find("recorded shape [2, 64]"), std::string::npos);
  EXPECT_NE(error(file(m.serialize(), "[4, 64]", "nvfp4")).find("p.safetensors: tensor 'w'"), std::string::npos);
  const auto not_packed = st::serialize({{{"w", st::Dtype::U8, {1}}, std::vector<std::byte>(1)}});
  EXPECT_THROW(lowbit::packed::PackedFile::from_bytes(not_packed), lowbit::Error);
}

}  // namespace
