// MASE / llm-mixed-q compatibility: fake quantisers that reproduce the paper's own code
// (DeepWok/mase chop.nn.quantizers @ 6ff398c, ChengZhang-98/llm-mixed-q @ 740bf48), quirks
// included, so that results can be compared with the published numbers value for value.
//
// These are NOT lowbit's exact formats. They follow the reference's float32 arithmetic:
//   L(v)   = fl32(log2 v), and exponents are floor/ceil of L, not the exact frexp exponent
//   eps    = fl32(1e-9), added to |x| where the reference adds it
//   Z(x)   = |x| <= fl32(1e-8): such values pass through unchanged (all but integer, block log)
//   rne    = round half to even (std::nearbyint in the default rounding mode)
//   blocks = [1, B] along the last axis, the tail zero-padded; a block whose max is 0 takes the
//            smallest non-zero block max of the whole tensor (1 if every block is 0)
//   mantissas clamp at their top code instead of carrying into the next exponent
// Subnormal inputs and outputs are kept (do not build with -ffast-math, FTZ or DAZ).
// Non-finite inputs are outside what the reference was checked on; here they follow the
// formulas with IEEE float semantics (a NaN makes its block NaN, except Z pass-throughs).
//
// Names (MaseFormat::parse):
//   mase_bfp_w{W}_b{B}        block_fp: sign + (W-1)-bit magnitude, 8-bit shared exponent
//                             (bias 127) per [1,B] block, exponent ceil(L(block max))
//   mase_dmf_e{E}m{M}         minifloat_denorm: width 1+E+M, bias 2^(E-1)-1, no implicit bit
//   mase_minifloat_e{E}m{M}   minifloat_ieee: implicit bit, subnormals, no Inf/NaN, saturating
//   mase_bm_w{W}e{E}_b{B}     block_minifloat: minifloat_ieee (E, W-1-E) whose bias is an 8-bit
//                             per-block value floor(L(block max)) clamped to [0, 255]
//   mase_bl_w{W}_b{B}         block_log: sign + (W-1)-bit exponent, 8-bit per-block bias
//   mase_int_w{W}_f{F}        integer: signed W-bit, F fraction bits, no scale
//
// How MASE's semantics differ from lowbit's exact formats (each example is checked in
// tests/test_mase_goldens.cpp by running both):
//  - block_fp vs bfp_format(W, B):
//    * the shared exponent is ceil(log2 max), so a block max at (or just below) a power of two
//      is clipped to (1-2^-(W-1)) * 2^e; lowbit picks the smallest exponent that holds the max.
//      W4: block {1.0} -> 0.875 in MASE, 1.0 in lowbit.
//    * eps is added to |x| before rounding, which breaks exact ties upward below ~2^-5.
//      W4: block {0.01171875, 0.0048828125}: 0.0048828125 -> 0.005859375 in MASE,
//      0.00390625 in lowbit (ties to even).
//    * |x| <= 1e-8 passes through. W4: block {1e-8} -> 1e-8 in MASE, 9.3132257e-09 (5 * 2^-29) in lowbit.
//  - minifloat_denorm vs MinifloatSpec{E, M, bias, subnormals, FiniteOnly, Saturate}: a
//    different grid, k * 2^(e-M) with k < 2^M and e = ceil(log2 |x|), so powers of two drop a
//    step and the max is (1-2^-M) * 2^(2^E-1-bias). e4m3: 1.0 -> 0.875 in MASE, 1.0 in lowbit;
//    1000 -> 224 in MASE, 480 in lowbit.
//  - minifloat_ieee vs the same MinifloatSpec: the same grid (e4m3 max 480), but
//    * no carry into the next binade: e4m3 1.97 -> 1.875 in MASE, 2.0 in lowbit;
//      0.015 -> 0.013671875 in MASE, 0.015625 in lowbit;
//    * |x| <= 1e-8 passes through: 1e-9 -> 1e-9 in MASE, 0 in lowbit.
//  - block_minifloat vs block_minifloat_format(E, M, B): MASE's bias is floor(log2 max)
//    clamped to >= 0, which moves the window down as the max grows instead of putting its top at
//    the max. e4m3, block {1.0, 0.05}: 0.05 -> 0 in MASE, 0.05078125 in lowbit;
//    block {1000, 480}: 480 -> 120 in MASE, 480 in lowbit.
//  - block_log vs block_log_format(W, B): MASE has no zero (0 -> 2^-bias, the bias possibly
//    taken from another block) and its window holds 2^(W-1) powers (lowbit: 2^(W-1)-1 powers and
//    0). W8, block {1.0, 0}: 0 -> 2^-127 in MASE, 0 in lowbit.
//  - integer vs element_format(FixedPointSpec{W, F, TwosComplement}): identical on finite
//    inputs (0.53125 -> 0.5 in both, w8 f4); NaN passes through MASE, lowbit throws Error.
//
// max_value(): the largest magnitude for per-element formats. For block formats it is the
// element grid's largest magnitude in units of the block scale: block_fp 1-2^-(W-1) (times
// 2^e), block_minifloat (2-2^-M) * 2^(2^E-1) (times 2^-bias), block_log 2^(2^(W-1)-1) (times
// 2^-bias).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"

namespace lowbit::mase {

namespace detail {

inline constexpr float kOffset = 1e-9f;      // the reference's +1e-9, as a float32
inline constexpr float kZeroTol = 1e-8f;     // torch.isclose(x, 0) with the default atol
inline constexpr float kLogOffset = 0.1f;    // block_log adds 0.1 * 2^-bias

// The float32-rounded log2 the reference takes exponents from.
inline float log2f32(float v) { return static_cast<float>(std::log2(static_cast<double>(v))); }
inline float rne(float v) { return std::nearbyint(v); }
// torch.clamp: NaN propagates.
inline float clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
// torch.sign: -1, 0 or +1 (NaN stays NaN).
inline float sign(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : (v == 0.0f ? 0.0f : v)); }
inline bool near_zero(float x) { return std::fabs(x) <= kZeroTol; }
// 2^e in float32 for an integer-valued e (after clamping): 0 below 2^-149, Inf above 2^127.
inline float pow2(float e) {
  if (std::isnan(e)) return e;
  return std::ldexp(1.0f, static_cast<int>(std::clamp(e, -1000.0f, 1000.0f)));
}

}  // namespace detail

enum class MaseKind { BlockFp, MinifloatDenorm, MinifloatIeee, BlockMinifloat, BlockLog, Integer };

class MaseFormat {
 public:
  // ---- construction ----------------------------------------------------------------------
  static MaseFormat block_fp(int width, std::int64_t block) {
    check(width >= 2 && width <= 24, "block_fp width must be 2..24, got ", width);
    check_block(block);
    return MaseFormat(MaseKind::BlockFp, width, 8, width - 1, 127, block, 0);
  }
  static MaseFormat minifloat_denorm(int exp_bits, int man_bits) {
    check_minifloat(exp_bits, man_bits);
    return MaseFormat(MaseKind::MinifloatDenorm, 1 + exp_bits + man_bits, exp_bits, man_bits,
                      (1 << (exp_bits - 1)) - 1, 1, 0);
  }
  static MaseFormat minifloat_ieee(int exp_bits, int man_bits) {
    check_minifloat(exp_bits, man_bits);
    return MaseFormat(MaseKind::MinifloatIeee, 1 + exp_bits + man_bits, exp_bits, man_bits,
                      (1 << (exp_bits - 1)) - 1, 1, 0);
  }
  static MaseFormat block_minifloat(int width, int exp_bits, std::int64_t block) {
    check_minifloat(exp_bits, width - 1 - exp_bits);
    check_block(block);
    return MaseFormat(MaseKind::BlockMinifloat, width, exp_bits, width - 1 - exp_bits, 0, block, 0);
  }
  static MaseFormat block_log(int width, std::int64_t block) {
    check(width >= 2 && width <= 9, "block_log width must be 2..9 (1..8 exponent bits), got ", width);
    check_block(block);
    return MaseFormat(MaseKind::BlockLog, width, width - 1, 0, 0, block, 0);
  }
  static MaseFormat integer(int width, int frac_bits) {
    check(width >= 2 && width <= 24, "integer width must be 2..24, got ", width);
    check(frac_bits >= 0 && frac_bits <= 126, "integer fraction bits must be 0..126, got ", frac_bits);
    return MaseFormat(MaseKind::Integer, width, 0, 0, 0, 1, frac_bits);
  }

  static constexpr std::string_view grammar() {
    return "mase_bfp_w{W}_b{B}, mase_dmf_e{E}m{M}, mase_minifloat_e{E}m{M}, mase_bm_w{W}e{E}_b{B}, "
           "mase_bl_w{W}_b{B}, mase_int_w{W}_f{F} (decimal numbers without leading zeros)";
  }

  // Parses one of the names in grammar(); anything else throws Error quoting the grammar.
  static MaseFormat parse(std::string_view name) {
    Reader r{name, 0};
    auto done = [&] { return r.pos == name.size(); };
    if (r.eat("mase_bfp_w")) {
      int w;
      std::int64_t b;
      if (r.number(w) && r.eat("_b") && r.number(b) && done()) return block_fp(w, b);
    } else if (r.eat("mase_dmf_e")) {
      int e, m;
      if (r.number(e) && r.eat("m") && r.number(m) && done()) return minifloat_denorm(e, m);
    } else if (r.eat("mase_minifloat_e")) {
      int e, m;
      if (r.number(e) && r.eat("m") && r.number(m) && done()) return minifloat_ieee(e, m);
    } else if (r.eat("mase_bm_w")) {
      int w, e;
      std::int64_t b;
      if (r.number(w) && r.eat("e") && r.number(e) && r.eat("_b") && r.number(b) && done())
        return block_minifloat(w, e, b);
    } else if (r.eat("mase_bl_w")) {
      int w;
      std::int64_t b;
      if (r.number(w) && r.eat("_b") && r.number(b) && done()) return block_log(w, b);
    } else if (r.eat("mase_int_w")) {
      int w, f;
      if (r.number(w) && r.eat("_f") && r.number(f) && done()) return integer(w, f);
    }
    lowbit::detail::fail("mase::MaseFormat::parse", "unknown format name '", name, "' (accepted: ", grammar(), ")");
  }

  // ---- description -----------------------------------------------------------------------
  MaseKind kind() const { return kind_; }
  int width() const { return width_; }
  int exp_bits() const { return exp_bits_; }  // block_fp: shared exponent width (8)
  int man_bits() const { return man_bits_; }  // block_fp: magnitude bits W-1
  int frac_bits() const { return frac_bits_; }
  std::int64_t block_size() const { return block_; }
  bool is_block_format() const {
    return kind_ == MaseKind::BlockFp || kind_ == MaseKind::BlockMinifloat || kind_ == MaseKind::BlockLog;
  }

  // (a stream, not operator+ on strings: g++ 12 reports a false -Wrestrict inside
  // "literal" + std::string once this is inlined)
  std::string name() const {
    std::ostringstream s;
    const auto em = [&] { s << 'e' << exp_bits_ << 'm' << man_bits_; };
    switch (kind_) {
      case MaseKind::BlockFp: s << "mase_bfp_w" << width_ << "_b" << block_; break;
      case MaseKind::MinifloatDenorm: s << "mase_dmf_"; em(); break;
      case MaseKind::MinifloatIeee: s << "mase_minifloat_"; em(); break;
      case MaseKind::BlockMinifloat: s << "mase_bm_w" << width_ << 'e' << exp_bits_ << "_b" << block_; break;
      case MaseKind::BlockLog: s << "mase_bl_w" << width_ << "_b" << block_; break;
      case MaseKind::Integer: s << "mase_int_w" << width_ << "_f" << frac_bits_; break;
      default: return "?";
    }
    return s.str();
  }

  // As the paper's profiler counts: the width, plus 8 shared bits per block for block formats.
  double bits_per_element() const {
    if (!is_block_format()) return width_;
    return width_ + 8.0 / static_cast<double>(block_);
  }

  // See the top of this file for what the block formats' value means.
  double max_value() const {
    const int top = (1 << exp_bits_) - 1;
    switch (kind_) {
      case MaseKind::BlockFp: return 1.0 - std::ldexp(1.0, -man_bits_);
      case MaseKind::MinifloatDenorm: return (1.0 - std::ldexp(1.0, -man_bits_)) * std::ldexp(1.0, top - bias_);
      case MaseKind::MinifloatIeee: return (2.0 - std::ldexp(1.0, -man_bits_)) * std::ldexp(1.0, top - bias_);
      case MaseKind::BlockMinifloat: return (2.0 - std::ldexp(1.0, -man_bits_)) * std::ldexp(1.0, top);
      case MaseKind::BlockLog: return std::ldexp(1.0, top);
      case MaseKind::Integer: return std::ldexp(static_cast<double>((std::int64_t{1} << (width_ - 1)) - 1), -frac_bits_);
    }
    return 0.0;
  }

  // ---- quantisation ----------------------------------------------------------------------
  // One value, given the (zero-substituted) max |x| of its block; per-element formats ignore
  // block_max.
  float quantize(float x, float block_max = 1.0f) const {
    using namespace detail;
    switch (kind_) {
      case MaseKind::BlockFp: {
        if (near_zero(x)) return x;
        const float scale = pow2(clamp(std::ceil(log2f32(block_max)), -127.0f, 128.0f));
        const float steps = pow2(static_cast<float>(man_bits_));
        const float k = clamp(rne((std::fabs(x) + kOffset) / scale * steps), 0.0f, steps - 1.0f);
        return sign(x + kOffset) * (scale * (k / steps));
      }
      case MaseKind::MinifloatDenorm: {
        if (near_zero(x)) return x;
        const float a = std::fabs(x);
        const float e = clamp(std::ceil(log2f32(a + kOffset)), static_cast<float>(-bias_),
                              static_cast<float>((1 << exp_bits_) - 1 - bias_));
        const float steps = pow2(static_cast<float>(man_bits_));
        const float k = clamp(rne(a / pow2(e) * steps), 0.0f, steps - 1.0f);
        return sign(x + kOffset) * (pow2(e) * (k / steps));
      }
      case MaseKind::MinifloatIeee: return minifloat_ieee_value(x, bias_);
      case MaseKind::BlockMinifloat: {
        const float bias = clamp(std::floor(log2f32(block_max)), 0.0f, 255.0f);
        if (std::isnan(bias)) return near_zero(x) ? x : bias;
        return minifloat_ieee_value(x, static_cast<int>(bias));
      }
      case MaseKind::BlockLog: {
        const float top = static_cast<float>((1 << exp_bits_) - 1);
        const float bias = clamp(top - std::ceil(log2f32(block_max)), 0.0f, 255.0f);
        const float t = kLogOffset * pow2(-bias);
        const float e = clamp(rne(log2f32(std::fabs(x) + t)), -bias, top - bias);
        return sign(x + t) * pow2(e);
      }
      case MaseKind::Integer: {
        const float steps = pow2(static_cast<float>(frac_bits_));
        const float lim = pow2(static_cast<float>(width_ - 1));
        return clamp(rne(x * steps), -lim, lim - 1.0f) / steps;
      }
    }
    return x;
  }

  // Fake quantisation of a 2-D tensor, blocks of block_size() along the last axis. The block
  // maxima are found first (the zero-block rule needs all of them), so in == out works.
  void fake_quant(MatrixRef<const float> in, MatrixRef<float> out) const {
    in.validate("mase::fake_quant");
    out.validate("mase::fake_quant");
    lowbit::detail::require(out.rows == in.rows && out.cols == in.cols, "mase::fake_quant", "output is ", out.rows,
                            " x ", out.cols, " but the input is ", in.rows, " x ", in.cols);
    if (!is_block_format()) {
      for (std::int64_t r = 0; r < in.rows; ++r)
        for (std::int64_t c = 0; c < in.cols; ++c) out(r, c) = quantize(in(r, c));
      return;
    }
    const std::vector<float> maxima = block_maxima(in);
    const std::int64_t per_row = (in.cols + block_ - 1) / block_;
    for (std::int64_t r = 0; r < in.rows; ++r)
      for (std::int64_t c = 0; c < in.cols; ++c)
        out(r, c) = quantize(in(r, c), maxima[static_cast<std::size_t>(r * per_row + c / block_)]);
  }

  // max |x| of every [1, B] block (row-major block order), after the tensor-global rule: zero
  // maxima take the smallest non-zero maximum, or 1 when every block is zero. NaN propagates.
  std::vector<float> block_maxima(MatrixRef<const float> in) const {
    const std::int64_t per_row = in.cols == 0 ? 0 : (in.cols + block_ - 1) / block_;
    std::vector<float> m(static_cast<std::size_t>(in.rows * per_row), 0.0f);
    for (std::int64_t r = 0; r < in.rows; ++r)
      for (std::int64_t c = 0; c < in.cols; ++c) {
        float& mb = m[static_cast<std::size_t>(r * per_row + c / block_)];
        const float a = std::fabs(in(r, c));
        if (std::isnan(a) || a > mb) mb = std::isnan(mb) ? mb : a;
      }
    float smallest = std::numeric_limits<float>::infinity();
    for (float v : m)
      if (v > 0.0f && v < smallest) smallest = v;
    const float fill = std::isinf(smallest) ? 1.0f : smallest;
    for (float& v : m)
      if (v == 0.0f) v = fill;
    return m;
  }

  bool operator==(const MaseFormat&) const = default;

 private:
  MaseFormat(MaseKind k, int width, int exp_bits, int man_bits, int bias, std::int64_t block, int frac)
      : kind_(k), width_(width), exp_bits_(exp_bits), man_bits_(man_bits), bias_(bias), block_(block),
        frac_bits_(frac) {}

  template <class... Parts>
  static void check(bool ok, const Parts&... parts) {
    lowbit::detail::require(ok, "mase::MaseFormat", parts...);
  }
  static void check_block(std::int64_t block) {
    check(block >= 1 && block <= (std::int64_t{1} << 24), "block size must be 1..2^24, got ", block);
  }
  static void check_minifloat(int e, int m) {
    check(e >= 1 && e <= 8, "exponent bits must be 1..8, got ", e);
    check(m >= 1 && m <= 23, "mantissa bits must be 1..23, got ", m);
  }

  // minifloat_ieee with bias b: exponent floor(L(|x| + eps)), mantissa from |x|, no carry.
  float minifloat_ieee_value(float x, int b) const {
    using namespace detail;
    if (near_zero(x)) return x;
    const float a = std::fabs(x);
    const float e = clamp(std::floor(log2f32(a + kOffset)), static_cast<float>(-b),
                          static_cast<float>((1 << exp_bits_) - 1 - b));
    const float steps = pow2(static_cast<float>(man_bits_));
    const float r = a / pow2(e);
    if (e != static_cast<float>(-b)) {
      const float k = clamp(rne(r * steps - steps), 0.0f, steps - 1.0f);
      return sign(x + kOffset) * (pow2(e) * (1.0f + k / steps));
    }
    const float k = clamp(rne(r * pow2(static_cast<float>(man_bits_ - 1))), 0.0f, steps - 1.0f);
    return sign(x + kOffset) * (k * pow2(static_cast<float>(1 - b - man_bits_)));
  }

  // A cursor over a name: literal prefixes and decimal numbers without leading zeros.
  struct Reader {
    std::string_view s;
    std::size_t pos;
    bool eat(std::string_view lit) {
      if (s.substr(pos, lit.size()) != lit) return false;
      pos += lit.size();
      return true;
    }
    template <class Int>
    bool number(Int& out) {
      const std::size_t start = pos;
      std::int64_t v = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 9) v = v * 10 + (s[pos++] - '0');
      if (pos == start || (s[start] == '0' && pos - start > 1)) return false;
      if (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') return false;  // too many digits
      out = static_cast<Int>(v);
      return true;
    }
  };

  MaseKind kind_;
  int width_;
  int exp_bits_;
  int man_bits_;
  int bias_;  // per-element minifloats; block formats choose theirs per block
  std::int64_t block_;
  int frac_bits_;
};

}  // namespace lowbit::mase
