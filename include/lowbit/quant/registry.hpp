// The runtime format registry: a format name such as "mxfp4", "bfp6_b16" or "int4_b32_fp16"
// becomes a Quantizer, a type-erased handle over the same BlockFormat values the
// compile-time aliases use (so both paths run the same code).
//
// Grammar (W = bits per element, B = block size, E/M = exponent/mantissa bits):
//   fp32 fp16 bf16                          IEEE floats, per element (fp32 is the identity)
//   fp8_e4m3 fp8_e5m2 fp6_e3m2 fp6_e2m3 fp4_e2m1
//                                           OCP element formats, per element, saturating
//   <one of the above>_{b<B>|pc|pt}[_<S>]   the same elements with an absmax scale per block,
//                                           per channel or per tensor; S = fp32 (default),
//                                           fp16, bf16 or e4m3
//   minifloat_e<E>m<M>[_bias<b>][_nosub][_fn|_fin][_sat]
//                                           any minifloat: default IEEE-like (Inf/NaN), _fn one
//                                           NaN code (OCP E4M3-like), _fin finite only
//                                           (saturating), _sat saturate instead of overflowing
//   mxfp8_e4m3 mxfp8_e5m2 mxfp6_e3m2 mxfp6_e2m3 mxfp4 mxint8 mxint4 mxint2[_b<B>][_floor|_ceil|_even|_rceil]
//                                           OCP MX (block 32, E8M0 scale; Floor is the spec's rule)
//   nvfp4                                   FP4 E2M1, block 16, E4M3 scale + fp32 tensor scale
//   bfp<W>_b<B>                             block floating point, W = 2..16
//   int<W>_{b<B>|pc|pt}_{fp32|fp16|bf16|e4m3|e8m0}
//                                           symmetric integers with a scale per block
//   uint<W>_{b<B>|pc|pt}_{fp32|fp16|bf16|e4m3}
//                                           unsigned integers with a scale and zero point
//   int<W>   fixed<W>_f<F>                  plain integers / fixed point, no scale
//   nf4_b<B> sf4_b<B>                       4-bit codebooks with an fp32 absmax per block
//   bm_e<E>m<M>_b<B>                        block minifloat (paper's BM, exact)
//   bl_w<W>_b<B>                            block logarithm (paper's BL, exact)
//   mase_...                                the paper's own quantisers, quirks included
//                                           (see formats/mase_compat.hpp)
#pragma once

#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/fake_quant.hpp"

#if __has_include("lowbit/formats/mase_compat.hpp")
#include "lowbit/formats/mase_compat.hpp"
#define LOWBIT_HAS_MASE 1
#else
#define LOWBIT_HAS_MASE 0
#endif

namespace lowbit {

using AnyFormat = std::variant<MinifloatFormat, FixedPointFormat, CodebookFormat, LogFormat
#if LOWBIT_HAS_MASE
                               , mase::MaseFormat
#endif
                               >;

// What `lowbit formats` lists. For scaled formats the element range is in units of the
// block scale.
struct FormatInfo {
  std::string name;
  std::string family;
  double bits_per_element = 0;  // scales and zero points included, at the default block size
  int element_bits = 0;
  int scale_bits = 0;           // per block (scale plus zero point)
  std::int64_t block_size = 0;  // 0 when there is no block scale; -1 per channel; -2 per tensor
  double max_value = 0;         // largest element magnitude
  double min_normal = 0;        // smallest normal element magnitude (= min_subnormal if none)
  double min_subnormal = 0;     // smallest non-zero element magnitude
  bool has_codes = true;        // quantize/dequantize available (not for mase_* formats)
};

inline std::string format_grammar() {
  return "fp32 fp16 bf16 | fp8_e4m3 fp8_e5m2 fp6_e3m2 fp6_e2m3 fp4_e2m1 [_b<B>|_pc|_pt [_fp32|_fp16|_bf16|_e4m3]] | "
         "minifloat_e<E>m<M>[_bias<b>][_nosub][_fn|_fin][_sat] | "
         "mxfp8_e4m3 mxfp8_e5m2 mxfp6_e3m2 mxfp6_e2m3 mxfp4 mxint8 mxint4 mxint2 [_b<B>][_floor|_ceil|_even|_rceil] | "
         "nvfp4 | bfp<W>_b<B> | int<W>_{b<B>|pc|pt}_{fp32|fp16|bf16|e4m3|e8m0} | uint<W>_{b<B>|pc|pt}_{fp32|fp16|bf16|e4m3} | "
         "int<W> | fixed<W>_f<F> | nf4_b<B> | sf4_b<B> | bm_e<E>m<M>_b<B> | bl_w<W>_b<B>"
#if LOWBIT_HAS_MASE
         " | mase_bfp_w<W>_b<B> | mase_dmf_e<E>m<M> | mase_minifloat_e<E>m<M> | mase_bm_w<W>e<E>_b<B> | "
         "mase_bl_w<W>_b<B> | mase_int_w<W>_f<F>"
#endif
      ;
}

template <class T> inline constexpr bool is_block_format = false;
template <class E> inline constexpr bool is_block_format<BlockFormat<E>> = true;

namespace detail {

[[noreturn]] inline void bad_format(std::string_view name, std::string_view why) {
  fail("format '" + std::string(name) + "'", why, "; accepted: ", format_grammar());
}

// Name tokens split at '_', with integer parsing that rejects junk.
struct NameTokens {
  std::string_view name;
  std::vector<std::string_view> tok;
  std::size_t pos = 0;

  explicit NameTokens(std::string_view n) : name(n) {
    std::size_t start = 0;
    while (true) {
      const std::size_t u = n.find('_', start);
      tok.push_back(n.substr(start, u == std::string_view::npos ? std::string_view::npos : u - start));
      if (u == std::string_view::npos) break;
      start = u + 1;
    }
  }
  bool done() const { return pos >= tok.size(); }
  std::string_view peek() const { return done() ? std::string_view{} : tok[pos]; }
  std::string_view next() {
    if (done()) bad_format(name, "ends too early");
    return tok[pos++];
  }
  // "<prefix><int>" -> int, with bounds
  std::optional<int> int_after(std::string_view t, std::string_view prefix) const {
    if (t.substr(0, prefix.size()) != prefix || t.size() == prefix.size()) return std::nullopt;
    int v = 0;
    const char* b = t.data() + prefix.size();
    const char* e = t.data() + t.size();
    auto [p, ec] = std::from_chars(b, e, v);
    if (ec != std::errc() || p != e) return std::nullopt;
    return v;
  }
  int expect_int(std::string_view t, std::string_view prefix, int lo, int hi, std::string_view what) const {
    const auto v = int_after(t, prefix);
    if (!v) bad_format(name, std::string("expected ") + std::string(what) + " as '" + std::string(prefix) + "<n>', got '" + std::string(t) + "'");
    if (*v < lo || *v > hi)
      bad_format(name, std::string(what) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " + std::to_string(*v));
    return *v;
  }
  void finish() const {
    if (!done()) bad_format(name, "unexpected '" + std::string(tok[pos]) + "'");
  }
};

inline constexpr int kMaxBlock = 1 << 20;

inline std::int64_t parse_block(NameTokens& t) {
  const std::string_view b = t.next();
  if (b == "pc") return kPerChannel;
  if (b == "pt") return kPerTensor;
  return t.expect_int(b, "b", 1, kMaxBlock, "block size");
}

inline std::optional<MinifloatSpec> float_scale_spec(std::string_view s) {
  if (s == "fp32") return FP32::spec;
  if (s == "fp16") return FP16::spec;
  if (s == "bf16") return BF16::spec;
  if (s == "e4m3") return FP8_E4M3::spec;
  return std::nullopt;
}

inline std::optional<MinifloatSpec> ocp_element(std::string_view a, std::string_view b) {
  if (a == "fp8" && b == "e4m3") return FP8_E4M3::spec;
  if (a == "fp8" && b == "e5m2") return FP8_E5M2::spec;
  if (a == "fp6" && b == "e3m2") return FP6_E3M2::spec;
  if (a == "fp6" && b == "e2m3") return FP6_E2M3::spec;
  if (a == "fp4" && b == "e2m1") return FP4_E2M1::spec;
  return std::nullopt;
}

inline void parse_em(const NameTokens& t, std::string_view tok, int& e, int& m) {
  // "e<E>m<M>"
  const std::size_t mpos = tok.find('m');
  if (tok.size() < 4 || tok[0] != 'e' || mpos == std::string_view::npos) bad_format(t.name, "expected e<E>m<M>, got '" + std::string(tok) + "'");
  e = t.expect_int(tok.substr(0, mpos), "e", 1, 8, "exponent bits");
  m = t.expect_int(tok.substr(mpos), "m", 0, 23, "mantissa bits");
}

inline AnyFormat parse_any_format(std::string_view name) {
  NameTokens t(name);
  const std::string_view head = t.next();
  auto make = [&](auto fmt) -> AnyFormat {
    t.finish();
    try {
      fmt.validate();
    } catch (const Error& e) {
      bad_format(name, e.what());
    }
    return AnyFormat(fmt);
  };

  if (head == "fp32") return make(element_format(FP32::spec));
  if (head == "fp16") return make(element_format(FP16::spec));
  if (head == "bf16") return make(element_format(BF16::spec));

  if (head == "fp8" || head == "fp6" || head == "fp4") {
    const auto elem = ocp_element(head, t.next());
    if (!elem) bad_format(name, "unknown OCP element type");
    if (t.done()) return make(element_format(*elem));
    const std::int64_t block = parse_block(t);
    MinifloatSpec sf = FP32::spec;
    if (!t.done()) {
      const auto s = float_scale_spec(t.next());
      if (!s) bad_format(name, "scale must be fp32, fp16, bf16 or e4m3");
      sf = *s;
    }
    return make(scaled_minifloat_format(*elem, block, sf));
  }

  if (head == "minifloat") {
    int e = 0, m = 0;
    parse_em(t, t.next(), e, m);
    MinifloatSpec s{e, m, MinifloatSpec::default_bias(e), true, Specials::IEEE, Overflow::Infinity};
    while (!t.done()) {
      const std::string_view o = t.next();
      if (o.substr(0, 4) == "bias") s.bias = t.expect_int(o, "bias", -300, 300, "bias");
      else if (o == "nosub") s.subnormals = false;
      else if (o == "fn") s.specials = Specials::FiniteNaN;
      else if (o == "fin") { s.specials = Specials::FiniteOnly; s.overflow = Overflow::Saturate; }
      else if (o == "sat") s.overflow = Overflow::Saturate;
      else bad_format(name, "unknown minifloat option '" + std::string(o) + "'");
    }
    return make(element_format(s));
  }

  if (head.substr(0, 2) == "mx") {
    std::optional<MinifloatSpec> fe;
    int mxint = 0;
    if (head == "mxfp8" || head == "mxfp6") fe = ocp_element(head.substr(2), t.next());
    else if (head == "mxfp4") fe = FP4_E2M1::spec;
    else if (head == "mxint8") mxint = 8;
    else if (head == "mxint4") mxint = 4;
    else if (head == "mxint2") mxint = 2;
    if (!fe && mxint == 0) bad_format(name, "unknown MX element type");
    std::int64_t block = 32;
    ScaleRule rule = ScaleRule::Floor;
    while (!t.done()) {
      const std::string_view o = t.next();
      if (o == "floor") rule = ScaleRule::Floor;
      else if (o == "ceil") rule = ScaleRule::Ceil;
      else if (o == "even") rule = ScaleRule::Even;
      else if (o == "rceil") rule = ScaleRule::Fit;
      else block = t.expect_int(o, "b", 1, kMaxBlock, "block size");
    }
    if (fe) return make(mx_format(*fe, rule, block));
    return make(mxint_format(mxint, rule, block));
  }

  if (head == "nvfp4") return make(nvfp4_format());

  if (head.substr(0, 3) == "bfp") {
    const int w = t.expect_int(head, "bfp", 2, 16, "BFP width");
    const std::int64_t block = t.expect_int(t.next(), "b", 1, kMaxBlock, "block size");
    return make(bfp_format(w, block));
  }

  if (head.substr(0, 4) == "uint" || head.substr(0, 3) == "int") {
    const bool is_unsigned = head[0] == 'u';
    const int w = t.expect_int(head, is_unsigned ? "uint" : "int", 2, 16, "integer width");
    if (t.done()) {
      if (is_unsigned) bad_format(name, "an unsigned integer format needs a block and a scale");
      return make(element_format(FixedPointSpec{w, 0, IntRange::TwosComplement}));
    }
    const std::int64_t block = parse_block(t);
    const std::string_view st = t.next();
    if (st == "e8m0") {
      if (is_unsigned) bad_format(name, "an unsigned (zero-point) format needs a float scale");
      FixedPointFormat f = int_block_e8m0_format(w, block);
      return make(f);
    }
    const auto sf = float_scale_spec(st);
    if (!sf) bad_format(name, "scale must be fp32, fp16, bf16, e4m3" + std::string(is_unsigned ? "" : " or e8m0"));
    return make(is_unsigned ? uint_block_format(w, block, *sf) : int_block_format(w, block, *sf));
  }

  if (head.substr(0, 5) == "fixed") {
    const int w = t.expect_int(head, "fixed", 2, 16, "fixed-point width");
    const int f = t.expect_int(t.next(), "f", -126, 126, "fraction bits");
    return make(element_format(FixedPointSpec{w, f, IntRange::TwosComplement}));
  }

  if (head == "nf4" || head == "sf4") {
    const std::int64_t block = t.expect_int(t.next(), "b", 1, kMaxBlock, "block size");
    return make(codebook_format(head == "nf4" ? kNF4 : kSF4, block));
  }

  if (head == "bm") {
    int e = 0, m = 0;
    parse_em(t, t.next(), e, m);
    const std::int64_t block = t.expect_int(t.next(), "b", 1, kMaxBlock, "block size");
    return make(block_minifloat_format(e, m, block));
  }

  if (head == "bl") {
    const int w = t.expect_int(t.next(), "w", 2, 9, "block-log width");
    const std::int64_t block = t.expect_int(t.next(), "b", 1, kMaxBlock, "block size");
    return make(block_log_format(w, block));
  }

#if LOWBIT_HAS_MASE
  if (head == "mase") return AnyFormat(mase::MaseFormat::parse(name));
#endif
  bad_format(name, "unknown format");
}

template <class E>
FormatInfo describe(const BlockFormat<E>& f, std::string name) {
  FormatInfo i;
  i.name = std::move(name);
  i.bits_per_element = f.bits_per_element();
  i.element_bits = f.element_bits();
  i.scale_bits = f.has_scale() ? f.scale_bits() : 0;
  i.block_size = f.has_scale() ? f.block_size : 0;
  i.max_value = f.element.max_value();
  i.min_subnormal = f.element.min_subnormal();
  if constexpr (std::is_same_v<E, MinifloatSpec>) {
    i.min_normal = f.element.min_normal();
    i.family = f.has_scale() ? (f.scale.kind == ScaleKind::E8M0 ? "mx/bm" : "scaled minifloat") : "minifloat";
  } else {
    i.min_normal = i.min_subnormal;
    if constexpr (std::is_same_v<E, FixedPointSpec>)
      i.family = f.has_scale() ? (f.scale.kind == ScaleKind::E8M0 ? "mx/bfp" : "integer per block") : "fixed point";
    else if constexpr (std::is_same_v<E, CodebookSpec>) i.family = "codebook";
    else i.family = "block log";
  }
  return i;
}

}  // namespace detail

// A format chosen at run time. Cheap to copy.
class Quantizer {
 public:
  explicit Quantizer(std::string_view name) : format_(detail::parse_any_format(name)) {
    info_ = std::visit(
        [&](const auto& f) -> FormatInfo {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) {
            return detail::describe(f, std::string(name));
          } else {  // the paper's own quantisers: fake-quant only, no codes
            FormatInfo i;
            i.name = f.name();
            i.family = "mase (paper's code)";
            i.bits_per_element = f.bits_per_element();
            i.max_value = f.max_value();
            i.has_codes = false;
            return i;
          }
        },
        format_);
  }

  const FormatInfo& info() const { return info_; }
  const std::string& name() const { return info_.name; }
  const AnyFormat& format() const { return format_; }

  void fake_quant(MatrixRef<const float> in, MatrixRef<float> out, const QuantOptions& opt = {}) const {
    std::visit(
        [&](const auto& f) {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) {
            lowbit::fake_quant(f, in, out, opt);
          } else {
            detail::require(opt.rounding == Rounding::NearestEven, "fake_quant",
                            "format '", info_.name, "' reproduces the paper's code, which rounds to nearest even only");
            f.fake_quant(in, out);
          }
        },
        format_);
  }
  std::vector<float> fake_quant(std::span<const float> in, const QuantOptions& opt = {}) const {
    std::vector<float> out(in.size());
    fake_quant(MatrixRef<const float>::from_span(in), MatrixRef<float>::from_span(std::span<float>(out)), opt);
    return out;
  }

  QuantizedTensor quantize(MatrixRef<const float> in, const QuantOptions& opt = {}) const {
    return std::visit(
        [&](const auto& f) -> QuantizedTensor {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) return lowbit::quantize(f, in, opt);
          else detail::fail("quantize", "format '", info_.name, "' is fake-quant only (it has no codes)");
        },
        format_);
  }
  void quantize_into(MatrixRef<const float> in, QuantizedTensor& qt, const QuantOptions& opt = {}) const {
    std::visit(
        [&](const auto& f) {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) lowbit::quantize_into(f, in, qt, opt);
          else detail::fail("quantize", "format '", info_.name, "' is fake-quant only (it has no codes)");
        },
        format_);
  }
  void dequantize(const QuantizedTensor& qt, MatrixRef<float> out) const {
    std::visit(
        [&](const auto& f) {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) lowbit::dequantize(f, qt, out);
          else detail::fail("dequantize", "format '", info_.name, "' is fake-quant only (it has no codes)");
        },
        format_);
  }

 private:
  AnyFormat format_;
  FormatInfo info_;
};

inline Quantizer make_quantizer(std::string_view name) { return Quantizer(name); }

// The formats people use, in the order `lowbit formats` and the demo list them.
inline std::vector<std::string> standard_format_names() {
  std::vector<std::string> v{
      "fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1", "fp8_e4m3_pt", "fp8_e5m2_pt",
      "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8", "mxint4", "mxint2", "nvfp4",
      "bfp8_b16", "bfp8_b32", "bfp6_b16", "bfp6_b32", "bfp4_b16", "bfp4_b32", "int8_b32_fp16", "int8_b32_fp32",
      "int4_b32_fp16", "int4_b128_bf16", "int8_pc_fp32", "int4_b32_e8m0", "uint8_b32_fp16", "uint4_b32_fp16",
      "nf4_b64", "sf4_b64", "bm_e4m3_b16", "bm_e2m3_b16", "bl_w8_b16", "bl_w5_b16", "fixed8_f7", "fixed8_f4"};
#if LOWBIT_HAS_MASE
  for (const char* m : {"mase_bfp_w6_b16", "mase_bfp_w4_b16", "mase_dmf_e4m3", "mase_minifloat_e4m3", "mase_bm_w8e4_b16",
                        "mase_bl_w8_b16", "mase_int_w8_f7"})
    v.emplace_back(m);
#endif
  return v;
}

}  // namespace lowbit
