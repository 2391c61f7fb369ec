// The SIMD quantize (float -> element codes + block headers) and dequantize (codes + headers
// -> float) kernels, written once over a lane type V and compiled per instruction set next to
// fake_quant_body.inl, whose rounding (round_lanes), scale rules (FastPow2Rule) and random
// bits (random_lanes) they share. Bit for bit the scalar reference:
//   - headers: the same BlockFormat::choose_header call on the same block range;
//   - codes: the rounded element value's float bits turned into the code that
//     MinifloatSpec::encode (code_of_grid_value, nan_code) or FixedPointSpec::encode gives;
//   - values: the float the scalar decode casts to, times the scale (fl32(v * s)), quiet NaN
//     for NaN scales, fl32((k - zero_point) * s) for zero points.
// Not a standalone header: no include guard, no includes.

// 2^e as float bits, e in -149 .. 127 (subnormal powers included).
inline std::uint32_t float_pow2_bits(int e) {
  return e >= -126 ? static_cast<std::uint32_t>(e + 127) << 23 : 1u << (e + 149);
}

// Codes of the element values r (float bits with sign, as round_lanes returns them).
template <class V>
inline typename V::I codes_of_values(typename V::I r, const ElementCodes& ec) {
  using I = typename V::I;
  if (ec.kind == ElementCodes::Kind::Fixed) {
    // r = k * 2^-F exactly, |k| < 2^16: the product and the conversion are exact
    return V::and_(V::f2i(V::mul(V::flt(r), V::setf(ec.to_int))), V::set(static_cast<std::int32_t>(ec.code_mask)));
  }
  const I sign = V::srlv(V::and_(r, V::set(static_cast<std::int32_t>(0x80000000u))), V::set(ec.sign_shift));
  const I a = V::and_(r, V::set(0x7FFFFFFF));
  const I field = V::template srl<23>(a);
  const I mant = V::and_(a, V::set(0x007FFFFF));
  const I man_shift = V::set(23 - ec.man);
  // Inf and NaN: the top field, NaNs with the top mantissa bits (quiet bit included)
  const I special = V::or_(V::set(static_cast<std::int32_t>(ec.top_code)), V::srlv(mant, man_shift));
  // normal element values: the element's exponent field and the top mantissa bits
  const I e = V::sub(field, V::set(127));
  const I normal = V::or_(V::sllv(V::add(e, V::set(ec.bias)), V::set(ec.man)), V::srlv(mant, man_shift));
  // element subnormals (and zero): the significand in units of 2^(emin - man); every such
  // value is a multiple of that unit, so the shift drops only zero bits
  const typename V::M fsub = V::eq(field, V::set(0));
  const I sig = V::select(fsub, mant, V::or_(mant, V::set(0x00800000)));
  const I lsb = V::select(fsub, V::set(-149), V::sub(field, V::set(150)));
  const I sub = V::srlv(sig, V::sub(V::set(ec.emin - ec.man), lsb));
  I mag = V::select(V::gt(V::set(ec.emin), e), sub, normal);
  mag = V::select(V::gt(V::set(0x7F800000), a), mag, special);
  return V::or_(mag, sign);
}

// Direct codes of finite scaled values y for the common elements, in a fraction of the
// operations of round_lanes + codes_of_values (same results; the exhaustive code-and-midpoint
// tests hold both to the scalar reference):
//   - Fixed: integer elements (F >= 0 fraction bits, at most 16 bits) in the deterministic
//     modes: k = round(y * 2^F) by the CPU's rounding instructions, clamped to the element's
//     integers (clamping to integer bounds commutes with rounding); the code is k's low bits.
//   - Minifloat: saturating minifloats with subnormals, ties to even: |y| clamped to the
//     largest value (on the grid, so rounding stays below it); below 2^emin one float addition
//     of 2^(emin - M + 23) rounds to the subnormal step and leaves the code in the low bits;
//     above, the float's bits rounded to M mantissa bits and rebiased are the code.
struct FastCodes {
  enum class Kind { None, Fixed, Minifloat } kind = Kind::None;
  float to_int = 1.0f, kmin = 0.0f, kmax = 0.0f;  // Fixed
  std::uint32_t mask = 0;
  bool byte_codes = false;  // Fixed: codes are 8 bits wide (a byte sink needs no mask)
  bool int8_codes = false;  // Fixed: 8-bit two's-complement codes (stored four vectors at once)
  float near_tie = 0.0f;  // Fixed, nearest-even: see fixed_codes_by_reciprocal
  std::int32_t max_bits = 0, min_normal_bits = 0, sub_magic_bits = 0, shift = 0, rebias = 0, sign_shift = 0;

  template <class Fmt>
  FastCodes(const Fmt& fmt, Rounding mode) {
    using E = std::decay_t<decltype(fmt.element)>;
    if (fmt.scale.zero_point) return;
    if constexpr (std::is_same_v<E, FixedPointSpec>) {
      const FixedPointSpec& e = fmt.element;
      if (mode == Rounding::Stochastic || e.frac_bits < 0 || e.frac_bits > 23 || e.bits > 16) return;
      kind = Kind::Fixed;
      to_int = std::ldexp(1.0f, e.frac_bits);
      kmin = static_cast<float>(e.min_int());
      kmax = static_cast<float>(e.max_int());
      mask = e.code_mask();
      byte_codes = mask == 0xFFu;
      int8_codes = byte_codes && kmin >= -128.0f && kmax <= 127.0f;
      // 3 * 2^-24 * |k| bounds the reciprocal's error for |k| <= kbound; 2^-20 * kbound
      // leaves a factor of five
      const float kbound = std::max(-kmin, kmax) + 1.0f;
      near_tie = 0.5f - std::ldexp(kbound, -20);
    } else if constexpr (std::is_same_v<E, MinifloatSpec>) {
      const MinifloatSpec& e = fmt.element;
      const bool saturating = e.overflow == Overflow::Saturate || e.specials == Specials::FiniteOnly;
      const int sub_step = e.emin() - e.man_bits;  // exponent of the subnormal step
      if (mode != Rounding::NearestEven || !saturating || !e.subnormals || e.man_bits > 22 || sub_step < -126 + 1 ||
          e.emin() > 127 || sub_step + 23 > 127)
        return;
      const float mx = static_cast<float>(e.max_value());
      if (static_cast<double>(mx) != e.max_value()) return;
      kind = Kind::Minifloat;
      max_bits = static_cast<std::int32_t>(float_bits(mx));
      min_normal_bits = static_cast<std::int32_t>(float_pow2_bits(e.emin()));
      sub_magic_bits = static_cast<std::int32_t>(float_pow2_bits(sub_step + 23));
      shift = 23 - e.man_bits;
      rebias = (127 - e.bias) << e.man_bits;
      sign_shift = 31 - e.exp_bits - e.man_bits;
    }
  }
  bool usable() const { return kind != Kind::None; }
};

template <class V, Rounding mode>
inline typename V::I fast_codes_lanes(typename V::F y, const FastCodes& f) {
  using F = typename V::F;
  using I = typename V::I;
  if (f.kind == FastCodes::Kind::Fixed) {
    F v = V::min_f(V::max_f(V::mul(y, V::setf(f.to_int)), V::setf(f.kmin)), V::setf(f.kmax));
    if constexpr (mode == Rounding::NearestEven) {
      v = V::round_even_f(v);
    } else if constexpr (mode == Rounding::NearestAway) {
      const F t = V::trunc_f(v);  // then one step away from zero when |v - t| >= 1/2
      const I frac = V::and_(V::bits(V::sub_f(v, t)), V::set(0x7FFFFFFF));
      const I one = V::or_(V::set(0x3F800000), V::and_(V::bits(v), V::set(static_cast<std::int32_t>(0x80000000u))));
      v = V::add_f(t, V::flt(V::select(V::gt_u(frac, V::set(0x3EFFFFFF)), one, V::set(0))));
    }
    return V::and_(V::f2i(v), V::set(static_cast<std::int32_t>(f.mask)));  // f2i truncates: TowardZero
  }
  const I yb = V::bits(y);
  const I a = V::min_u(V::and_(yb, V::set(0x7FFFFFFF)), V::set(f.max_bits));
  const I magic = V::set(f.sub_magic_bits);
  const I sub = V::sub(V::bits(V::add_f(V::flt(a), V::flt(magic))), magic);
  const I lsb = V::and_(V::srlv(a, V::set(f.shift)), V::set(1));
  const I half = V::set((1 << (f.shift - 1)) - 1);
  const I normal = V::sub(V::srlv(V::add(V::add(a, half), lsb), V::set(f.shift)), V::set(f.rebias));
  const I mag = V::select(V::gt(V::set(f.min_normal_bits), a), sub, normal);
  return V::or_(mag, V::srlv(V::and_(yb, V::set(static_cast<std::int32_t>(0x80000000u))), V::set(f.sign_shift)));
}

// fast_codes_lanes of RN(x / s) for integer elements in the nearest-even mode, without a
// division per vector (vdivps was the packing loop's bottleneck). `r` = RN(2^F / s), a
// normal float. v = RN(x * r) is within 3 * 2^-24 * |v| of RN(x / s) * 2^F (three roundings),
// so the two round to the same integer unless v lies closer than 0.5 - f.near_tie to a
// half-integer; then (about one value in 4000 for int8) the vector is redone with the
// division by s, lane j of `s_lanes`. `clamp` false: the caller knows |v| is within the element's integers. Clamping
// first is safe: the clamp bounds are integers, far from any tie. The codes are not masked
// to the element's width.
template <class V>
LOWBIT_ALWAYS_INLINE typename V::I fixed_codes_by_reciprocal(typename V::F x, typename V::I s_lanes, int j,
                                                             typename V::F r, const FastCodes& f, bool clamp) {
  using F = typename V::F;
  const F lo = V::setf(f.kmin), hi = V::setf(f.kmax);
  F v = V::mul(x, r);
  if (clamp) v = V::min_f(V::max_f(v, lo), hi);
  const typename V::I dist = V::and_(V::bits(V::frac_even_f(v)), V::set(0x7FFFFFFF));
  if (V::any(V::gt(dist, V::bits(V::setf(f.near_tie)))))
    v = V::min_f(V::max_f(V::mul(V::div(x, V::flt(V::broadcast_lane(s_lanes, j))), V::setf(f.to_int)), lo), hi);
  return V::round_even_i(v);
}

// fixed_codes_by_reciprocal over a group of V::N blocks of kVpb vectors each, contiguous at
// x (codes from index i0 on): block j's reciprocal is lane j of `recips` and its scale lane j
// of `s_lanes`. Four vectors at a time: one near-tie check for the four (the exact route
// redoes them), and for 8-bit two's-complement codes into bytes one store of the four
// (instead of a check and a narrowing store per vector: int8 packing +23% in cache).
template <class V, int kVpb, bool kClamp, class Sink>
LOWBIT_ALWAYS_INLINE void fixed_group_by_reciprocal(const float* x, typename V::I s_lanes, typename V::F recips,
                                                    const FastCodes& f, const Sink& codes, std::int64_t i0) {
  using F = typename V::F;
  using I = typename V::I;
  static_assert(V::N * kVpb % 4 == 0);
  const I near_tie = V::bits(V::setf(f.near_tie)), code_mask = V::set(static_cast<std::int32_t>(f.mask));
  const F lo = V::setf(f.kmin), hi = V::setf(f.kmax);
  const bool bytes_as_int8 = Sink::kTakesLowByte && f.int8_codes;
  const bool mask_codes = !(Sink::kTakesLowByte && f.byte_codes);
  LOWBIT_UNROLL for (int t = 0; t < V::N * kVpb; t += 4) {
    F xv[4], r[4], v[4];
    LOWBIT_UNROLL for (int u = 0; u < 4; ++u) {
      xv[u] = V::load(x + (t + u) * V::N, V::N);
      r[u] = V::flt(V::broadcast_lane(V::bits(recips), (t + u) / kVpb));
      v[u] = V::mul(xv[u], r[u]);
      if constexpr (kClamp) v[u] = V::min_f(V::max_f(v[u], lo), hi);
    }
    const F dist = V::abs_max_f(V::abs_max_f(V::frac_even_f(v[0]), V::frac_even_f(v[1])),
                                V::abs_max_f(V::frac_even_f(v[2]), V::frac_even_f(v[3])));
    I k[4];
    if (V::any(V::gt(V::bits(dist), near_tie))) {
      LOWBIT_UNROLL for (int u = 0; u < 4; ++u) k[u] = fixed_codes_by_reciprocal<V>(xv[u], s_lanes, (t + u) / kVpb, r[u], f, kClamp);
    } else {
      LOWBIT_UNROLL for (int u = 0; u < 4; ++u) k[u] = V::round_even_i(v[u]);
    }
    const std::int64_t i = i0 + t * V::N;
    if constexpr (Sink::kTakesLowByte) {
      if (bytes_as_int8) {
        codes.int8_quad(i, k);
        continue;
      }
    }
    LOWBIT_UNROLL for (int u = 0; u < 4; ++u) codes(i + u * V::N, mask_codes ? V::and_(k[u], code_mask) : k[u], V::N);
  }
}

// Float values of element codes (before the scale), as static_cast<float>(decode(code)).
template <class V>
inline typename V::F values_of_codes(typename V::I code, const ElementCodes& ec,
                                     const typename simd::SimdTable<V>::T& table) {
  using I = typename V::I;
  code = V::and_(code, V::set(static_cast<std::int32_t>(ec.code_mask)));
  if (ec.use_table) return simd::SimdTable<V>::lookup(table, code);
  if (ec.kind == ElementCodes::Kind::Fixed) {
    const I sb = V::set(static_cast<std::int32_t>(ec.sign_bit));
    const I k = V::sub(V::xor_(code, sb), sb);  // sign-extended from the element's width
    return V::mul(V::i2f(k), V::setf(ec.to_value));
  }
  const I sign = V::sllv(V::srlv(code, V::set(31 - ec.sign_shift)), V::set(31));
  const I mag = V::and_(code, V::set(static_cast<std::int32_t>(ec.code_mask >> 1)));
  const I field = V::srlv(mag, V::set(ec.man));
  const I man = V::and_(mag, V::set(static_cast<std::int32_t>((1u << ec.man) - 1u)));
  const I man23 = V::sllv(man, V::set(23 - ec.man));
  const I normal = V::or_(V::sllv(V::add(field, V::set(127 - ec.bias)), V::set(23)), man23);
  // subnormal codes: man * 2^(emin - man), exact in float because emin - man >= -149
  const I sub = ec.subnormals ? V::bits(V::mul(V::i2f(man), V::flt(V::set(static_cast<std::int32_t>(
                                                                  float_pow2_bits(ec.emin - ec.man))))))
                              : V::set(0);
  const I top = V::set(static_cast<std::int32_t>(ec.top_code));
  // the top field: Inf (IEEE, mantissa 0), NaN (quiet, mantissa as the top payload bits), or
  // finite numbers (finite-only formats; FiniteNaN below its NaN code)
  const typename V::M at_top = V::eq(V::and_(mag, top), top);
  const I nan = V::or_(V::set(0x7FC00000), man23);
  // (a FiniteNaN format's one special code is NaN, also when it has no mantissa bits)
  const I special = ec.ieee ? V::select(V::eq(man, V::set(0)), V::set(0x7F800000), nan) : nan;
  I r = V::select(V::eq(field, V::set(0)), sub, normal);
  if (ec.special_top) {
    const I nan_code = V::set(static_cast<std::int32_t>(ec.nan_mag));
    const typename V::M is_special = ec.ieee ? at_top : V::eq(mag, nan_code);
    r = V::select(is_special, special, r);
  }
  return V::flt(V::or_(r, sign));
}

// Quantises values [begin, end) of one contiguous line into codes[begin, end); blocks start
// at multiples of `block` and `headers` receives the header of each block from `begin` on.
// Returns false when a lane held a NaN the format cannot encode (the caller reruns the
// scalar reference, which reports it).
// What quantize_line_mode needs of the format, worked out once for any number of lines
// (for rows of a thousand values it cost a sixth of the time).
template <class V>
struct LineSetup {
  LaneRounding<V> p;
  FastPow2Rule fast;
  FastCodes direct;
  FastFloatScale fast_float;
  std::uint32_t zero_code;
  template <class Fmt>
  LineSetup(const Fmt& fmt, const ElementRounding& er, Rounding mode)
      : p(er), fast(fmt), direct(fmt, mode), fast_float(fmt),
        zero_code(fmt.scale.zero_point ? 0u : fmt.element.encode(0.0)) {}
};

template <class V, Rounding mode, class Fmt, class Sink>
bool quantize_line_mode(const Fmt& fmt, const LineSetup<V>& setup, const ElementCodes& ec, const float* x,
                        const Sink codes, BlockHeader* headers, std::int64_t begin, std::int64_t end,
                        std::int64_t block, std::uint64_t index0, std::uint64_t seed, const TensorParams& tp) {
  using I = typename V::I;
  using F = typename V::F;
  using M = typename V::M;
  const LaneRounding<V>& p = setup.p;
  constexpr bool stochastic = mode == Rounding::Stochastic;
  M bad = V::eq(V::set(0), V::set(1));
  const I zero = V::set(0);
  auto rounded = [&](F yv, std::int64_t i) {
    const I rnd = stochastic ? random_lanes<V>(seed, index0 + static_cast<std::uint64_t>(i)) : zero;
    return round_lanes<V, mode>(V::bits(yv), p, rnd, bad);
  };

  if (!fmt.has_scale()) {
    for (std::int64_t i = begin; i < end; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, end - i));
      codes(i, codes_of_values<V>(rounded(V::load(x + i, n), i), ec), n);
    }
    return !V::any(bad);
  }

  const FastPow2Rule& fast = setup.fast;
  const FastCodes& direct = setup.direct;
  const bool pow2 = fmt.scale.kind == ScaleKind::E8M0;
  const bool asym = fmt.scale.zero_point;
  const std::uint32_t zero_code = setup.zero_code;
  // Groups of N whole blocks of 1..4 vectors with a power-of-two or symmetric float scale:
  // the N maxima from one transposed reduction and the N scales from one computation (as in
  // fake_quant_line_mode); the scale codes are written per block.
  const FastFloatScale& fast_float = setup.fast_float;
  const std::int64_t vpb = block / V::N;
  // The group loop for kVpb vectors per block, a constant so that its loops unroll (with a
  // run-time count GCC kept the loops, and at -O2 their arrays in memory), from block start b0 on; returns
  // where it stopped. What the loop reads is copied into locals: a byte store may alias any
  // memory, so values read through the captured references were reloaded after every store
  // (MXINT8 packing lost a quarter of its speed to that).
  auto groups = [&](auto vpb_constant, std::int64_t b0) {
    constexpr int kVpb = decltype(vpb_constant)::value;
    const float* const xs = x;
    const std::int64_t block_len = block, line_end = end;
    const Sink sink = codes;
    const FastCodes direct_codes = direct;
    const bool pow2_scales = fast.usable;
    BlockHeader* hdr = headers;
    const I abs_mask = V::set(0x7FFFFFFF);
    for (; b0 + V::N * block_len <= line_end; b0 += V::N * block_len) {
      I m[V::N];
      for (int j = 0; j < V::N; ++j) {
        const float* xb = xs + b0 + j * block_len;
        // no software prefetch: once the loop was this fast, prefetching 2-16 groups ahead
        // made streaming from memory 30-60% slower than the hardware prefetcher alone
        I acc = V::and_(V::bits(V::load(xb, V::N)), abs_mask);
        LOWBIT_UNROLL for (int v = 1; v < kVpb; ++v) acc = V::max_u(acc, V::and_(V::bits(V::load(xb + v * V::N, V::N)), abs_mask));
        m[j] = acc;
      }
      const I amax = V::transpose_max_u(m);
      if (V::any(V::m_or(V::gt_u(V::set(0x00800000), amax), V::gt_u(amax, V::set(0x7F7FFFFF))))) break;
      I s_bits, inv_bits = zero, se = zero, block_bits = zero;
      if (fast.usable) {
        se = fast.template exponents<V>(amax);
        s_bits = pow2_float_bits_lanes<V>(se);
        inv_bits = pow2_float_bits_lanes<V>(V::sub(zero, se));
      } else if (!fast_float.template scales<V>(amax, tp, s_bits, &block_bits)) {
        break;  // a scale below the format's normals: the general path from here
      }
      // The scale codes: E8M0 from the exponents; a float block scale (before any tensor
      // scale) is a normal number of its format here, so its code is the float's exponent
      // rebiased and its top mantissa bits.
      I scale_codes;
      if (fast.usable) {
        scale_codes = V::add(se, V::set(127));
      } else {
        const MinifloatSpec& sf = fmt.scale.format;
        const I field = V::sub(V::template srl<23>(block_bits), V::set(127 - sf.bias));
        scale_codes = V::or_(V::sllv(field, V::set(sf.man_bits)),
                             V::srlv(V::and_(block_bits, V::set(0x007FFFFF)), V::set(23 - sf.man_bits)));
      }
      // the reciprocals for fixed_codes_by_reciprocal, when the scales and them are normal;
      // no clamping when every block's RN(amax * r) is below the element's largest magnitude
      // plus 1/2 (RN is monotonic, so every RN(x * r) of the block is, and rounds to within
      // the element's integers)
      F recips = V::setf(0.0f);
      bool by_reciprocal = false, clamp = true;
      if (mode == Rounding::NearestEven && direct.kind == FastCodes::Kind::Fixed && !fast.usable) {
        recips = V::div(V::setf(direct.to_int), V::flt(s_bits));
        const I rb = V::bits(recips);
        by_reciprocal = !V::any(V::m_or(V::gt_u(V::set(0x00800000), s_bits),
                                        V::m_or(V::gt_u(V::set(0x00800000), rb), V::gt_u(rb, V::set(0x7F7FFFFF)))));
        const float bound = std::min(-direct.kmin, direct.kmax) + 0.5f;
        const auto below = static_cast<std::int32_t>(float_bits(bound) - 1u);  // the float before `bound`
        clamp = V::any(V::gt_u(V::bits(V::mul(V::flt(amax), recips)), V::set(below)));
      }
      static_assert(sizeof(BlockHeader) == 8 && offsetof(BlockHeader, scale) == 0 &&
                    offsetof(BlockHeader, zero_point) == 4);
      V::store_u32_spaced(reinterpret_cast<std::uint32_t*>(hdr), scale_codes);  // zero points 0
      hdr += V::N;
      if (by_reciprocal) {
        if (clamp) fixed_group_by_reciprocal<V, kVpb, true>(xs + b0, s_bits, recips, direct_codes, sink, b0);
        else fixed_group_by_reciprocal<V, kVpb, false>(xs + b0, s_bits, recips, direct_codes, sink, b0);
        continue;
      }
      for (int j = 0; j < V::N; ++j) {
        const F sv = V::flt(V::broadcast_lane(s_bits, j)), inv = V::flt(V::broadcast_lane(inv_bits, j));
        const std::int64_t o = b0 + j * block_len;
        LOWBIT_UNROLL for (int v = 0; v < kVpb; ++v) {
          const std::int64_t i = o + v * V::N;
          const F xv = V::load(xs + i, V::N);
          const F yv = pow2_scales ? V::mul(xv, inv) : V::div(xv, sv);
          sink(i, direct_codes.usable() ? fast_codes_lanes<V, mode>(yv, direct_codes) : codes_of_values<V>(rounded(yv, i), ec),
               V::N);
        }
      }
    }
    return b0;
  };
  std::int64_t b0 = begin;
  if ((fast.usable || fast_float.usable) && !asym && block % V::N == 0 && vpb <= 4) {
    const std::int64_t start = b0;
    if (vpb == 1) b0 = groups(std::integral_constant<int, 1>{}, b0);
    else if (vpb == 2) b0 = groups(std::integral_constant<int, 2>{}, b0);
    else if (vpb == 3) b0 = groups(std::integral_constant<int, 3>{}, b0);
    else b0 = groups(std::integral_constant<int, 4>{}, b0);
    headers += (b0 - start) / block;
  }
  for (; b0 < end; b0 += block, ++headers) {
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
      h.scale = E8M0::from_exponent(se);
      s = bits_float(pow2_float_bits(se));
    } else {
      const double lo_d = asym ? static_cast<double>(V::reduce_min_f(lo)) : 0.0;
      const double hi_d = asym ? static_cast<double>(V::reduce_max_f(hi)) : 0.0;
      s = fmt.choose_header(static_cast<double>(bits_float(amax_u)), lo_d, hi_d, finite, tp, h);
      se = pow2 && s > 0.0f ? floor_log2(static_cast<double>(s)) : 0;
    }
    *headers = h;
    if (!(s > 0.0f)) {  // NaN or zero scale: the codes carry nothing
      const I fill = V::set(static_cast<std::int32_t>(asym ? h.zero_point : zero_code));
      for (std::int64_t i = b0; i < b1; i += V::N)
        codes(i, fill, static_cast<int>(std::min<std::int64_t>(V::N, b1 - i)));
      continue;
    }
    const F sv = V::setf(s), inv = V::flt(V::set(static_cast<std::int32_t>(pow2_float_bits(pow2 ? -se : 0))));
    if (asym) {
      const I zp = V::set(static_cast<std::int32_t>(h.zero_point));
      const I qmax = V::set(ec.qmax);
      for (std::int64_t i = b0; i < b1; i += V::N) {
        const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
        const I r = rounded(V::div(V::load(x + i, n), sv), i);  // integral float, |r| <= 2^24
        const I k = V::add(V::f2i(V::flt(r)), zp);
        codes(i, V::min_i(V::max_i(k, zero), qmax), n);
      }
      continue;
    }
    const bool direct_block = direct.usable() && finite;
    for (std::int64_t i = b0; i < b1; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
      const F xv = V::load(x + i, n);
      const F yv = pow2 ? V::mul(xv, inv) : V::div(xv, sv);
      codes(i, direct_block ? fast_codes_lanes<V, mode>(yv, direct) : codes_of_values<V>(rounded(yv, i), ec), n);
    }
  }
  return !V::any(bad);
}

// Where quantize_line_mode's codes go: one uint32 per value, or bit-packed 8- or 4-bit codes
// (code i at bit i * width of `out`; with 4 bits every call but a line's last starts and
// ends on an even index, which blocks of even length guarantee).
template <class V>
struct U32Codes {
  static constexpr bool kTakesLowByte = false;  // stores every bit of the lanes it gets
  std::uint32_t* out;
  void operator()(std::int64_t i, typename V::I c, int n) const { V::store_u32(out + i, c, n); }
};
template <class V>
struct ByteCodes {
  static constexpr bool kTakesLowByte = true;  // stores each lane's low byte only
  std::uint8_t* out;
  void operator()(std::int64_t i, typename V::I c, int n) const { V::store_u8(out + i, c, n); }
  // 4 * V::N codes, each lane within -128..127, from index i
  void int8_quad(std::int64_t i, const typename V::I* k) const { V::store_i8x4(out + i, k[0], k[1], k[2], k[3]); }
};
template <class V>
struct NibbleCodes {
  static constexpr bool kTakesLowByte = false;
  std::uint8_t* out;
  void operator()(std::int64_t i, typename V::I c, int n) const { V::store_u4_pairs(out + i / 2, c, n); }
};

// Lines of quantize_line_mode with one setup: line l reads x + l * x_stride, writes through
// sink_of(l) and headers_of(l), draws random bits from index0 + l * index_stride, and done(l)
// runs after it. Returns the number of lines done: `count`, or the index of the first line
// that held a NaN the format cannot encode.
template <class V, Rounding mode, class Fmt, class SinkOf, class HeadersOf, class Done>
std::int64_t quantize_lines_mode(const Fmt& fmt, const ElementRounding& er, const ElementCodes& ec, const float* x,
                                 std::int64_t x_stride, std::int64_t count, const SinkOf& sink_of,
                                 const HeadersOf& headers_of, std::int64_t begin, std::int64_t end, std::int64_t block,
                                 std::uint64_t index0, std::uint64_t index_stride, std::uint64_t seed,
                                 const TensorParams& tp, const Done& done) {
  const LineSetup<V> setup(fmt, er, mode);
  for (std::int64_t l = 0; l < count; ++l) {
    if (!quantize_line_mode<V, mode>(fmt, setup, ec, x + l * x_stride, sink_of(l), headers_of(l), begin, end, block,
                                     index0 + static_cast<std::uint64_t>(l) * index_stride, seed, tp))
      return l;
    done(l);
  }
  return count;
}

template <class V, class Fmt, class SinkOf, class HeadersOf, class Done>
std::int64_t quantize_lines(const Fmt& fmt, const ElementRounding& er, const ElementCodes& ec, const float* x,
                            std::int64_t x_stride, std::int64_t count, const SinkOf& sink_of,
                            const HeadersOf& headers_of, std::int64_t begin, std::int64_t end, std::int64_t block,
                            std::uint64_t index0, std::uint64_t index_stride, Rounding mode, std::uint64_t seed,
                            const TensorParams& tp, const Done& done) {
  switch (mode) {
    case Rounding::NearestEven:
      return quantize_lines_mode<V, Rounding::NearestEven>(fmt, er, ec, x, x_stride, count, sink_of, headers_of, begin,
                                                           end, block, index0, index_stride, seed, tp, done);
    case Rounding::NearestAway:
      return quantize_lines_mode<V, Rounding::NearestAway>(fmt, er, ec, x, x_stride, count, sink_of, headers_of, begin,
                                                           end, block, index0, index_stride, seed, tp, done);
    case Rounding::TowardZero:
      return quantize_lines_mode<V, Rounding::TowardZero>(fmt, er, ec, x, x_stride, count, sink_of, headers_of, begin,
                                                          end, block, index0, index_stride, seed, tp, done);
    case Rounding::Stochastic:
      return quantize_lines_mode<V, Rounding::Stochastic>(fmt, er, ec, x, x_stride, count, sink_of, headers_of, begin,
                                                          end, block, index0, index_stride, seed, tp, done);
  }
  return 0;
}

// Dequantises codes[begin, end) of one contiguous line into y[begin, end); `headers` holds
// the header of each block from `begin` on.
template <class V, class Fmt>
void dequantize_line(const Fmt& fmt, const ElementCodes& ec, const std::uint32_t* codes, float* y,
                     const BlockHeader* headers, std::int64_t begin, std::int64_t end, std::int64_t block,
                     const TensorParams& tp) {
  using I = typename V::I;
  using F = typename V::F;
  const typename simd::SimdTable<V>::T table = simd::SimdTable<V>::load(ec.table);
  if (!fmt.has_scale()) {
    for (std::int64_t i = begin; i < end; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, end - i));
      V::store(y + i, values_of_codes<V>(V::load_u32(codes + i, n), ec, table), n);
    }
    return;
  }
  const bool asym = fmt.scale.zero_point;
  for (std::int64_t b0 = begin; b0 < end; b0 += block, ++headers) {
    const std::int64_t b1 = std::min(end, b0 + block);
    const float s = fmt.scale_value(*headers, tp);
    const F sv = V::setf(s);
    if (std::isnan(s)) {
      const F fill = V::flt(V::set(0x7FC00000));
      for (std::int64_t i = b0; i < b1; i += V::N) V::store(y + i, fill, static_cast<int>(std::min<std::int64_t>(V::N, b1 - i)));
      continue;
    }
    if (asym) {
      // k - zero_point is exact in float while both are below 2^24 (always, for codes that
      // quantize wrote); other blocks take the scalar reference
      constexpr std::uint32_t kExact = 1u << 24;
      I big = V::set(0);
      for (std::int64_t i = b0; i < b1; i += V::N)
        big = V::max_u(big, V::load_u32(codes + i, static_cast<int>(std::min<std::int64_t>(V::N, b1 - i))));
      if (headers->zero_point >= kExact || V::reduce_max_u(big) >= kExact) {
        fmt.dequantize_block(codes + b0, static_cast<std::size_t>(b1 - b0), *headers, tp, y + b0);
        continue;
      }
      const I zp = V::set(static_cast<std::int32_t>(headers->zero_point));
      for (std::int64_t i = b0; i < b1; i += V::N) {
        const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
        V::store(y + i, V::mul(V::i2f(V::sub(V::load_u32(codes + i, n), zp)), sv), n);
      }
      continue;
    }
    for (std::int64_t i = b0; i < b1; i += V::N) {
      const int n = static_cast<int>(std::min<std::int64_t>(V::N, b1 - i));
      V::store(y + i, V::mul(values_of_codes<V>(V::load_u32(codes + i, n), ec, table), sv), n);
    }
  }
}
