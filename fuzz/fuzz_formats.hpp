// The format names the fuzz targets and their seed generator pick from by index (one byte of
// the input), so a seed made with one list still means the same format to the target.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace lowbit_fuzz {

// Formats with codes (pack / unpack), one or more of every element family and scale kind.
inline constexpr std::array<const char*, 24> kPackedFormats = {
    "mxfp4",         "mxfp6_e3m2",   "mxfp8_e4m3",     "mxint8",       "mxint2",         "nvfp4",
    "bfp4_b16",      "bfp6_b32",     "int4_b32_fp16",  "int8_pc_fp32", "uint4_b32_fp16", "uint8_b32_fp16",
    "int4_b32_e8m0", "nf4_b64",      "sf4_b64",        "bm_e2m3_b16",  "bl_w5_b16",      "fixed8_f4",
    "fp8_e4m3",      "fp4_e2m1_b32", "minifloat_e3m4_fin", "int4_b128_bf16", "fp16", "bl_w8_b16"};

// Formats for fake-quant across SIMD paths: every family the kernels take, and some they do
// not (those run the scalar path on every setting, which must then agree trivially).
inline constexpr std::array<const char*, 32> kFakeQuantFormats = {
    "fp16",          "bf16",          "fp8_e4m3",       "fp8_e5m2",      "fp6_e3m2",       "fp6_e2m3",
    "fp4_e2m1",      "fp8_e4m3_pt",   "mxfp8_e4m3",     "mxfp8_e5m2",    "mxfp6_e3m2",     "mxfp6_e2m3",
    "mxfp4",         "mxint8",        "mxint4",         "mxint2",        "nvfp4",          "bfp8_b16",
    "bfp4_b32",      "int8_b32_fp16", "int4_b32_fp32",  "int4_b128_bf16", "int8_pc_fp32",  "int4_b32_e8m0",
    "uint4_b32_fp16", "nf4_b64",      "sf4_b64",        "bm_e4m3_b16",   "bl_w8_b16",      "fixed8_f4",
    "minifloat_e5m2_nosub_sat", "mxfp4_rceil"};

// Weight formats for the matmul target (the first ones have panel kernels).
inline constexpr std::array<const char*, 14> kMatmulWeightFormats = {
    "mxfp4",       "nvfp4",    "int4_b32_fp16", "int8_b32_fp32", "mxint8",   "bfp8_b16", "bfp4_b16",
    "nf4_b64",     "mxfp8_e4m3", "fp8_e4m3",    "int8_b32_bf16", "mxfp6_e3m2", "uint4_b32_fp16", "bl_w8_b16"};
// Activation formats ("" = weight-only).
inline constexpr std::array<const char*, 6> kMatmulActivationFormats = {"", "mxint8", "int8_b32_fp32", "mxfp4",
                                                                         "bfp8_b16", "mxfp8_e4m3"};

template <class Array>
const char* pick(const Array& names, std::uint8_t b) {
  return names[static_cast<std::size_t>(b) % names.size()];
}

}  // namespace lowbit_fuzz
