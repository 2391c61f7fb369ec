// The AVX2 integer kernel's loop over granules, written once over a policy Dot (how an
// octet's weights meet the activations: UnsignedDot, WideningDot, VnniDot) and compiled once
// per instruction set by including this file inside a target region (panel_avx2.hpp): in
// namespace avx2 for AVX2, and in avx2::vnni for AVX-VNNI, whose vpdpbusd a function compiled
// for AVX2 alone cannot inline.
// Not a standalone header: no include guard, no includes.

// NR activation rows times half h of a panel: per granule, an exact int32 dot per lane, then
// one float multiply-add by the two block scales (add_granule: the scalar path's bits).
// G > 0: every granule is G columns (whole_granule), so its octets are straight-line code.
// Octets go in pairs, and Dot::add<P> is told the octet's place P in its pair, so that a
// policy may give the two octets chains of their own.
template <int NR, int G, class Dot>
inline void half_int_g(const PanelArgs& w, const float* scales, const IntActArgs& a, std::int64_t n0, int h, PanelOut out) {
  const int rows = w.rows;
  HalfLoader ld{rows, h, {}};
  const Dot dp(w);
  const std::int8_t* q[NR];
  for (int n = 0; n < NR; ++n) q[n] = a.q + (n0 + n) * w.padded_cols;
  __m256 y[NR];
  for (int n = 0; n < NR; ++n) y[n] = _mm256_setzero_ps();
  BlockCursor wblock(w.block), ablock(a.act_block);
  for (std::int64_t g = 0; g < a.granules; ++g) {
    const std::int64_t k0 = g * a.granule;
    const std::int64_t wb = wblock.at(k0), ab = ablock.at(k0);
    const std::int32_t* neg_sum128 = a.neg_sum128 + g * a.rows + n0;  // this granule's, from row n0
    const float* xs = a.scale + ab * a.rows + n0;
    typename Dot::Sums sums[NR];
    LOWBIT_UNROLL
    for (int n = 0; n < NR; ++n) sums[n] = Dot::zero();
    auto octet = [&]<int P>(std::int64_t o) LOWBIT_LAMBDA_INLINE {
      __m256i wv[2];
      dp.weights.octet(w, ld, o, wv);
      const typename Dot::Octet oct = dp.octet(wv);
      LOWBIT_UNROLL
      for (int n = 0; n < NR; ++n) dp.template add<P>(sums[n], oct, q[n] + 8 * o);
    };
    std::int64_t o = k0 >> 3;
    if constexpr (G > 0) {
      LOWBIT_UNROLL
      for (int p = 0; p < G / 16; ++p) {
        octet.template operator()<0>(o + 2 * p);
        octet.template operator()<1>(o + 2 * p + 1);
      }
    } else {
      const std::int64_t o1 = std::min(k0 + a.granule, w.padded_cols) >> 3;  // the last granule may be short
      for (; o + 2 <= o1; o += 2) {
        octet.template operator()<0>(o);
        octet.template operator()<1>(o + 1);
      }
      if (o < o1) octet.template operator()<0>(o);
    }
    const __m256 ws = _mm256_loadu_ps(scales + wb * 8);
    LOWBIT_UNROLL
    for (int n = 0; n < NR; ++n) y[n] = add_granule(y[n], dp.dot(sums[n], neg_sum128[n]), ws, _mm256_set1_ps(xs[n]));
  }
  for (int n = 0; n < NR; ++n) store_lanes(out.y + n * out.stride + 8 * h, y[n], rows - 8 * h);
}

template <int NR, class Dot>
inline void half_int_nr(const PanelArgs& w, const float* scales, const IntActArgs& a, std::int64_t n0, int h, PanelOut out) {
  with_granule(whole_granule(w, a), [&](auto g) { half_int_g<NR, decltype(g)::value, Dot>(w, scales, a, n0, h, out); });
}
