// The AVX-512 kernel table (F, BW, DQ, VL and VNNI: Zen 4 and 5, Ice Lake and later). This file
// alone is compiled with those instructions (CMakeLists.txt) and is only entered after cpuid says
// the CPU and the OS support them. It starts from the AVX2 table and replaces what 512-bit
// registers and VNNI's fused dot products speed up: the quantized dots of every decode step, the
// LM head, and attention over f16/f32 KV rows. For Q5_0, Q5_1 and the K-quants it replaces the
// 16-bit activation dots (the decode default) and keeps AVX2's 8-bit dots and row widening.
// VNNI's vpdpbusd multiplies unsigned by signed bytes and sums each group of four into an int32
// lane in one instruction (AVX2 needs maddubs + madd), and vpdpwssd does the same for pairs of
// int16, which the 16-bit activations use.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

// GCC 12's AVX-512 headers start many intrinsics from _mm512_undefined_*() and then warn that
// the value is used uninitialized (GCC bug 105593, fixed in GCC 13); nothing here reads one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "kernel_tables.h"

namespace sentinel::kernels {
namespace {

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

// Lanes 0-7 hold a, lanes 8-15 hold b: the scales of two consecutive blocks.
inline __m512 pair(float a, float b) { return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1); }

// Horizontal sums of four vectors: out[r] = sum of v[r]'s lanes.
inline void hsum4(const __m512* v, float* out) {
  __m256 h[4];
  for (int r = 0; r < 4; ++r) h[r] = _mm256_add_ps(_mm512_castps512_ps256(v[r]), _mm512_extractf32x8_ps(v[r], 1));
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}

// As the AVX2 table (avx2.cpp, kPrefetchRows): each block step prefetches the block 32 rows on,
// which a later call of this thread reads, so rows arrive before they are needed.
constexpr int64_t kPrefetchRows = 32;

template <typename Block>
inline void prefetch_next_rows(const Block* const* rows, int64_t b, int64_t n_blocks) {
  for (int r = 0; r < 4; ++r)
    _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b + kPrefetchRows * n_blocks), _MM_HINT_T0);
}

// ---- weights against 8-bit activations: two blocks per 512-bit register ----

// The nibbles of two blocks as 64 bytes 0..15 in value order: block a's values 0..31, then b's.
inline __m512i unpack_nibbles2(const uint8_t* a, const uint8_t* b) {
  const __m256i packed = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  // [a low, b low, a high, b high] -> [a low, a high, b low, b high]
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1);
  return _mm512_and_si512(_mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0F));
}

// The nibbles of one block as 32 bytes 0..15 in value order.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load_pair(const void* a, const void* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(a)), load256(b), 1);
}

// int32 lanes of vpdpbusd as float.
inline __m512 dot_u8_i8(__m512i u, __m512i s) { return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s)); }
inline __m256 dot_u8_i8(__m256i u, __m256i s) { return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)); }
// Signed by signed bytes: |w| times x with w's sign (ggml never writes -128 into Q8_0).
inline __m512 dot_i8_i8(__m512i w, __m512i x) {
  return dot_u8_i8(_mm512_abs_epi8(w), _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x));
}
inline __m256 dot_i8_i8(__m256i w, __m256i x) {
  return dot_u8_i8(_mm256_abs_epi8(w), _mm256_mask_sub_epi8(x, _mm256_movepi8_mask(w), _mm256_setzero_si256(), x));
}

// One last block into the low half of an accumulator (n_blocks odd).
inline __m512 add_low(__m512 acc, __m256 v) { return _mm512_add_ps(acc, _mm512_zextps256_ps512(v)); }

// The Q4_0, Q4_1, Q5_0 and Q5_1 dots share everything but the per-block offset: Q4_0's is
// -8 d_w s_x (its nibbles are q + 8), Q5_0's -16 d_w s_x, Q4_1's and Q5_1's m_w s_x
// (s_x = d_x sum(q_x), either activation format).
template <typename Block, typename Activations>
inline float block_offset(const Block& w, const Activations& x) {
  if constexpr (std::is_same_v<Block, BlockQ4_1> || std::is_same_v<Block, BlockQ5_1>) return f16(w.m) * x.s;
  else if constexpr (std::is_same_v<Block, BlockQ5_0>) return -16.0f * f16(w.d) * x.s;
  else return -8.0f * f16(w.d) * x.s;
}

template <typename Block>
void dot4_q4(const Block* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  float offset[4] = {0, 0, 0, 0};
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m512i q = load_pair(x[b].qs, x[b + 1].qs);
    for (int r = 0; r < 4; ++r) {
      const Block& w0 = rows[r][b];
      const Block& w1 = rows[r][b + 1];
      const __m512 scale = pair(f16(w0.d) * x[b].d, f16(w1.d) * x[b + 1].d);
      acc[r] = _mm512_fmadd_ps(scale, dot_u8_i8(unpack_nibbles2(w0.qs, w1.qs), q), acc[r]);
      offset[r] += block_offset(w0, x[b]) + block_offset(w1, x[b + 1]);
    }
  }
  if (b < n_blocks) {
    const __m256i q = load256(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      const Block& w = rows[r][b];
      acc[r] = add_low(acc[r], _mm256_mul_ps(_mm256_set1_ps(f16(w.d) * x[b].d), dot_u8_i8(unpack_nibbles(w.qs), q)));
      offset[r] += block_offset(w, x[b]);
    }
  }
  hsum4(acc, out);
  for (int r = 0; r < 4; ++r) out[r] += offset[r];
}

void dot4_q8_0(const BlockQ8_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m512i q = load_pair(x[b].qs, x[b + 1].qs);
    for (int r = 0; r < 4; ++r) {
      const BlockQ8_0& w0 = rows[r][b];
      const BlockQ8_0& w1 = rows[r][b + 1];
      acc[r] = _mm512_fmadd_ps(pair(f16(w0.d) * x[b].d, f16(w1.d) * x[b + 1].d), dot_i8_i8(load_pair(w0.qs, w1.qs), q),
                               acc[r]);
    }
  }
  if (b < n_blocks) {
    const __m256i q = load256(x[b].qs);
    for (int r = 0; r < 4; ++r)
      acc[r] = add_low(acc[r], _mm256_mul_ps(_mm256_set1_ps(f16(rows[r][b].d) * x[b].d), dot_i8_i8(load256(rows[r][b].qs), q)));
  }
  hsum4(acc, out);
}

// ---- weights against 16-bit activations: one block (32 int16) per register, vpdpwssd ----

inline __m512i load_q16(const int16_t* qs) { return _mm512_loadu_si512(qs); }
// int32 lanes of vpdpwssd (pairs of int16 products; |lane| <= 2 * 128 * 32767) as float.
inline __m512 dot_i16(__m512i w, __m512i x) { return _mm512_cvtepi32_ps(_mm512_dpwssd_epi32(_mm512_setzero_si512(), w, x)); }

// A block's 32 values as int16 without their offset: the nibbles, and for Q5_0/Q5_1 bit i of
// qh added as 16 (one masked add).
template <typename Block>
inline __m512i weights16(const Block& w) {
  const __m512i nibbles = _mm512_cvtepu8_epi16(unpack_nibbles(w.qs));
  if constexpr (std::is_same_v<Block, BlockQ5_0> || std::is_same_v<Block, BlockQ5_1>) {
    uint32_t bits;
    __builtin_memcpy(&bits, w.qh, sizeof bits);
    return _mm512_mask_add_epi16(nibbles, static_cast<__mmask32>(bits), nibbles, _mm512_set1_epi16(16));
  } else {
    return nibbles;
  }
}

template <typename Block>  // Q4_0, Q4_1, Q5_0, Q5_1
void dot4_q_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  float offset[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m512i q = load_q16(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      const Block& w = rows[r][b];
      const __m512i w16 = weights16(w);
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(f16(w.d) * x[b].d), dot_i16(w16, q), acc[r]);
      offset[r] += block_offset(w, x[b]);
    }
  }
  hsum4(acc, out);
  for (int r = 0; r < 4; ++r) out[r] += offset[r];
}

void dot4_q8_0_q16(const BlockQ8_0* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m512i q = load_q16(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      const __m512i w16 = _mm512_cvtepi8_epi16(load256(rows[r][b].qs));
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(f16(rows[r][b].d) * x[b].d), dot_i16(w16, q), acc[r]);
    }
  }
  hsum4(acc, out);
}

// ---- K-quant superblocks against 16-bit activations: eight activation blocks per superblock ----
// The helpers below are copies of the AVX2 table's (avx2.cpp), kept in this file for the reason
// hsum8 gives.

template <typename Block>
inline void prefetch_next_superblocks(const Block* const* rows, int64_t s, int64_t n_super) {
  for (int r = 0; r < 4; ++r) {
    const char* p = reinterpret_cast<const char*>(rows[r] + s + kPrefetchRows * n_super);
    for (size_t line = 0; line < sizeof(Block); line += 64) _mm_prefetch(p + line, _MM_HINT_T0);
  }
}

// Lanes 0..7: the d of the eight activation blocks of a superblock; lanes 8..15 their s.
inline __m512 lanes_d_s(const BlockQ16A* x) {
  const __m256 d = _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d);
  const __m256 s = _mm256_setr_ps(x[0].s, x[1].s, x[2].s, x[3].s, x[4].s, x[5].s, x[6].s, x[7].s);
  return _mm512_insertf32x8(_mm512_castps256_ps512(d), s, 1);
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K superblock (get_scale_min_k4) as bytes: scales in
// bytes 0..7, mins in 8..15, from the 12 bytes of scales and the 4 after them (see avx2.cpp).
inline __m128i scales_mins_k4(const uint8_t* packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i low = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i top = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const __m128i low_mask = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
  const __m128i high_nibble_mask = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
  const __m128i low_bits =
      _mm_or_si128(_mm_and_si128(low, low_mask), _mm_and_si128(_mm_srli_epi16(low, 4), high_nibble_mask));
  return _mm_or_si128(low_bits, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)));
}

// Q4_K and Q5_K: per superblock and row, scale[r][j] = d * sc_j * x_j.d for sub-block j's integer
// dot, and the mins' share, sum_j dmin * mn_j * x_j.s, subtracted at once (one 16-lane product).
// Sub-blocks 2k and 2k + 1 are the low and high nibbles of the same 32 bytes: one widening gives
// both. Q5_K's qh is widened once per superblock, shifted so that bit j of a byte sits at bit 4 + j
// of its int16.
template <typename Block>
void dot4_k4_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_K>;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t n_super = n_blocks / 8;
  const __m512i low4 = _mm512_set1_epi16(0x0F), bit4 = _mm512_set1_epi16(0x10);
  const __m512i halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);  // d x8, dmin x8
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    const BlockQ16A* xs = x + 8 * s;
    const __m512 xds = lanes_d_s(xs);
    alignas(64) float scale[4][16];
    __m512i high[4];
    for (int r = 0; r < 4; ++r) {
      const Block& w = rows[r][s];
      // lanes 0..7: d sc_j x_j.d; lanes 8..15: dmin mn_j x_j.s, subtracted from the sum at once
      uint32_t d_dmin;  // the block's first four bytes: f16 d, f16 dmin
      __builtin_memcpy(&d_dmin, &w, sizeof d_dmin);
      const __m128 d_and_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int32_t>(d_dmin)));
      const __m512 factors = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(d_and_dmin));
      const __m512 sc_mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scales_mins_k4(w.scales)));
      const __m512 sm = _mm512_mul_ps(_mm512_mul_ps(factors, sc_mn), xds);
      _mm512_store_ps(scale[r], sm);
      acc[r] = _mm512_mask_sub_ps(acc[r], 0xFF00, acc[r], sm);
      if constexpr (kFifthBit) high[r] = _mm512_slli_epi16(_mm512_cvtepu8_epi16(load256(w.qh)), 4);
    }
    for (int k = 0; k < 4; ++k) {
      const __m512i a0 = load_q16(xs[2 * k].qs), a1 = load_q16(xs[2 * k + 1].qs);
      for (int r = 0; r < 4; ++r) {
        const __m512i w = _mm512_cvtepu8_epi16(load256(rows[r][s].qs + 32 * k));  // int16 0..255
        __m512i lo = _mm512_and_si512(w, low4), hi = _mm512_srli_epi16(w, 4);
        if constexpr (kFifthBit) {  // lo | (high >> j & 16): ternary-logic 0xF8 is A | (B & C)
          lo = _mm512_ternarylogic_epi32(lo, _mm512_srli_epi16(high[r], 2 * k), bit4, 0xF8);
          hi = _mm512_ternarylogic_epi32(hi, _mm512_srli_epi16(high[r], 2 * k + 1), bit4, 0xF8);
        }
        acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(scale[r][2 * k]), dot_i16(lo, a0), acc[r]);
        acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(scale[r][2 * k + 1]), dot_i16(hi, a1), acc[r]);
      }
    }
  }
  hsum4(acc, out);
}

// Q6_K: sixteen scales per superblock, two per activation block. vpdpwssd's lane i sums values
// 2i and 2i + 1, so lanes 0..7 take scale 2j and lanes 8..15 scale 2j + 1: one permute of the
// row's sixteen float scales (d * scales[i] * x_{i / 2}.d) per block.
void dot4_q6_k_q16(const BlockQ6_K* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t n_super = n_blocks / 8;
  const __m512i low4 = _mm512_set1_epi16(0x0F), bits45 = _mm512_set1_epi16(0x30), offset = _mm512_set1_epi16(32);
  const __m512i pair_lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    const BlockQ16A* xs = x + 8 * s;
    const __m512 xd = _mm512_permutexvar_ps(dup, lanes_d_s(xs));
    __m512 scale[4];
    for (int r = 0; r < 4; ++r) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r][s].scales));
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
      scale[r] = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(f16(rows[r][s].d)), sc), xd);
    }
    for (int half = 0; half < 2; ++half) {
      // per row: ql bytes 0..31 (sub-blocks t = 0 low, 2 high nibbles), 32..63 (t = 1, 3), qh
      __m512i ql0[4], ql1[4], qh[4];
      for (int r = 0; r < 4; ++r) {
        const BlockQ6_K& w = rows[r][s];
        ql0[r] = _mm512_cvtepu8_epi16(load256(w.ql + 64 * half));
        ql1[r] = _mm512_cvtepu8_epi16(load256(w.ql + 64 * half + 32));
        qh[r] = _mm512_cvtepu8_epi16(load256(w.qh + 32 * half));
      }
      for (int t = 0; t < 4; ++t) {
        const int j = 4 * half + t;
        const __m512i a = load_q16(xs[j].qs);
        const __m512i pick = _mm512_add_epi32(pair_lanes, _mm512_set1_epi32(2 * j));
        for (int r = 0; r < 4; ++r) {
          const __m512i src = t % 2 == 0 ? ql0[r] : ql1[r];
          const __m512i low = t < 2 ? _mm512_and_si512(src, low4) : _mm512_srli_epi16(src, 4);
          // bits 2t, 2t + 1 of qh to bits 4, 5
          const __m512i high = t == 0   ? _mm512_slli_epi16(qh[r], 4)
                               : t == 1 ? _mm512_slli_epi16(qh[r], 2)
                               : t == 2 ? qh[r]
                                        : _mm512_srli_epi16(qh[r], 2);
          const __m512i q = _mm512_sub_epi16(_mm512_ternarylogic_epi32(low, high, bits45, 0xF8), offset);
          acc[r] = _mm512_fmadd_ps(_mm512_permutexvar_ps(pick, scale[r]), dot_i16(q, a), acc[r]);
        }
      }
    }
  }
  hsum4(acc, out);
}

// ---- the LM head: Q8_0 rows against float activations, 16 values per step ----

void dot4_q8_0_f32(const BlockQ8_0* const* rows, const float* x, int64_t n_blocks, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m512 x0 = _mm512_loadu_ps(x + b * kBlock), x1 = _mm512_loadu_ps(x + b * kBlock + 16);
    for (int r = 0; r < 4; ++r) {
      const int8_t* q = rows[r][b].qs;
      const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
      const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16))));
      const __m512 block = _mm512_fmadd_ps(w1, x1, _mm512_mul_ps(w0, x0));
      acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(f16(rows[r][b].d)), block, acc[r]);
    }
  }
  hsum4(acc, out);
}

// ---- attention over f16 and f32 KV rows, 16 values per register ----

struct LoadF32x16 {
  __m512 operator()(const uint8_t* row, int j) const { return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + 16 * j); }
};
struct LoadF16x16 {
  __m512 operator()(const uint8_t* row, int j) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row) + j));
  }
};

// As the AVX2 table's hsum8: lane r = the sum of v[r]'s lanes, the same additions for every r.
// A copy on purpose: each instruction set's file keeps its helpers in its own anonymous namespace,
// so the linker can never pick an AVX-512 build of a shared inline function for the AVX2 path.
inline __m256 hsum8(const __m256* v) {
  const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

// Rows of NV * 16 values, eight rows per step; a last group of fewer repeats its final row.
template <int NV, typename Load>
void scores_fixed(const uint8_t* rows, int64_t stride, int64_t n_rows, const float* q, int64_t n_q, float scale,
                  float* out, int64_t out_stride, float* max, Load load) {
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int64_t h = 0; h < n_q; ++h) {
    __m512 qv[NV];
    for (int j = 0; j < NV; ++j) qv[j] = _mm512_loadu_ps(q + h * NV * 16 + 16 * j);
    __m256 vmax = _mm256_set1_ps(-__builtin_inff());
    float* o = out + h * out_stride;
    for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
      __m256 dots[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* row = rows + std::min<int64_t>(r0 + i, n_rows - 1) * stride;
        __m512 a0 = _mm512_mul_ps(qv[0], load(row, 0)), a1 = _mm512_mul_ps(qv[1], load(row, 1));
        for (int j = 2; j < NV; j += 2) {
          a0 = _mm512_fmadd_ps(qv[j], load(row, j), a0);
          a1 = _mm512_fmadd_ps(qv[j + 1], load(row, j + 1), a1);
        }
        const __m512 a = _mm512_add_ps(a0, a1);
        dots[i] = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
      }
      const __m256 s = _mm256_mul_ps(vscale, hsum8(dots));
      vmax = _mm256_max_ps(vmax, s);
      const int64_t count = std::min<int64_t>(8, n_rows - r0);
      _mm256_mask_storeu_ps(o + r0, static_cast<__mmask8>((1u << count) - 1), s);
    }
    max[h] = hmax(vmax);
  }
}

template <int NV, typename Load>
void accumulate_fixed(const uint8_t* rows, int64_t stride, int64_t n_rows, const float* p, int64_t p_stride, int64_t n_q,
                      float* acc, int64_t acc_stride, Load load) {
  for (int64_t h = 0; h < n_q; ++h) {
    float* a_h = acc + h * acc_stride;
    __m512 a[NV];
    for (int j = 0; j < NV; ++j) a[j] = _mm512_loadu_ps(a_h + 16 * j);
    for (int64_t r = 0; r < n_rows; ++r) {
      const __m512 pr = _mm512_set1_ps(p[h * p_stride + r]);
      for (int j = 0; j < NV; ++j) a[j] = _mm512_fmadd_ps(pr, load(rows + r * stride, j), a[j]);
    }
    for (int j = 0; j < NV; ++j) _mm512_storeu_ps(a_h + 16 * j, a[j]);
  }
}

// Head sizes 64 and 128 of f32 and f16 rows here; everything else through the AVX2 table.
void scores(RowType type, const void* rows_v, int64_t stride, int64_t n_rows, int64_t n, const float* q, int64_t n_q,
            float scale, float* out, int64_t out_stride, float* max) {
  const auto* rows = static_cast<const uint8_t*>(rows_v);
  const bool fast_type = type == RowType::F16 || type == RowType::F32;
  if (n_rows == 0 || !fast_type || (n != 64 && n != 128))
    return avx2_table().scores(type, rows_v, stride, n_rows, n, q, n_q, scale, out, out_stride, max);
  auto run = [&](auto load) {
    if (n == 64) scores_fixed<4>(rows, stride, n_rows, q, n_q, scale, out, out_stride, max, load);
    else scores_fixed<8>(rows, stride, n_rows, q, n_q, scale, out, out_stride, max, load);
  };
  type == RowType::F16 ? run(LoadF16x16{}) : run(LoadF32x16{});
}

void accumulate(RowType type, const void* rows_v, int64_t stride, int64_t n_rows, int64_t n, const float* p,
                int64_t p_stride, int64_t n_q, float* acc, int64_t acc_stride) {
  const auto* rows = static_cast<const uint8_t*>(rows_v);
  const bool fast_type = type == RowType::F16 || type == RowType::F32;
  if (!fast_type || (n != 64 && n != 128))
    return avx2_table().accumulate(type, rows_v, stride, n_rows, n, p, p_stride, n_q, acc, acc_stride);
  auto run = [&](auto load) {
    if (n == 64) accumulate_fixed<4>(rows, stride, n_rows, p, p_stride, n_q, acc, acc_stride, load);
    else accumulate_fixed<8>(rows, stride, n_rows, p, p_stride, n_q, acc, acc_stride, load);
  };
  type == RowType::F16 ? run(LoadF16x16{}) : run(LoadF32x16{});
}

}  // namespace

const KernelTable& avx512_table() {
  static const KernelTable table = [] {
    KernelTable t = avx2_table();  // everything not replaced here is AVX2's
    t.isa = Isa::Avx512;
    t.dot4_q4_0 = dot4_q4<BlockQ4_0>;
    t.dot4_q4_1 = dot4_q4<BlockQ4_1>;
    t.dot4_q8_0 = dot4_q8_0;
    t.dot4_q4_0_q16 = each_token<BlockQ4_0, dot4_q_q16<BlockQ4_0>>;
    t.dot4_q4_1_q16 = each_token<BlockQ4_1, dot4_q_q16<BlockQ4_1>>;
    t.dot4_q8_0_q16 = each_token<BlockQ8_0, dot4_q8_0_q16>;
    t.dot4_q5_0_q16 = each_token<BlockQ5_0, dot4_q_q16<BlockQ5_0>>;
    t.dot4_q5_1_q16 = each_token<BlockQ5_1, dot4_q_q16<BlockQ5_1>>;
    t.dot4_q4_k_q16 = each_token<BlockQ4_K, dot4_k4_q16<BlockQ4_K>>;
    t.dot4_q5_k_q16 = each_token<BlockQ5_K, dot4_k4_q16<BlockQ5_K>>;
    t.dot4_q6_k_q16 = each_token<BlockQ6_K, dot4_q6_k_q16>;
    t.dot4_q8_0_f32 = dot4_q8_0_f32;
    t.scores = scores;
    t.accumulate = accumulate;
    return t;
  }();
  return table;
}

}  // namespace sentinel::kernels
