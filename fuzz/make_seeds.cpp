// Writes the seed corpora of the fuzz targets: small valid inputs of every kind, made with
// lowbit's own writers, into <dir>/<target>/. Usage: lowbit-fuzz-seeds <dir>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_formats.hpp"
#include "lowbit/io/gguf.hpp"
#include "lowbit/io/npy.hpp"
#include "lowbit/io/packed_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/quant/registry.hpp"

namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::byte>;

class Corpus {
 public:
  Corpus(const fs::path& root, const std::string& target) : dir_(root / target) { fs::create_directories(dir_); }
  void add(const Bytes& b) {
    std::ofstream out(dir_ / ("seed" + std::to_string(n_++)), std::ios::binary);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  void add(const std::string& s) { add(Bytes(reinterpret_cast<const std::byte*>(s.data()),
                                             reinterpret_cast<const std::byte*>(s.data() + s.size()))); }

 private:
  fs::path dir_;
  int n_ = 0;
};

void put_u32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::byte>(v >> (8 * i)));
}

std::vector<float> student_t(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(4.0f);
  std::vector<float> v(n);
  for (float& x : v) x = t(rng);
  return v;
}

Bytes float_bytes(const std::vector<float>& v) {
  Bytes b;
  for (float x : v) put_u32(b, std::bit_cast<std::uint32_t>(x));
  return b;
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng());
  return b;
}

void format_names(const fs::path& root) {
  Corpus c(root, "fuzz_format_name");
  for (const std::string& n : lowbit::standard_format_names()) c.add(n);
  // (findings once: e4m0_..._fn, the NaN code without mantissa bits; bm_e2m22, a 22-bit
  // mantissa rounded by float addition)
  for (const char* n : {"minifloat_e4m3_bias5_nosub_fn_sat", "minifloat_e4m0_bias5_nosub_fn_sat", "bm_e2m22_b4",
                        "minifloat_e8m23", "mxint8_b64_ceil", "mxfp4_b16_even", "int3_pt_e8m0", "uint3_pc_bf16",
                        "fixed6_f2", "int16", "bl_w4_b8", "bm_e3m2_b32", "fp6_e2m3_b16_e4m3", "fp8_e5m2_pc_bf16",
                        "bfp16_b1", "nf4_b1048576"})
    c.add(std::string(n));
}

void npy_files(const fs::path& root) {
  namespace npy = lowbit::npy;
  Corpus c(root, "fuzz_npy");
  const std::vector<float> v = student_t(6, 1);
  c.add(npy::serialize(npy::make_float32(2, 3, v.data())));
  c.add(npy::serialize(npy::make_float32(1, 1, v.data())));
  for (const char* descr : {"<f2", "<f8", "|i1", "|u1", "<i2", "<u4", "<i8"}) {
    npy::NpyArray a;
    a.dtype = descr;
    a.shape = {3, 2};
    a.fortran_order = descr[1] == 'f';
    a.data = random_bytes(static_cast<std::size_t>(6 * (descr[2] - '0')), 2);
    c.add(npy::serialize(a));
  }
  npy::NpyArray scalar;  // 0-d
  scalar.dtype = "<f4";
  scalar.data = float_bytes({1.5f});
  c.add(npy::serialize(scalar));
  // Big-endian, written by hand (lowbit writes little-endian only).
  std::string header = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xFF);
  file += static_cast<char>(header.size() >> 8);
  file += header;
  file += std::string("\x3f\xc0\x00\x00\xc0\x20\x00\x00", 8);  // 1.5, -2.5
  c.add(file);
}

void safetensors_files(const fs::path& root) {
  namespace st = lowbit::safetensors;
  Corpus c(root, "fuzz_safetensors");
  const std::vector<float> v = student_t(8, 3);
  c.add(st::serialize({{{"w", st::Dtype::F32, {2, 4}}, float_bytes(v)}}, {{"note", "seed"}}));
  std::vector<std::pair<st::TensorSpec, Bytes>> many;
  for (st::Dtype d : {st::Dtype::F16, st::Dtype::BF16, st::Dtype::F8_E4M3, st::Dtype::F8_E5M2, st::Dtype::F64,
                      st::Dtype::I8, st::Dtype::U16, st::Dtype::I64, st::Dtype::BOOL}) {
    const st::TensorSpec s{"t_" + std::string(st::dtype_name(d)), d, {2, 3}};
    Bytes b = random_bytes(static_cast<std::size_t>(s.bytes()), static_cast<unsigned>(d));
    if (d == st::Dtype::BOOL)
      for (auto& x : b) x &= std::byte{1};
    many.emplace_back(s, std::move(b));
  }
  c.add(st::serialize(many));
  c.add(st::serialize({{{"empty", st::Dtype::F32, {0, 4}}, {}}, {{"scalar", st::Dtype::F32, {}}, float_bytes({2.0f})}}));
  // Packed files: a tensor packed in lowbit's layout, described by the file's metadata.
  for (const char* fmt : {"mxfp4", "int8_b32_fp16", "nf4_b64"}) {
    const std::vector<float> w = student_t(3 * 64, 4);
    const Bytes packed = lowbit::AnyPackedMatrix::pack(fmt, lowbit::MatrixRef<const float>::row_major(w.data(), 3, 64)).serialize();
    auto [specs, meta] = lowbit::packed::plan_file({{"layer.weight", {3, 64}, fmt}, {"norm", {4}, ""}});
    c.add(st::serialize({{specs[0], packed}, {specs[1], float_bytes({1, 2, 3, 4})}}, meta));
  }
}

void gguf_files(const fs::path& root) {
  namespace gguf = lowbit::gguf;
  namespace ggml = lowbit::ggml;
  Corpus c(root, "fuzz_gguf");
  const std::vector<gguf::KeyValue> meta = {
      {"general.architecture", gguf::Value::of_string("llama")},
      {"general.alignment", gguf::Value::of_u32(32)},
      {"llama.context_length", gguf::Value::of_u64(128)},
      {"tokenizer.scores", gguf::Value::of_array(gguf::ValueType::FLOAT32, {gguf::Value::of_f32(0.5f), gguf::Value::of_f32(-1.0f)})}};
  std::vector<std::pair<gguf::TensorSpec, Bytes>> tensors;
  for (ggml::Type t : {ggml::Type::F32, ggml::Type::F16, ggml::Type::BF16, ggml::Type::Q8_0, ggml::Type::Q4_0,
                       ggml::Type::Q4_1, ggml::Type::MXFP4}) {
    const gguf::TensorSpec s{"blk.0." + std::to_string(static_cast<int>(t)), {64, 2}, static_cast<std::uint32_t>(t)};
    tensors.emplace_back(s, random_bytes(static_cast<std::size_t>(s.bytes()), static_cast<unsigned>(t) + 10));
  }
  c.add(gguf::serialize(meta, tensors));
  c.add(gguf::serialize(meta, {tensors[0]}));
  c.add(gguf::serialize({}, {tensors[3]}));
}

void packed_matrices(const fs::path& root) {
  Corpus c(root, "fuzz_packed_matrix");
  for (std::size_t i = 0; i < lowbit_fuzz::kPackedFormats.size(); ++i) {
    const std::int64_t rows = 1 + static_cast<std::int64_t>(i % 3), cols = 64 + 32 * static_cast<std::int64_t>(i % 2);
    std::vector<float> w = student_t(static_cast<std::size_t>(rows * cols), static_cast<unsigned>(i));
    w[0] = 0.0f;
    Bytes b{static_cast<std::byte>(i)};
    const Bytes p = lowbit::AnyPackedMatrix::pack(lowbit_fuzz::kPackedFormats[i],
                                                  lowbit::MatrixRef<const float>::row_major(w.data(), rows, cols))
                        .serialize();
    b.insert(b.end(), p.begin(), p.end());
    c.add(b);
  }
}

void fake_quant_inputs(const fs::path& root) {
  Corpus c(root, "fuzz_fake_quant_simd");
  std::vector<float> special = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, std::bit_cast<float>(0x7fa00001u),
                                std::bit_cast<float>(0x00000001u), std::bit_cast<float>(0x807fffffu), 65504.0f,
                                448.0f, 6.0f, 3.4e38f, -1e-30f, 0.5f, 0.25f, 1.0f};
  for (std::size_t i = 0; i < lowbit_fuzz::kFakeQuantFormats.size(); ++i) {
    Bytes b{static_cast<std::byte>(i), static_cast<std::byte>(i % 4)};
    for (int k = 0; k < 8; ++k) b.push_back(static_cast<std::byte>(17 * k + static_cast<int>(i)));
    b.push_back(static_cast<std::byte>(i % 3));  // rows
    std::vector<float> v = student_t(64 + 16 * (i % 5), static_cast<unsigned>(i));
    for (std::size_t k = 0; k < special.size() && k < v.size(); k += 1) v[(k * 7) % v.size()] = special[k];
    const Bytes f = float_bytes(v);
    b.insert(b.end(), f.begin(), f.end());
    c.add(b);
  }
}

void matmul_inputs(const fs::path& root) {
  Corpus c(root, "fuzz_matmul");
  for (unsigned i = 0; i < 2 * lowbit_fuzz::kMatmulWeightFormats.size(); ++i) {
    // weight format, activation format, N, M, K, bias: then values
    Bytes b{static_cast<std::byte>(i), static_cast<std::byte>(i % 7), static_cast<std::byte>(i),
            static_cast<std::byte>(16 + i), static_cast<std::byte>(31 + 32 * (i % 5)), static_cast<std::byte>(i)};
    const Bytes r = random_bytes(2 * 5 * 160 + 2 * 40 * 160, i);
    b.insert(b.end(), r.begin(), r.end());
    c.add(b);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  format_names(root);
  npy_files(root);
  safetensors_files(root);
  gguf_files(root);
  packed_matrices(root);
  fake_quant_inputs(root);
  matmul_inputs(root);
  return 0;
}
