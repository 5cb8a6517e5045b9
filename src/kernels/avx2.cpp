// The AVX2/FMA/F16C kernel table. This file alone is compiled with -mavx2 -mfma -mf16c
// (CMakeLists.txt); it is only called after cpuid says the CPU has those instructions. The
// quantized dots follow ggml's x86 scheme (arch/x86/quants.c): unpack nibbles, multiply unsigned
// by signed bytes with maddubs, widen pairs with madd, one fused multiply-add per 32-block. The
// K-quant superblocks keep that step per 32-value activation block (each has its own scale), with
// the sub-block scales and mins unpacked once per superblock.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernel_tables.h"
#include "sentinel/core/error.h"

namespace sentinel::kernels {
namespace {

inline float hsum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float hmax(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float f16(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of nibbles -> 32 bytes 0..15: low nibbles first, then high nibbles (ggml's order).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Sum of unsigned a[i] * signed b[i] in 8 int32 lanes, as float.
inline __m256 mul_sum_u8_i8(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(a, b);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

// Sum of signed a[i] * signed b[i]: |a| times b with a's sign.
inline __m256 mul_sum_i8_i8(__m256i a, __m256i b) {
  return mul_sum_u8_i8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

inline __m256i load_q8(const int8_t* qs) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)); }

// One block of 32 floats rounded to int32 lanes q[4] with d = max|x| / max_q; returns d and puts
// sum(q) in *sum (computed before the lanes are packed to 8 or 16 bits).
inline float round_block(const float* xb, float max_q, __m256i q[4], int32_t* sum) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_loadu_ps(xb + 8 * j);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[j]));
  }
  const float d = hmax(amax) / max_q;
  const __m256 mul = _mm256_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  for (int j = 0; j < 4; ++j)
    q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_hadd_epi32(s4, s4);
  s4 = _mm_hadd_epi32(s4, s4);
  *sum = _mm_cvtsi128_si32(s4);
  return d;
}

void quantize_q8a(const float* x, BlockQ8A* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    __m256i q[4];
    int32_t sum;
    const float d = round_block(x + b * kBlock, 127.0f, q, &sum);
    // int32 -> int8 with packs, then undo the lane interleaving packs introduces.
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
    __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), p8);
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum);
  }
}

// The block loops run two blocks per iteration into independent accumulators: one chain of
// fused multiply-adds would wait on its own latency every block.
float dot_q4_0(const BlockQ4_0* w, const BlockQ8A* x, int64_t n_blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float offset0 = 0.0f, offset1 = 0.0f;  // sum_b d_w * s_x: the -8 of every nibble
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    const float dw0 = f16(w[b].d), dw1 = f16(w[b + 1].d);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw0 * x[b].d), mul_sum_u8_i8(unpack_nibbles(w[b].qs), load_q8(x[b].qs)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dw1 * x[b + 1].d),
                           mul_sum_u8_i8(unpack_nibbles(w[b + 1].qs), load_q8(x[b + 1].qs)), acc1);
    offset0 += dw0 * x[b].s;
    offset1 += dw1 * x[b + 1].s;
  }
  if (b < n_blocks) {
    const float dw = f16(w[b].d);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[b].d), mul_sum_u8_i8(unpack_nibbles(w[b].qs), load_q8(x[b].qs)), acc0);
    offset0 += dw * x[b].s;
  }
  return hsum(_mm256_add_ps(acc0, acc1)) - 8.0f * (offset0 + offset1);
}

float dot_q4_1(const BlockQ4_1* w, const BlockQ8A* x, int64_t n_blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float min0 = 0.0f, min1 = 0.0f;  // sum_b m_w * s_x
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b].d) * x[b].d), mul_sum_u8_i8(unpack_nibbles(w[b].qs), load_q8(x[b].qs)),
                           acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b + 1].d) * x[b + 1].d),
                           mul_sum_u8_i8(unpack_nibbles(w[b + 1].qs), load_q8(x[b + 1].qs)), acc1);
    min0 += f16(w[b].m) * x[b].s;
    min1 += f16(w[b + 1].m) * x[b + 1].s;
  }
  if (b < n_blocks) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b].d) * x[b].d), mul_sum_u8_i8(unpack_nibbles(w[b].qs), load_q8(x[b].qs)),
                           acc0);
    min0 += f16(w[b].m) * x[b].s;
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + (min0 + min1);
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8A* x, int64_t n_blocks) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= n_blocks; b += 2) {
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b].d) * x[b].d), mul_sum_i8_i8(load_q8(w[b].qs), load_q8(x[b].qs)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b + 1].d) * x[b + 1].d),
                           mul_sum_i8_i8(load_q8(w[b + 1].qs), load_q8(x[b + 1].qs)), acc1);
  }
  if (b < n_blocks)
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(w[b].d) * x[b].d), mul_sum_i8_i8(load_q8(w[b].qs), load_q8(x[b].qs)), acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

// Horizontal sums of four vectors at once: out[r] = sum of v[r]'s lanes.
inline void hsum4(const __m256* v, float* out) {
  const __m256 s01 = _mm256_hadd_ps(v[0], v[1]), s23 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 s = _mm256_hadd_ps(s01, s23);  // per 128-bit lane: r0 r1 r2 r3 partial sums
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
}

// Decode reads each weight row once, so its speed is how early the rows arrive: with the hardware
// prefetcher alone these loops waited on memory well below the machine's read bandwidth. Each
// block step prefetches the same block kPrefetchRows rows on, where a later call of this thread
// will read (rows are contiguous, apart from the Q/K head permutation); of 4, 16 and 32 rows on,
// 32 decoded fastest, and further gains little.
constexpr int64_t kPrefetchRows = 32;

template <typename Block>
inline void prefetch_next_rows(const Block* const* rows, int64_t b, int64_t n_blocks) {
  for (int r = 0; r < 4; ++r)
    _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b + kPrefetchRows * n_blocks), _MM_HINT_T0);
}

void dot4_q4_0(const BlockQ4_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  float offset[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m256i q = load_q8(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      const float dw = f16(rows[r][b].d);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[b].d), mul_sum_u8_i8(unpack_nibbles(rows[r][b].qs), q), acc[r]);
      offset[r] += dw * x[b].s;
    }
  }
  hsum4(acc, out);
  for (int r = 0; r < 4; ++r) out[r] -= 8.0f * offset[r];
}

void dot4_q4_1(const BlockQ4_1* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  float minimums[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m256i q = load_q8(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16(rows[r][b].d) * x[b].d), mul_sum_u8_i8(unpack_nibbles(rows[r][b].qs), q),
                               acc[r]);
      minimums[r] += f16(rows[r][b].m) * x[b].s;
    }
  }
  hsum4(acc, out);
  for (int r = 0; r < 4; ++r) out[r] += minimums[r];
}

void dot4_q8_0(const BlockQ8_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m256i q = load_q8(x[b].qs);
    for (int r = 0; r < 4; ++r)
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16(rows[r][b].d) * x[b].d), mul_sum_i8_i8(load_q8(rows[r][b].qs), q), acc[r]);
  }
  hsum4(acc, out);
}

void quantize_q16a(const float* x, BlockQ16A* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    __m256i q[4];
    int32_t sum;
    const float d = round_block(x + b * kBlock, 32767.0f, q, &sum);
    // int32 -> int16 with packs (which interleaves 128-bit lanes), then the 64-bit quarters back in order.
    for (int j = 0; j < 2; ++j) {
      const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2 * j], q[2 * j + 1]), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 16 * j), p16);
    }
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum);
  }
}

// A 16-bit activation block as two registers: values 0..15 and 16..31.
struct Q16Halves {
  __m256i lo, hi;
};
inline Q16Halves load_q16(const int16_t* qs) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 16))};
}

// sum_i w[i] * x[i] in 8 int32 lanes, as float, with w[0..15] in w_lo and w[16..31] in w_hi as
// int16. |lane| <= 4 * 128 * 32767: no overflow.
inline __m256 mul_sum_i16(__m256i w_lo, __m256i w_hi, const Q16Halves& x) {
  return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(w_lo, x.lo), _mm256_madd_epi16(w_hi, x.hi)));
}

void dot4_q8_0_f32(const BlockQ8_0* const* rows, const float* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m256 x0 = _mm256_loadu_ps(x + b * kBlock), x1 = _mm256_loadu_ps(x + b * kBlock + 8);
    const __m256 x2 = _mm256_loadu_ps(x + b * kBlock + 16), x3 = _mm256_loadu_ps(x + b * kBlock + 24);
    for (int r = 0; r < 4; ++r) {
      const int8_t* q = rows[r][b].qs;
      auto widen = [](const int8_t* p) {
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
      };
      __m256 block = _mm256_mul_ps(widen(q), x0);
      block = _mm256_fmadd_ps(widen(q + 8), x1, block);
      block = _mm256_fmadd_ps(widen(q + 16), x2, block);
      block = _mm256_fmadd_ps(widen(q + 24), x3, block);
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16(rows[r][b].d)), block, acc[r]);
    }
  }
  hsum4(acc, out);
}

// ---- Q5_0, Q5_1 and the K-quant superblocks (Q4_K, Q5_K, Q6_K) ----

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Bits 0..31 of a little-endian u32 as 32 bytes, 0xFF where the bit is set (ggml's bytes_from_bits_32):
// byte k of the eight bytes of group g holds bits 8g .. 8g + 7; or-ing in every bit but bit k leaves
// all ones exactly when bit k was set.
inline __m256i bytes_from_bits(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  const __m256i groups = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int32_t>(bits)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
  return _mm256_cmpeq_epi8(_mm256_or_si256(groups, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE)), _mm256_set1_epi64x(-1));
}

// A Q5_0/Q5_1 block's 32 values as bytes 0..31: the nibbles plus the qh bits as bit 4.
inline __m256i q5_bytes(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(unpack_nibbles(qs), _mm256_and_si256(bytes_from_bits(qh), _mm256_set1_epi8(0x10)));
}

// Per block, the float part of a 5-bit dot: Q5_0's -16 d_w s_x (its bytes are q + 16), Q5_1's m_w s_x.
template <typename Activations>
inline float q5_offset(const BlockQ5_0& w, const Activations& x) { return -16.0f * f16(w.d) * x.s; }
template <typename Activations>
inline float q5_offset(const BlockQ5_1& w, const Activations& x) { return f16(w.m) * x.s; }

template <typename Block>
void dot4_q5(const Block* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  float offset[4] = {0, 0, 0, 0};
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    const __m256i q = load_q8(x[b].qs);
    for (int r = 0; r < 4; ++r) {
      const Block& w = rows[r][b];
      acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(f16(w.d) * x[b].d), mul_sum_u8_i8(q5_bytes(w.qs, w.qh), q), acc[r]);
      offset[r] += q5_offset(w, x[b]);
    }
  }
  hsum4(acc, out);
  for (int r = 0; r < 4; ++r) out[r] += offset[r];
}

// A superblock spans eight activation blocks, which a K-quant dot takes as vectors: lane j holds
// block j's d (or s). Built once per superblock for the four rows.
template <typename Activations>
inline __m256 lanes_d(const Activations* x) {
  return _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d);
}
template <typename Activations>
inline __m256 lanes_s(const Activations* x) {
  return _mm256_setr_ps(x[0].s, x[1].s, x[2].s, x[3].s, x[4].s, x[5].s, x[6].s, x[7].s);
}

// Each superblock step prefetches the superblock kPrefetchRows rows on, every cache line of it.
template <typename Block>
inline void prefetch_next_superblocks(const Block* const* rows, int64_t s, int64_t n_super) {
  for (int r = 0; r < 4; ++r) {
    const char* p = reinterpret_cast<const char*>(rows[r] + s + kPrefetchRows * n_super);
    for (size_t line = 0; line < sizeof(Block); line += 64) _mm_prefetch(p + line, _MM_HINT_T0);
  }
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K superblock (get_scale_min_k4) as bytes: scales of
// sub-blocks 0..7 in bytes 0..7, mins in bytes 8..15. `packed` is the 12 bytes of scales and the 4
// after them (the block's qs or qh). For j < 4 the scale and min are the low 6 bits of packed[j]
// and packed[j + 4]; for j >= 4 their low 4 bits are the low and high nibbles of packed[j + 4] and
// their high 2 bits the top bits of packed[j - 4] and packed[j].
inline __m128i scales_mins_k4(const uint8_t* packed) {
  const __m128i v = load128(packed);
  const __m128i low = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i top = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const __m128i low_mask = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
  const __m128i high_nibble_mask = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
  const __m128i low_bits =
      _mm_or_si128(_mm_and_si128(low, low_mask), _mm_and_si128(_mm_srli_epi16(low, 4), high_nibble_mask));
  return _mm_or_si128(low_bits, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)));  // bits 6, 7 to 4, 5
}
inline __m256 bytes_0_to_7(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
inline __m256 bytes_8_to_15(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8))); }

// Per superblock of four Q4_K/Q5_K rows: scale[r][j] = d * sc_j * x_j.d, the factor of sub-block j's
// integer dot, and the mins' share subtracted from acc at once: sum_j dmin * mn_j * x_j.s.
template <typename Block, typename Activations>
inline void k4_scales(const Block* const* rows, int64_t s, const Activations* xs, float (*scale)[8], __m256* acc) {
  const __m256 xd = lanes_d(xs), xsum = lanes_s(xs);
  for (int r = 0; r < 4; ++r) {
    const Block& w = rows[r][s];
    const __m128i sm = scales_mins_k4(w.scales);
    _mm256_store_ps(scale[r], _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(f16(w.d)), bytes_0_to_7(sm)), xd));
    acc[r] = _mm256_fnmadd_ps(_mm256_mul_ps(_mm256_set1_ps(f16(w.dmin)), bytes_8_to_15(sm)), xsum, acc[r]);
  }
}

// Q5_K's values of sub-blocks 2k (low nibbles) and 2k + 1 (high nibbles) as bytes 0..31: bit 2k
// (2k + 1) of qh[l] is bit 4 of value l. The 16-bit shifts keep every byte's own bit in place.
inline void q5_k_bytes(const BlockQ5_K& w, int k, __m256i* lo, __m256i* hi) {
  const __m256i ql = load256(w.qs + 32 * k), qh = load256(w.qh);
  const __m256i low4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
  // bit j of a byte to bit 4: left by 4 - j, or right by j - 4
  auto bit_to_4 = [&](int j) {
    return _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(qh, 4 - j) : _mm256_srli_epi16(qh, j - 4), bit4);
  };
  *lo = _mm256_or_si256(_mm256_and_si256(ql, low4), bit_to_4(2 * k));
  *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql, 4), low4), bit_to_4(2 * k + 1));
}

// Q6_K's values of sub-block j = 4 * half + t as signed bytes q - 32 (-32..31).
inline __m256i q6_k_bytes(const BlockQ6_K& w, int half, int t) {
  const __m256i ql = load256(w.ql + 64 * half + 32 * (t % 2)), qh = load256(w.qh + 32 * half);
  const __m256i low = _mm256_and_si256(t < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
  // bits 2t, 2t + 1 of qh to bits 4, 5
  const __m256i high_bits = t == 0   ? _mm256_slli_epi16(qh, 4)
                            : t == 1 ? _mm256_slli_epi16(qh, 2)
                            : t == 2 ? qh
                                     : _mm256_srli_epi16(qh, 2);
  const __m256i q = _mm256_or_si256(low, _mm256_and_si256(high_bits, _mm256_set1_epi8(0x30)));
  return _mm256_sub_epi8(q, _mm256_set1_epi8(32));
}

// Per superblock of four Q6_K rows: scale[r][i] = d * scales[i] * x_{i / 2}.d for its sixteen
// 16-value groups, two per activation block.
template <typename Activations>
inline void q6_k_scales(const BlockQ6_K* const* rows, int64_t s, const Activations* xs, float (*scale)[16]) {
  const __m256 xd = lanes_d(xs);
  // lane i of each half: block (i / 2) of the half's four
  const __m256 xd_lo = _mm256_permutevar8x32_ps(xd, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  const __m256 xd_hi = _mm256_permutevar8x32_ps(xd, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
  for (int r = 0; r < 4; ++r) {
    const BlockQ6_K& w = rows[r][s];
    const __m128i sc = load128(w.scales);
    const __m256 d = _mm256_set1_ps(f16(w.d));
    const __m256 sc_lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc));
    const __m256 sc_hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8)));
    _mm256_store_ps(scale[r], _mm256_mul_ps(_mm256_mul_ps(d, sc_lo), xd_lo));
    _mm256_store_ps(scale[r] + 8, _mm256_mul_ps(_mm256_mul_ps(d, sc_hi), xd_hi));
  }
}

// ---- K-quants against 8-bit activations ----

template <typename Block>  // BlockQ4_K or BlockQ5_K
void dot4_k4(const Block* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t n_super = n_blocks / 8;
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    const BlockQ8A* xs = x + 8 * s;
    alignas(32) float scale[4][8];
    k4_scales(rows, s, xs, scale, acc);
    for (int k = 0; k < 4; ++k) {
      const __m256i a0 = load_q8(xs[2 * k].qs), a1 = load_q8(xs[2 * k + 1].qs);
      for (int r = 0; r < 4; ++r) {
        __m256i lo, hi;
        if constexpr (std::is_same_v<Block, BlockQ5_K>) {
          q5_k_bytes(rows[r][s], k, &lo, &hi);
        } else {
          const __m256i ql = load256(rows[r][s].qs + 32 * k);
          lo = _mm256_and_si256(ql, _mm256_set1_epi8(0x0F));
          hi = _mm256_and_si256(_mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
        }
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[r][2 * k]), mul_sum_u8_i8(lo, a0), acc[r]);
        acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[r][2 * k + 1]), mul_sum_u8_i8(hi, a1), acc[r]);
      }
    }
  }
  hsum4(acc, out);
}

void dot4_q6_k(const BlockQ6_K* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const int64_t n_super = n_blocks / 8;
  // int32 lanes 0..3 of mul_sum_i8_i8 hold values 0..15 (scale 2j), lanes 4..7 values 16..31
  const __m256i pick = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    const BlockQ8A* xs = x + 8 * s;
    alignas(32) float scale[4][16];
    q6_k_scales(rows, s, xs, scale);
    for (int j = 0; j < 8; ++j) {
      const __m256i a = load_q8(xs[j].qs);
      for (int r = 0; r < 4; ++r) {
        const __m128 two = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&scale[r][2 * j])));
        const __m256 sc = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), pick);
        acc[r] = _mm256_fmadd_ps(sc, mul_sum_i8_i8(q6_k_bytes(rows[r][s], j / 4, j % 4), a), acc[r]);
      }
    }
  }
  hsum4(acc, out);
}

// ---- Several tokens against the same four rows (16-bit activations, the decode default) ----
//
// A pass of a few rows (a sentinel step's token, <CL> and <CR>; a batch of sequences) reads each
// weight block once for all its tokens: the block is unpacked to int16 once, then multiplied with
// every token's activations. Each token's products and sums run in the order of the one-token
// product, so token t's result is bit for bit what the same call with that token alone gives.
// T (1 .. kMaxDotTokens) is a template parameter so the T x 4 accumulators can live in registers.

// The 32 values of one weight block as int16: values 0..15 in lo, 16..31 in hi.
struct Weights16 {
  __m256i lo, hi;
};
inline Weights16 widen_bytes(__m256i bytes) {  // 32 bytes 0..255 (unsigned)
  return {_mm256_cvtepu8_epi16(_mm256_castsi256_si128(bytes)), _mm256_cvtepu8_epi16(_mm256_extracti128_si256(bytes, 1))};
}
inline Weights16 nibbles16(const uint8_t* qs) {  // low nibbles are values 0..15, high ones 16..31
  const __m128i packed = load128(qs), mask = _mm_set1_epi8(0x0F);
  return {_mm256_cvtepu8_epi16(_mm_and_si128(packed, mask)), _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), mask))};
}
inline Weights16 weights16(const BlockQ4_0& w) { return nibbles16(w.qs); }
inline Weights16 weights16(const BlockQ4_1& w) { return nibbles16(w.qs); }
inline Weights16 weights16(const BlockQ5_0& w) { return widen_bytes(q5_bytes(w.qs, w.qh)); }
inline Weights16 weights16(const BlockQ5_1& w) { return widen_bytes(q5_bytes(w.qs, w.qh)); }
inline Weights16 weights16(const BlockQ8_0& w) {
  return {_mm256_cvtepi8_epi16(load128(w.qs)), _mm256_cvtepi8_epi16(load128(w.qs + 16))};
}

// Per block, the float part of the dot outside the integer sum is factor(w) * s_x: Q4_0's -8 d_w
// (its nibbles hold the value + 8), Q5_0's -16 d_w (value + 16), Q4_1's and Q5_1's m_w, Q8_0's 0.
// It is accumulated with an explicit fused multiply-add: left to the compiler, `offset += f * s`
// was contracted in some token counts' loops and not in others, and token results differed.
inline float offset_factor(const BlockQ4_0& w) { return -8.0f * f16(w.d); }
inline float offset_factor(const BlockQ4_1& w) { return f16(w.m); }
inline float offset_factor(const BlockQ5_0& w) { return -16.0f * f16(w.d); }
inline float offset_factor(const BlockQ5_1& w) { return f16(w.m); }
inline float offset_factor(const BlockQ8_0&) { return 0.0f; }

// Calls kernel(std::integral_constant<int, T>) with T = n_tokens.
template <typename Kernel>
inline void for_token_count(int64_t n_tokens, Kernel&& kernel) {
  static_assert(kMaxDotTokens == 4);
  switch (n_tokens) {
    case 1: return kernel(std::integral_constant<int, 1>{});
    case 2: return kernel(std::integral_constant<int, 2>{});
    case 3: return kernel(std::integral_constant<int, 3>{});
    case 4: return kernel(std::integral_constant<int, 4>{});
    default: fail("a four-row product takes 1 to ", kMaxDotTokens, " tokens, not ", n_tokens);
  }
}

template <int T>
inline void zero(__m256 (&acc)[T][4]) {
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < 4; ++r) acc[t][r] = _mm256_setzero_ps();
}

template <int T, typename Block>  // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
void dot4xT_blocks_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m256 acc[T][4];
  float offset[T][4] = {};
  zero(acc);
  for (int64_t b = 0; b < n_blocks; ++b) {
    prefetch_next_rows(rows, b, n_blocks);
    Q16Halves a[T];  // each token's block b, loaded once for the four rows
    for (int t = 0; t < T; ++t) a[t] = load_q16(x[t * n_blocks + b].qs);
    for (int r = 0; r < 4; ++r) {
      const Block& w = rows[r][b];
      const Weights16 v = weights16(w);
      const float dw = f16(w.d), factor = offset_factor(w);
      for (int t = 0; t < T; ++t) {
        const BlockQ16A& xb = x[t * n_blocks + b];
        acc[t][r] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xb.d), mul_sum_i16(v.lo, v.hi, a[t]), acc[t][r]);
        offset[t][r] = std::fma(factor, xb.s, offset[t][r]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    hsum4(acc[t], out + 4 * t);
    for (int r = 0; r < 4; ++r) out[4 * t + r] += offset[t][r];
  }
}

template <typename Block>
void dot4_blocks_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out) {
  for_token_count(n_tokens, [&](auto T) { dot4xT_blocks_q16<T.value>(rows, x, n_blocks, out); });
}

template <int T, typename Block>  // BlockQ4_K or BlockQ5_K
void dot4xT_k4_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m256 acc[T][4];
  zero(acc);
  const int64_t n_super = n_blocks / 8;
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    alignas(32) float scale[T][4][8];
    for (int t = 0; t < T; ++t) k4_scales(rows, s, x + t * n_blocks + 8 * s, scale[t], acc[t]);
    for (int k = 0; k < 4; ++k) {
      Q16Halves a0[T], a1[T];  // each token's activation blocks 2k and 2k + 1, loaded once for the four rows
      for (int t = 0; t < T; ++t) {
        a0[t] = load_q16(x[t * n_blocks + 8 * s + 2 * k].qs);
        a1[t] = load_q16(x[t * n_blocks + 8 * s + 2 * k + 1].qs);
      }
      for (int r = 0; r < 4; ++r) {
        // sub-block 2k's values (low nibbles) and 2k + 1's (high nibbles, and in Q5_K the fifth bits)
        Weights16 even, odd;
        if constexpr (std::is_same_v<Block, BlockQ4_K>) {
          // bytes 0..15 and 16..31 of the 32 shared by sub-blocks 2k and 2k + 1, as int16 0..255
          const uint8_t* q = rows[r][s].qs + 32 * k;
          const __m256i w_lo = _mm256_cvtepu8_epi16(load128(q)), w_hi = _mm256_cvtepu8_epi16(load128(q + 16));
          const __m256i low4 = _mm256_set1_epi16(0x0F);
          even = {_mm256_and_si256(w_lo, low4), _mm256_and_si256(w_hi, low4)};
          odd = {_mm256_srli_epi16(w_lo, 4), _mm256_srli_epi16(w_hi, 4)};
        } else {
          __m256i lo, hi;
          q5_k_bytes(rows[r][s], k, &lo, &hi);
          even = widen_bytes(lo);
          odd = widen_bytes(hi);
        }
        for (int t = 0; t < T; ++t) {
          acc[t][r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[t][r][2 * k]), mul_sum_i16(even.lo, even.hi, a0[t]),
                                      acc[t][r]);
          acc[t][r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[t][r][2 * k + 1]), mul_sum_i16(odd.lo, odd.hi, a1[t]),
                                      acc[t][r]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) hsum4(acc[t], out + 4 * t);
}

template <typename Block>
void dot4_k4_q16(const Block* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out) {
  for_token_count(n_tokens, [&](auto T) { dot4xT_k4_q16<T.value>(rows, x, n_blocks, out); });
}

template <int T>
void dot4xT_q6_k_q16(const BlockQ6_K* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) {
  __m256 acc[T][4];
  zero(acc);
  const int64_t n_super = n_blocks / 8;
  for (int64_t s = 0; s < n_super; ++s) {
    prefetch_next_superblocks(rows, s, n_super);
    alignas(32) float scale[T][4][16];
    for (int t = 0; t < T; ++t) q6_k_scales(rows, s, x + t * n_blocks + 8 * s, scale[t]);
    for (int j = 0; j < 8; ++j) {
      Q16Halves a[T];  // each token's activation block j, loaded once for the four rows
      for (int t = 0; t < T; ++t) a[t] = load_q16(x[t * n_blocks + 8 * s + j].qs);
      for (int r = 0; r < 4; ++r) {
        // values 0..15 take scale 2j, values 16..31 scale 2j + 1: one product sum each
        const __m256i q = q6_k_bytes(rows[r][s], j / 4, j % 4);
        const __m256i w_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)), w_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
        for (int t = 0; t < T; ++t) {
          acc[t][r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[t][r][2 * j]),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(w_lo, a[t].lo)), acc[t][r]);
          acc[t][r] = _mm256_fmadd_ps(_mm256_broadcast_ss(&scale[t][r][2 * j + 1]),
                                      _mm256_cvtepi32_ps(_mm256_madd_epi16(w_hi, a[t].hi)), acc[t][r]);
        }
      }
    }
  }
  for (int t = 0; t < T; ++t) hsum4(acc[t], out + 4 * t);
}

void dot4_q6_k_q16(const BlockQ6_K* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out) {
  for_token_count(n_tokens, [&](auto T) { dot4xT_q6_k_q16<T.value>(rows, x, n_blocks, out); });
}

// 32 values as signed bytes to floats, out[i] = (i < 16 ? scale_lo : scale_hi) * q[i] - min: io/dequant's
// arithmetic, one product and one subtraction (Q5_1's + m is - (-m)). Where the products are exact
// (Q5_1, Q4_K, Q5_K) a fused multiply-subtract rounds the same, and Q6_K and Q5_0 subtract 0.
inline void bytes_to_f32(__m256i q, float scale_lo, float scale_hi, float min, float* out) {
  const __m256 vmin = _mm256_set1_ps(min);
  const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
  for (int h = 0; h < 2; ++h) {
    const __m256 scale = _mm256_set1_ps(h == 0 ? scale_lo : scale_hi);
    for (int part = 0; part < 2; ++part) {
      const __m128i bytes = part == 0 ? halves[h] : _mm_srli_si128(halves[h], 8);
      _mm256_storeu_ps(out + 16 * h + 8 * part,
                       _mm256_sub_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes))), vmin));
    }
  }
}

template <typename Block>  // BlockQ4_K or BlockQ5_K
void k4_to_f32(const Block* blocks, float* out, int64_t n) {
  for (int64_t s = 0; s < n / kSuperBlock; ++s, out += kSuperBlock) {
    const Block& w = blocks[s];
    const __m128i sm = scales_mins_k4(w.scales);
    alignas(32) float scale[8], min[8];  // d * sc_j and dmin * mn_j, as io/dequant's d1 and m1
    _mm256_store_ps(scale, _mm256_mul_ps(_mm256_set1_ps(f16(w.d)), bytes_0_to_7(sm)));
    _mm256_store_ps(min, _mm256_mul_ps(_mm256_set1_ps(f16(w.dmin)), bytes_8_to_15(sm)));
    for (int k = 0; k < 4; ++k) {
      __m256i lo, hi;
      if constexpr (std::is_same_v<Block, BlockQ5_K>) {
        q5_k_bytes(w, k, &lo, &hi);
      } else {
        const __m256i ql = load256(w.qs + 32 * k);
        lo = _mm256_and_si256(ql, _mm256_set1_epi8(0x0F));
        hi = _mm256_and_si256(_mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
      }
      bytes_to_f32(lo, scale[2 * k], scale[2 * k], min[2 * k], out + 64 * k);
      bytes_to_f32(hi, scale[2 * k + 1], scale[2 * k + 1], min[2 * k + 1], out + 64 * k + 32);
    }
  }
}

void q6_k_to_f32(const BlockQ6_K* blocks, float* out, int64_t n) {
  for (int64_t s = 0; s < n / kSuperBlock; ++s, out += kSuperBlock) {
    const BlockQ6_K& w = blocks[s];
    const float d = f16(w.d);
    for (int j = 0; j < 8; ++j)
      bytes_to_f32(q6_k_bytes(w, j / 4, j % 4), d * static_cast<float>(w.scales[2 * j]),
                   d * static_cast<float>(w.scales[2 * j + 1]), 0.0f, out + 32 * j);
  }
}

inline __m256 load_f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256 load_bf16x8(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// sum_i w[i] * x[i] for float-like weights: load8(w + i) gives 8 floats, one(w[i]) the tail's.
template <typename W, typename Load8, typename One>
inline float dot_weights(const W* w, const float* x, int64_t n, Load8 load8, One one) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load8(w + i), _mm256_loadu_ps(x + i), a0);
  float sum = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) sum += one(w[i]) * x[i];
  return sum;
}

float dot_f32(const float* w, const float* x, int64_t n) {
  return dot_weights(w, x, n, [](const float* p) { return _mm256_loadu_ps(p); }, [](float v) { return v; });
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  return dot_weights(w, x, n, load_f16x8, f16);
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  return dot_weights(w, x, n, load_bf16x8, bf16_to_float);
}

void row_to_f32(RowType type, const void* row, float* out, int64_t n) {
  switch (type) {
    case RowType::F32: std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float)); return;
    case RowType::F16: {
      const auto* p = static_cast<const uint16_t*>(row);
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_f16x8(p + i));
      for (; i < n; ++i) out[i] = f16(p[i]);
      return;
    }
    case RowType::BF16: {
      const auto* p = static_cast<const uint16_t*>(row);
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load_bf16x8(p + i));
      for (; i < n; ++i) out[i] = bf16_to_float(p[i]);
      return;
    }
    case RowType::Q8_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
        const __m256 d = _mm256_set1_ps(f16(blk.d));
        for (int j = 0; j < 4; ++j) {
          const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk.qs + 8 * j));
          _mm256_storeu_ps(out + b * kBlock + 8 * j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8))));
        }
      }
      return;
    case RowType::Q5_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ5_0& blk = static_cast<const BlockQ5_0*>(row)[b];
        const float d = f16(blk.d);
        bytes_to_f32(_mm256_sub_epi8(q5_bytes(blk.qs, blk.qh), _mm256_set1_epi8(16)), d, d, 0.0f, out + b * kBlock);
      }
      return;
    case RowType::Q5_1:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ5_1& blk = static_cast<const BlockQ5_1*>(row)[b];
        const float d = f16(blk.d);
        bytes_to_f32(q5_bytes(blk.qs, blk.qh), d, d, -f16(blk.m), out + b * kBlock);
      }
      return;
    case RowType::Q4_K: return k4_to_f32(static_cast<const BlockQ4_K*>(row), out, n);
    case RowType::Q5_K: return k4_to_f32(static_cast<const BlockQ5_K*>(row), out, n);
    case RowType::Q6_K: return q6_k_to_f32(static_cast<const BlockQ6_K*>(row), out, n);
    case RowType::Q4_0:
    case RowType::Q4_1:
      // Prefill dequantizes every matrix once per pass, so this is on its path too.
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const uint8_t* qs;
        float d, m;
        if (type == RowType::Q4_0) {
          const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(row)[b];
          qs = blk.qs, d = f16(blk.d), m = -8.0f * d;
        } else {
          const BlockQ4_1& blk = static_cast<const BlockQ4_1*>(row)[b];
          qs = blk.qs, d = f16(blk.d), m = f16(blk.m);
        }
        const __m256i nibbles = unpack_nibbles(qs);  // 32 bytes 0..15
        const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
        const __m128i lo = _mm256_castsi256_si128(nibbles), hi = _mm256_extracti128_si256(nibbles, 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int j = 0; j < 4; ++j)
          _mm256_storeu_ps(out + b * kBlock + 8 * j,
                           _mm256_fmadd_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[j])), vm));
      }
      return;
  }
}

void f32_to_row(RowType type, const float* x, void* row, int64_t n) {
  if (type == RowType::F16) {
    auto* p = static_cast<uint16_t*>(row);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) p[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
    return;
  }
  scalar_table().f32_to_row(type, x, row, n);  // one row per token and layer: not worth more
}

// ---- attention over KV rows as stored ----

// Values 8j .. 8j + 7 of a KV row, widened to float: one loader per storage type.
struct LoadF32 {
  __m256 operator()(const uint8_t* row, int j) const { return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + 8 * j); }
};
struct LoadF16 {
  __m256 operator()(const uint8_t* row, int j) const { return load_f16x8(reinterpret_cast<const uint16_t*>(row) + 8 * j); }
};
struct LoadBF16 {
  __m256 operator()(const uint8_t* row, int j) const { return load_bf16x8(reinterpret_cast<const uint16_t*>(row) + 8 * j); }
};
struct LoadQ8_0 {
  __m256 operator()(const uint8_t* row, int j) const {
    const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(row)[j / 4];
    const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk.qs + 8 * (j % 4)));
    return _mm256_mul_ps(_mm256_set1_ps(f16(blk.d)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)));
  }
};

// Calls fn(loader) with the loader of `type`.
template <typename Fn>
inline void with_loader(RowType type, Fn&& fn) {
  switch (type) {
    case RowType::F32: return fn(LoadF32{});
    case RowType::F16: return fn(LoadF16{});
    case RowType::BF16: return fn(LoadBF16{});
    case RowType::Q8_0: return fn(LoadQ8_0{});
    default: fail("attention over ", row_type_name(type), " rows; KV rows are f32, f16, bf16 or q8_0");
  }
}

// Lane r = the sum of v[r]'s lanes, for eight rows at once. Every row goes through the same
// additions ((0+1)+(2+3)) + ((4+5)+(6+7)) whatever its position among the eight.
inline __m256 hsum8(const __m256* v) {
  const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

// Scores of rows of NV * 8 values: eight rows per step, reduced together by hsum8 instead of one
// horizontal sum per row; a last group of fewer repeats its final row.
template <int NV, typename Load>
void scores_fixed(const uint8_t* rows, int64_t stride, int64_t n_rows, const float* q, int64_t n_q, float scale,
                  float* out, int64_t out_stride, float* max, Load load) {
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int64_t h = 0; h < n_q; ++h) {
    __m256 qv[NV];
    for (int j = 0; j < NV; ++j) qv[j] = _mm256_loadu_ps(q + h * NV * 8 + 8 * j);
    __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    float* o = out + h * out_stride;
    for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
      __m256 dots[8];
      for (int i = 0; i < 8; ++i) {
        const uint8_t* row = rows + std::min<int64_t>(r0 + i, n_rows - 1) * stride;
        __m256 a0 = _mm256_mul_ps(qv[0], load(row, 0)), a1 = _mm256_mul_ps(qv[1], load(row, 1));
        for (int j = 2; j < NV; j += 2) {
          a0 = _mm256_fmadd_ps(qv[j], load(row, j), a0);
          a1 = _mm256_fmadd_ps(qv[j + 1], load(row, j + 1), a1);
        }
        dots[i] = _mm256_add_ps(a0, a1);
      }
      const __m256 s = _mm256_mul_ps(vscale, hsum8(dots));
      vmax = _mm256_max_ps(vmax, s);  // the repeated row changes nothing here
      if (n_rows - r0 >= 8) {
        _mm256_storeu_ps(o + r0, s);
      } else {
        alignas(32) float tail[8];
        _mm256_store_ps(tail, s);
        for (int64_t i = 0; r0 + i < n_rows; ++i) o[r0 + i] = tail[i];
      }
    }
    max[h] = hmax(vmax);
  }
}

template <int NV, typename Load>
void accumulate_fixed(const uint8_t* rows, int64_t stride, int64_t n_rows, const float* p, int64_t p_stride, int64_t n_q,
                      float* acc, int64_t acc_stride, Load load) {
  for (int64_t h = 0; h < n_q; ++h) {
    float* a_h = acc + h * acc_stride;
    __m256 a[NV];
    for (int j = 0; j < NV; ++j) a[j] = _mm256_loadu_ps(a_h + 8 * j);
    for (int64_t r = 0; r < n_rows; ++r) {
      const __m256 pr = _mm256_set1_ps(p[h * p_stride + r]);
      const uint8_t* row = rows + r * stride;
      for (int j = 0; j < NV; ++j) a[j] = _mm256_fmadd_ps(pr, load(row, j), a[j]);
    }
    for (int j = 0; j < NV; ++j) _mm256_storeu_ps(a_h + 8 * j, a[j]);
  }
}

// Any other row length: each row widened into a buffer of the calling thread, then float loops.
const float* widened_row(RowType type, const uint8_t* rows, int64_t stride, int64_t r, int64_t n) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(n));
  row_to_f32(type, rows + r * stride, row.data(), n);
  return row.data();
}

void scores(RowType type, const void* rows_v, int64_t stride, int64_t n_rows, int64_t n, const float* q, int64_t n_q,
            float scale, float* out, int64_t out_stride, float* max) {
  const auto* rows = static_cast<const uint8_t*>(rows_v);
  if (n_rows > 0 && (n == 64 || n == 128)) {
    with_loader(type, [&](auto load) {
      if (n == 64) scores_fixed<8>(rows, stride, n_rows, q, n_q, scale, out, out_stride, max, load);
      else scores_fixed<16>(rows, stride, n_rows, q, n_q, scale, out, out_stride, max, load);
    });
    return;
  }
  for (int64_t h = 0; h < n_q; ++h) max[h] = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = widened_row(type, rows, stride, r, n);
    for (int64_t h = 0; h < n_q; ++h) {
      out[h * out_stride + r] = scale * dot_f32(row, q + h * n, n);
      max[h] = std::max(max[h], out[h * out_stride + r]);
    }
  }
}

void accumulate(RowType type, const void* rows_v, int64_t stride, int64_t n_rows, int64_t n, const float* p,
                int64_t p_stride, int64_t n_q, float* acc, int64_t acc_stride) {
  const auto* rows = static_cast<const uint8_t*>(rows_v);
  if (n == 64 || n == 128) {
    with_loader(type, [&](auto load) {
      if (n == 64) accumulate_fixed<8>(rows, stride, n_rows, p, p_stride, n_q, acc, acc_stride, load);
      else accumulate_fixed<16>(rows, stride, n_rows, p, p_stride, n_q, acc, acc_stride, load);
    });
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = widened_row(type, rows, stride, r, n);
    for (int64_t h = 0; h < n_q; ++h) {
      const __m256 pr = _mm256_set1_ps(p[h * p_stride + r]);
      float* a = acc + h * acc_stride;
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(a + i, _mm256_fmadd_ps(pr, _mm256_loadu_ps(row + i), _mm256_loadu_ps(a + i)));
      for (; i < n; ++i) a[i] += p[h * p_stride + r] * row[i];
    }
  }
}

// exp(x) for 8 floats: Cephes' range reduction and degree-5 polynomial (relative error ~1e-7).
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f));
  __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(pow2n));
}

float exp_shift_sum(float* x, int64_t n, float max) {
  const __m256 vmax = _mm256_set1_ps(max);
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 sum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // Masked scores (-inf) give exactly 0, not exp(-88).
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vmax)), _mm256_cmp_ps(v, neg_inf, _CMP_NEQ_OQ));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  // The tail through the same polynomial, padded with masked lanes: an element must get the same
  // exponent whether it ends up in the body or the tail, which depends on how many keys follow
  // it. With std::exp here, a token decoded alone and the same token in a chunk differed in the
  // last bit, which the next layer's 8-bit activations could round the other way (perplexity
  // moved by 0.5% between --chunk 1 and 8).
  if (i < n) {
    alignas(32) float tail[8];
    for (int j = 0; j < 8; ++j) tail[j] = i + j < n ? x[i + j] : -std::numeric_limits<float>::infinity();
    const __m256 v = _mm256_load_ps(tail);
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vmax)), _mm256_cmp_ps(v, neg_inf, _CMP_NEQ_OQ));
    sum = _mm256_add_ps(sum, e);
    _mm256_store_ps(tail, e);
    for (int64_t j = 0; i + j < n; ++j) x[i + j] = tail[j];
  }
  return hsum(sum);
}

void rms_norm(const float* x, const float* w, float eps, float* y, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv)));
  for (; i < n; ++i) y[i] = w[i] * (x[i] * inv);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_xor_ps(g, sign));  // exp(-g)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
  }
  if (i < n) {  // the tail through the same polynomial, as in exp_shift_sum
    alignas(32) float g[8] = {}, u[8] = {}, o[8];
    for (int j = 0; i + j < n; ++j) g[j] = gate[i + j], u[j] = up[i + j];
    const __m256 gv = _mm256_load_ps(g);
    const __m256 e = exp8(_mm256_xor_ps(gv, sign));
    _mm256_store_ps(o, _mm256_mul_ps(_mm256_div_ps(gv, _mm256_add_ps(one, e)), _mm256_load_ps(u)));
    for (int j = 0; i + j < n; ++j) out[i + j] = o[j];
  }
}

}  // namespace

const KernelTable& avx2_table() {
  static const KernelTable table{.isa = Isa::Avx2,
                                 .quantize_q8a = quantize_q8a,
                                 .dot_q4_0 = dot_q4_0,
                                 .dot_q4_1 = dot_q4_1,
                                 .dot_q8_0 = dot_q8_0,
                                 .dot4_q4_0 = dot4_q4_0,
                                 .dot4_q4_1 = dot4_q4_1,
                                 .dot4_q8_0 = dot4_q8_0,
                                 .dot4_q5_0 = dot4_q5<BlockQ5_0>,
                                 .dot4_q5_1 = dot4_q5<BlockQ5_1>,
                                 .dot4_q4_k = dot4_k4<BlockQ4_K>,
                                 .dot4_q5_k = dot4_k4<BlockQ5_K>,
                                 .dot4_q6_k = dot4_q6_k,
                                 .quantize_q16a = quantize_q16a,
                                 .dot4_q4_0_q16 = dot4_blocks_q16<BlockQ4_0>,
                                 .dot4_q4_1_q16 = dot4_blocks_q16<BlockQ4_1>,
                                 .dot4_q8_0_q16 = dot4_blocks_q16<BlockQ8_0>,
                                 .dot4_q5_0_q16 = dot4_blocks_q16<BlockQ5_0>,
                                 .dot4_q5_1_q16 = dot4_blocks_q16<BlockQ5_1>,
                                 .dot4_q4_k_q16 = dot4_k4_q16<BlockQ4_K>,
                                 .dot4_q5_k_q16 = dot4_k4_q16<BlockQ5_K>,
                                 .dot4_q6_k_q16 = dot4_q6_k_q16,
                                 .dot4_q8_0_f32 = dot4_q8_0_f32,
                                 .dot_f32 = dot_f32,
                                 .dot_f16 = dot_f16,
                                 .dot_bf16 = dot_bf16,
                                 .row_to_f32 = row_to_f32,
                                 .f32_to_row = f32_to_row,
                                 .scores = scores,
                                 .accumulate = accumulate,
                                 .exp_shift_sum = exp_shift_sum,
                                 .rms_norm = rms_norm,
                                 .silu_mul = silu_mul};
  return table;
}

}  // namespace sentinel::kernels
