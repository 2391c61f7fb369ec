// Every standard format family against an independent model written here from the formats'
// definitions (block_format.hpp and standard.hpp):
//   scale s  chosen exactly from the block (power of two by its rule, or a float rounded
//            to nearest-even in the scale format, saturating)
//   y        fl32(x / s)
//   element  y rounded to the element grid, saturating
//   value    fl32(element * s)
// The model rounds with plain double arithmetic (ldexp + nearbyint/round/trunc) and brute
// force where the library uses integer bit manipulation, and takes the element grids from
// the OCP / QLoRA / paper tables rather than from the library's specs.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "lowbit/formats/standard.hpp"
#include "lowbit/quant/fake_quant.hpp"

namespace {

using lowbit::MatrixRef;
using lowbit::QuantOptions;
using lowbit::Rounding;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();

// ---- the reference model ------------------------------------------------------------------
namespace ref {

int floor_log2(double a) {
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  return e - 1;
}

// a >= 0 rounded to a multiple of 2^q (scaling by 2^-q is exact in double for our ranges).
double round_mag(double a, int q, Rounding mode) {
  const double t = std::ldexp(a, -q);
  double k = 0;
  switch (mode) {
    case Rounding::NearestEven: k = std::nearbyint(t); break;  // default FE_TONEAREST
    case Rounding::NearestAway: k = std::round(t); break;
    case Rounding::TowardZero: k = std::trunc(t); break;
    case Rounding::Stochastic: ADD_FAILURE() << "stochastic rounding is modelled in test_fake_quant"; break;
  }
  return std::ldexp(k, q);
}

// A minifloat described by its grid: mantissa bits, exponent of the smallest normal,
// largest finite value (from the OCP / IEEE tables) and what overflow does.
struct Mini {
  int man;
  int emin;
  double max;
  bool overflow_to_inf = false;  // IEEE formats used per element (fp16, bf16)
};
constexpr Mini kE4M3{3, -6, 448.0};
constexpr Mini kE5M2{2, -14, 57344.0};
constexpr Mini kE3M2{2, -2, 28.0};
constexpr Mini kE2M3{3, 0, 7.5};
constexpr Mini kE2M1{1, 0, 6.0};
constexpr Mini kE4M3FiniteOnly{3, -6, 480.0};  // block minifloat: no code reserved
constexpr Mini kFP16{10, -14, 65504.0, true};
constexpr Mini kBF16{7, -126, 0x1.FEp127, true};
constexpr Mini kFP32{23, -126, static_cast<double>(FLT_MAX), true};

double round_mini(const Mini& f, double y, Rounding mode = Rounding::NearestEven) {
  if (std::isnan(y)) return y;
  const double a = std::fabs(y);
  double v = 0.0;
  if (std::isinf(a)) {
    v = f.overflow_to_inf ? kInf : f.max;
  } else if (a != 0.0) {
    const int q = std::max(floor_log2(a), f.emin) - f.man;
    v = round_mag(a, q, mode);
    if (v > f.max) v = (f.overflow_to_inf && mode != Rounding::TowardZero) ? kInf : f.max;
  }
  return std::copysign(v, y);
}

// W-bit integers times 2^-frac: symmetric (MX, BFP, int-per-block) or two's complement.
struct Fixed {
  int frac;
  std::int64_t kmin, kmax;
};
Fixed symmetric(int bits, int frac) {
  const std::int64_t m = (std::int64_t{1} << (bits - 1)) - 1;
  return {frac, -m, m};
}
Fixed twos(int bits, int frac) {
  return {frac, -(std::int64_t{1} << (bits - 1)), (std::int64_t{1} << (bits - 1)) - 1};
}
// Integer k (not yet saturated) nearest y * 2^frac; an integer has no -0.
std::int64_t round_int(double y, int frac, Rounding mode) {
  const double k = std::ldexp(round_mag(std::fabs(y), -frac, mode), frac);
  const double capped = std::min(k, 0x1p62);
  return static_cast<std::int64_t>(std::signbit(y) ? -capped : capped);
}
double round_fixed(const Fixed& f, double y, Rounding mode = Rounding::NearestEven) {
  if (std::isinf(y)) return std::ldexp(static_cast<double>(y > 0 ? f.kmax : f.kmin), -f.frac);
  const std::int64_t k = std::clamp(round_int(y, f.frac, mode), f.kmin, f.kmax);
  return std::ldexp(static_cast<double>(k), -f.frac);
}

// NF4 as published with QLoRA (bitsandbytes' float32 table).
constexpr std::array<double, 16> kNF4Table{
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0};

// Nearest table entry (ties: even index), by brute force.
double round_table(const std::vector<double>& t, double y) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < t.size(); ++i) {
    const double d = std::fabs(y - t[i]), db = std::fabs(y - t[best]);
    if (d < db || (d == db && i % 2 == 0)) best = i;
  }
  return t[best];
}

// Block log (paper's BL) with exponent field width E: powers 2^(1-2^E+1) .. 2^0, and 0;
// nearest in the log domain (y^2 against 2^(2k+1), exact in double for a float y).
double round_log(int exp_bits, double y) {
  const int lowest = 1 - ((1 << exp_bits) - 1);
  const double a = std::fabs(y);
  double v;
  if (a == 0.0) return 0.0;
  if (a >= 1.0) v = 1.0;
  else if (a < std::ldexp(1.0, lowest)) v = a >= std::ldexp(1.0, lowest - 1) ? std::ldexp(1.0, lowest) : 0.0;
  else {
    const int k = floor_log2(a);
    v = (a * a >= std::ldexp(1.0, 2 * k + 1)) ? std::ldexp(1.0, k + 1) : std::ldexp(1.0, k);
  }
  return v == 0.0 ? 0.0 : std::copysign(v, y);
}

// Round-to-nearest-even into a float scale format, saturating (the scale rule).
double to_scale_format(const Mini& f, double v) {
  Mini sat = f;
  sat.overflow_to_inf = false;
  return round_mini(sat, v);
}

bool any_nonfinite(const std::vector<float>& x) {
  return std::any_of(x.begin(), x.end(), [](float v) { return !std::isfinite(v); });
}
double absmax(const std::vector<float>& x) {
  double a = 0;
  for (float v : x) a = std::max(a, std::fabs(static_cast<double>(v)));
  return a;
}

using ElementFn = std::function<double(double)>;
using BlockFn = std::function<std::vector<float>(const std::vector<float>&)>;

// Power-of-two scale 2^se: y = fl32(x / 2^se), value = fl32(q * 2^se).
std::vector<float> pow2_block(const std::vector<float>& x, int se, const ElementFn& q) {
  std::vector<float> out(x.size());
  if (any_nonfinite(x)) return std::vector<float>(x.size(), kNaNf);
  se = std::clamp(se, -127, 127);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float y = static_cast<float>(std::ldexp(static_cast<double>(x[i]), -se));
    out[i] = static_cast<float>(std::ldexp(q(y), se));
  }
  return out;
}

// OCP MX §6.3: se = floor(log2 amax) - emax_elem; zero block -> lowest scale.
BlockFn mx(int emax_elem, ElementFn q) {
  return [=](const std::vector<float>& x) {
    const double a = absmax(x);
    const int se = a == 0.0 ? -127 : floor_log2(a) - emax_elem;
    return pow2_block(x, se, q);
  };
}

// BFP: the smallest shared exponent with amax <= kmax * 2^se (found by search).
BlockFn bfp(int bits) {
  const Fixed f = symmetric(bits, 0);
  return [=](const std::vector<float>& x) {
    const double a = absmax(x);
    int se = -127;
    while (se < 127 && a > std::ldexp(static_cast<double>(f.kmax), se)) ++se;
    return pow2_block(x, se, [=](double y) { return round_fixed(f, y); });
  };
}

// Block log: the top power 2^0 sits at 2^ceil(log2 amax).
BlockFn block_log(int bits) {
  return [=](const std::vector<float>& x) {
    const double a = absmax(x);
    int se = -127;
    if (a > 0) {
      se = floor_log2(a);
      if (std::ldexp(1.0, se) < a) ++se;
    }
    return pow2_block(x, se, [=](double y) { return round_log(bits - 1, y); });
  };
}

// Float scale s = round(amax / element max) in the scale format; y = fl32(x / s).
BlockFn absmax_scaled(const Mini& scale_fmt, double elem_max, ElementFn q) {
  return [=](const std::vector<float>& x) {
    if (any_nonfinite(x)) return std::vector<float>(x.size(), kNaNf);
    const float s = static_cast<float>(to_scale_format(scale_fmt, absmax(x) / elem_max));
    std::vector<float> out(x.size(), 0.0f);
    if (s == 0.0f) return out;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float y = x[i] / s;
      out[i] = static_cast<float>(q(y)) * s;
    }
    return out;
  };
}

// Asymmetric: s = round((max - min) / (2^W - 1)) with min <= 0 <= max, zero point
// z = round(-min / s) in [0, 2^W - 1], k = clamp(round(x / s) + z), value = (k - z) * s.
BlockFn zero_point(int bits, const Mini& scale_fmt) {
  const std::int64_t qmax = (std::int64_t{1} << bits) - 1;
  return [=](const std::vector<float>& x) {
    if (any_nonfinite(x)) return std::vector<float>(x.size(), kNaNf);
    double lo = 0, hi = 0;
    for (float v : x) lo = std::min<double>(lo, v), hi = std::max<double>(hi, v);
    const float s = static_cast<float>(to_scale_format(scale_fmt, (hi - lo) / static_cast<double>(qmax)));
    std::vector<float> out(x.size(), 0.0f);
    if (s == 0.0f) return out;
    const auto z = static_cast<std::int64_t>(std::clamp(std::nearbyint(-lo / s), 0.0, static_cast<double>(qmax)));
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float y = x[i] / s;
      const std::int64_t k = std::clamp<std::int64_t>(round_int(y, 0, Rounding::NearestEven) + z, 0, qmax);
      out[i] = static_cast<float>(k - z) * s;
    }
    return out;
  };
}

// NVFP4 within one block, given the tensor scale st: s = fl32(E4M3(amax / 6 / st) * st).
BlockFn nvfp4_block(float st) {
  return [=](const std::vector<float>& x) {
    if (any_nonfinite(x)) return std::vector<float>(x.size(), kNaNf);
    const double sd = to_scale_format(kE4M3, absmax(x) / 6.0 / static_cast<double>(st));
    const float s = static_cast<float>(sd) * st;
    std::vector<float> out(x.size(), 0.0f);
    if (!(s > 0.0f)) return out;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float y = x[i] / s;
      out[i] = static_cast<float>(round_mini(kE2M1, y)) * s;
    }
    return out;
  };
}
float nvfp4_tensor_scale(const std::vector<float>& x) {
  double amax = 0;
  for (float v : x)
    if (std::isfinite(v)) amax = std::max(amax, std::fabs(static_cast<double>(v)));
  const float st = static_cast<float>(amax / (6.0 * 448.0));
  return st > 0.0f && std::isfinite(st) ? st : 1.0f;
}

// Applies a block model to a row-major rows x cols matrix cut along rows into blocks of b.
std::vector<float> apply_rows(const BlockFn& f, const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                              std::int64_t b) {
  std::vector<float> out(x.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c0 = 0; c0 < cols; c0 += b) {
      const std::int64_t n = std::min(b, cols - c0);
      std::vector<float> blk(x.begin() + r * cols + c0, x.begin() + r * cols + c0 + n);
      const std::vector<float> q = f(blk);
      std::copy(q.begin(), q.end(), out.begin() + r * cols + c0);
    }
  return out;
}

}  // namespace ref

// ---- inputs -------------------------------------------------------------------------------
constexpr std::int64_t kCols = 64;

// Weights/activations-like rows: Student-t(3) bodies, per-row magnitudes over many binades,
// a few outlier channels, exact zeros and some tiny values.
std::vector<float> llm_like(std::int64_t rows, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::student_t_distribution<double> t(3.0);
  std::normal_distribution<double> n(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> col_scale(kCols, 1.0);
  for (auto& c : col_scale)
    if (u(g) < 0.05) c = 20.0 + 180.0 * u(g);
  std::vector<float> x(static_cast<std::size_t>(rows * kCols));
  for (std::int64_t r = 0; r < rows; ++r) {
    const double row_scale = std::exp2(3.0 * n(g) - 4.0);
    for (std::int64_t c = 0; c < kCols; ++c) {
      const double p = u(g);
      double v = t(g) * row_scale * col_scale[static_cast<std::size_t>(c)];
      if (p < 0.02) v = 0.0;
      else if (p < 0.03) v *= 1e-30;
      x[static_cast<std::size_t>(r * kCols + c)] = static_cast<float>(v);
    }
  }
  return x;
}

// Finite edge rows (kCols each): zeros, signed zeros, subnormals, FLT_MAX, powers of two and
// their neighbours, grid midpoints at many scales, one outlier among tiny values.
std::vector<float> edge_rows() {
  std::vector<std::vector<float>> rows;
  auto row = [&](auto gen) {
    std::vector<float> v(kCols);
    for (std::int64_t i = 0; i < kCols; ++i) v[static_cast<std::size_t>(i)] = gen(static_cast<int>(i));
    rows.push_back(v);
  };
  row([](int) { return 0.0f; });
  row([](int) { return -0.0f; });
  row([](int i) { return i % 7 == 3 ? -0.0f : 0.0f; });
  row([](int i) { return i % 5 == 0 ? std::ldexp(1.0f, -149) * static_cast<float>(i + 1) : 0.0f; });
  row([](int i) { return (i % 2 ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(i + 1), -149); });
  row([](int i) { return (i % 3 ? 1.0f : -1.0f) * std::ldexp(1.0f + static_cast<float>(i) / 64.0f, -126); });
  row([](int i) { return (i % 2 ? -1.0f : 1.0f) * (i % 4 == 0 ? FLT_MAX : FLT_MAX / static_cast<float>(i + 1)); });
  row([](int i) { return std::ldexp(1.0f, (i * 37) % 250 - 125) * (i % 2 ? -1.0f : 1.0f); });
  row([](int i) { return std::nextafter(std::ldexp(1.0f, i % 20 - 10), 0.0f); });
  row([](int i) { return std::nextafter(std::ldexp(1.0f, i % 20 - 10), 1e30f); });
  // multiples of 1/16 up to 4 and their negatives: ties for every coarse grid
  row([](int i) { return static_cast<float>((i % 32) * (i % 2 ? -1 : 1)) * 0.0625f; });
  row([](int i) { return static_cast<float>(i) * 0.25f - 8.0f; });
  row([](int i) { return (i % 16 == 0 ? 1000.0f : 1e-4f * static_cast<float>(i)); });
  row([](int i) { return (i % 16 == 5 ? -3.0e5f : std::ldexp(1.0f, -(i % 40))); });
  row([](int i) { return static_cast<float>(i % 8) * 0.5f + 0.25f; });  // midpoints of FP4
  row([](int i) { return std::ldexp(1.0f, 60 + i % 8) * (1.0f + static_cast<float>(i % 5) / 8.0f); });
  std::vector<float> flat;
  for (auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return flat;
}

// Non-finite rows: one NaN / +Inf / -Inf somewhere, mixed with ordinary values.
std::vector<float> special_rows() {
  std::vector<float> x = llm_like(4, 77);
  const float inf = std::numeric_limits<float>::infinity();
  x[3] = kNaNf;
  x[kCols + 20] = inf;
  x[2 * kCols + 40] = -inf;
  x[3 * kCols + 63] = kNaNf;
  x[3 * kCols + 1] = inf;
  return x;
}

// ---- comparison ---------------------------------------------------------------------------
bool same(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof a) == 0;
}

::testing::AssertionResult matches(const std::vector<float>& x, const std::vector<float>& got,
                                   const std::vector<float>& want) {
  std::size_t bad = 0;
  std::ostringstream os;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!same(got[i], want[i])) {
      if (bad < 6)
        os << "\n  [" << i / kCols << "," << i % kCols << "] x=" << std::hexfloat << x[i] << " got=" << got[i]
           << " want=" << want[i] << std::defaultfloat;
      ++bad;
    }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << x.size() << " values differ:" << os.str();
}

template <class F>
std::vector<float> run(const F& fmt, const std::vector<float>& x, const QuantOptions& opt = {}) {
  const std::int64_t rows = static_cast<std::int64_t>(x.size()) / kCols;
  std::vector<float> out(x.size());
  lowbit::fake_quant(fmt, MatrixRef<const float>::row_major(x.data(), rows, kCols),
                     MatrixRef<float>::row_major(out.data(), rows, kCols), opt);
  return out;
}

// Checks a format against its model on LLM-like, edge and (optionally) non-finite inputs.
template <class F>
void check_family(const F& fmt, const ref::BlockFn& model, std::int64_t block, bool specials = true) {
  std::vector<std::vector<float>> inputs{llm_like(48, 1), llm_like(16, 2), edge_rows()};
  if (specials) inputs.push_back(special_rows());
  for (const auto& x : inputs) {
    const std::int64_t rows = static_cast<std::int64_t>(x.size()) / kCols;
    EXPECT_TRUE(matches(x, run(fmt, x), ref::apply_rows(model, x, rows, kCols, block)));
  }
}

ref::ElementFn mini(const ref::Mini& m) {
  return [m](double y) { return ref::round_mini(m, y); };
}
ref::ElementFn fixed(const ref::Fixed& f) {
  return [f](double y) { return ref::round_fixed(f, y); };
}

// ---- MX -----------------------------------------------------------------------------------
// emax_elem values are OCP MX v1.0's: floor(log2(max normal)).
TEST(MxFormats, MatchTheOcpModel) {
  check_family(lowbit::MXFP8_E4M3{}, ref::mx(8, mini(ref::kE4M3)), 32);
  check_family(lowbit::MXFP8_E5M2{}, ref::mx(15, mini(ref::kE5M2)), 32);
  check_family(lowbit::MXFP6_E3M2{}, ref::mx(4, mini(ref::kE3M2)), 32);
  check_family(lowbit::MXFP6_E2M3{}, ref::mx(2, mini(ref::kE2M3)), 32);
  check_family(lowbit::MXFP4{}, ref::mx(2, mini(ref::kE2M1)), 32);
}

TEST(MxFormats, IntegersMatchTheMicroxcalingModel) {
  check_family(lowbit::MXINT8{}, ref::mx(0, fixed(ref::symmetric(8, 6))), 32);
  check_family(lowbit::MXINT4{}, ref::mx(0, fixed(ref::symmetric(4, 2))), 32);
  check_family(lowbit::MXINT2{}, ref::mx(0, fixed(ref::symmetric(2, 0))), 32);
}

TEST(MxFormats, FloorRuleSaturatesTheBlockMaximum) {
  // amax = 7.9: se = floor(log2 7.9) - 2 = 0, 7.9 is above FP4's 6 and saturates (OCP §6.3).
  std::vector<float> x(32, 0.5f);
  x[0] = 7.9f;
  x[1] = -7.0f;
  x[2] = 6.5f;
  std::vector<float> out(32);
  lowbit::fake_quant(lowbit::MXFP4{}, std::span<const float>(x), std::span<float>(out));
  EXPECT_EQ(out[0], 6.0f);
  EXPECT_EQ(out[1], -6.0f);
  EXPECT_EQ(out[2], 6.0f);
  EXPECT_EQ(out[3], 0.5f);
  // MXFP8 E4M3: amax 500 -> se = 8 - 8 = 0, 500 > 448 saturates to 448.
  x.assign(32, 1.0f);
  x[7] = 500.0f;
  lowbit::fake_quant(lowbit::MXFP8_E4M3{}, std::span<const float>(x), std::span<float>(out));
  EXPECT_EQ(out[7], 448.0f);
  EXPECT_EQ(out[0], 1.0f);
}

TEST(MxFormats, AlternativeScaleRulesMatchTheirDefinitions) {
  // Ceil: se = ceil(log2 amax) - emax.  Fit: smallest se with amax <= max * 2^se.
  // Even: amax rounded (ties away) to the element's top-binade precision, then Floor.
  const auto ceil_fp4 = lowbit::mx_format(lowbit::FP4_E2M1::spec, lowbit::ScaleRule::Ceil);
  const auto fit_fp4 = lowbit::mx_format(lowbit::FP4_E2M1::spec, lowbit::ScaleRule::Fit);
  const auto even_fp4 = lowbit::mx_format(lowbit::FP4_E2M1::spec, lowbit::ScaleRule::Even);
  auto ceil_model = [](const std::vector<float>& x) {
    const double a = ref::absmax(x);
    int se = -127;
    if (a > 0) se = ref::floor_log2(a) + (std::ldexp(1.0, ref::floor_log2(a)) < a ? 1 : 0) - 2;
    return ref::pow2_block(x, se, mini(ref::kE2M1));
  };
  auto fit_model = [](const std::vector<float>& x) {
    const double a = ref::absmax(x);
    int se = -127;
    while (se < 127 && a > std::ldexp(6.0, se)) ++se;
    return ref::pow2_block(x, se, mini(ref::kE2M1));
  };
  auto even_model = [](const std::vector<float>& x) {
    const double a = ref::absmax(x);
    if (a == 0) return ref::pow2_block(x, -127, mini(ref::kE2M1));
    const int e = ref::floor_log2(a);
    const double r = ref::round_mag(a, e - 1, Rounding::NearestAway);  // E2M1 keeps 1 mantissa bit
    return ref::pow2_block(x, ref::floor_log2(r) - 2, mini(ref::kE2M1));
  };
  check_family(ceil_fp4, ceil_model, 32);
  check_family(fit_fp4, fit_model, 32);
  check_family(even_fp4, even_model, 32);
}

// ---- BFP and integers with power-of-two scales --------------------------------------------
TEST(BfpFormats, MatchTheSmallestExponentModel) {
  check_family(lowbit::BFP8_B16{}, ref::bfp(8), 16);
  check_family(lowbit::BFP6_B16{}, ref::bfp(6), 16);
  check_family(lowbit::BFP4_B16{}, ref::bfp(4), 16);
  check_family(lowbit::int_block_e8m0_format(5, 32), ref::bfp(5), 32);
}

TEST(BfpFormats, NeverClipTheBlockMaximumAndUseTheSmallestExponent) {
  const std::vector<float> x = llm_like(64, 5);
  const auto fmt = lowbit::BFP4_B16::format;  // magnitudes 0..7
  const lowbit::QuantizedTensor qt = lowbit::quantize(fmt, MatrixRef<const float>::row_major(x.data(), 64, kCols));
  std::vector<float> out(x.size());
  lowbit::dequantize(fmt, qt, MatrixRef<float>::row_major(out.data(), 64, kCols));
  std::size_t checked = 0;
  for (std::int64_t r = 0; r < 64; ++r)
    for (std::int64_t b = 0; b < kCols / 16; ++b) {
      double amax = 0;
      std::size_t arg = 0;
      for (std::int64_t c = b * 16; c < b * 16 + 16; ++c) {
        const auto i = static_cast<std::size_t>(r * kCols + c);
        if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), arg = i;
      }
      const int se = static_cast<int>(qt.headers[static_cast<std::size_t>(r * 4 + b)].scale) - 127;
      if (amax < 0x1p-120) continue;  // the exponent clamps at -127
      ++checked;
      EXPECT_LE(amax, std::ldexp(7.0, se)) << "row " << r << " block " << b << ": clipped";
      EXPECT_GT(amax, std::ldexp(7.0, se - 1)) << "row " << r << " block " << b << ": exponent not the smallest";
      EXPECT_LE(std::fabs(std::fabs(out[arg]) - amax), std::ldexp(0.5, se)) << "row " << r << " block " << b;
    }
  EXPECT_GT(checked, 200u);
}

// ---- integers with float scales ------------------------------------------------------------
TEST(IntBlockFormats, MatchTheAbsmaxModel) {
  check_family(lowbit::INT8_B32_FP16{}, ref::absmax_scaled(ref::kFP16, 127, fixed(ref::symmetric(8, 0))), 32);
  check_family(lowbit::INT4_B32_FP16{}, ref::absmax_scaled(ref::kFP16, 7, fixed(ref::symmetric(4, 0))), 32);
  check_family(lowbit::int_block_format(4, 64, lowbit::FP32::spec),
               ref::absmax_scaled(ref::kFP32, 7, fixed(ref::symmetric(4, 0))), 64);
  check_family(lowbit::int_block_format(6, 16, lowbit::BF16::spec),
               ref::absmax_scaled(ref::kBF16, 31, fixed(ref::symmetric(6, 0))), 16);
  check_family(lowbit::int_block_format(3, 8, lowbit::FP8_E4M3::spec),
               ref::absmax_scaled(ref::kE4M3, 3, fixed(ref::symmetric(3, 0))), 8);
}

TEST(IntBlockFormats, ZeroPointMatchesTheMinMaxModel) {
  check_family(lowbit::UINT4_B32_FP16{}, ref::zero_point(4, ref::kFP16), 32);
  check_family(lowbit::uint_block_format(8, 64, lowbit::FP32::spec), ref::zero_point(8, ref::kFP32), 64);
  check_family(lowbit::uint_block_format(3, 16, lowbit::BF16::spec), ref::zero_point(3, ref::kBF16), 16);
}

TEST(IntBlockFormats, ZeroPointKeepsZeroExact) {
  // Blocks of mixed sign, all positive and all negative: every 0 input decodes to +-0.
  std::vector<float> x = llm_like(32, 9);
  for (std::int64_t r = 0; r < 32; ++r) {
    for (std::int64_t c = 0; c < kCols; c += 5) x[static_cast<std::size_t>(r * kCols + c)] = 0.0f;
    if (r % 3 == 1)
      for (std::int64_t c = 0; c < kCols; ++c) x[static_cast<std::size_t>(r * kCols + c)] = std::fabs(x[static_cast<std::size_t>(r * kCols + c)]) + 1.0f;
    if (r % 3 == 2)
      for (std::int64_t c = 0; c < kCols; ++c) x[static_cast<std::size_t>(r * kCols + c)] = -std::fabs(x[static_cast<std::size_t>(r * kCols + c)]) - 1.0f;
    for (std::int64_t c = 0; c < kCols; c += 5) x[static_cast<std::size_t>(r * kCols + c)] = 0.0f;
  }
  for (auto fmt : {lowbit::UINT4_B32_FP16::format, lowbit::uint_block_format(2, 32, lowbit::FP32::spec)}) {
    const std::vector<float> out = run(fmt, x);
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      if (x[i] == 0.0f) {
        ++zeros;
        EXPECT_EQ(out[i], 0.0f) << "index " << i;
      }
    EXPECT_GT(zeros, 32u * 12u);
  }
}

// ---- NVFP4 --------------------------------------------------------------------------------
TEST(Nvfp4, MatchesTheTwoLevelScaleModel) {
  for (const auto& x : {llm_like(48, 3), edge_rows(), special_rows()}) {
    const std::int64_t rows = static_cast<std::int64_t>(x.size()) / kCols;
    const float st = ref::nvfp4_tensor_scale(x);
    EXPECT_TRUE(matches(x, run(lowbit::NVFP4{}, x), ref::apply_rows(ref::nvfp4_block(st), x, rows, kCols, 16)));
  }
}

TEST(Nvfp4, TensorScaleMakesTheLargestBlockScaleTheTopOfE4M3) {
  std::vector<float> x = llm_like(8, 4);
  x[100] = 5000.0f;  // the tensor maximum
  const lowbit::QuantizedTensor qt =
      lowbit::quantize(lowbit::NVFP4{}, MatrixRef<const float>::row_major(x.data(), 8, kCols));
  EXPECT_EQ(qt.tensor.tensor_scale, static_cast<float>(5000.0 / (6.0 * 448.0)));
  // The block holding the maximum stores E4M3 448 (code 0x7E); 5000 itself decodes to 5000
  // within FP4's step at 6 * s (4 * s apart), and the stored block scale is exactly 448 st.
  const std::size_t block = 100 / 16;
  EXPECT_EQ(qt.headers[block].scale, 0x7Eu);
  std::vector<float> y(x.size());
  lowbit::dequantize(lowbit::NVFP4{}, qt, MatrixRef<float>::row_major(y.data(), 8, kCols));
  EXPECT_EQ(y[100], static_cast<float>(6.0 * static_cast<double>(448.0f * qt.tensor.tensor_scale)));
  // The per-tensor level matters: a tensor 2^20 times smaller quantises to the same codes.
  std::vector<float> small(x);
  for (auto& v : small) v = std::ldexp(v, -20);
  const lowbit::QuantizedTensor qs =
      lowbit::quantize(lowbit::NVFP4{}, MatrixRef<const float>::row_major(small.data(), 8, kCols));
  EXPECT_EQ(qs.codes, qt.codes);
  for (std::size_t b = 0; b < qt.headers.size(); ++b) EXPECT_EQ(qs.headers[b].scale, qt.headers[b].scale) << b;
}

TEST(Nvfp4, AllZeroTensorUsesUnitTensorScale) {
  std::vector<float> x(2 * kCols, 0.0f), out(x.size(), 1.0f);
  const lowbit::QuantizedTensor qt =
      lowbit::quantize(lowbit::NVFP4{}, MatrixRef<const float>::row_major(x.data(), 2, kCols));
  EXPECT_EQ(qt.tensor.tensor_scale, 1.0f);
  out = run(lowbit::NVFP4{}, x);
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

// ---- codebooks ----------------------------------------------------------------------------
TEST(Codebooks, Nf4MatchesTheQloraTable) {
  for (int i = 0; i < 16; ++i) EXPECT_EQ(lowbit::kNF4.values[static_cast<std::size_t>(i)], ref::kNF4Table[static_cast<std::size_t>(i)]) << i;
  const std::vector<double> table(ref::kNF4Table.begin(), ref::kNF4Table.end());
  check_family(lowbit::NF4{}, ref::absmax_scaled(ref::kFP32, 1.0, [table](double y) { return ref::round_table(table, y); }), 64);
}

TEST(Codebooks, Sf4RoundsToItsTable) {
  // The SF4 table itself is checked with its construction; here, the codebook mechanism.
  const std::vector<double> table(lowbit::kSF4.values.begin(), lowbit::kSF4.values.begin() + lowbit::kSF4.size);
  ASSERT_EQ(table.front(), -1.0);
  ASSERT_EQ(table.back(), 1.0);
  check_family(lowbit::SF4{}, ref::absmax_scaled(ref::kFP32, 1.0, [table](double y) { return ref::round_table(table, y); }), 64);
}

// ---- scaled minifloats --------------------------------------------------------------------
TEST(ScaledMinifloat, PerTensorFp8MatchesTheModel) {
  for (const auto& x : {llm_like(32, 6), edge_rows(), special_rows()}) {
    const std::int64_t rows = static_cast<std::int64_t>(x.size()) / kCols;
    const std::vector<float> want = ref::absmax_scaled(ref::kFP32, 448.0, mini(ref::kE4M3))(x);
    EXPECT_TRUE(matches(x, run(lowbit::FP8_E4M3_PER_TENSOR{}, x), want)) << rows << " rows";
  }
  check_family(lowbit::scaled_minifloat_format(lowbit::FP8_E5M2::spec, 32, lowbit::BF16::spec),
               ref::absmax_scaled(ref::kBF16, 57344.0, mini(ref::kE5M2)), 32);
  check_family(lowbit::scaled_minifloat_format(lowbit::FP4_E2M1::spec, 16, lowbit::FP8_E4M3::spec),
               ref::absmax_scaled(ref::kE4M3, 6.0, mini(ref::kE2M1)), 16);
}

// ---- the paper's block minifloat and block log --------------------------------------------
TEST(PaperBlockFormats, BlockMinifloatMatchesTheFloorModel) {
  // E4M3 with no reserved codes: max 1.875 * 2^8 = 480, emax 8.
  check_family(lowbit::BM8_E4M3_B16{}, ref::mx(8, mini(ref::kE4M3FiniteOnly)), 16);
  // E3M2 (max 1.75 * 2^4 = 28 with bias 3, emax 4).
  check_family(lowbit::block_minifloat_format(3, 2, 32), ref::mx(4, mini(ref::Mini{2, -2, 28.0})), 32);
}

TEST(PaperBlockFormats, BlockLogMatchesTheCeilModel) {
  check_family(lowbit::BL8_B16{}, ref::block_log(8), 16);
  check_family(lowbit::block_log_format(4, 32), ref::block_log(4), 32);
}

// ---- per-element formats ------------------------------------------------------------------
TEST(ElementFormats, MinifloatsMatchTheirGrids) {
  using lowbit::element_format;
  auto per_element = [](const ref::Mini& m) {
    return [m](const std::vector<float>& x) {
      std::vector<float> out(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) out[i] = static_cast<float>(ref::round_mini(m, x[i]));
      return out;
    };
  };
  std::vector<float> x = special_rows();
  for (const auto& part : {llm_like(16, 8), edge_rows()}) x.insert(x.end(), part.begin(), part.end());
  EXPECT_TRUE(matches(x, run(element_format(lowbit::FP8_E4M3::spec), x), per_element(ref::kE4M3)(x)));
  EXPECT_TRUE(matches(x, run(element_format(lowbit::FP8_E5M2::spec), x), per_element(ref::Mini{2, -14, 57344.0})(x)));
  EXPECT_TRUE(matches(x, run(element_format(lowbit::FP16::spec), x), per_element(ref::kFP16)(x)));
  EXPECT_TRUE(matches(x, run(element_format(lowbit::BF16::spec), x), per_element(ref::kBF16)(x)));
  EXPECT_TRUE(matches(x, run(element_format(lowbit::FP32::spec), x), x));
  // Finite-only formats have no NaN: their inputs must be finite (NaN throws, tested below).
  const std::vector<float> finite = edge_rows();
  EXPECT_TRUE(matches(finite, run(element_format(lowbit::FP6_E3M2::spec), finite), per_element(ref::kE3M2)(finite)));
  EXPECT_TRUE(matches(finite, run(element_format(lowbit::FP6_E2M3::spec), finite), per_element(ref::kE2M3)(finite)));
  EXPECT_TRUE(matches(finite, run(element_format(lowbit::FP4_E2M1::spec), finite), per_element(ref::kE2M1)(finite)));
}

TEST(ElementFormats, FixedPointMatchesItsGrid) {
  const std::vector<float> x = [] {
    std::vector<float> v = llm_like(16, 10);
    const std::vector<float> e = edge_rows();
    v.insert(v.end(), e.begin(), e.end());
    return v;
  }();
  for (auto [bits, frac] : {std::pair{8, 7}, {8, 4}, {4, 2}, {16, 8}, {2, 0}, {8, -3}}) {
    const auto fmt = lowbit::element_format(lowbit::FixedPointSpec{bits, frac, lowbit::IntRange::TwosComplement});
    const ref::Fixed f = ref::twos(bits, frac);
    std::vector<float> want(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) want[i] = static_cast<float>(ref::round_fixed(f, x[i]));
    EXPECT_TRUE(matches(x, run(fmt, x), want)) << "w" << bits << " f" << frac;
  }
}

TEST(ElementFormats, NaNIntoAFormatWithoutNaNThrows) {
  const std::vector<float> x{1.0f, kNaNf};
  std::vector<float> out(2);
  for (auto fmt : {lowbit::element_format(lowbit::FP4_E2M1::spec), lowbit::element_format(lowbit::FP6_E3M2::spec)})
    EXPECT_THROW(lowbit::fake_quant(fmt, std::span<const float>(x), std::span<float>(out)), lowbit::Error);
  EXPECT_THROW(lowbit::fake_quant(lowbit::element_format(lowbit::FixedPointSpec{8, 4}), std::span<const float>(x),
                                  std::span<float>(out)),
               lowbit::Error);
}

// ---- storage accounting -------------------------------------------------------------------
TEST(BitsPerElement, MatchTheDefinitions) {
  EXPECT_DOUBLE_EQ(lowbit::MXFP4::format.bits_per_element(), 4.0 + 8.0 / 32);
  EXPECT_DOUBLE_EQ(lowbit::MXFP6_E3M2::format.bits_per_element(), 6.0 + 8.0 / 32);
  EXPECT_DOUBLE_EQ(lowbit::MXFP8_E4M3::format.bits_per_element(), 8.25);
  EXPECT_DOUBLE_EQ(lowbit::MXINT8::format.bits_per_element(), 8.25);
  EXPECT_DOUBLE_EQ(lowbit::MXINT2::format.bits_per_element(), 2.25);
  EXPECT_DOUBLE_EQ(lowbit::BFP6_B16::format.bits_per_element(), 6.5);
  EXPECT_DOUBLE_EQ(lowbit::BFP4_B16::format.bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(lowbit::BFP8_B16::format.bits_per_element(), 8.5);
  EXPECT_DOUBLE_EQ(lowbit::INT4_B32_FP16::format.bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(lowbit::INT8_B32_FP16::format.bits_per_element(), 8.5);
  EXPECT_DOUBLE_EQ(lowbit::NVFP4::format.bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(lowbit::NF4::format.bits_per_element(), 4.5);
  EXPECT_DOUBLE_EQ(lowbit::UINT4_B32_FP16::format.bits_per_element(), 4.0 + (16.0 + 4.0) / 32);
  EXPECT_DOUBLE_EQ(lowbit::BM8_E4M3_B16::format.bits_per_element(), 8.5);
  EXPECT_DOUBLE_EQ(lowbit::BL8_B16::format.bits_per_element(), 8.5);
  EXPECT_DOUBLE_EQ(lowbit::element_format(lowbit::FP8_E4M3::spec).bits_per_element(), 8.0);
  EXPECT_DOUBLE_EQ(lowbit::element_format(lowbit::FixedPointSpec{8, 7}).bits_per_element(), 8.0);
  EXPECT_DOUBLE_EQ(lowbit::int_block_format(4, 128, lowbit::BF16::spec).bits_per_element(), 4.125);
  EXPECT_DOUBLE_EQ(lowbit::MXFP4::format.bits_per_element(16), 4.5);
  // Per tensor: the scale is amortised over the tensor; with no length given, only elements.
  EXPECT_DOUBLE_EQ(lowbit::FP8_E4M3_PER_TENSOR::format.bits_per_element(), 8.0);
}

TEST(BlockFormat, ValidateRejectsBadSpecs) {
  auto fmt = lowbit::MXFP4::format;
  fmt.block_size = 0;
  EXPECT_THROW(fmt.validate(), lowbit::Error);
  fmt.block_size = -5;
  EXPECT_THROW(fmt.validate(), lowbit::Error);
  EXPECT_NO_THROW(lowbit::NVFP4::format.validate());
  EXPECT_NO_THROW(lowbit::UINT4_B32_FP16::format.validate());
  auto zp = lowbit::UINT4_B32_FP16::format;
  zp.scale.rule = lowbit::ScaleRule::Absmax;
  EXPECT_THROW(zp.validate(), lowbit::Error);
}

}  // namespace
