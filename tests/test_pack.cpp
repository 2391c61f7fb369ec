// Packed storage: dense bit fields, PackedMatrix layout and memory, unpack vs fake_quant,
// codes vs quantize, serialisation and its validation.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/pack/bit_stream.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/registry.hpp"

namespace {

using lowbit::MatrixRef;

// The spec's bit order, one bit at a time: stream bit j is bit (j % 8) of byte j / 8.
bool model_bit(const std::uint8_t* p, std::uint64_t j) { return (p[j / 8] >> (j % 8)) & 1u; }
std::uint32_t model_field(const std::uint8_t* p, std::uint64_t bit, int w) {
  std::uint32_t v = 0;
  for (int i = 0; i < w; ++i) v |= static_cast<std::uint32_t>(model_bit(p, bit + static_cast<std::uint64_t>(i))) << i;
  return v;
}

// ---- bit stream -------------------------------------------------------------------------

TEST(BitStream, RoundTripEveryWidthAndLength) {
  std::mt19937_64 rng(7);
  for (int w = 1; w <= 32; ++w) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{8},
                          std::size_t{9}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                          static_cast<std::size_t>(rng() % 300 + 1), static_cast<std::size_t>(rng() % 300 | 1)}) {
      std::vector<std::uint32_t> v(n);
      const std::uint64_t lim = std::uint64_t{1} << w;
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint32_t>(rng() % lim);
      if (n > 0) v[0] = static_cast<std::uint32_t>(lim - 1);  // all ones
      const std::size_t nbytes = (n * static_cast<std::size_t>(w) + 7) / 8;
      ASSERT_EQ(lowbit::packed_bytes(n, w), nbytes);
      // Guard bytes after the buffer must stay untouched.
      std::vector<std::uint8_t> buf(nbytes + 8, 0xA5);
      lowbit::pack_fields(v, w, std::span<std::uint8_t>(buf.data(), nbytes));
      for (std::size_t i = nbytes; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xA5) << "w=" << w << " n=" << n;
      for (std::size_t i = 0; i < n; ++i)
        ASSERT_EQ(model_field(buf.data(), i * static_cast<std::uint64_t>(w), w), v[i]) << "w=" << w << " i=" << i;
      // Bits after the last field in the last byte keep their value (nothing else written).
      const std::uint8_t pattern = 0xA5;
      for (std::uint64_t j = n * static_cast<std::uint64_t>(w); j < nbytes * 8; ++j)
        ASSERT_EQ(model_bit(buf.data(), j), ((pattern >> (j % 8)) & 1u) != 0);
      std::vector<std::uint32_t> back(n, 0xDEADBEEF);
      lowbit::unpack_fields(std::span<const std::uint8_t>(buf.data(), nbytes), w, back);
      ASSERT_EQ(back, v) << "w=" << w << " n=" << n;
    }
  }
}

TEST(BitStream, WriteFieldKeepsNeighbours) {
  std::mt19937_64 rng(11);
  for (int w = 1; w <= 32; ++w) {
    for (int t = 0; t < 20; ++t) {
      std::vector<std::uint8_t> buf(16);
      for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
      const std::vector<std::uint8_t> before = buf;
      const std::uint64_t bit = rng() % 40;
      const auto v = static_cast<std::uint32_t>(rng() & lowbit::field_mask(w));
      lowbit::write_field(buf.data(), bit, w, v);
      for (std::uint64_t j = 0; j < 128; ++j) {
        const bool want = (j >= bit && j < bit + static_cast<std::uint64_t>(w)) ? ((v >> (j - bit)) & 1u)
                                                                                : model_bit(before.data(), j);
        ASSERT_EQ(model_bit(buf.data(), j), want) << "w=" << w << " bit=" << bit << " j=" << j;
      }
      ASSERT_EQ(lowbit::read_field(buf.data(), bit, w), v);
    }
  }
}

TEST(BitStream, RejectsBadWidthsAndValuesAndSmallBuffers) {
  std::vector<std::uint8_t> buf(8);
  const std::vector<std::uint32_t> v{1, 2, 8};
  EXPECT_THROW(lowbit::pack_fields(v, 3, buf), lowbit::Error);  // 8 needs 4 bits
  EXPECT_THROW(lowbit::pack_fields(v, 0, buf), lowbit::Error);
  EXPECT_THROW(lowbit::pack_fields(v, 33, buf), lowbit::Error);
  EXPECT_THROW(lowbit::pack_fields(v, 24, std::span<std::uint8_t>(buf.data(), 8)), lowbit::Error);  // 9 bytes needed
  std::vector<std::uint32_t> out(3);
  EXPECT_THROW(lowbit::unpack_fields(std::span<const std::uint8_t>(buf.data(), 1), 4, out), lowbit::Error);
}

// ---- packed matrices --------------------------------------------------------------------

// Widths from the formats' definitions (not from the library): element, scale, zero point, block.
struct FormatCase {
  const char* name;
  int we, ws, wz;
  std::int64_t block;  // 0: the whole row (per channel); 1: no scale
};
const FormatCase kFormats[] = {
    {"mxfp4", 4, 8, 0, 32},          {"mxfp6_e3m2", 6, 8, 0, 32},      {"mxfp6_e2m3", 6, 8, 0, 32},
    {"mxfp8_e4m3", 8, 8, 0, 32},     {"mxfp8_e5m2", 8, 8, 0, 32},      {"mxint8", 8, 8, 0, 32},
    {"mxint4", 4, 8, 0, 32},         {"bfp8_b16", 8, 8, 0, 16},        {"bfp8_b32", 8, 8, 0, 32},
    {"bfp6_b16", 6, 8, 0, 16},       {"bfp6_b32", 6, 8, 0, 32},        {"bfp4_b16", 4, 8, 0, 16},
    {"bfp4_b32", 4, 8, 0, 32},       {"bfp3_b16", 3, 8, 0, 16},        {"bfp5_b32", 5, 8, 0, 32},
    {"int8_b32_fp16", 8, 16, 0, 32}, {"int8_b32_bf16", 8, 16, 0, 32},  {"int8_b32_e8m0", 8, 8, 0, 32},
    {"int4_b32_fp16", 4, 16, 0, 32}, {"int4_b32_bf16", 4, 16, 0, 32},  {"int4_b32_e8m0", 4, 8, 0, 32},
    {"int8_b32_fp32", 8, 32, 0, 32}, {"uint4_b32_fp16", 4, 16, 4, 32}, {"uint8_b16_bf16", 8, 16, 8, 16},
    {"nvfp4", 4, 8, 0, 16},          {"nf4_b64", 4, 32, 0, 64},        {"sf4_b64", 4, 32, 0, 64},
    {"bm_e4m3_b16", 8, 8, 0, 16},    {"bm_e2m3_b16", 6, 8, 0, 16},     {"bl_w8_b16", 8, 8, 0, 16},
    {"bl_w5_b16", 5, 8, 0, 16},      {"fp8_e4m3_b16_e4m3", 8, 8, 0, 16}, {"int4_pc_fp16", 4, 16, 0, 0},
    {"fp8_e4m3", 8, 0, 0, 1},        {"fp6_e2m3", 6, 0, 0, 1},         {"int5", 5, 0, 0, 1},
    {"mxint2", 2, 8, 0, 32},
};

struct Shape {
  std::int64_t m, k;
};
const Shape kShapes[] = {{1, 1}, {1, 33}, {3, 1}, {5, 70}, {7, 129}, {4, 64}, {2, 200}, {0, 7}, {3, 0}};

std::vector<float> weights(std::int64_t m, std::int64_t k, std::uint64_t seed, bool specials = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(m * k));
  for (std::int64_t r = 0; r < m; ++r) {
    const float spread = std::ldexp(1.0f, static_cast<int>(rng() % 24) - 12);
    for (std::int64_t c = 0; c < k; ++c) {
      float x = nd(rng) * spread;
      if (rng() % 17 == 0) x = 0.0f;
      if (rng() % 29 == 0) x *= 50.0f;  // outliers
      w[static_cast<std::size_t>(r * k + c)] = x;
    }
  }
  if (specials && w.size() > 5) {
    w[1] = std::numeric_limits<float>::quiet_NaN();
    w[w.size() - 2] = std::numeric_limits<float>::infinity();
  }
  return w;
}

void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<std::uint32_t>(a[i]), std::bit_cast<std::uint32_t>(b[i]))
        << what << " at " << i << ": " << a[i] << " vs " << b[i];
}

template <class F>
void check_packed(const F& fmt, const FormatCase& fc, const Shape& s, const lowbit::QuantOptions& opt, bool specials) {
  const std::string what = std::string(fc.name) + " " + std::to_string(s.m) + "x" + std::to_string(s.k);
  const auto w = weights(s.m, s.k, static_cast<std::uint64_t>(s.m * 1000 + s.k), specials);
  const auto in = MatrixRef<const float>::row_major(w.data(), s.m, s.k);
  if (specials) {  // formats that cannot encode NaN refuse it: packing must refuse it too
    std::vector<float> tmp(w.size());
    try {
      lowbit::fake_quant(fmt, in, MatrixRef<float>::row_major(tmp.data(), s.m, s.k), opt);
    } catch (const lowbit::Error&) {
      EXPECT_THROW(lowbit::PackedMatrix<F>::pack(fmt, in, opt), lowbit::Error) << what;
      return;
    }
  }
  const auto pm = lowbit::PackedMatrix<F>::pack(fmt, in, opt);
  ASSERT_EQ(pm.rows(), s.m);
  ASSERT_EQ(pm.cols(), s.k);

  // unpack(pack(W)) == fake_quant(W), bit for bit.
  std::vector<float> fq(w.size());
  lowbit::fake_quant(fmt, in, MatrixRef<float>::row_major(fq.data(), s.m, s.k), opt);
  expect_same_bits(pm.unpack(), fq, what + " unpack vs fake_quant");

  // Codes and headers are quantize()'s.
  const lowbit::QuantizedTensor qt = lowbit::quantize(fmt, in, opt);
  const std::int64_t block = fc.block == 0 ? std::max<std::int64_t>(s.k, 1) : fc.block;
  const std::int64_t nb = s.k == 0 ? 0 : (s.k + block - 1) / block;
  ASSERT_EQ(pm.blocks_per_row(), nb) << what;
  for (std::int64_t r = 0; r < s.m; ++r) {
    for (std::int64_t c = 0; c < s.k; ++c) ASSERT_EQ(pm.code(r, c), qt.codes[static_cast<std::size_t>(r * s.k + c)]) << what;
    for (std::int64_t b = 0; b < nb; ++b) {
      const auto h = pm.header(r, b), q = qt.headers[static_cast<std::size_t>(r * nb + b)];
      ASSERT_EQ(h.scale, q.scale) << what << " block " << r << "," << b;
      ASSERT_EQ(h.zero_point, q.zero_point) << what << " block " << r << "," << b;
    }
  }
  const auto back = pm.to_quantized();
  EXPECT_EQ(back.codes, qt.codes) << what;
  EXPECT_EQ(back.blocking, qt.blocking) << what;
  EXPECT_EQ(std::bit_cast<std::uint32_t>(back.tensor.tensor_scale), std::bit_cast<std::uint32_t>(qt.tensor.tensor_scale));
  ASSERT_EQ(back.headers.size(), qt.headers.size()) << what;
  for (std::size_t i = 0; i < qt.headers.size(); ++i) {
    ASSERT_EQ(back.headers[i].scale, qt.headers[i].scale) << what;
    ASSERT_EQ(back.headers[i].zero_point, qt.headers[i].zero_point) << what;
  }

  // The documented layout, read bit by bit: codes, then scales, then zero points.
  const std::uint64_t row_bits = static_cast<std::uint64_t>(s.k * fc.we + nb * (fc.ws + fc.wz));
  for (std::int64_t r = 0; r < s.m; ++r) {
    const std::uint8_t* p = pm.row_data(r);
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u) << what;
    for (std::int64_t c = 0; c < s.k; ++c)
      ASSERT_EQ(model_field(p, static_cast<std::uint64_t>(c * fc.we), fc.we), qt.codes[static_cast<std::size_t>(r * s.k + c)]);
    for (std::int64_t b = 0; b < nb && fc.ws > 0; ++b) {
      const auto& q = qt.headers[static_cast<std::size_t>(r * nb + b)];
      ASSERT_EQ(model_field(p, static_cast<std::uint64_t>(s.k * fc.we + b * fc.ws), fc.ws), q.scale) << what;
      if (fc.wz > 0) {
        ASSERT_EQ(model_field(p, static_cast<std::uint64_t>(s.k * fc.we + nb * fc.ws + b * fc.wz), fc.wz), q.zero_point);
      }
    }
  }

  // Memory: payload bits exactly, rows rounded to bytes, under one cache line of padding per row.
  EXPECT_EQ(pm.payload_bits(), static_cast<std::uint64_t>(s.m) * row_bits) << what;
  const std::uint64_t row_bytes = (row_bits + 7) / 8;
  const std::uint64_t stride = (row_bytes + 63) / 64 * 64;
  EXPECT_EQ(pm.bytes(), static_cast<std::uint64_t>(s.m) * stride) << what;
  EXPECT_EQ(pm.padding_bytes(), static_cast<std::uint64_t>(s.m) * (stride - row_bytes)) << what;
  EXPECT_LE(pm.padding_bytes(), static_cast<std::uint64_t>(s.m) * 63) << what;
  if (fc.block > 1 && s.k % fc.block == 0) {
    EXPECT_DOUBLE_EQ(static_cast<double>(pm.payload_bits()), fmt.bits_per_element(fc.block) * static_cast<double>(s.m * s.k));
  }

  // Serialise and back.
  const auto bytes = pm.serialize();
  EXPECT_EQ(bytes.size(), 64 + static_cast<std::size_t>(static_cast<std::uint64_t>(s.m) * row_bytes)) << what;
  const auto pm2 = lowbit::PackedMatrix<F>::deserialize(fmt, bytes);
  expect_same_bits(pm2.unpack(), fq, what + " after deserialize");
  EXPECT_EQ(pm2.to_quantized().codes, qt.codes);
  EXPECT_EQ(pm2.to_quantized().blocking, qt.blocking);
  EXPECT_EQ(pm2.serialize(), bytes) << what;
}

TEST(PackedMatrix, EveryFormatAndShape) {
  for (const auto& fc : kFormats) {
    const lowbit::Quantizer q(fc.name);
    for (const auto& s : kShapes) {
      std::visit(
          [&](const auto& f) {
            if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) check_packed(f, fc, s, {}, false);
          },
          q.format());
      if (HasFatalFailure()) return;
    }
  }
}

TEST(PackedMatrix, StochasticRoundingAndSpecials) {
  lowbit::QuantOptions opt;
  opt.rounding = lowbit::Rounding::Stochastic;
  opt.seed = 1234;
  for (const auto& fc : kFormats) {
    const lowbit::Quantizer q(fc.name);
    std::visit(
        [&](const auto& f) {
          if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
            check_packed(f, fc, {5, 70}, opt, false);
            check_packed(f, fc, {3, 45}, {}, true);
          }
        },
        q.format());
    if (HasFatalFailure()) return;
  }
}

TEST(PackedMatrix, CustomBlockSizeAndPerChannel) {
  const auto w = weights(4, 50, 3);
  const auto in = MatrixRef<const float>::row_major(w.data(), 4, 50);
  lowbit::QuantOptions opt;
  opt.blocking = lowbit::Blocking::along(1, 7);
  const auto pm = lowbit::pack_matrix(lowbit::MXFP4{}, in, opt);
  EXPECT_EQ(pm.block(), 7);
  EXPECT_EQ(pm.payload_bits(), 4u * (50u * 4u + 8u * 8u));
  std::vector<float> fq(w.size());
  lowbit::fake_quant(lowbit::MXFP4{}, in, MatrixRef<float>::row_major(fq.data(), 4, 50), opt);
  expect_same_bits(pm.unpack(), fq, "mxfp4 block 7");
  const auto pm2 = decltype(pm)::deserialize(lowbit::MXFP4::format, pm.serialize());
  EXPECT_EQ(pm2.block(), 7);
  expect_same_bits(pm2.unpack(), fq, "mxfp4 block 7 deserialized");
}

TEST(PackedMatrix, StridedInputAndOutput) {
  const std::int64_t m = 6, k = 37;
  const auto w = weights(m, k, 5);
  std::vector<float> cm(w.size());  // column-major copy
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t c = 0; c < k; ++c) cm[static_cast<std::size_t>(c * m + r)] = w[static_cast<std::size_t>(r * k + c)];
  const auto a = lowbit::pack_matrix(lowbit::NVFP4{}, MatrixRef<const float>::row_major(w.data(), m, k));
  const auto b = lowbit::pack_matrix(lowbit::NVFP4{}, MatrixRef<const float>::col_major(cm.data(), m, k));
  EXPECT_EQ(a.serialize(), b.serialize());
  std::vector<float> out(w.size());
  b.unpack(MatrixRef<float>::col_major(out.data(), m, k));
  const auto ref = a.unpack();
  for (std::int64_t r = 0; r < m; ++r)
    for (std::int64_t c = 0; c < k; ++c)
      ASSERT_EQ(std::bit_cast<std::uint32_t>(out[static_cast<std::size_t>(c * m + r)]),
                std::bit_cast<std::uint32_t>(ref[static_cast<std::size_t>(r * k + c)]));
  std::vector<float> small(4);
  EXPECT_THROW(a.unpack(MatrixRef<float>::row_major(small.data(), 2, 2)), lowbit::Error);
}

TEST(PackedMatrix, RejectsOtherBlockingsAndBadTensors) {
  const auto w = weights(4, 32, 9);
  const auto in = MatrixRef<const float>::row_major(w.data(), 4, 32);
  for (const auto& b : {lowbit::Blocking::per_tensor(), lowbit::Blocking::along(0, 2), lowbit::Blocking::tiles(2, 2),
                        lowbit::Blocking::per_channel(0)}) {
    lowbit::QuantOptions opt;
    opt.blocking = b;
    EXPECT_THROW(lowbit::pack_matrix(lowbit::MXFP4{}, in, opt), lowbit::Error);
  }
  EXPECT_THROW(lowbit::pack_matrix(lowbit::FP8_E4M3_PER_TENSOR{}, in), lowbit::Error);  // per-tensor default
  const auto& fmt = lowbit::MXFP4::format;
  using PM = lowbit::PackedMatrix<lowbit::MinifloatFormat>;
  auto qt = lowbit::quantize(fmt, in);
  {
    auto bad = qt;
    bad.codes[3] = 16;  // does not fit in 4 bits
    EXPECT_THROW(PM::pack(fmt, bad), lowbit::Error);
  }
  {
    auto bad = qt;
    bad.headers[1].scale = 256;
    EXPECT_THROW(PM::pack(fmt, bad), lowbit::Error);
  }
  {
    auto bad = qt;
    bad.headers.pop_back();
    EXPECT_THROW(PM::pack(fmt, bad), lowbit::Error);
  }
  {
    auto bad = qt;
    bad.codes.pop_back();
    EXPECT_THROW(PM::pack(fmt, bad), lowbit::Error);
  }
  const auto pm = PM::pack(fmt, qt);
  EXPECT_THROW((void)pm.code(4, 0), lowbit::Error);
  EXPECT_THROW((void)pm.code(0, 32), lowbit::Error);
  EXPECT_THROW((void)pm.header(0, 1), lowbit::Error);
  EXPECT_THROW((void)pm.header(-1, 0), lowbit::Error);
}

// ---- serialised form --------------------------------------------------------------------

void put(std::vector<std::byte>& b, std::size_t off, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + static_cast<std::size_t>(i)] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

// Bitwise CRC-32 (IEEE, reflected), straight from the polynomial.
std::uint32_t crc32_model(const std::vector<std::byte>& b, std::size_t skip_from, std::size_t skip_to) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto byte = (i >= skip_from && i < skip_to) ? 0u : std::to_integer<std::uint32_t>(b[i]);
    c ^= byte;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
// Rewrites the CRC so a test reaches the check of the field it edited.
void fix_crc(std::vector<std::byte>& b) { put(b, 56, crc32_model(b, 56, 60), 4); }

TEST(PackedMatrixSerialize, Crc32Model) {
  const char* s = "123456789";
  std::vector<std::byte> b;
  for (const char* p = s; *p; ++p) b.push_back(static_cast<std::byte>(*p));
  EXPECT_EQ(crc32_model(b, 0, 0), 0xCBF43926u);  // the standard check value
}

TEST(PackedMatrixSerialize, HeaderFieldsAtDocumentedOffsets) {
  const auto w = weights(3, 20, 21);
  const auto pm = lowbit::pack_matrix(lowbit::NVFP4{}, MatrixRef<const float>::row_major(w.data(), 3, 20));
  const auto b = pm.serialize();
  auto u = [&](std::size_t off, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(std::to_integer<std::uint8_t>(b[off + static_cast<std::size_t>(i)])) << (8 * i);
    return v;
  };
  EXPECT_EQ(std::memcmp(b.data(), "LBPK", 4), 0);
  EXPECT_EQ(u(4, 2), 1u);
  EXPECT_EQ(u(8, 8), 3u);
  EXPECT_EQ(u(16, 8), 20u);
  EXPECT_EQ(u(24, 8), 16u);
  EXPECT_EQ(u(32, 1), 4u);
  EXPECT_EQ(u(33, 1), 8u);
  EXPECT_EQ(u(34, 1), 0u);
  EXPECT_EQ(u(56, 4), crc32_model(b, 56, 60));
  EXPECT_EQ(u(48, 8), 3u * 12u);  // rows of 20*4 + 2*8 = 96 bits
  // NVFP4's tensor scale: amax / (6 * 448) over the finite values.
  float amax = 0.0f;
  for (float x : w) amax = std::max(amax, std::fabs(x));
  EXPECT_EQ(static_cast<std::uint32_t>(u(36, 4)), std::bit_cast<std::uint32_t>(static_cast<float>(amax / (6.0 * 448.0))));
}

template <class F>
void expect_rejected(const F& fmt, const std::vector<std::byte>& b, const std::string& what) {
  EXPECT_THROW(lowbit::PackedMatrix<F>::deserialize(fmt, b), lowbit::Error) << what;
}

TEST(PackedMatrixSerialize, EveryTruncationThrows) {
  for (const char* name : {"nvfp4", "uint4_b32_fp16", "bfp3_b16", "fp6_e2m3"}) {
    const lowbit::Quantizer q(name);
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) {
            const auto w = weights(3, 37, 4);
            const auto b = lowbit::PackedMatrix<F>::pack(f, MatrixRef<const float>::row_major(w.data(), 3, 37)).serialize();
            for (std::size_t len = 0; len < b.size(); ++len) {
              // A fresh allocation of exactly len bytes, so a read past it would be caught by sanitizers.
              const std::vector<std::byte> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(len));
              EXPECT_THROW(lowbit::PackedMatrix<F>::deserialize(f, cut), lowbit::Error) << name << " len " << len;
            }
            auto longer = b;
            longer.push_back(std::byte{0});
            expect_rejected(f, longer, std::string(name) + " trailing byte");
          }
        },
        q.format());
  }
}

TEST(PackedMatrixSerialize, FlippedHeaderFieldsThrow) {
  const auto w = weights(3, 20, 21);
  const auto& fmt = lowbit::NVFP4::format;
  const auto good = lowbit::pack_matrix(lowbit::NVFP4{}, MatrixRef<const float>::row_major(w.data(), 3, 20)).serialize();
  ASSERT_NO_THROW(lowbit::PackedMatrix<lowbit::MinifloatFormat>::deserialize(fmt, good));
  struct Edit {
    const char* what;
    std::size_t off;
    std::uint64_t v;
    int n;
  };
  const Edit edits[] = {
      {"magic", 0, 'X', 1},        {"version", 4, 2, 2},           {"element kind", 6, 2, 1},
      {"flags", 7, 1, 1},          {"rows", 8, 4, 8},              {"rows huge", 8, ~0ull, 8},
      {"cols", 16, 21, 8},         {"cols huge", 16, 1ull << 62, 8}, {"block", 24, 32, 8},
      {"block zero", 24, 0, 8},    {"element bits", 32, 8, 1},     {"scale bits", 33, 16, 1},
      {"zero-point bits", 34, 4, 1}, {"reserved", 35, 1, 1},       {"reserved tail", 60, 1, 4},
      {"tensor scale NaN", 36, 0x7FC00000u, 4}, {"tensor scale zero", 36, 0, 4},
      {"tensor scale negative", 36, 0xBF800000u, 4}, {"fingerprint", 40, 12345, 8},
      {"payload size", 48, 32, 8},
  };
  for (const auto& e : edits) {
    auto b = good;
    put(b, e.off, e.v, e.n);
    expect_rejected(fmt, b, e.what);
    fix_crc(b);
    expect_rejected(fmt, b, std::string(e.what) + " with a matching CRC");
  }
  {
    auto b = good;
    put(b, 56, 0, 4);
    expect_rejected(fmt, b, "CRC");
    b = good;
    b[70] ^= std::byte{0x10};  // a payload bit
    expect_rejected(fmt, b, "payload bit");
  }
  // Rows and payload changed together but the data is short: still refused.
  {
    auto b = good;
    put(b, 8, 4, 8);
    put(b, 48, 4 * 12, 8);
    fix_crc(b);
    expect_rejected(fmt, b, "rows + payload size");
  }
  // Non-zero bits after a row's payload (20*4 + 2*8 = 96 bits: no spare bits; use K = 19).
  {
    const auto w2 = weights(2, 19, 22);
    auto b = lowbit::pack_matrix(lowbit::NVFP4{}, MatrixRef<const float>::row_major(w2.data(), 2, 19)).serialize();
    // row bits = 76 + 16 = 92, 12 bytes, last 4 bits spare
    b[64 + 11] |= std::byte{0x80};
    fix_crc(b);
    expect_rejected(fmt, b, "padding bits");
  }
}

TEST(PackedMatrixSerialize, MismatchedFormatThrows) {
  const auto w = weights(2, 64, 8);
  const auto in = MatrixRef<const float>::row_major(w.data(), 2, 64);
  const auto mx = lowbit::pack_matrix(lowbit::MXFP4{}, in).serialize();
  // Same widths (4-bit elements, 8-bit E8M0 scale), other formats.
  expect_rejected(lowbit::mxint_format(4), mx, "mxint4");  // other element family
  expect_rejected(lowbit::mx_format(lowbit::FP4_E2M1::spec, lowbit::ScaleRule::Ceil), mx, "mxfp4 ceil rule");
  expect_rejected(lowbit::NF4::format, mx, "nf4");
  expect_rejected(lowbit::MXFP6_E2M3::format, mx, "mxfp6");
  const auto i4 = lowbit::pack_matrix(lowbit::int_block_e8m0_format(4, 32), in).serialize();
  expect_rejected(lowbit::mxint_format(4), i4, "int4 e8m0 read as mxint4");
  EXPECT_THROW(lowbit::AnyPackedMatrix::deserialize("int4_b32_e8m0", mx), lowbit::Error);
  EXPECT_THROW(lowbit::AnyPackedMatrix::deserialize("nf4_b64", mx), lowbit::Error);
  EXPECT_NO_THROW(lowbit::AnyPackedMatrix::deserialize("mxfp4", mx));
}

TEST(PackedMatrixSerialize, CodebookCodesPastTheTableThrow) {
  lowbit::CodebookSpec cb{};
  cb.values = {-1.0, 0.0, 1.0};
  cb.size = 3;  // 2-bit codes, code 3 unused
  const auto fmt = lowbit::codebook_format(cb, 8);
  const std::vector<float> w{0.5f, -1.0f, 1.0f, 0.0f};
  auto b = lowbit::pack_matrix(fmt, MatrixRef<const float>::row_major(w.data(), 1, 4)).serialize();
  ASSERT_NO_THROW(lowbit::PackedMatrix<lowbit::CodebookFormat>::deserialize(fmt, b));
  b[64] |= std::byte{0x03};  // code 0 := 3
  fix_crc(b);
  expect_rejected(fmt, b, "codebook code 3");
}

TEST(PackedMatrixSerialize, RandomCorruptionNeverCrashes) {
  const auto w = weights(3, 41, 30);
  const auto& fmt = lowbit::UINT4_B32_FP16::format;
  const auto good = lowbit::pack_matrix(lowbit::UINT4_B32_FP16{}, MatrixRef<const float>::row_major(w.data(), 3, 41)).serialize();
  std::mt19937_64 rng(99);
  int accepted = 0;
  for (int t = 0; t < 2000; ++t) {
    auto b = good;
    const std::size_t i = rng() % b.size();
    b[i] ^= static_cast<std::byte>(1u << (rng() % 8));
    try {
      const auto pm = lowbit::PackedMatrix<lowbit::FixedPointFormat>::deserialize(fmt, b);
      (void)pm.unpack();
      ++accepted;
    } catch (const lowbit::Error&) {
    }
  }
  EXPECT_EQ(accepted, 0);  // every header bit is checked (field checks, then the CRC)
}

// ---- run-time formats -------------------------------------------------------------------

TEST(AnyPackedMatrix, MatchesTypedPacking) {
  const auto w = weights(5, 77, 12);
  const auto in = MatrixRef<const float>::row_major(w.data(), 5, 77);
  for (const char* name : {"mxfp4", "mxfp6_e3m2", "bfp3_b16", "nvfp4", "nf4_b64", "uint4_b32_fp16", "bl_w8_b16", "fp8_e4m3"}) {
    const auto any = lowbit::AnyPackedMatrix::pack(name, in);
    EXPECT_EQ(any.name(), name);
    EXPECT_EQ(any.rows(), 5);
    EXPECT_EQ(any.cols(), 77);
    std::vector<float> fq(w.size());
    lowbit::Quantizer(name).fake_quant(in, MatrixRef<float>::row_major(fq.data(), 5, 77));
    expect_same_bits(any.unpack(), fq, name);
    const auto back = lowbit::AnyPackedMatrix::deserialize(name, any.serialize());
    EXPECT_EQ(back.serialize(), any.serialize()) << name;
    EXPECT_EQ(back.to_quantized().codes, lowbit::Quantizer(name).quantize(in).codes) << name;
    EXPECT_LE(any.padding_bytes(), 5u * 63u);
  }
  EXPECT_THROW(lowbit::AnyPackedMatrix::pack("mxfp3", in), lowbit::Error);
#if LOWBIT_HAS_MASE
  EXPECT_THROW(lowbit::AnyPackedMatrix::pack("mase_bfp_w6_b16", in), lowbit::Error);
#endif
}

}  // namespace

namespace {

// The row appender and extractor against the field-by-field functions: every width, start
// bits 0..7, lengths around the 32-bit store boundary; nothing after the last field touched.
TEST(BitStream, AppenderAndExtractorMatchFieldFunctions) {
  std::mt19937 rng(77);
  for (int width = 1; width <= 32; ++width) {
    for (int start = 0; start < 8; ++start) {
      for (int n : {0, 1, 2, 7, 31, 32, 33, 100}) {
        std::vector<std::uint32_t> v(static_cast<std::size_t>(n));
        const std::uint32_t mask = width == 32 ? 0xFFFFFFFFu : (1u << width) - 1u;
        for (auto& x : v) x = static_cast<std::uint32_t>(rng()) & mask;
        const std::size_t bytes = (static_cast<std::size_t>(start) + static_cast<std::size_t>(n) * width + 7) / 8;
        std::vector<std::uint8_t> a(bytes + 8, 0), b(bytes + 8, 0);
        a[0] = b[0] = static_cast<std::uint8_t>((1u << start) - 1u);  // bits before the start are kept
        lowbit::FieldAppender app(a.data(), static_cast<std::uint64_t>(start));
        for (std::uint32_t x : v) app.put(x, width);
        app.finish();
        for (int i = 0; i < n; ++i)
          lowbit::write_field(b.data(), static_cast<std::uint64_t>(start) + static_cast<std::uint64_t>(i) * width, width,
                              v[static_cast<std::size_t>(i)]);
        ASSERT_EQ(a, b) << "width " << width << " start " << start << " n " << n;
        lowbit::FieldExtractor fx(a.data(), static_cast<std::uint64_t>(start), a.data() + bytes);
        for (int i = 0; i < n; ++i) ASSERT_EQ(fx.get(width), v[static_cast<std::size_t>(i)]) << width << " " << i;
      }
    }
  }
}

}  // namespace

namespace {

// Packing straight from floats (row by row through the SIMD kernels where they apply) gives
// exactly the bytes of packing quantize()'s output, whatever the path.
// pack_into over a matrix that held other values (larger, smaller, another shape) gives the
// bytes of a fresh pack, padding included, on every path.
TEST(PackedMatrix, PackIntoReusesStorageAndWritesEveryByte) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  auto random = [&](int n) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = nd(rng);
    return v;
  };
  for (lowbit::SimdPath p : {lowbit::SimdPath::Scalar, lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512}) {
    if (!lowbit::cpu_supports(p)) continue;
    lowbit::force_simd_path(p);
    for (const char* name : {"int8_b32_fp16", "mxfp4", "int4_b32_fp16", "mxfp6_e2m3", "uint4_b32_fp16"}) {
      std::visit(
          [&](const auto& f) {
            if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
              using P = lowbit::PackedMatrix<std::decay_t<decltype(f)>>;
              P m;
              for (const auto& shape : std::vector<std::pair<int, int>>{{9, 300}, {4, 77}, {9, 300}, {1, 5}, {6, 64}}) {
                const std::vector<float> w = random(shape.first * shape.second);
                const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), shape.first, shape.second);
                P::pack_into(f, in, m);
                const P fresh = P::pack(f, in);
                ASSERT_EQ(m.bytes(), fresh.bytes());
                for (int r = 0; r < shape.first; ++r)  // whole rows: fields and padding
                  EXPECT_EQ(std::memcmp(std::as_const(m).row_data(r), fresh.row_data(r), m.row_stride_bytes()), 0)
                      << name << " " << shape.first << "x" << shape.second << " row " << r << " "
                      << lowbit::to_string(p);
              }
            }
          },
          lowbit::Quantizer(name).format());
    }
  }
  lowbit::clear_forced_simd_path();
}

TEST(PackedMatrix, LargeMatricesFromTwoThreadsAreExact) {
  // A matrix larger than the caches (8 MiB of codes), packed from two threads in batches of
  // rows of an odd length (most code stores misaligned): the bytes are the scalar reference's.
  const int rows = 1201, cols = 7001;
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(rows) * cols);
  for (auto& v : w) v = nd(rng);
  const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), rows, cols);
  for (const char* name : {"int8_b32_fp16", "mxint8"}) {
    std::visit(
        [&](const auto& f) {
          if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
            using P = lowbit::PackedMatrix<std::decay_t<decltype(f)>>;
            lowbit::QuantOptions opt;
            opt.threads = 2;
            lowbit::force_simd_path(lowbit::SimdPath::Scalar);
            const auto reference = P::pack(f, in, opt).serialize();
            for (lowbit::SimdPath p : {lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512}) {
              if (!lowbit::cpu_supports(p)) continue;
              lowbit::force_simd_path(p);
              P m = P::pack(f, in, opt);
              EXPECT_TRUE(m.serialize() == reference) << name << " " << lowbit::to_string(p);
              P::pack_into(f, in, m, opt);
              EXPECT_TRUE(m.serialize() == reference) << name << " " << lowbit::to_string(p) << " pack_into";
            }
            lowbit::clear_forced_simd_path();
          }
        },
        lowbit::Quantizer(name).format());
  }
}

TEST(PackedMatrix, PackingFromFloatsEqualsPackingQuantizedTensors) {
  std::mt19937 rng(9);
  std::student_t_distribution<float> t(3.0f);
  // Every path packs (and, for 8- and 4-bit codes, bit-packs with SIMD stores) the bytes the
  // scalar reference's codes give, in every rounding mode, odd row lengths included.
  std::vector<lowbit::SimdPath> paths;
  for (lowbit::SimdPath p : {lowbit::SimdPath::Scalar, lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512})
    if (lowbit::cpu_supports(p)) paths.push_back(p);
  for (const char* name : {"mxfp4", "mxfp6_e3m2", "mxint8", "mxint4", "bfp3_b16", "bfp5_b32", "bfp8_b16", "int4_b32_fp16",
                           "int8_b32_fp16", "int8_b32_bf16", "int8_b64_fp32", "uint4_b32_fp16", "nvfp4", "fp8_e4m3",
                           "int8_b32_e8m0", "bm_e4m3_b16", "int4", "fixed8_f4"}) {
    for (const auto& shape : std::vector<std::pair<int, int>>{{1, 1}, {3, 70}, {5, 513}, {2, 1000}, {3, 31}}) {
      const int rows = shape.first, cols = shape.second;  // (clang 14 cannot capture bindings)
      std::vector<float> w(static_cast<std::size_t>(rows * cols));
      for (auto& v : w) v = 0.05f * t(rng);
      const auto in = lowbit::MatrixRef<const float>::row_major(w.data(), rows, cols);
      const lowbit::Quantizer q(name);
      for (lowbit::Rounding mode : {lowbit::Rounding::NearestEven, lowbit::Rounding::NearestAway,
                                    lowbit::Rounding::TowardZero, lowbit::Rounding::Stochastic}) {
        lowbit::QuantOptions opt;
        opt.rounding = mode;
        opt.seed = 3;
        std::visit(
            [&](const auto& f) {
              if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
                using P = lowbit::PackedMatrix<std::decay_t<decltype(f)>>;
                lowbit::force_simd_path(lowbit::SimdPath::Scalar);
                const auto reference = P::pack(f, lowbit::quantize(f, in, opt)).serialize();
                for (lowbit::SimdPath p : paths) {
                  lowbit::force_simd_path(p);
                  EXPECT_TRUE(P::pack(f, in, opt).serialize() == reference)
                      << name << " " << rows << "x" << cols << " " << lowbit::to_string(p) << " "
                      << lowbit::to_string(mode);
                }
                lowbit::clear_forced_simd_path();
              }
            },
            q.format());
      }
    }
  }
}

}  // namespace

// The VmFlags line of the mapping of /proc/self/smaps that holds p ("" if none is found).
namespace {

std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') inside = lo <= addr && addr < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(WeightAllocator, SmallBuffersStartOnACacheLine) {
  for (std::size_t n : {std::size_t{1}, std::size_t{63}, std::size_t{4096}, (std::size_t{2} << 20) - 1}) {
    std::vector<std::uint8_t, lowbit::detail::WeightAllocator<std::uint8_t>> b(n, 7);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % lowbit::kCacheLineBytes, 0u) << n;
    EXPECT_EQ(b.back(), 7);
  }
}

// Buffers of 2 MiB or more start on a 2 MiB page and, on Linux with THP built in, carry the
// kernel's huge-page advice ("hg" in VmFlags) unless LOWBIT_HUGE_PAGES=0.
TEST(WeightAllocator, LargeBuffersAreHugePageAlignedAndAdvised) {
  const std::int64_t m = 1024, k = 4096;  // 4.25 MiB as MXFP8
  const auto w = weights(m, k, 3);
  const auto in = MatrixRef<const float>::row_major(w.data(), m, k);
  const auto packed = lowbit::pack_matrix(lowbit::MXFP8_E4M3{}, in);
  ASSERT_GE(packed.bytes(), lowbit::kHugePageBytes);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(packed.row_data(0)) % lowbit::kHugePageBytes, 0u);
  std::vector<float> fq(w.size());
  lowbit::fake_quant(lowbit::MXFP8_E4M3{}, in, MatrixRef<float>::row_major(fq.data(), m, k));
  expect_same_bits(packed.unpack(), fq, "mxfp8 in huge pages");
#if defined(__linux__)
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) GTEST_SKIP() << "this kernel has no transparent huge pages";
  EXPECT_NE(vm_flags_of(packed.row_data(0)).find(" hg"), std::string::npos) << vm_flags_of(packed.row_data(0));
  ::setenv("LOWBIT_HUGE_PAGES", "0", 1);
  std::vector<std::uint8_t, lowbit::detail::WeightAllocator<std::uint8_t>> plain(std::size_t{4} << 20, 1);
  ::unsetenv("LOWBIT_HUGE_PAGES");
  const std::string flags = vm_flags_of(plain.data());
  EXPECT_FALSE(flags.empty());
  EXPECT_EQ(flags.find(" hg"), std::string::npos) << flags;
#endif
}

}  // namespace
