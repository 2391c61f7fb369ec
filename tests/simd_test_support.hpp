// Shared by the SIMD test suites: the formats every path must match the scalar reference on,
// the paths this CPU runs, and the inputs that stress them.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <limits>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "lowbit/lowbit.hpp"

namespace lowbit_test {

using lowbit::Quantizer;
using lowbit::SimdPath;

inline const std::vector<std::string>& simd_formats() {
  static const std::vector<std::string> f{
      "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8", "mxint4", "mxint2",
      "mxfp4_rceil", "mxfp8_e4m3_ceil", "mxfp6_e2m3_even", "mxfp4_b16", "bfp8_b8", "bfp8_b16", "bfp6_b16",
      "bfp6_b32", "bfp4_b64", "bfp3_b16", "bfp16_b16", "int8_b32_fp16", "int8_b32_fp32", "int4_b32_fp16",
      "int4_b128_bf16", "int4_b32_e8m0", "int8_b32_e4m3", "int8_pc_fp32", "uint8_b32_fp16", "uint4_b32_fp16",
      "uint4_b64_bf16", "nvfp4", "fp8_e4m3_b32_bf16", "fp8_e5m2_b16_fp32", "bm_e4m3_b16", "bm_e2m3_b16",
      "fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1",
      "minifloat_e4m3_fn", "minifloat_e5m2", "minifloat_e3m4_bias5", "minifloat_e4m3_nosub",
      "minifloat_e6m9_sat", "minifloat_e8m7_nosub", "minifloat_e2m5_fin", "minifloat_e5m10_bias12",
      "minifloat_e4m0", "minifloat_e5m0_fin", "minifloat_e2m22_fin_sat", "minifloat_e3m22", "bm_e2m22_b4", "bm_e3m21_b8", "mxfp4_b64", "bfp5_b64", "int8_b64_fp32",
      "fixed8_f7", "fixed8_f4", "fixed16_f10", "fixed4_f-2", "int8", "int4"};
  return f;
}

inline std::vector<SimdPath> simd_paths() {
  std::vector<SimdPath> p;
  for (SimdPath s : {SimdPath::AVX2, SimdPath::AVX512})
    if (lowbit::cpu_supports(s)) p.push_back(s);
  return p;
}

// Restores automatic path choice when a test forced one.
struct PathGuard {
  ~PathGuard() { lowbit::clear_forced_simd_path(); }
};

// Per-element formats whose elements cannot encode NaN: NaN input throws on every path, so
// inputs for them hold none.
inline bool finite_only(const Quantizer& q) {
  if (q.info().block_size != 0) return false;  // scaled: a NaN block has a NaN scale
  if (const auto* m = std::get_if<lowbit::MinifloatFormat>(&q.format())) return !m->element.has_nan();
  return true;
}

inline std::vector<float> random_values(std::size_t n, unsigned seed, bool with_specials) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(2.5f);
  std::uniform_int_distribution<int> ex(-30, 30);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (rng() % 8) {
      case 0: v[i] = lowbit::bits_float(static_cast<std::uint32_t>(rng())); break;  // any bit pattern
      case 1: v[i] = std::ldexp(static_cast<float>(static_cast<int>(rng() % 64) - 32), ex(rng)); break;  // ties
      case 2: v[i] = lowbit::bits_float(static_cast<std::uint32_t>(rng()) & 0x807FFFFFu); break;  // subnormals
      default: v[i] = t(rng) * std::ldexp(1.0f, ex(rng));
    }
    if (!with_specials && !std::isfinite(v[i])) v[i] = 1.5f;
  }
  return v;
}

// Rows long enough for the kernels' grouped path (16 blocks at a time), with groups that hold
// a zero, subnormal, NaN or Inf block and groups that do not.
inline std::vector<float> long_rows_with_exceptional_blocks(std::int64_t rows, std::int64_t cols) {
  std::vector<float> x = random_values(static_cast<std::size_t>(rows * cols), 21, false);
  auto at = [&](std::int64_t r, std::int64_t c) -> float& { return x[static_cast<std::size_t>(r * cols + c)]; };
  for (std::int64_t c = 700; c < 764; ++c) at(1, c) = 0.0f;
  for (std::int64_t c = 1500; c < 1600; ++c) at(2, c) = lowbit::bits_float(static_cast<std::uint32_t>(c));
  at(3, 2222) = std::numeric_limits<float>::quiet_NaN();
  at(4, 3333) = -std::numeric_limits<float>::infinity();
  for (std::int64_t c = 0; c < cols; ++c) at(5, c) = std::ldexp(1.0f, static_cast<int>(c % 200) - 100);
  return x;
}

// Blocks with NaN, +-Inf, NaN payloads and +-FLT_MAX among ordinary values (16 x 96).
inline std::vector<float> nan_and_inf_blocks() {
  std::vector<float> x = random_values(16 * 96, 3, false);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), lowbit::bits_float(0x7F800001u),
                            lowbit::bits_float(0xFFC12345u), std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(), lowbit::bits_float(0xFFBFFFFFu)};
  for (std::size_t i = 0; i < x.size(); i += 41) x[i] = specials[(i / 41) % 8];
  return x;
}

// Zero and -0 blocks, float subnormals, values around 2^-126 and every binade (8 x 64).
inline std::vector<float> zeros_and_tiny_values() {
  std::vector<float> x(8 * 64, 0.0f);
  for (std::size_t i = 64; i < 128; ++i) x[i] = (i % 2) ? -0.0f : 0.0f;
  for (std::size_t i = 128; i < 192; ++i) x[i] = lowbit::bits_float(static_cast<std::uint32_t>(i));  // subnormals
  for (std::size_t i = 192; i < 256; ++i) x[i] = std::ldexp(1.0f, -126 - static_cast<int>(i % 24)) * ((i % 3) ? 1 : -1);
  for (std::size_t i = 256; i < 512; ++i)
    x[i] = std::ldexp(1.0f + static_cast<float>(i % 7) / 8, static_cast<int>(i % 250) - 125) * ((i % 5) ? 1 : -1);
  return x;
}

// The element formats whose every code and midpoint the SIMD suites run through.
inline const std::vector<std::pair<std::string, lowbit::MinifloatSpec>>& code_sweep_elements() {
  static const std::vector<std::pair<std::string, lowbit::MinifloatSpec>> e{
      {"fp8_e4m3", lowbit::FP8_E4M3::spec}, {"fp8_e5m2", lowbit::FP8_E5M2::spec},
      {"fp6_e3m2", lowbit::FP6_E3M2::spec}, {"fp6_e2m3", lowbit::FP6_E2M3::spec},
      {"fp4_e2m1", lowbit::FP4_E2M1::spec}, {"fp16", lowbit::FP16::spec},
      {"bf16", lowbit::BF16::spec},         {"minifloat_e4m3_nosub", lowbit::MinifloatSpec{4, 3, 7, false}}};
  return e;
}

// Every finite code of `spec` with both signs, every midpoint between neighbours and one
// float on either side of it, and values past the maximum; padded to rows of 64.
inline std::vector<float> every_code_and_midpoint(const lowbit::MinifloatSpec& spec) {
  std::vector<double> values;
  for (std::uint32_t c = 0; c < (1u << spec.bits()); ++c) {
    if (spec.is_nan(c) || spec.is_inf(c) || !spec.is_canonical(c)) continue;
    const double v = spec.decode(c);
    if (v >= 0) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  std::vector<float> x;
  for (std::size_t i = 0; i < values.size(); ++i) {
    x.push_back(static_cast<float>(values[i]));
    x.push_back(static_cast<float>(-values[i]));
    if (i + 1 < values.size()) {
      const float mid = static_cast<float>(0.5 * (values[i] + values[i + 1]));
      for (float m : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e38f)}) {
        x.push_back(m);
        x.push_back(-m);
      }
    }
  }
  const float top = static_cast<float>(spec.max_value());
  for (float f : {top * 1.0001f, top * 1.5f, top * 4.0f}) {
    x.push_back(f);
    x.push_back(-f);
  }
  while (x.size() % 64) x.push_back(0.0f);
  return x;
}

// The MX and float-scaled formats built on an element name that exist ("mxfp4", "fp4_e2m1_b32_fp32").
inline std::vector<std::string> scaled_variants(const std::string& element) {
  std::vector<std::string> v;
  for (const std::string& scaled : {"mx" + element, element + "_b32_fp32"}) {
    try {
      Quantizer probe(scaled);
      v.push_back(scaled);
    } catch (const lowbit::Error&) {
    }
  }
  return v;
}

}  // namespace lowbit_test
