// The packed-matmul kernels on the AVX2 path (also the integer kernel of AVX-512 CPUs without
// VNNI): a panel runs as two halves of 8 rows, one row per lane. Bit-identical to
// kernels/panel_scalar.hpp. The integer dot, without AVX-VNNI: 4- and 6-bit weights less
// their minimum are unsigned bytes for vpmaddubsw (exact for their small span); 8-bit weights
// and activations are widened to int16 for vpmaddwd (vpmaddubsw could saturate on full-range
// int8). With AVX-VNNI, vpdpbusd on unsigned weights as on the AVX-512 path. One activation
// row against a full panel with 16- or 32-column blocks has kernels of its own for every
// integer width, which decode the block scales in their loop. The float kernel
// decodes 4- and 6-bit integer codes through vpshufb byte tables, E4M3, E5M2 and 6-bit E3M2
// codes through fp16 (F16C), and gathers only other 6- and 8-bit codes; up to 7 activation
// rows, it reads 8-bit integer, E4M3 and E5M2 codes, E3M2 codes and other 4-bit codes (NF4:
// their floats from four vpshufb byte tables) in their stored order, two rows by four columns
// per register (float_row_pairs); from 8 activation rows on, it decodes each half panel once,
// into a tile of floats (other 4-bit codes there through two vpermps tables).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/kernels/e4m3_half.hpp"
#include "lowbit/kernels/panel_args.hpp"
#include "lowbit/kernels/panel_scalar.hpp"
#include "lowbit/kernels/target.hpp"

namespace lowbit::kernels::avx2 {

LOWBIT_TARGET_AVX2_BEGIN

// Rows [8h, 8h + 8) of a panel group of `group_bytes_per_row` bytes per row, zero-filled past
// the panel's last row; the line kPrefetchBytes past the group is prefetched, since groups
// are read in order.
// get() is forced inline: out of line (GCC's choice) it cost the AVX2 kernels a call, and a
// copy of the operands, per octet.
struct HalfLoader {
  int rows, h;
  alignas(32) std::uint8_t buf[64];
  bool full() const { return rows >= 8 * h + 8; }
  LOWBIT_ALWAYS_INLINE const std::uint8_t* get(const std::uint8_t* group, int bytes_per_row) {
    _mm_prefetch(reinterpret_cast<const char*>(group + kPrefetchBytes), _MM_HINT_T1);
    const std::uint8_t* p = group + 8 * h * bytes_per_row;
    if (full()) return p;
    std::memset(buf, 0, sizeof buf);
    const int have = std::max(0, rows - 8 * h);
    std::memcpy(buf, p, static_cast<std::size_t>(have * bytes_per_row));
    return buf;
  }
};

// The 8 block scales of half rows for one kind of scale code, before the tensor scale and the
// unit, from the half's codes p (HalfLoader: zero past the panel's last row).
template <PanelScaleKind K>
inline __m256 half_scale_codes(const PanelScale& s, const std::uint8_t* p) {
  if constexpr (K == PanelScaleKind::Lut8 || K == PanelScaleKind::E8M0) {
    std::int64_t c8;
    std::memcpy(&c8, p, 8);
    const __m256i c = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(c8));
    if constexpr (K == PanelScaleKind::Lut8) return _mm256_i32gather_ps(s.lut, c, 4);
    __m256i bits = _mm256_slli_epi32(c, 23);
    bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x00400000), _mm256_cmpeq_epi32(c, _mm256_setzero_si256()));
    bits = _mm256_blendv_epi8(bits, _mm256_set1_epi32(0x7FC00000), _mm256_cmpeq_epi32(c, _mm256_set1_epi32(255)));
    return _mm256_castsi256_ps(bits);
  } else if constexpr (K == PanelScaleKind::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (K == PanelScaleKind::BF16) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  } else if constexpr (K == PanelScaleKind::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  } else {
    return _mm256_set1_ps(1.0f);
  }
}

// E4M3 codes (one per 32-bit lane) to their values, as e4m3_value does with the NaNs of
// `table` (the AVX-512 path's decoder on eight lanes).
struct E4M3Values {
  __m256 nan_pos, nan_neg;
  explicit E4M3Values(const float* table) : nan_pos(_mm256_set1_ps(table[0x7F])), nan_neg(_mm256_set1_ps(table[0xFF])) {}
  // The values of codes that are not NaN (NaN codes give +-480).
  LOWBIT_ALWAYS_INLINE static __m256 finite(__m256i c) {
    const __m256i mag = _mm256_and_si256(c, _mm256_set1_epi32(0x7F));
    const __m256 normal = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(mag, 20), _mm256_set1_epi32(120 << 23)));
    const __m256 sub = _mm256_mul_ps(_mm256_cvtepi32_ps(mag), _mm256_set1_ps(0x1p-9f));
    const __m256 v = _mm256_blendv_ps(normal, sub, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(8), mag)));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(v), _mm256_slli_epi32(_mm256_srli_epi32(c, 7), 31)));
  }
  LOWBIT_ALWAYS_INLINE __m256 operator()(__m256i c) const {
    __m256 v = finite(c);
    v = _mm256_blendv_ps(v, nan_pos, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(0x7F))));
    return _mm256_blendv_ps(v, nan_neg, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(0xFF))));
  }
};

// The block scales of half rows, 8 floats per block, from the half's scale codes p (8 codes
// of s.bytes each): the codes' values times the tensor scale, then the unit (the scalar path's
// order; table values are final). A table of E4M3's values (PanelScale::lut_is_e4m3: NVFP4)
// is computed as the table was, with the table's NaNs, not gathered from it. Set up once per
// call for the scale kind K; decoded_half_scales runs it over a whole half, and the one-row
// integer kernels once per block in their loop.
template <PanelScaleKind K>
struct HalfScaleDecoder {
  const PanelScale& s;
  bool table_e4m3, computed;  // computed: not final table values
  E4M3Values e4m3;
  __m256 ts, unit;
  explicit HalfScaleDecoder(const PanelScale& sc)
      : s(sc),
        table_e4m3(K == PanelScaleKind::Lut8 && sc.lut_is_e4m3),
        computed(K != PanelScaleKind::Lut8 || table_e4m3),
        e4m3(table_e4m3 ? sc.lut : kNoTable),
        ts(_mm256_set1_ps(sc.tensor_scale)),
        unit(_mm256_set1_ps(sc.unit)) {}
  LOWBIT_ALWAYS_INLINE __m256 operator()(const std::uint8_t* p) const {
    if constexpr (K == PanelScaleKind::None) {
      return _mm256_set1_ps(s.constant);
    } else {
      __m256 v;
      if (table_e4m3) {
        std::int64_t c8;
        std::memcpy(&c8, p, 8);
        v = e4m3(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(c8)));
      } else {
        v = half_scale_codes<K>(s, p);
      }
      if (computed) {
        if (s.has_tensor_scale) v = _mm256_mul_ps(v, ts);
        v = _mm256_mul_ps(v, unit);
      }
      return v;
    }
  }

 private:
  static constexpr float kNoTable[256] = {};  // NaN values when there is no E4M3 table
};

// Every block scale of half h of the panel, 8 floats per block (HalfScaleDecoder), decoded once
// per kernel call with the scale kind chosen once: the kernels used to decode them, through a
// switch, once per block for every pair of activation rows. One buffer per thread and half,
// reused.
inline const float* decoded_half_scales(const PanelArgs& w, int h) {
  thread_local std::vector<float> buf[2];
  const std::int64_t blocks = (w.padded_cols + w.block - 1) / w.block;
  std::vector<float>& b = buf[h];
  b.resize(static_cast<std::size_t>(blocks * 8));
  float* out = b.data();
  HalfLoader ld{w.rows, h, {}};
  with_scale_kind(w.scale.kind, [&](auto kind) {
    constexpr PanelScaleKind K = decltype(kind)::value;
    const HalfScaleDecoder<K> dec(w.scale);
    const int bytes = w.scale.bytes;
    const std::uint8_t* codes = w.scales;
    const std::int64_t stride = w.rows * bytes;
    for (std::int64_t blk = 0; blk < blocks; ++blk)
      _mm256_storeu_ps(out + blk * 8, dec(K == PanelScaleKind::None ? nullptr : ld.get(codes + blk * stride, bytes)));
  });
  return out;
}

// Four int8 activations as four int16, repeated over the register.
inline __m256i broadcast4_i16(const std::int8_t* p) {
  std::int32_t t;
  std::memcpy(&t, p, 4);
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(t)));
}

// Sixteen-entry float table lookup: two eight-entry vpermps, bit 3 of the index picks (the bits
// above 3 are not read).
inline __m256 lookup16(__m256 lut0, __m256 lut1, __m256i idx) {
  const __m256 l = _mm256_permutevar8x32_ps(lut0, idx), u = _mm256_permutevar8x32_ps(lut1, idx);
  return _mm256_blendv_ps(l, u, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

inline void store_lanes(float* y, __m256 v, int lanes) {
  if (lanes >= 8) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  std::memcpy(y, t, static_cast<std::size_t>(lanes) * sizeof(float));
}

// Six-bit codes as int8 values (a table less `offset`), in fewer instructions per 32 codes than
// the general lookup's twelve (four 16-entry vpshufb tables chosen by the top bits) where the
// table allows: two's complement codes (BFP6, int6) are sign-extended arithmetically (two);
// sign-magnitude ones (value(c + 32) = -value(c), value(0) = 0: MXFP6 E2M3) take the 32
// magnitudes from two vpshufb tables, bit 4 choosing, then vpsignb applies bit 5 (seven).
struct Lookup64 {
  __m256i lut[4]{};   // general: value - offset by code, 16 codes per table
  __m256i mag[2]{};   // sign-magnitude: value by code & 31
  __m256i neg_offset{};
  bool twos_complement = false, sign_magnitude = false;
  Lookup64() = default;  // no table: code widths other than 6 bits, which never look up
  Lookup64(const std::int8_t* value, int offset) {
    twos_complement = true;
    for (int c = 0; c < 64; ++c) twos_complement = twos_complement && value[c] == (c ^ 32) - 32;
    sign_magnitude = value[0] == 0;
    for (int c = 0; c < 32; ++c) sign_magnitude = sign_magnitude && value[c + 32] == -value[c];
    alignas(16) std::int8_t t[64];
    for (int c = 0; c < 64; ++c) t[c] = static_cast<std::int8_t>(value[c] - offset);
    for (int i = 0; i < 4; ++i) lut[i] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t + 16 * i)));
    for (int i = 0; i < 2; ++i) mag[i] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(value + 16 * i)));
    neg_offset = _mm256_set1_epi8(static_cast<char>(-offset));
  }
  // idx: one 6-bit code per byte (vpshufb reads its low 4 bits; bit 7 is clear)
  LOWBIT_ALWAYS_INLINE __m256i operator()(__m256i idx) const {
    const __m256i bit5 = _mm256_set1_epi8(0x20);
    if (twos_complement)  // (c ^ 32) - 32, less the offset
      return _mm256_add_epi8(_mm256_sub_epi8(_mm256_xor_si256(idx, bit5), bit5), neg_offset);
    if (sign_magnitude) {
      // bit 4, then bit 5, moved to bit 7 of its byte (the 16-bit shifts carry only zero bits across)
      const __m256i m = _mm256_blendv_epi8(_mm256_shuffle_epi8(mag[0], idx), _mm256_shuffle_epi8(mag[1], idx), _mm256_slli_epi16(idx, 3));
      return _mm256_add_epi8(_mm256_sign_epi8(m, _mm256_slli_epi16(idx, 2)), neg_offset);  // code 0: sign 0 gives 0 = value(0)
    }
    const __m256i top = _mm256_and_si256(idx, _mm256_set1_epi8(0x30));
    __m256i r = _mm256_shuffle_epi8(lut[0], idx);
    for (int t = 1; t < 4; ++t)
      r = _mm256_blendv_epi8(r, _mm256_shuffle_epi8(lut[t], idx), _mm256_cmpeq_epi8(top, _mm256_set1_epi8(static_cast<char>(16 * t))));
    return r;
  }
};

// Octet o's six-bit codes from their low nibbles v and top-bit bytes hi (as laid out for this
// octet's pair; odd = o & 1), one per byte in stored order: c[g] holds columns 4g .. 4g + 3.
LOWBIT_ALWAYS_INLINE void codes6_bytes(__m256i v, __m256i hi, int odd, __m256i (&c)[2]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
  const __m256i h0 = odd ? hi : _mm256_slli_epi16(hi, 4);
  const __m256i h1 = odd ? _mm256_srli_epi16(hi, 2) : _mm256_slli_epi16(hi, 2);
  c[0] = _mm256_or_si256(_mm256_and_si256(v, low4), _mm256_and_si256(h0, top));
  c[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), _mm256_and_si256(h1, top));
}

// The same codes as int8 values.
LOWBIT_ALWAYS_INLINE void decode6_s8(const Lookup64& lut6, __m256i v, __m256i hi, int odd, __m256i (&wv)[2]) {
  codes6_bytes(v, hi, odd, wv);
  for (__m256i& c : wv) c = lut6(c);
}

inline __m256i load256(const std::uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The int8 weights of octet o for the integer kernels: columns 8o..8o+3 and 8o+4..8o+7 of
// the half's 8 rows, four bytes per row (4-bit codes through a vpshufb table). 4- and 6-bit
// codes may come out less `offset` (as bytes: the vpmaddubsw kernel's unsigned weights).
struct Int8Weights {
  __m256i lut;
  Lookup64 lut6;
  // Built once per kernel call, so only the code width's own table is built.
  explicit Int8Weights(const PanelArgs& w, int offset = 0) {
    alignas(16) std::int8_t t[16] = {};
    if (w.bits == 4)
      for (int c = 0; c < 16; ++c) t[c] = static_cast<std::int8_t>(w.ivalue[c] - offset);
    lut = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
    if (w.bits == 6) lut6 = Lookup64(w.ivalue, offset);
  }
  LOWBIT_ALWAYS_INLINE void decode4(__m256i v, __m256i (&wv)[2]) const {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    wv[0] = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low4));
    wv[1] = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
  }
  LOWBIT_ALWAYS_INLINE void octet(const PanelArgs& w, HalfLoader& ld, std::int64_t o, __m256i (&wv)[2]) const {
    const int rows = w.rows;
    if (w.bits == 6) {
      const int odd = static_cast<int>(o & 1);
      const std::uint8_t* pair = w.codes + (o >> 1) * rows * 12;
      decode6_s8(lut6, load256(ld.get(pair + odd * rows * 4, 4)), load256(ld.get(pair + rows * 8, 4)), odd, wv);
    } else if (w.bits == 4) {
      decode4(load256(ld.get(w.codes + o * rows * 4, 4)), wv);
    } else {
      for (int t = 0; t < 2; ++t) wv[t] = load256(ld.get(w.codes + o * rows * 8 + t * rows * 4, 4));
    }
  }
  // Octet o of half h of a full panel (16 rows: no partial half to copy).
  template <int BITS>
  LOWBIT_ALWAYS_INLINE void full_octet(const std::uint8_t* codes, std::int64_t o, int h, __m256i (&wv)[2]) const {
    if (h == 0) {  // both halves' lines: prefetch once, lines of 64 bytes every 64 (4-bit) or 96 (6-bit) bytes
      _mm_prefetch(reinterpret_cast<const char*>(codes + o * 16 * BITS + kPrefetchBytes), _MM_HINT_T1);
      if constexpr (BITS == 6) _mm_prefetch(reinterpret_cast<const char*>(codes + o * 96 + 64 + kPrefetchBytes), _MM_HINT_T1);
    }
    if constexpr (BITS == 6) {
      const int odd = static_cast<int>(o & 1);
      const std::uint8_t* pair = codes + (o >> 1) * 16 * 12;
      decode6_s8(lut6, load256(pair + odd * 64 + 32 * h), load256(pair + 128 + 32 * h), odd, wv);
    } else {
      static_assert(BITS == 4);
      decode4(load256(codes + o * 64 + 32 * h), wv);
    }
  }
};

// ---- integer kernel ----------------------------------------------------------------------
// The offset that makes a format's 4- or 6-bit integer values unsigned, and their span.
struct UnsignedWeights {
  int offset = 0, span = 0;  // min(w), max(w) - min(w)
  explicit UnsignedWeights(const PanelArgs& w) : offset(w.ivalue_min), span(w.ivalue_span) {}
  // vpmaddubsw adds two products of at most span * 128 in int16: exact while that fits.
  bool fits() const { return span <= 127; }
  // How many vpmaddubsw results, each at most 256 * span in magnitude, can be summed in int16
  // before widening: the largest of 1, 2, 4 and 8 up to `most` that cannot overflow.
  int int16_products(int most) const {
    int p = 1;
    while (2 * p <= most && 2 * p * 256 * span <= 32767) p *= 2;
    return p;
  }
  // The two results of an octet (its two halves) can be summed in int16.
  bool octet_fits() const { return int16_products(2) == 2; }
  // The int32 dots of unsigned weights (acc) plus offset * sum(q): neg_sum128 is -128 * sum(q), so
  // the shift is exact; int32 wraps like the vector adds, and the dot itself fits.
  LOWBIT_ALWAYS_INLINE __m256i dot(__m256i acc, std::int32_t neg_sum128) const {
    const std::int64_t back = -static_cast<std::int64_t>(offset) * (neg_sum128 >> 7);
    return _mm256_add_epi32(acc, _mm256_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint32_t>(back))));
  }
};

// How the integer kernels without VNNI multiply (a policy of half_int_nr):
// WideningDot: weights and activations widened to int16 for vpmaddwd, which cannot saturate
// on full-range int8 (8-bit weights). Two int32 sums per row (rows 0-3 and 4-7 of the half).
struct WideningDot {
  struct Sums {
    __m256i lo, hi;
  };
  static Sums zero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  struct Octet {  // the octet's weights as int16, shared by the activation rows
    __m256i lo[2], hi[2];
  };
  Int8Weights weights;
  explicit WideningDot(const PanelArgs& w) : weights(w) {}
  LOWBIT_ALWAYS_INLINE Octet octet(const __m256i (&wv)[2]) const {
    Octet o;
    for (int t = 0; t < 2; ++t) {
      o.lo[t] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(wv[t]));
      o.hi[t] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(wv[t], 1));
    }
    return o;
  }
  template <int>  // the octet's place in its pair: one set of sums serves both
  LOWBIT_ALWAYS_INLINE void add(Sums& s, const Octet& o, const std::int8_t* x) const {
    for (int t = 0; t < 2; ++t) {
      const __m256i xv = broadcast4_i16(x + 4 * t);
      s.lo = _mm256_add_epi32(s.lo, _mm256_madd_epi16(o.lo[t], xv));
      s.hi = _mm256_add_epi32(s.hi, _mm256_madd_epi16(o.hi[t], xv));
    }
  }
  LOWBIT_ALWAYS_INLINE static __m256i dot(const Sums& s, std::int32_t = 0) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(s.lo, s.hi), 0xD8);
  }
};

// UnsignedDot: 4- and 6-bit weights less their minimum are unsigned bytes, so vpmaddubsw
// multiplies them by the int8 activations with no widening first, vpmaddwd by ones takes the
// int16 pairs to int32, and offset * sum(q) per granule adds the minimum back: exact int32
// dots, half the instructions per octet. OCTET16: an octet's two products are summed in
// int16 before widening (UnsignedWeights::octet_fits).
template <bool OCTET16>
struct UnsignedDot {
  struct Sums {
    __m256i acc;  // one int32 per row of the half
  };
  static Sums zero() { return {_mm256_setzero_si256()}; }
  struct Octet {
    __m256i u[2];
  };
  UnsignedWeights uw;
  Int8Weights weights;
  explicit UnsignedDot(const PanelArgs& w) : uw(w), weights(w, uw.offset) {}
  LOWBIT_ALWAYS_INLINE Octet octet(const __m256i (&wv)[2]) const { return {{wv[0], wv[1]}}; }
  // x: the octet's eight activations, as two broadcasts of four
  LOWBIT_ALWAYS_INLINE __m256i products(const Octet& o, __m256i x0, __m256i x1) const {
    const __m256i ones = _mm256_set1_epi16(1);  // a constant the compiler keeps in a register
    const __m256i p0 = _mm256_maddubs_epi16(o.u[0], x0), p1 = _mm256_maddubs_epi16(o.u[1], x1);
    if constexpr (OCTET16) return _mm256_madd_epi16(_mm256_add_epi16(p0, p1), ones);
    else return _mm256_add_epi32(_mm256_madd_epi16(p0, ones), _mm256_madd_epi16(p1, ones));
  }
  template <int>  // the octet's place in its pair: one sum serves both
  LOWBIT_ALWAYS_INLINE void add(Sums& s, const Octet& o, const std::int8_t* x) const {
    std::int32_t x0, x1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&x1, x + 4, 4);
    s.acc = _mm256_add_epi32(s.acc, products(o, _mm256_set1_epi32(x0), _mm256_set1_epi32(x1)));
  }
  LOWBIT_ALWAYS_INLINE __m256i dot(const Sums& s, std::int32_t neg_sum128) const { return uw.dot(s.acc, neg_sum128); }
};

// The float step that ends a granule in every integer kernel: y + dot times (weight scales
// times the activation scale), in this order everywhere (the scalar path's bits).
LOWBIT_ALWAYS_INLINE __m256 add_granule(__m256 y, __m256i dot, __m256 ws, __m256 x) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(ws, x), y);
}

#include "lowbit/kernels/half_int_body.inl"

// ---- float kernel ------------------------------------------------------------------------
// As on the AVX-512 path: code width and decoding are template parameters and the column
// index J a constant, so the partial sums p[n][J] stay in registers.
//
// How codes become floats besides 4-bit tables. Integer: int8 values times code_unit (8-bit
// codes that are their own values; 4- and 6-bit integer codes after Int8Weights' byte
// tables). E4M3: the 32 bytes hold no NaN code (checked per load), converted through fp16;
// E4M3Nan: some do. E4M3Half and E4M3NanHalf: the same, as values times 2^-8, for activations
// times 2^8 (FloatActArgs::x256). E5M2: converted as the top byte of an fp16. E3M2 (6-bit codes,
// w.e3m2_unit set): their bits moved into an fp16's (e3m2_half_top), converted, times
// e3m2_unit. Gather: a table lookup per lane (any other 6- or 8-bit codes). Tile: any codes,
// decoded beforehand into a tile of floats (decoded_half_tile).
enum class Decode8 { None, Integer, E4M3, E4M3Nan, E4M3Half, E4M3NanHalf, E5M2, E3M2, Gather, Tile };

// The NaN-code variant of an E4M3 decoding.
template <Decode8 D8>
inline constexpr Decode8 kE4M3Nan = D8 == Decode8::E4M3Half ? Decode8::E4M3NanHalf : Decode8::E4M3Nan;

// Byte J of each 32-bit lane as the top byte of the 16-bit lane of its row, rows 0-7 in the
// low 128 bits.
template <int J>
LOWBIT_ALWAYS_INLINE __m256i column_top_bytes(__m256i v) {
  constexpr char z = -128;  // vpshufb: a zero byte
  const __m256i pick = _mm256_setr_epi8(z, J, z, 4 + J, z, 8 + J, z, 12 + J, z, z, z, z, z, z, z, z,  //
                                        z, J, z, 4 + J, z, 8 + J, z, 12 + J, z, z, z, z, z, z, z, z);
  return _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pick), 0x08);  // rows 0-3, then 4-7
}

// Column J's E5M2 codes as the top bytes of fp16s, converted: their values, Inf and NaN included.
template <int J>
LOWBIT_ALWAYS_INLINE __m256 e5m2_column(__m256i v) {
  return _mm256_cvtph_ps(_mm256_castsi256_si128(column_top_bytes<J>(v)));
}

// Column J's E4M3 codes (no NaN code among them) through binary16 (e4m3_as_half), then times
// 2^8 (E4M3Half: not): both steps exact. Six instructions for 8 values, where
// E4M3Values::finite takes ten after its own two to isolate the column.
template <int J, Decode8 D8>
LOWBIT_ALWAYS_INLINE __m256 e4m3_column(__m256i v) {
  const __m128i h = _mm256_castsi256_si128(e4m3_as_half(column_top_bytes<J>(v)));
  if constexpr (D8 == Decode8::E4M3Half) return _mm256_cvtph_ps(h);
  return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
}

// What the float kernel decodes with, set up once per call.
struct FloatCodes {
  __m256 lut0, lut1;   // 4-bit codes' values, two vpermps tables
  __m256i planes[4];   // 4-bit codes' values, byte k of each in vpshufb table k (decode_nibble_row_pairs)
  E4M3Values e4m3;     // 8-bit codes with E4M3's values
  Int8Weights int8;    // 4- and 6-bit integer codes' int8 values
  explicit FloatCodes(const PanelArgs& w)
      : lut0(w.bits == 4 ? _mm256_loadu_ps(w.fvalue) : _mm256_setzero_ps()),
        lut1(w.bits == 4 ? _mm256_loadu_ps(w.fvalue + 8) : _mm256_setzero_ps()), planes{}, e4m3(w.fvalue), int8(w) {
    if (w.bits != 4) return;
    alignas(16) std::uint8_t bytes[4][16];
    for (int c = 0; c < 16; ++c) {
      std::uint32_t u;
      std::memcpy(&u, w.fvalue + c, 4);
      for (int k = 0; k < 4; ++k) bytes[k][c] = static_cast<std::uint8_t>(u >> (8 * k));
    }
    for (int k = 0; k < 4; ++k)
      planes[k] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(bytes[k])));
  }
  // E4M3 codes' values, NaN codes included (E4M3NanHalf: times 2^-8, exact for 2^-9 .. 448).
  template <Decode8 D8>
  LOWBIT_ALWAYS_INLINE __m256 e4m3_values(__m256i c) const {
    if constexpr (D8 == Decode8::E4M3NanHalf) return _mm256_mul_ps(e4m3(c), _mm256_set1_ps(0x1p-8f));
    else return e4m3(c);
  }
};

// Column J of the four in one 32-bit lane of v (bits 8J .. 8J+7, or the nibble at 8J + 4H for
// 4-bit codes) as 8 floats. A template, so that J is a constant: the shifts are immediates.
template <int BITS, Decode8 D8, int H, int J>
LOWBIT_ALWAYS_INLINE __m256 decode_column(__m256i v, const PanelArgs& w, const FloatCodes& fc, __m256i hi6) {
  if constexpr (BITS == 4)
    return lookup16(fc.lut0, fc.lut1, _mm256_srli_epi32(v, 8 * J + 4 * H));  // lookup16 reads bits 0-3 only
  else if constexpr (BITS == 6) {
    const __m256i c = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(v, 8 * J + 4 * H), _mm256_set1_epi32(0xF)),
                                      _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(hi6, 8 * J), _mm256_set1_epi32(3)), 4));
    if constexpr (D8 == Decode8::E3M2) {  // e3m2_half_top(c) << 8 in 16-bit lanes, then as in top_byte_row_pairs
      const __m256i top = _mm256_or_si256(_mm256_and_si256(c, _mm256_set1_epi32(0x1F)),
                                          _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x20)), 2));
      const __m256i h = _mm256_slli_epi32(top, 8);
      const __m256i h16 = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0x08);  // rows 0-3, then 4-7
      return _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h16)), _mm256_set1_ps(w.e3m2_unit));
    } else {
      return _mm256_i32gather_ps(w.fvalue, c, 4);
    }
  }
  else if constexpr (D8 == Decode8::Integer)
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * J), 24)), _mm256_set1_ps(w.code_unit));
  else if constexpr (D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half)
    return e4m3_column<J, D8>(v);
  else if constexpr (D8 == Decode8::E4M3Nan || D8 == Decode8::E4M3NanHalf)
    return fc.e4m3_values<D8>(_mm256_and_si256(_mm256_srli_epi32(v, 8 * J), _mm256_set1_epi32(0xFF)));
  else if constexpr (D8 == Decode8::E5M2)
    return e5m2_column<J>(v);
  else
    return _mm256_i32gather_ps(w.fvalue, _mm256_and_si256(_mm256_srli_epi32(v, 8 * J), _mm256_set1_epi32(0xFF)), 4);
}

// Columns 4H .. 4H+3 of an octet, decoded from v, passed in order to f.template operator()<C>.
// 8-bit E4M3 codes are checked for NaN codes once per 32 bytes.
template <int BITS, Decode8 D8, int H, class F>
LOWBIT_ALWAYS_INLINE void decode_half_octet(__m256i v, const PanelArgs& w, const FloatCodes& fc, F& f,
                                            __m256i hi6 = _mm256_setzero_si256()) {
  if constexpr (BITS == 8 && (D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half)) {
    const __m256i nan = _mm256_set1_epi8(0x7F);
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(v, nan), nan)))
      return decode_half_octet<8, kE4M3Nan<D8>, H>(v, w, fc, f);
  }
  [&]<int... J>(std::integer_sequence<int, J...>) {
    (f.template operator()<4 * H + J>(decode_column<BITS, D8, H, J>(v, w, fc, hi6)), ...);
  }(std::make_integer_sequence<int, 4>{});
}

// Octet o's eight columns (8o .. 8o+7) of half rows as 8 floats each, passed in order to
// f.template operator()<C>(column) for C = 0..7; Decode8::Tile reads them from `tile`
// (decoded_half_tile). 4- and 6-bit integer codes become int8 values first (Int8Weights'
// vpshufb tables), then floats as 8-bit integer codes do: in place of two lane-crossing
// vpermps per column for 4-bit codes, slow on AMD cores.
template <int BITS, Decode8 D8, class F>
LOWBIT_ALWAYS_INLINE void decode_octet(const PanelArgs& w, const FloatCodes& fc, HalfLoader& ld, const float* tile,
                                       std::int64_t o, F& f) {
  const int rows = w.rows;
  if constexpr (D8 == Decode8::Tile) {
    [&]<int... C>(std::integer_sequence<int, C...>) {
      const auto column = [&]<int J>() {
        __m256 wv = _mm256_loadu_ps(tile + (8 * o + J) * 8);
        // Held in a register: compilers fold the load into every row's vfmadd, which made
        // the loads (one per row plus the activation broadcasts) the kernel's limit.
        asm("" : "+x"(wv));
        f.template operator()<J>(wv);
      };
      (column.template operator()<C>(), ...);
    }(std::make_integer_sequence<int, 8>{});
  } else if constexpr (D8 == Decode8::Integer && BITS != 8) {
    __m256i wv[2];
    fc.int8.octet(w, ld, o, wv);
    decode_half_octet<8, D8, 0>(wv[0], w, fc, f);
    decode_half_octet<8, D8, 1>(wv[1], w, fc, f);
  } else if constexpr (BITS == 4) {
    const __m256i v = load256(ld.get(w.codes + o * rows * 4, 4));
    decode_half_octet<4, D8, 0>(v, w, fc, f);
    decode_half_octet<4, D8, 1>(v, w, fc, f);
  } else if constexpr (BITS == 6) {
    const std::uint8_t* pair = w.codes + (o >> 1) * rows * 12;
    const int odd = static_cast<int>(o & 1);
    const __m256i v = load256(ld.get(pair + odd * rows * 4, 4));
    const __m256i hi = load256(ld.get(pair + rows * 8, 4));
    decode_half_octet<6, D8, 0>(v, w, fc, f, _mm256_srl_epi32(hi, _mm_cvtsi32_si128(panel_high_shift(odd, 0))));
    decode_half_octet<6, D8, 1>(v, w, fc, f, _mm256_srl_epi32(hi, _mm_cvtsi32_si128(panel_high_shift(odd, 1))));
  } else {
    decode_half_octet<8, D8, 0>(load256(ld.get(w.codes + o * rows * 8, 4)), w, fc, f);
    decode_half_octet<8, D8, 1>(load256(ld.get(w.codes + o * rows * 8 + rows * 4, 4)), w, fc, f);
  }
}

// NR activation rows times half h of the panel; the four partial sums p[n][C & 3] have
// compile-time indices, so they stay in registers.
template <int NR, int BITS, Decode8 D8>
inline void half_float_nr(const PanelArgs& w, const float* scales, const float* tile, const FloatActArgs& a, std::int64_t n0,
                          int h, PanelOut out) {
  const int rows = w.rows;
  HalfLoader ld{rows, h, {}};
  const float* x[NR];
  for (int n = 0; n < NR; ++n) x[n] = a.x + (n0 + n) * w.padded_cols;
  const FloatCodes fc(w);
  __m256 y[NR];
  for (int n = 0; n < NR; ++n) y[n] = _mm256_setzero_ps();
  for (std::int64_t k0 = 0, blk = 0; k0 < w.padded_cols; k0 += w.block, ++blk) {
    const std::int64_t k1 = std::min(k0 + w.block, w.padded_cols);
    __m256 p[NR][4];
    for (int n = 0; n < NR; ++n)
      for (int t = 0; t < 4; ++t) p[n][t] = _mm256_setzero_ps();
    for (std::int64_t o = k0 >> 3; o < (k1 >> 3); ++o) {
      const std::int64_t k = o << 3;
      auto fma_column = [&]<int C>(__m256 wv) {
        for (int n = 0; n < NR; ++n) p[n][C & 3] = _mm256_fmadd_ps(wv, _mm256_set1_ps(x[n][k + C]), p[n][C & 3]);
      };
      decode_octet<BITS, D8>(w, fc, ld, tile, o, fma_column);
    }
    const __m256 ws = _mm256_loadu_ps(scales + blk * 8);
    for (int n = 0; n < NR; ++n) {
      const __m256 b = _mm256_add_ps(_mm256_add_ps(p[n][0], p[n][1]), _mm256_add_ps(p[n][2], p[n][3]));
      y[n] = _mm256_fmadd_ps(b, ws, y[n]);
    }
  }
  for (int n = 0; n < NR; ++n) store_lanes(out.y + n * out.stride + 8 * h, y[n], rows - 8 * h);
}

// 32 top bytes of fp16s (E4M3 codes: the codes, made fp16s by e4m3_as_half) in stored order,
// 8 rows x 4 columns, as floats times `unit` (E5M2, E4M3Half: none), 16 at a time: wv[j] holds rows 2j
// and 2j + 1, as in decode_row_pairs.
template <Decode8 D8>
LOWBIT_ALWAYS_INLINE void top_byte_row_pairs(__m256i v, float unit, __m256 (&wv)[4]) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i t[2] = {_mm256_unpacklo_epi8(zero, v), _mm256_unpackhi_epi8(zero, v)};  // rows 0, 1 | 4, 5 and 2, 3 | 6, 7
  // t[i]'s low half: rows 2i, 2i + 1; its high half: rows 2i + 4, 2i + 5
  for (int i = 0; i < 2; ++i) {
    if constexpr (D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half) t[i] = e4m3_as_half(t[i]);
    wv[i] = _mm256_cvtph_ps(_mm256_castsi256_si128(t[i]));
    wv[i + 2] = _mm256_cvtph_ps(_mm256_extracti128_si256(t[i], 1));
  }
  if constexpr (D8 != Decode8::E5M2 && D8 != Decode8::E4M3Half)
    for (int j = 0; j < 4; ++j) wv[j] = _mm256_mul_ps(wv[j], _mm256_set1_ps(unit));
}

// 8-bit codes (Integer, E4M3 and E5M2 decoding) in their stored order: 32 bytes of a half hold
// 8 rows x 4 columns, row by row, so each 8 of them, two rows x four columns, become floats
// with no column picked out: wv[j] holds rows 2j and 2j + 1. E4M3 and E5M2 codes go into the
// top bytes of 16-bit lanes (vpunpck*bw with zero) and through fp16, 16 at a time; E4M3 codes
// take E4M3Values when a NaN code is among the 32.
template <Decode8 D8>
LOWBIT_ALWAYS_INLINE void decode_row_pairs(const std::uint8_t* p, const PanelArgs& w, const FloatCodes& fc, __m256 (&wv)[4]) {
  const auto load8 = [&](int j) {
    std::int64_t c8;
    std::memcpy(&c8, p + 8 * j, 8);
    return _mm_cvtsi64_si128(c8);
  };
  if constexpr (D8 == Decode8::Integer) {
    for (int j = 0; j < 4; ++j)
      wv[j] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(j))), _mm256_set1_ps(w.code_unit));
  } else if constexpr (D8 == Decode8::E4M3Nan || D8 == Decode8::E4M3NanHalf) {
    for (int j = 0; j < 4; ++j) wv[j] = fc.e4m3_values<D8>(_mm256_cvtepu8_epi32(load8(j)));
  } else {
    static_assert(D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half || D8 == Decode8::E5M2);
    const __m256i v = load256(p);
    if constexpr (D8 != Decode8::E5M2) {  // a NaN code among the 32: E4M3Values
      const __m256i nan = _mm256_set1_epi8(0x7F);
      if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(v, nan), nan))) [[unlikely]]
        return decode_row_pairs<kE4M3Nan<D8>>(p, w, fc, wv);
    }
    top_byte_row_pairs<D8>(v, 256.0f, wv);  // E4M3: the fp16 is the value times 2^-8
  }
}

// 6-bit E3M2 codes (w.e3m2_unit) of columns 8o + 4T .. 8o + 4T + 3 in their stored order
// (codes6_bytes), as fp16 top bytes (e3m2_half_top: the sign, bit 5, to bit 7), then as 8-bit
// codes: wv[j] holds rows 2j and 2j + 1.
template <int T>
LOWBIT_ALWAYS_INLINE void decode_e3m2_row_pairs(__m256i v, __m256i high, int odd, float unit, __m256 (&wv)[4]) {
  __m256i c[2];
  codes6_bytes(v, high, odd, c);
  const __m256i top = _mm256_or_si256(_mm256_and_si256(c[T], _mm256_set1_epi8(0x1F)),
                                      _mm256_and_si256(_mm256_slli_epi16(c[T], 2), _mm256_set1_epi8(-128)));
  top_byte_row_pairs<Decode8::E3M2>(top, unit, wv);
}

// 4-bit codes with any float values (NF4 and other codebooks) in their stored order: 32 bytes
// of a half hold 8 rows x 8 columns, the low nibbles columns 0-3 and the high ones (T = 1)
// columns 4-7. Four vpshufb tables give the four bytes of each code's float, and two rounds of
// vpunpck put them together: wv[j] holds rows j and j + 4. Twelve shuffles for 32 values, all
// within 128-bit lanes, where lookup16 takes two lane-crossing vpermps and a blend for each 8
// (slow on AMD cores).
template <int T>
LOWBIT_ALWAYS_INLINE void decode_nibble_row_pairs(const std::uint8_t* p, const FloatCodes& fc, __m256 (&wv)[4]) {
  const __m256i v = load256(p), low = _mm256_set1_epi8(0x0F);
  const __m256i idx = _mm256_and_si256(T == 0 ? v : _mm256_srli_epi16(v, 4), low);
  __m256i b[4];
  for (int k = 0; k < 4; ++k) b[k] = _mm256_shuffle_epi8(fc.planes[k], idx);
  // rows 0, 1 | 4, 5 and rows 2, 3 | 6, 7 as the floats' 16-bit halves
  const __m256i lo01 = _mm256_unpacklo_epi8(b[0], b[1]), hi01 = _mm256_unpackhi_epi8(b[0], b[1]);
  const __m256i lo23 = _mm256_unpacklo_epi8(b[2], b[3]), hi23 = _mm256_unpackhi_epi8(b[2], b[3]);
  wv[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(lo01, lo23));
  wv[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(lo01, lo23));
  wv[2] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(hi01, hi23));
  wv[3] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(hi01, hi23));
}

// Columns 8o + 4T .. 8o + 4T + 3 of a half as four registers of two rows each: 8- and 6-bit
// codes rows 2j and 2j + 1 in wv[j], 4-bit ones rows j and j + 4.
template <int BITS, Decode8 D8, int T>
LOWBIT_ALWAYS_INLINE void decode_row_quad(const PanelArgs& w, const FloatCodes& fc, HalfLoader& ld, std::int64_t o,
                                          __m256 (&wv)[4]) {
  if constexpr (BITS == 4) {
    decode_nibble_row_pairs<T>(ld.get(w.codes + o * w.rows * 4, 4), fc, wv);
  } else if constexpr (BITS == 6) {
    static_assert(D8 == Decode8::E3M2);
    const std::uint8_t* pair = w.codes + (o >> 1) * w.rows * 12;
    const int odd = static_cast<int>(o & 1);
    const __m256i v = load256(ld.get(pair + odd * w.rows * 4, 4));  // loaded before the next get() reuses its buffer
    decode_e3m2_row_pairs<T>(v, load256(ld.get(pair + w.rows * 8, 4)), odd, w.e3m2_unit, wv);
  } else {
    decode_row_pairs<D8>(ld.get(w.codes + o * w.rows * 8 + T * w.rows * 4, 4), w, fc, wv);
  }
}

// half_float_nr for codes in their stored order (decode_row_quad), over HALVES halves
// from h0 in one pass (both halves of a full panel for one activation row: each weight line is
// read once, where a pass per half reads every line twice for half its bytes, and each
// activation load serves 16 rows). The partial sums p[n][c] of a register's two rows sit in
// its lanes, one row's four then the other's, and take the same products in the same order
// (column c, then c + 4, octet by octet), so the bits are the same. Two rounds of vhaddps then
// add them as (p0 + p1) + (p2 + p3), and for 8- and 6-bit codes one vpermps puts the rows back
// in order. Weights and activations are both read in stored order: no vpshufb, vpermq or
// broadcast per column.
template <int NR, int HALVES, int BITS, Decode8 D8>
inline void float_row_pairs(const PanelArgs& w, const float* const* scales, const FloatActArgs& a, std::int64_t n0, int h0,
                            PanelOut out) {
  const int rows = w.rows;
  HalfLoader ld[HALVES];
  for (int i = 0; i < HALVES; ++i) ld[i] = HalfLoader{rows, h0 + i, {}};
  const float* x[NR];
  for (int n = 0; n < NR; ++n) x[n] = a.x + (n0 + n) * w.padded_cols;
  const FloatCodes fc(w);
  const __m256i row_order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // 8- and 6-bit codes' rows after vhaddps
  __m256 y[NR][HALVES];
  for (int n = 0; n < NR; ++n)
    for (int i = 0; i < HALVES; ++i) y[n][i] = _mm256_setzero_ps();
  for (std::int64_t k0 = 0, blk = 0; k0 < w.padded_cols; k0 += w.block, ++blk) {
    const std::int64_t k1 = std::min(k0 + w.block, w.padded_cols);
    __m256 p[NR][HALVES][4];
    for (int n = 0; n < NR; ++n)
      for (int i = 0; i < HALVES; ++i)
        for (int j = 0; j < 4; ++j) p[n][i][j] = _mm256_setzero_ps();
    for (std::int64_t o = k0 >> 3; o < (k1 >> 3); ++o) {
      const auto columns = [&]<int T>() {  // columns 8o + 4T .. 8o + 4T + 3
        __m256 xv[NR];
        for (int n = 0; n < NR; ++n) xv[n] = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(x[n] + 8 * o + 4 * T));
        for (int i = 0; i < HALVES; ++i) {
          __m256 wv[4];
          decode_row_quad<BITS, D8, T>(w, fc, ld[i], o, wv);
          for (int n = 0; n < NR; ++n)
            for (int j = 0; j < 4; ++j) p[n][i][j] = _mm256_fmadd_ps(wv[j], xv[n], p[n][i][j]);
        }
      };
      columns.template operator()<0>();
      columns.template operator()<1>();
    }
    for (int i = 0; i < HALVES; ++i) {
      const __m256 ws = _mm256_loadu_ps(scales[i] + blk * 8);
      for (int n = 0; n < NR; ++n) {
        __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(p[n][i][0], p[n][i][1]), _mm256_hadd_ps(p[n][i][2], p[n][i][3]));
        if constexpr (BITS != 4) b = _mm256_permutevar8x32_ps(b, row_order);
        y[n][i] = _mm256_fmadd_ps(b, ws, y[n][i]);
      }
    }
  }
  for (int n = 0; n < NR; ++n)
    for (int i = 0; i < HALVES; ++i) store_lanes(out.y + n * out.stride + 8 * (h0 + i), y[n][i], rows - 8 * (h0 + i));
}

// Activation rows from which the float kernel decodes a half panel once, into a tile of 8
// floats per column that every pair of rows then reads: a decoder's work is shared by all the
// rows instead of two (bench/README.md has the figures). One tile per thread, reused.
inline constexpr int kTileRows = 8;

template <int BITS, Decode8 D8>
inline const float* decoded_half_tile(const PanelArgs& w, int h) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<std::size_t>(w.padded_cols * 8));
  float* t = buf.data();
  HalfLoader ld{w.rows, h, {}};
  const FloatCodes fc(w);
  for (std::int64_t o = 0; o < (w.padded_cols >> 3); ++o) {
    auto store_column = [&]<int C>(__m256 wv) { _mm256_storeu_ps(t + (8 * o + C) * 8, wv); };
    decode_octet<BITS, D8>(w, fc, ld, nullptr, o, store_column);
  }
  return t;
}

// Each half h of the panel: its context made once (K<1>::half: the block scales, and for the
// float kernel a decoded tile), then the activation rows in groups of K<1>::kGroupRows, pairs
// and one: K<NR>::run. Each group shares one decode of every weight octet.
template <template <int> class K, class Act>
inline void run_halves(const PanelArgs& w, const Act& a, std::int64_t n0, int nr, PanelOut out) {
  for (int h = 0; h * 8 < w.rows; ++h) {
    const auto half = K<1>::half(w, h, nr);
    std::int64_t m = n0;
    PanelOut o = out;
    int left = nr;
    constexpr int G = K<1>::kGroupRows;
    if (K<1>::grouped(half))
      for (; left >= G; left -= G, m += G, o.y += G * o.stride) K<G>::run(w, half, a, m, h, o);
    if constexpr (G > 2)
      for (; left >= 2; left -= 2, m += 2, o.y += 2 * o.stride) K<2>::run(w, half, a, m, h, o);
    if (left == 1) K<1>::run(w, half, a, m, h, o);
  }
}

// The integer kernels' half context: the block scales.
struct HalfScales {
  static const float* half(const PanelArgs& w, int h, int) { return decoded_half_scales(w, h); }
  static bool grouped(const float*) { return true; }
};

template <class Dot>
struct HalfInt {
  template <int NR>
  struct Rows : HalfScales {
    // Six rows share each octet's decode: 6 int32 sums and 6 float totals stay in registers
    // (1.3-1.8x pairs at N = 32 on a Zen 3 core; eight spilled and lost).
    static constexpr int kGroupRows = 6;
    static void run(const PanelArgs& w, const float* scales, const IntActArgs& a, std::int64_t n0, int h, PanelOut o) {
      half_int_nr<NR, Dot>(w, scales, a, n0, h, o);
    }
  };
};
template <int BITS, Decode8 D8>
struct HalfFloat {
  static constexpr bool kRowPairs =
      (BITS == 8 && (D8 == Decode8::Integer || D8 == Decode8::E4M3 || D8 == Decode8::E4M3Half || D8 == Decode8::E5M2)) ||
      (BITS == 4 && D8 == Decode8::None) ||
      (BITS == 6 && D8 == Decode8::E3M2);
  struct Half {
    const float* scales;
    const float* tile;  // null: decode in the loop
  };
  template <int NR>
  struct Rows {
    // Four partial sums a row (the scalar path's order): three rows over a decoded tile (12
    // registers, 1.2x pairs at N = 32), pairs where the codes are decoded in the loop.
    static constexpr int kGroupRows = 3;
    static bool grouped(const Half& half) { return half.tile != nullptr; }
    static Half half(const PanelArgs& w, int h, int nr) {
      return {decoded_half_scales(w, h), nr >= kTileRows ? decoded_half_tile<BITS, D8>(w, h) : nullptr};
    }
    static void run(const PanelArgs& w, const Half& half, const FloatActArgs& a, std::int64_t n0, int h, PanelOut o) {
      if constexpr (NR > 2) half_float_nr<NR, 8, Decode8::Tile>(w, half.scales, half.tile, a, n0, h, o);  // only over a tile
      else if (half.tile) half_float_nr<NR, 8, Decode8::Tile>(w, half.scales, half.tile, a, n0, h, o);
      else if constexpr (kRowPairs) float_row_pairs<NR, 1, BITS, D8>(w, &half.scales, a, n0, h, o);
      else half_float_nr<NR, BITS, D8>(w, half.scales, nullptr, a, n0, h, o);
    }
  };
};

// The block scales of a full panel's 16 rows for the one-row kernels, decoded in their loop as
// they are needed (block g = granule g there): a separate pass over the scales, through a
// buffer, took 30-40% of their time at N = 1. s[h]: the scales of half h's rows.
template <PanelScaleKind K>
struct PanelRowScales {
  HalfScaleDecoder<K> dec;
  const std::uint8_t* codes;
  int bytes;
  explicit PanelRowScales(const PanelArgs& w) : dec(w.scale), codes(w.scales), bytes(w.scale.bytes) {}
  LOWBIT_ALWAYS_INLINE void operator()(std::int64_t blk, __m256 (&s)[2]) const {
    for (int h = 0; h < 2; ++h)
      if constexpr (K == PanelScaleKind::None) s[h] = dec(nullptr);
      else s[h] = dec(codes + (blk * kPanelRows + 8 * h) * bytes);
  }
};

// PanelRowScales for a table of E4M3 values (lut_is_e4m3: NVFP4), all 16 codes of a block in
// one register through binary16 (kernels/e4m3_half.hpp): vcvtph2ps decodes eight in one
// instruction where HalfScaleDecoder computes the two cases apart and blends (17 instructions
// a half; the one-row NVFP4 kernel spent over half its time there). Then the unit, as the
// table was built. NaN codes (S.1111.111), rare, take the table's own NaNs in a branch.
struct E4M3RowScales {
  const std::uint8_t* codes;
  const float* table;
  __m256 ts256, unit;
  explicit E4M3RowScales(const PanelArgs& w)
      : codes(w.scales), table(w.scale.lut), ts256(_mm256_set1_ps(e4m3_half_factor(w.scale))), unit(_mm256_set1_ps(w.scale.unit)) {}
  LOWBIT_ALWAYS_INLINE void operator()(std::int64_t blk, __m256 (&s)[2]) const {
    const std::uint8_t* p = codes + blk * kPanelRows;
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i t = e4m3_bytes_as_half(c);
    s[0] = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(t)), ts256), unit);
    s[1] = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(t, 1)), ts256), unit);
    if (any_e4m3_nan(c)) [[unlikely]] {
      s[0] = with_nans(p, s[0]);
      s[1] = with_nans(p + 8, s[1]);
    }
  }

 private:
  // v with the lanes of NaN codes (of p[0..7]) from the table. By value: a reference would keep
  // the decoded scales in memory on the common path too.
  [[gnu::noinline]] __m256 with_nans(const std::uint8_t* p, __m256 v) const {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (int r = 0; r < 8; ++r)
      if ((p[r] & 0x7F) == 0x7F) t[r] = table[p[r]];
    return _mm256_load_ps(t);
  }
};

// Calls f(Scales{}) with the one-row kernels' scale decoder for w: E4M3RowScales where it
// applies, else PanelRowScales of w's scale kind.
template <class F>
inline void with_row_scales(const PanelArgs& w, F&& f) {
  if (e4m3_scales_through_half(w.scale)) return f(std::type_identity<E4M3RowScales>{});
  with_scale_kind(w.scale.kind, [&](auto kind) { f(std::type_identity<PanelRowScales<decltype(kind)::value>>{}); });
}

// One activation row against a full panel, both halves in one pass, when the weight blocks
// are G = 16 or 32 columns (one_row_granule; the decode shapes, as on the AVX-512 path): each
// activation broadcast serves 16 rows, the octets sit at fixed offsets and no block counters
// run. The arithmetic is UnsignedDot's (the same bits), with P vpmaddubsw results summed in
// int16 before each vpmaddwd (UnsignedWeights::int16_products): with P = 8, one widening per
// half and granule where UnsignedDot has eight.
template <int BITS, int G, int P, class Scales>
inline void panel_int_u8_row(const PanelArgs& w, const UnsignedWeights& uw, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  constexpr int kOctets = G / 8;
  static_assert(P == 1 || (P % 2 == 0 && P <= 2 * kOctets && (2 * kOctets) % P == 0));
  const Int8Weights weights(w, uw.offset);
  const Scales ws(w);
  const std::int8_t* q = a.q + n0 * w.padded_cols;
  const std::int32_t* neg_sum128 = a.neg_sum128 + n0;
  const float* xs = a.scale + n0;
  const int act_shift = a.act_block == 2 * G ? 1 : 0;
  __m256 y[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (std::int64_t g = 0; g < a.granules; ++g, q += G) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()}, p16[2];
    [&]<int... J>(std::integer_sequence<int, J...>) {
      ([&] {
        constexpr int kPos = P == 1 ? 0 : J % (P / 2);  // this octet's place in its int16 group
        const std::int64_t o = kOctets * g + J;
        std::int32_t x0, x1;
        std::memcpy(&x0, q + 8 * J, 4);
        std::memcpy(&x1, q + 8 * J + 4, 4);
        const __m256i b0 = _mm256_set1_epi32(x0), b1 = _mm256_set1_epi32(x1);
        for (int h = 0; h < 2; ++h) {
          __m256i u[2];
          weights.template full_octet<BITS>(w.codes, o, h, u);
          const __m256i m0 = _mm256_maddubs_epi16(u[0], b0), m1 = _mm256_maddubs_epi16(u[1], b1);
          if constexpr (P == 1) {
            acc[h] = _mm256_add_epi32(acc[h], _mm256_add_epi32(_mm256_madd_epi16(m0, ones), _mm256_madd_epi16(m1, ones)));
          } else {
            p16[h] = kPos == 0 ? _mm256_add_epi16(m0, m1) : _mm256_add_epi16(p16[h], _mm256_add_epi16(m0, m1));
            if constexpr (kPos == P / 2 - 1) acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(p16[h], ones));
          }
        }
      }(), ...);
    }(std::make_integer_sequence<int, kOctets>{});
    const __m256 x = _mm256_set1_ps(xs[(g >> act_shift) * a.rows]);
    __m256 sc[2];
    ws(g, sc);
    for (int h = 0; h < 2; ++h)
      y[h] = add_granule(y[h], uw.dot(acc[h], neg_sum128[g * a.rows]), sc[h], x);
  }
  _mm256_storeu_ps(out.y, y[0]);
  _mm256_storeu_ps(out.y + 8, y[1]);
}

// One activation row of int8 widened to int16, once per call: the 8-bit kernel below then
// broadcasts four of them with a single load (vpbroadcastq) where it took three instructions.
inline const std::int16_t* widened_row(const std::int8_t* q, std::int64_t cols) {
  thread_local std::vector<std::int16_t> buf;
  buf.resize(static_cast<std::size_t>(cols));
  for (std::int64_t k = 0; k < cols; k += 16)  // cols: a multiple of 32 (one_row_granule)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf.data() + k),
                        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + k))));
  return buf.data();
}

// panel_int_u8_row's shape for 8-bit weights (WideningDot's arithmetic, the same bits): one
// activation row against a full panel, both halves in one pass. Each 16 bytes of weights are
// sign-extended to int16 straight from memory (vpmovsxbw), with no extract; the general
// kernel's runtime code-width switch, partial-panel checks and block counters are gone.
template <int G, class Scales>
inline void panel_int_s8_row(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  constexpr int kOctets = G / 8;
  const Scales ws(w);
  const std::int16_t* x16 = widened_row(a.q + n0 * w.padded_cols, w.padded_cols);
  const float* xs = a.scale + n0;
  const int act_shift = a.act_block == 2 * G ? 1 : 0;
  __m256 y[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (std::int64_t g = 0; g < a.granules; ++g) {
    WideningDot::Sums s[2] = {WideningDot::zero(), WideningDot::zero()};
    for (int j = 0; j < kOctets; ++j) {
      const std::int64_t o = kOctets * g + j;
      const std::uint8_t* c = w.codes + o * 128;  // [t][row][4 columns]: t = columns 8o..8o+3, 8o+4..8o+7
      _mm_prefetch(reinterpret_cast<const char*>(c + kPrefetchBytes), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(c + 64 + kPrefetchBytes), _MM_HINT_T1);
      for (int t = 0; t < 2; ++t) {
        std::int64_t x4;
        std::memcpy(&x4, x16 + 8 * o + 4 * t, 8);
        const __m256i xb = _mm256_set1_epi64x(x4);
        for (int h = 0; h < 2; ++h) {
          const __m128i* p = reinterpret_cast<const __m128i*>(c + 64 * t + 32 * h);
          s[h].lo = _mm256_add_epi32(s[h].lo, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(p)), xb));
          s[h].hi = _mm256_add_epi32(s[h].hi, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(p + 1)), xb));
        }
      }
    }
    const __m256 x = _mm256_set1_ps(xs[(g >> act_shift) * a.rows]);
    __m256 sc[2];
    ws(g, sc);
    for (int h = 0; h < 2; ++h)
      y[h] = add_granule(y[h], WideningDot::dot(s[h]), sc[h], x);
  }
  _mm256_storeu_ps(out.y, y[0]);
  _mm256_storeu_ps(out.y + 8, y[1]);
}

// The one-row kernel for the granule G, the scale decoder S and the code width of w.
template <int G, class S>
inline void panel_int_row(const PanelArgs& w, const UnsignedWeights& uw, const IntActArgs& a, std::int64_t n0, PanelOut out) {
  if (w.bits == 8) return panel_int_s8_row<G, S>(w, a, n0, out);
  const auto run = [&]<int BITS>() {
    switch (uw.int16_products(G / 4)) {
      case 1: return panel_int_u8_row<BITS, G, 1, S>(w, uw, a, n0, out);
      case 2: return panel_int_u8_row<BITS, G, 2, S>(w, uw, a, n0, out);
      case 4: return panel_int_u8_row<BITS, G, 4, S>(w, uw, a, n0, out);
      default: if constexpr (G == 32) return panel_int_u8_row<BITS, G, 8, S>(w, uw, a, n0, out);
    }
  };
  w.bits == 4 ? run.template operator()<4>() : run.template operator()<6>();
}

inline void panel_int(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  const UnsignedWeights uw(w);
  if (const int g = nr == 1 && (w.bits == 8 || uw.fits()) ? one_row_granule(w, a) : 0; g != 0)
    return with_row_scales(w, [&](auto scales) {
      using S = typename decltype(scales)::type;
      g == 32 ? panel_int_row<32, S>(w, uw, a, n0, out) : panel_int_row<16, S>(w, uw, a, n0, out);
    });
  if (w.bits != 8 && uw.octet_fits()) return run_halves<HalfInt<UnsignedDot<true>>::Rows>(w, a, n0, nr, out);
  if (w.bits != 8 && uw.fits()) return run_halves<HalfInt<UnsignedDot<false>>::Rows>(w, a, n0, nr, out);
  run_halves<HalfInt<WideningDot>::Rows>(w, a, n0, nr, out);
}
inline void panel_float(const PanelArgs& w, const FloatActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  if (w.bits == 4 && w.integer_codes) return run_halves<HalfFloat<4, Decode8::Integer>::Rows>(w, a, n0, nr, out);
  const auto row_pairs = [&]<int BITS, Decode8 D8>(const FloatActArgs& act) {
    if (nr == 1 && w.rows == kPanelRows) {  // one activation row, a full panel: both halves in one pass
      const float* scales[2] = {decoded_half_scales(w, 0), decoded_half_scales(w, 1)};
      return float_row_pairs<1, 2, BITS, D8>(w, scales, act, n0, 0, out);
    }
    run_halves<HalfFloat<BITS, D8>::template Rows>(w, act, n0, nr, out);
  };
  if (w.bits == 4) return row_pairs.template operator()<4, Decode8::None>(a);
  if (w.bits == 6 && w.integer_codes) return run_halves<HalfFloat<6, Decode8::Integer>::Rows>(w, a, n0, nr, out);
  if (w.bits == 6 && w.e3m2_unit != 0.0f) return row_pairs.template operator()<6, Decode8::E3M2>(a);
  if (w.bits == 6) return run_halves<HalfFloat<6, Decode8::Gather>::Rows>(w, a, n0, nr, out);
  if (w.identity8) return row_pairs.template operator()<8, Decode8::Integer>(a);
  if (w.fvalue_is_e4m3 && a.x256) return row_pairs.template operator()<8, Decode8::E4M3Half>(FloatActArgs{a.x256});
  if (w.fvalue_is_e4m3) return row_pairs.template operator()<8, Decode8::E4M3>(a);
  if (w.fvalue_is_e5m2) return row_pairs.template operator()<8, Decode8::E5M2>(a);
  run_halves<HalfFloat<8, Decode8::Gather>::Rows>(w, a, n0, nr, out);
}

LOWBIT_TARGET_END

// ---- integer kernel with AVX-VNNI -------------------------------------------------------------
// As on the AVX-512 path, on 8 rows: weights become u8 = w + 128, vpdpbusd multiplies them by
// four int8 activations broadcast to all lanes, and 128 * sum(q) per granule comes back out,
// so the int32 dots are exact (no int16 saturation) and the float steps are the ones above.
LOWBIT_TARGET_AVXVNNI_BEGIN

// How the integer kernel multiplies with AVX-VNNI (a policy of half_int_g): vpdpbusd chains
// per row, four (two per octet of a pair) for one or two rows, where vpdpbusd's latency, not
// its throughput, bounds a row's chains; two for more rows, which have enough chains between
// them and need the registers.
template <int NR>
struct VnniDot {
  static constexpr int kChains = NR > 2 ? 2 : 4;
  struct Sums {
    __m256i acc[kChains];
  };
  static Sums zero() {
    Sums s;
    for (__m256i& c : s.acc) c = _mm256_setzero_si256();
    return s;
  }
  struct Octet {
    __m256i u8[2];  // w + 128
  };
  Int8Weights weights;
  explicit VnniDot(const PanelArgs& w) : weights(w) {}
  LOWBIT_ALWAYS_INLINE Octet octet(const __m256i (&wv)[2]) const {
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    return {{_mm256_xor_si256(wv[0], flip), _mm256_xor_si256(wv[1], flip)}};
  }
  // The octet's two halves into chains C and C + 1 (a constant, so the chains stay in registers).
  template <int P>
  LOWBIT_ALWAYS_INLINE void add(Sums& s, const Octet& o, const std::int8_t* x) const {
    constexpr int C = P == 0 ? 0 : kChains - 2;
    LOWBIT_UNROLL
    for (int t = 0; t < 2; ++t) {
      std::int32_t x4;
      std::memcpy(&x4, x + 4 * t, 4);
      s.acc[C + t] = _mm256_dpbusd_avx_epi32(s.acc[C + t], o.u8[t], _mm256_set1_epi32(x4));
    }
  }
  // The chains' sum plus -128 * sum(q), which takes the + 128 back out.
  LOWBIT_ALWAYS_INLINE static __m256i dot(const Sums& s, std::int32_t neg_sum128) {
    __m256i sum = _mm256_add_epi32(s.acc[0], s.acc[1]);
    if constexpr (kChains == 4) sum = _mm256_add_epi32(sum, _mm256_add_epi32(s.acc[2], s.acc[3]));
    return _mm256_add_epi32(sum, _mm256_set1_epi32(neg_sum128));
  }
};

namespace vnni {
#include "lowbit/kernels/half_int_body.inl"
}  // namespace vnni

template <int NR>
struct HalfIntVnni : HalfScales {
  static constexpr int kGroupRows = 4;  // two chains a row: 8 sums and 4 totals in the 16 registers
  static void run(const PanelArgs& w, const float* scales, const IntActArgs& a, std::int64_t n0, int h, PanelOut o) {
    vnni::half_int_nr<NR, VnniDot<NR>>(w, scales, a, n0, h, o);
  }
};

// The integer kernel for CPUs with AVX-VNNI (the caller checks).
inline void panel_int_vnni(const PanelArgs& w, const IntActArgs& a, std::int64_t n0, int nr, PanelOut out) {
  run_halves<HalfIntVnni>(w, a, n0, nr, out);
}

LOWBIT_TARGET_END

}  // namespace lowbit::kernels::avx2
