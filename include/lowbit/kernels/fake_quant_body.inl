// The SIMD fake-quant kernel, written once over a lane type V (simd::Avx512, simd::Avx2) and
// compiled once per instruction set by including this file inside a target region (see
// fake_quant_simd.hpp). Everything here reproduces the scalar reference bit for bit:
//   - block headers come from the same BlockFormat::choose_header call, fed the same
//     absmax / min / max (exact float values);
//   - y = x / s is IEEE division (for power-of-two scales, multiplication by the exact
//     inverse, which is the same correctly rounded value);
//   - rounding to the element grid is done on the float's bits exactly as round_to_grid does
//     it on a double's bits (see element_rounding.hpp for the grid);
//   - the output is fl32(element * s).
// Not a standalone header: no include guard, no includes.

template <class V>
struct LaneRounding {
  using I = typename V::I;
  I emin, man, q_below, max_bits, neg_max_bits, ovf_bits, inf_bits, nan_or, nan_keep, add_clamp;
  bool saturate, nan_encodable, zero_keeps_sign, subnormals;
  // Nearest-even by float addition: (a + C) - C with C = 1.5 * 2^(q + 23) rounds a to a
  // multiple of 2^q when a < 2^(q + 23), which holds for man <= 22; inputs that would
  // overflow are clamped first (see ElementRounding). Exact under the default MXCSR (no
  // FTZ/DAZ).
  bool add_rounding;

  explicit LaneRounding(const ElementRounding& r)
      : emin(V::set(r.emin)), man(V::set(r.man)),
        q_below(V::set(r.subnormals ? r.emin - r.man : r.emin)), max_bits(V::set(static_cast<std::int32_t>(r.max_bits))),
        neg_max_bits(V::set(static_cast<std::int32_t>(r.neg_max_bits))), ovf_bits(V::set(static_cast<std::int32_t>(r.ovf_bits))),
        inf_bits(V::set(static_cast<std::int32_t>(r.inf_bits))), nan_or(V::set(static_cast<std::int32_t>(r.nan_or))),
        nan_keep(V::set(static_cast<std::int32_t>(r.nan_keep))),
        add_clamp(V::set(static_cast<std::int32_t>(r.add_clamp_bits))), saturate(r.saturate), nan_encodable(r.nan_encodable),
        zero_keeps_sign(r.zero_keeps_sign), subnormals(r.subnormals), add_rounding(r.add_rounding) {}
};

// SplitMix64's finaliser, 64-bit lanes.
template <class V>
inline typename V::Q mix64_lanes(typename V::Q z) {
  z = V::mul64(V::xor64(z, V::template srl64<30>(z)), V::set64(0xBF58476D1CE4E5B9ull));
  z = V::mul64(V::xor64(z, V::template srl64<27>(z)), V::set64(0x94D049BB133111EBull));
  return V::xor64(z, V::template srl64<31>(z));
}

// stochastic_bits(seed, first + i) for the N lanes i.
template <class V>
inline typename V::I random_lanes(std::uint64_t seed, std::uint64_t first) {
  static_assert(V::N == 2 * V::N64, "two 64-bit vectors per 32-bit vector");
  const typename V::Q k = V::set64(0x9E3779B97F4A7C15ull), sd = V::set64(seed);
  const typename V::Q lo = mix64_lanes<V>(V::xor64(mix64_lanes<V>(V::add64(V::iota64(first), k)), sd));
  const typename V::Q hi =
      mix64_lanes<V>(V::xor64(mix64_lanes<V>(V::add64(V::iota64(first + V::N64), k)), sd));
  return V::high_halves(lo, hi);
}

// Rounds the float bits xb to the element grid; returns the float bits of the element value.
// `bad` collects lanes holding a NaN the format cannot encode. With kFinite the caller
// guarantees finite inputs (scaled blocks: x / s of a finite block) and Inf/NaN handling is
// left out.
template <class V, Rounding mode, bool kFinite = false>
inline typename V::I round_lanes(typename V::I xb, const LaneRounding<V>& p, typename V::I rnd, typename V::M& bad) {
  using I = typename V::I;
  using M = typename V::M;
  const I sign = V::and_(xb, V::set(static_cast<std::int32_t>(0x80000000u)));
  const I a = V::and_(xb, V::set(0x7FFFFFFF));
  const I field = V::template srl<23>(a);
  const I one = V::set(1);
  const M is_sub = V::eq(field, V::set(0));
  const I e = V::sub(field, V::set(127));
  const I q = V::select(V::gt(p.emin, e), p.q_below, V::sub(e, p.man));
  const I lsb = V::select(is_sub, V::set(-149), V::sub(field, V::set(150)));
  const I s = V::sub(q, lsb);  // significand bits below the grid step
  const I mant = V::and_(a, V::set(0x007FFFFF));
  const I sig = V::select(is_sub, mant, V::or_(mant, V::set(0x00800000)));

  I r;
  if (mode == Rounding::NearestEven && p.add_rounding) {
    const I a_c = V::min_u(a, p.add_clamp);
    const I e_c = V::sub(V::template srl<23>(a_c), V::set(127));
    const I q_c = V::select(V::gt(p.emin, e_c), p.q_below, V::sub(e_c, p.man));
    const I c = V::or_(V::sllv(V::add(q_c, V::set(150)), V::set(23)), V::set(0x00400000));
    r = V::bits(V::sub_f(V::add_f(V::flt(a_c), V::flt(c)), V::flt(c)));
  } else {
    // Case s in 1..23: round inside the significand, carry into the exponent by addition.
    const I step = V::sllv(one, s);
    const I mask = V::sub(step, one);
    const I rem = V::and_(a, mask);
    const I half = V::sllv(one, V::sub(s, one));
    // Case s >= 24: the value is below one step: the result is 0 or 2^q.
    const M s24 = V::eq(s, V::set(24));
    M up_in, up_low;
    if constexpr (mode == Rounding::NearestEven) {
      const I odd = V::and_(V::srlv(sig, s), one);
      up_in = V::m_or(V::gt(rem, half), V::m_and(V::eq(rem, half), V::eq(odd, one)));
      up_low = V::m_and(s24, V::gt(sig, V::set(0x00800000)));
    } else if constexpr (mode == Rounding::NearestAway) {
      up_in = V::m_not(V::gt(half, rem));
      up_low = V::m_and(s24, V::m_not(V::gt(V::set(0x00800000), sig)));
    } else if constexpr (mode == Rounding::TowardZero) {
      up_in = V::eq(one, V::set(0));
      up_low = up_in;
    } else {
      (void)rnd;
      const I top_in = V::sllv(rem, V::sub(V::set(32), s));
      up_in = V::lt_u(rnd, top_in);
      // sllv / srlv give 0 for counts >= 32, so each branch is 0 outside its range
      const I top_low = V::or_(V::sllv(sig, V::sub(V::set(32), s)), V::srlv(sig, V::sub(s, V::set(32))));
      up_low = V::lt_u(rnd, V::select(V::gt(s, V::set(32)), V::srlv(sig, V::sub(s, V::set(32))), top_low));
    }
    const I r_in = V::add(V::andnot(mask, a), V::select(up_in, step, V::set(0)));
    const I pow2q = V::select(V::gt(V::set(-126), q), V::sllv(one, V::add(q, V::set(149))),
                              V::sllv(V::add(q, V::set(127)), V::set(23)));
    const I r_low = V::select(up_low, pow2q, V::set(0));
    r = V::select(V::gt(s, V::set(0)), V::select(V::gt(V::set(24), s), r_in, r_low), a);
  }

  // Overflow: beyond the largest value of this sign.
  const M neg = V::eq(sign, V::set(static_cast<std::int32_t>(0x80000000u)));
  const I limit = V::select(neg, p.neg_max_bits, p.max_bits);
  const M over = V::gt_u(r, limit);
  const bool to_limit = p.saturate || mode == Rounding::TowardZero;
  r = V::select(over, to_limit ? limit : p.ovf_bits, r);

  if constexpr (kFinite) {
    const I signed_r = V::or_(r, sign);
    if (p.zero_keeps_sign) return signed_r;
    return V::select(V::eq(r, V::set(0)), r, signed_r);
  }
  // Specials: Inf and NaN inputs.
  const I inf = V::set(0x7F800000);
  const M is_inf = V::eq(a, inf);
  const M is_nan = V::gt_u(a, inf);
  const I inf_result = p.saturate || V::any(V::eq(p.inf_bits, V::set(0))) ? limit : p.inf_bits;
  r = V::select(is_inf, inf_result, r);
  if (V::any(is_nan)) {
    if (p.nan_encodable) r = V::select(is_nan, V::or_(p.nan_or, V::and_(a, p.nan_keep)), r);
    else {
      bad = V::m_or(bad, is_nan);
      r = V::select(is_nan, a, r);  // leave the NaN in place for the scalar path to report
    }
  }
  // The sign: kept on zero only for minifloats (integers have no -0).
  const I signed_r = V::or_(r, sign);
  if (p.zero_keeps_sign) return signed_r;
  return V::select(V::eq(r, V::set(0)), r, signed_r);
}

// Largest finite |x| of n contiguous values, as float bits (NVFP4's tensor pass).
template <class V>
std::uint32_t finite_amax_bits(const float* x, std::int64_t n) {
  using I = typename V::I;
  I best = V::set(0);
  const I inf = V::set(0x7F800000);
  for (std::int64_t i = 0; i < n; i += V::N) {
    const int m = static_cast<int>(std::min<std::int64_t>(V::N, n - i));
    const I a = V::and_(V::bits(V::load(x + i, m)), V::set(0x7FFFFFFF));
    best = V::max_u(best, V::select(V::gt_u(inf, a), a, V::set(0)));
  }
  return V::reduce_max_u(best);
}

// The power-of-two scale rules on the bits of a normal float absmax (integer arithmetic only;
// the same results as BlockFormat::pow2_scale_exponent, which handles everything else).
struct FastPow2Rule {
  bool usable = false;
  ScaleRule rule = ScaleRule::Floor;
  int emax = 0, em = 0, mb = 0;
  std::uint32_t mm = 0;  // mantissa bits of the element max as a float

  template <class Fmt>
  explicit FastPow2Rule(const Fmt& fmt) {
    if (fmt.scale.kind != ScaleKind::E8M0) return;
    const double m = fmt.element.max_value();
    const float mf = static_cast<float>(m);
    if (static_cast<double>(mf) != m || !(mf >= 1.17549435e-38f)) return;
    rule = fmt.scale.rule;
    emax = fmt.element.emax();
    em = floor_log2(m);
    mm = float_bits(mf) & 0x007FFFFFu;
    mb = top_binade_mantissa_bits(fmt.element);
    usable = mb >= 0 && (rule == ScaleRule::Floor || rule == ScaleRule::Ceil || rule == ScaleRule::Fit ||
                         rule == ScaleRule::Even);
  }

  // The same rule on lanes of normal, finite absmax bits.
  template <class V>
  typename V::I exponents(typename V::I amax) const {
    using I = typename V::I;
    const I e = V::sub(V::template srl<23>(amax), V::set(127));
    const I mant = V::and_(amax, V::set(0x007FFFFF));
    I se;
    switch (rule) {
      case ScaleRule::Floor: se = V::sub(e, V::set(emax)); break;
      case ScaleRule::Ceil: {
        const I f = V::sub(e, V::set(emax));
        se = V::select(V::eq(mant, V::set(0)), f, V::add(f, V::set(1)));
        break;
      }
      case ScaleRule::Fit: {
        const I f = V::sub(e, V::set(em));
        se = V::select(V::gt(mant, V::set(static_cast<std::int32_t>(mm))), V::add(f, V::set(1)), f);
        break;
      }
      default:
        se = mb >= 23 ? V::sub(e, V::set(emax))
                      : V::sub(V::template srl<23>(V::add(amax, V::set(1 << (22 - mb)))), V::set(127 + emax));
        break;
    }
    return V::max_i(V::min_i(se, V::set(E8M0::max_exponent)), V::set(E8M0::min_exponent));
  }

  // Returns false for amax zero or subnormal (the caller takes the general path).
  bool exponent(std::uint32_t amax_bits, int& se) const {
    if (!usable || amax_bits < 0x00800000u) return false;
    const int e = static_cast<int>(amax_bits >> 23) - 127;
    const std::uint32_t mant = amax_bits & 0x007FFFFFu;
    switch (rule) {
      case ScaleRule::Floor: se = e - emax; break;
      case ScaleRule::Ceil: se = e - emax + (mant != 0 ? 1 : 0); break;
      case ScaleRule::Fit: se = e - em + (mant > mm ? 1 : 0); break;
      default:  // Even: round the mantissa to mb bits, ties away, then Floor
        se = (mb >= 23 ? e : static_cast<int>((amax_bits + (1u << (22 - mb))) >> 23) - 127) - emax;
        break;
    }
    se = std::clamp(se, E8M0::min_exponent, E8M0::max_exponent);
    return true;
  }
};

// Float block scales (absmax, optionally over a tensor scale) rounded on the double's bits:
// the same double arithmetic as BlockFormat::choose_header, then nearest-even to the scale
// format's mantissa and saturation. Scales below the format's smallest normal (and zero
// blocks) take the general path.
struct FastFloatScale {
  bool usable = false;
  bool tensor = false;
  int drop = 0;  // double mantissa bits below the scale format's
  double elem_max = 1.0, min_normal = 0.0, max_value = 0.0;
  double inv_elem_max = 1.0;  // RN(1 / elem_max)
  bool exact_inverse = false;  // elem_max a power of two

  template <class Fmt>
  explicit FastFloatScale(const Fmt& fmt) {
    if (fmt.scale.kind != ScaleKind::Float || fmt.scale.zero_point) return;
    const MinifloatSpec& f = fmt.scale.format;
    usable = f.man_bits >= 1 && f.man_bits <= 23;
    tensor = fmt.scale.tensor_scale;
    drop = 52 - f.man_bits;
    elem_max = fmt.element.max_value();
    inv_elem_max = 1.0 / elem_max;
    int e = 0;
    exact_inverse = std::frexp(elem_max, &e) == 0.5;
    min_normal = f.min_normal();
    max_value = f.max_value();
  }

  // The same on lanes of finite absmax bits; false when a lane needs the general path.
  // `block_bits`, if given, receives the block scales before the tensor scale is applied
  // (what a header stores).
  template <class V>
  LOWBIT_ALWAYS_INLINE bool scales(typename V::I amax, const TensorParams& tp, typename V::I& s_bits,
                                   typename V::I* block_bits = nullptr) const {
    using D = typename V::D;
    const D em = V::set_d(elem_max);
    D lo, hi;
    if (!tensor) {
      // amax * RN(1 / elem_max) is within 3 double ulps of RN(amax / elem_max) (vdivpd was a
      // tenth of the packing loop), so the two round to the same scale unless that is a near
      // tie, which the division then decides. (With a 24-bit amax the product has come out
      // equal to the quotient in every search so far; the bound, not the search, is the proof.)
      const D inv = V::set_d(inv_elem_max);
      lo = V::mul_d(V::lo_d(amax), inv);
      hi = V::mul_d(V::hi_d(amax), inv);
      if (!exact_inverse && (V::any_near_tie_d(lo, drop, 4) || V::any_near_tie_d(hi, drop, 4))) {
        lo = V::div_d(V::lo_d(amax), em);
        hi = V::div_d(V::hi_d(amax), em);
      }
    } else {
      lo = V::div_d(V::lo_d(amax), em);
      hi = V::div_d(V::hi_d(amax), em);
      const D ts = V::set_d(static_cast<double>(tp.tensor_scale));
      lo = V::div_d(lo, ts);
      hi = V::div_d(hi, ts);
    }
    const D mn = V::set_d(min_normal);
    if (V::any_below_d(lo, mn) || V::any_below_d(hi, mn)) return false;
    const D mx = V::set_d(max_value);
    s_bits = V::from_d(V::min_d(V::round_bits_d(lo, drop), mx), V::min_d(V::round_bits_d(hi, drop), mx));
    if (block_bits != nullptr) *block_bits = s_bits;
    if (tensor) s_bits = V::bits(V::mul(V::flt(s_bits), V::setf(tp.tensor_scale)));
    return true;
  }

  bool scale(double amax, const TensorParams& tp, float& s) const {
    if (!usable) return false;
    double want = amax / elem_max;
    if (tensor) want /= static_cast<double>(tp.tensor_scale);
    if (!(want >= min_normal)) return false;
    const std::uint64_t b = double_bits(want);
    const std::uint64_t lsb = std::uint64_t{1} << drop, rem = b & (lsb - 1), half = lsb >> 1;
    std::uint64_t r = b - rem;
    if (rem > half || (rem == half && (r & lsb) != 0)) r += lsb;
    const double v = std::min(bits_double(r), max_value);
    s = tensor ? static_cast<float>(v) * tp.tensor_scale : static_cast<float>(v);
    return true;
  }
};

// 2^e as float bits, e in -127 .. 127.
inline std::uint32_t pow2_float_bits(int e) {
  return e >= -126 ? static_cast<std::uint32_t>(e + 127) << 23 : 0x00400000u;
}

template <class V>
inline typename V::I pow2_float_bits_lanes(typename V::I e) {
  return V::select(V::eq(e, V::set(-127)), V::set(0x00400000), V::template sll<23>(V::add(e, V::set(127))));
}

// Floats as unsigned keys in the same order (negative values reversed), so the unsigned
// transposed reduction finds float maxima (and, on complemented keys, minima).
template <class V>
inline typename V::I order_key(typename V::F v) {
  using I = typename V::I;
  const I b = V::bits(v);
  const I neg = V::template srl<31>(b);
  return V::select(V::eq(neg, V::set(0)), V::or_(b, V::set(static_cast<std::int32_t>(0x80000000u))),
                   V::xor_(b, V::set(-1)));
}
template <class V>
inline typename V::F from_order_key(typename V::I k) {
  using I = typename V::I;
  const I top = V::template srl<31>(k);
  return V::flt(V::select(V::eq(top, V::set(1)), V::and_(k, V::set(0x7FFFFFFF)), V::xor_(k, V::set(-1))));
}

// Asymmetric (zero-point) block headers for N blocks at once: the same double arithmetic as
// BlockFormat::choose_header. False when a lane needs the general path.
struct FastZeroPoint {
  bool usable = false;
  int drop = 0;
  double qmax = 0, min_normal = 0, max_value = 0;

  template <class Fmt>
  explicit FastZeroPoint(const Fmt& fmt) {
    if (fmt.scale.kind != ScaleKind::Float || !fmt.scale.zero_point || fmt.scale.tensor_scale) return;
    const MinifloatSpec& f = fmt.scale.format;
    usable = f.man_bits >= 1 && f.man_bits <= 23;
    drop = 52 - f.man_bits;
    qmax = fmt.element.max_value();
    min_normal = f.min_normal();
    max_value = f.max_value();
  }

  template <class V>
  bool headers(typename V::F lo, typename V::F hi, typename V::I& s_bits, typename V::I& zp) const {
    using D = typename V::D;
    const D z = V::set_d(0.0), q = V::set_d(qmax);
    const D lo0 = V::min_d(V::from_f_lo(lo), z), lo1 = V::min_d(V::from_f_hi(lo), z);
    const D hi0 = V::max_d(V::from_f_lo(hi), z), hi1 = V::max_d(V::from_f_hi(hi), z);
    const D w0 = V::div_d(V::sub_d(hi0, lo0), q), w1 = V::div_d(V::sub_d(hi1, lo1), q);
    const D mn = V::set_d(min_normal);
    if (V::any_below_d(w0, mn) || V::any_below_d(w1, mn)) return false;
    const D mx = V::set_d(max_value);
    const D s0 = V::min_d(V::round_bits_d(w0, drop), mx), s1 = V::min_d(V::round_bits_d(w1, drop), mx);
    s_bits = V::from_d(s0, s1);  // exact: the scales are floats
    const D k0 = V::round_even_d(V::div_d(V::sub_d(z, lo0), s0)), k1 = V::round_even_d(V::div_d(V::sub_d(z, lo1), s1));
    zp = V::to_int_d(V::min_d(V::max_d(k0, z), q), V::min_d(V::max_d(k1, z), q));
    return true;
  }
};

// Scaled blocks [begin, end) one at a time (any block size, any scale).
template <class V, Rounding mode, class Fmt>
void scaled_blocks(const Fmt& fmt, const LaneRounding<V>& p, const FastPow2Rule& fast, const float* x, float* y,
                   std::int64_t begin, std::int64_t end, std::int64_t block, std::uint64_t index0, std::uint64_t seed,
                   const TensorParams& tp, typename V::M& bad) {
  using I = typename V::I;
  using F = typename V::F;
  constexpr bool stochastic = mode == Rounding::Stochastic;
  const FastFloatScale fast_float(fmt);
  const I zero = V::set(0);
  const bool pow2 = fmt.scale.kind == ScaleKind::E8M0;
  const bool asym = fmt.scale.zero_point;
  for (std::int64_t b0 = begin; b0 < end; b0 += block) {
    const std::int64_t b1 = std::min(end, b0 + block);
    // Pass 1: the block's range, exactly as the scalar reference sees it.
    I amax_bits = zero;
    F lo = V::setf(0.0f), hi = V::setf(0.0f);
    for (std::int64_t i = b0; i < b1; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
      const F v = V::load(x + i, n);
      amax_bits = V::max_u(amax_bits, V::and_(V::bits(v), V::set(0x7FFFFFFF)));
      if (asym) {
        lo = V::min_f(lo, v);
        hi = V::max_f(hi, v);
      }
    }
    const std::uint32_t amax_u = V::reduce_max_u(amax_bits);
    const bool finite = amax_u < 0x7F800000u;
    BlockHeader h;
    int se = 0;
    float s;
    if (finite && fast.exponent(amax_u, se)) {
      s = bits_float(pow2_float_bits(se));
    } else if (finite && fast_float.scale(static_cast<double>(bits_float(amax_u)), tp, s)) {
    } else {
      const double lo_d = asym ? static_cast<double>(V::reduce_min_f(lo)) : 0.0;
      const double hi_d = asym ? static_cast<double>(V::reduce_max_f(hi)) : 0.0;
      s = fmt.choose_header(static_cast<double>(bits_float(amax_u)), lo_d, hi_d, finite, tp, h);
      se = pow2 && s > 0.0f ? floor_log2(static_cast<double>(s)) : 0;
    }
    if (!(s > 0.0f)) {
      const F fill = V::flt(V::set(std::isnan(s) ? 0x7FC00000 : 0));
      for (std::int64_t i = b0; i < b1; i += V::N) V::store(y + i, fill, static_cast<int>(std::min<std::int64_t>(V::N, b1 - i)));
      continue;
    }
    const F sv = V::setf(s), inv = V::flt(V::set(static_cast<std::int32_t>(pow2_float_bits(pow2 ? -se : 0))));
    if (asym) {
      const I zp = V::set(static_cast<std::int32_t>(h.zero_point));
      const I qmax = V::set(static_cast<std::int32_t>(fmt.element.max_value()));
      for (std::int64_t i = b0; i < b1; i += V::N) {
        const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
        const F yv = V::div(V::load(x + i, n), sv);
        const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
        const I r = round_lanes<V, mode, true>(V::bits(yv), p, rnd, bad);  // integral float, |r| <= 2^24
        const I k = V::add(V::f2i(V::flt(r)), zp);
        const I kc = V::min_i(V::max_i(k, zero), qmax);
        V::store(y + i, V::mul(V::i2f(V::sub(kc, zp)), sv), n);
      }
      continue;
    }
    for (std::int64_t i = b0; i < b1; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
      const F xv = V::load(x + i, n);
      const F yv = pow2 ? V::mul(xv, inv) : V::div(xv, sv);
      const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
      const I r = round_lanes<V, mode, true>(V::bits(yv), p, rnd, bad);
      V::store(y + i, V::mul(V::flt(r), sv), n);
    }
  }
}

// Fake-quantises values [begin, end) of one contiguous line (a row) of a block format whose
// blocks start at multiples of `block` within the line. `index0` is the logical index of the
// line's first value (for stochastic bits). `er` is the element's rounding (for asymmetric
// formats: a wide integer rounding, saturating at 2^24, before the zero point and clamp).
// Returns false when a lane held a NaN the format
// cannot encode (the caller reruns the scalar reference, which reports it).
template <class V, Rounding mode, class Fmt>
bool fake_quant_line_mode(const Fmt& fmt, const ElementRounding& er, const float* x, float* y, std::int64_t begin,
                          std::int64_t end, std::int64_t block, std::uint64_t index0, std::uint64_t seed,
                          const TensorParams& tp) {
  using I = typename V::I;
  using F = typename V::F;
  using M = typename V::M;
  const LaneRounding<V> p(er);
  constexpr bool stochastic = mode == Rounding::Stochastic;
  const FastPow2Rule fast(fmt);
  M bad = V::eq(V::set(0), V::set(1));
  const I zero = V::set(0);

  if (!fmt.has_scale()) {
    for (std::int64_t i = begin; i < end; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, end - i));
      const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
      V::store(y + i, V::flt(round_lanes<V, mode>(V::bits(V::load(x + i, n)), p, rnd, bad)), n);
    }
    return !V::any(bad);
  }

  std::int64_t b0 = begin;
  // Groups of N whole blocks of 1..4 vectors each with a power-of-two or symmetric float
  // scale: the N block maxima in one vector, the N scales from one vector computation.
  const int vpb = static_cast<int>(block / V::N);
  const FastFloatScale fast_float(fmt);
  const bool pow2 = fast.usable;
  if ((pow2 || fast_float.usable) && !fmt.scale.zero_point && block % V::N == 0 && vpb <= 4) {
    const I abs_mask = V::set(0x7FFFFFFF);
    for (; b0 + V::N * block <= end; b0 += V::N * block) {
      I m[V::N];
      for (int j = 0; j < V::N; ++j) {
        const float* xb = x + b0 + j * block;
        I acc = V::and_(V::bits(V::load(xb, V::N)), abs_mask);
        for (int v = 1; v < vpb; ++v) acc = V::max_u(acc, V::and_(V::bits(V::load(xb + v * V::N, V::N)), abs_mask));
        m[j] = acc;
      }
      const I amax = V::transpose_max_u(m);
      if (V::any(V::m_or(V::gt_u(V::set(0x00800000), amax), V::gt_u(amax, V::set(0x7F7FFFFF))))) {
        scaled_blocks<V, mode>(fmt, p, fast, x, y, b0, b0 + V::N * block, block, index0, seed, tp, bad);
        continue;  // zero, subnormal or non-finite maxima: the general path for this group
      }
      I s_bits, inv_bits = zero;
      if (pow2) {
        const I se = fast.template exponents<V>(amax);
        s_bits = pow2_float_bits_lanes<V>(se);
        inv_bits = pow2_float_bits_lanes<V>(V::sub(zero, se));
      } else if (!fast_float.template scales<V>(amax, tp, s_bits)) {
        scaled_blocks<V, mode>(fmt, p, fast, x, y, b0, b0 + V::N * block, block, index0, seed, tp, bad);
        continue;  // a scale below the format's normals: the general path for this group
      }
      for (int j = 0; j < V::N; ++j) {
        const F sv = V::flt(V::broadcast_lane(s_bits, j)), inv = V::flt(V::broadcast_lane(inv_bits, j));
        const std::int64_t o = b0 + j * block;
        for (int v = 0; v < vpb; ++v) {
          const std::int64_t i = o + v * V::N;
          const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
          const F xv = V::load(x + i, V::N);
          const F yv = pow2 ? V::mul(xv, inv) : V::div(xv, sv);
          const I r = round_lanes<V, mode, true>(V::bits(yv), p, rnd, bad);
          V::store(y + i, V::mul(V::flt(r), sv), V::N);
        }
      }
    }
  }
  // The same for zero-point formats: the N minima and maxima, then N scales and zero points.
  const FastZeroPoint fast_zp(fmt);
  if (fast_zp.usable && block % V::N == 0 && vpb <= 4) {
    const I qmax = V::set(static_cast<std::int32_t>(fmt.element.max_value()));
    for (; b0 + V::N * block <= end; b0 += V::N * block) {
      I kmax[V::N], kmin[V::N], m[V::N];
      for (int j = 0; j < V::N; ++j) {
        const float* xb = x + b0 + j * block;
        F v = V::load(xb, V::N);
        F lo = v, hi = v;
        I a = V::and_(V::bits(v), V::set(0x7FFFFFFF));
        for (int k = 1; k < vpb; ++k) {
          v = V::load(xb + k * V::N, V::N);
          lo = V::min_f(lo, v);
          hi = V::max_f(hi, v);
          a = V::max_u(a, V::and_(V::bits(v), V::set(0x7FFFFFFF)));
        }
        kmax[j] = order_key<V>(hi);
        kmin[j] = V::xor_(order_key<V>(lo), V::set(-1));
        m[j] = a;
      }
      I s_bits, zp;
      if (V::any(V::gt_u(V::transpose_max_u(m), V::set(0x7F7FFFFF))) ||
          !fast_zp.template headers<V>(from_order_key<V>(V::xor_(V::transpose_max_u(kmin), V::set(-1))),
                                       from_order_key<V>(V::transpose_max_u(kmax)), s_bits, zp)) {
        scaled_blocks<V, mode>(fmt, p, fast, x, y, b0, b0 + V::N * block, block, index0, seed, tp, bad);
        continue;  // non-finite values or a tiny range: the general path for this group
      }
      for (int j = 0; j < V::N; ++j) {
        const F sv = V::flt(V::broadcast_lane(s_bits, j));
        const I zj = V::broadcast_lane(zp, j);
        const std::int64_t o = b0 + j * block;
        for (int k = 0; k < vpb; ++k) {
          const std::int64_t i = o + k * V::N;
          const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
          const I r = round_lanes<V, mode, true>(V::bits(V::div(V::load(x + i, V::N), sv)), p, rnd, bad);
          const I kc = V::min_i(V::max_i(V::add(V::f2i(V::flt(r)), zj), zero), qmax);
          V::store(y + i, V::mul(V::i2f(V::sub(kc, zj)), sv), V::N);
        }
      }
    }
  }
  scaled_blocks<V, mode>(fmt, p, fast, x, y, b0, end, block, index0, seed, tp, bad);
  return !V::any(bad);
}

template <class V, class Fmt>
bool fake_quant_line(const Fmt& fmt, const ElementRounding& er, const float* x, float* y, std::int64_t begin,
                     std::int64_t end, std::int64_t block, std::uint64_t index0, Rounding mode, std::uint64_t seed,
                     const TensorParams& tp) {
  switch (mode) {
    case Rounding::NearestEven:
      return fake_quant_line_mode<V, Rounding::NearestEven>(fmt, er, x, y, begin, end, block, index0, seed, tp);
    case Rounding::NearestAway:
      return fake_quant_line_mode<V, Rounding::NearestAway>(fmt, er, x, y, begin, end, block, index0, seed, tp);
    case Rounding::TowardZero:
      return fake_quant_line_mode<V, Rounding::TowardZero>(fmt, er, x, y, begin, end, block, index0, seed, tp);
    case Rounding::Stochastic:
      return fake_quant_line_mode<V, Rounding::Stochastic>(fmt, er, x, y, begin, end, block, index0, seed, tp);
  }
  return false;
}
