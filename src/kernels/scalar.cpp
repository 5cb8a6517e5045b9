// The scalar kernel table: plain C++ over the block formats, written to be obviously right. It is
// the reference every vectorised table is tested against, and the fallback on CPUs without AVX2.
// Not fast: nothing here is tuned, and the K-quants are unpacked one sub-block at a time.
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

// x [n] -> blocks of 32 values rounded to integers in [-kMax, kMax] with d = max|x| / kMax, and
// s = d * sum(q): BlockQ8A (kMax 127) and BlockQ16A (kMax 32767).
template <typename Block, int kMax>
void quantize_blocks(const float* x, Block* y, int64_t n) {
  using Int = std::remove_reference_t<decltype(y->qs[0])>;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.0f;
    for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float d = amax / static_cast<float>(kMax);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int64_t i = 0; i < kBlock; ++i) {
      const auto q = static_cast<Int>(std::nearbyint(xb[i] * id));  // ties to even, as vroundps
      y[b].qs[i] = q;
      sum += q;
    }
    y[b].d = d;
    y[b].s = d * static_cast<float>(sum);
  }
}

void quantize_q8a(const float* x, BlockQ8A* y, int64_t n) { quantize_blocks<BlockQ8A, 127>(x, y, n); }
void quantize_q16a(const float* x, BlockQ16A* y, int64_t n) { quantize_blocks<BlockQ16A, 32767>(x, y, n); }

// Nibble i of a 4-bit block: low nibbles hold values 0..15, high nibbles 16..31 (ggml's layout).
inline int32_t nibble(const uint8_t* qs, int64_t i) { return i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4); }

float dot_q4_0(const BlockQ4_0* w, const BlockQ8A* x, int64_t n_blocks) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t isum = 0;
    for (int64_t i = 0; i < kBlock; ++i) isum += (nibble(w[b].qs, i) - 8) * x[b].qs[i];
    sum += half_to_float(w[b].d) * x[b].d * static_cast<float>(isum);
  }
  return sum;
}

float dot_q4_1(const BlockQ4_1* w, const BlockQ8A* x, int64_t n_blocks) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t isum = 0;
    for (int64_t i = 0; i < kBlock; ++i) isum += nibble(w[b].qs, i) * x[b].qs[i];
    // sum_i (d q_i + m) x_i = d * sum_i q_i x_i + m * sum_i x_i
    sum += half_to_float(w[b].d) * x[b].d * static_cast<float>(isum) + half_to_float(w[b].m) * x[b].s;
  }
  return sum;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8A* x, int64_t n_blocks) {
  float sum = 0.0f;
  for (int64_t b = 0; b < n_blocks; ++b) {
    int32_t isum = 0;
    for (int64_t i = 0; i < kBlock; ++i) isum += w[b].qs[i] * x[b].qs[i];
    sum += half_to_float(w[b].d) * x[b].d * static_cast<float>(isum);
  }
  return sum;
}

template <typename Block, float (*Dot)(const Block*, const BlockQ8A*, int64_t)>
void dot4(const Block* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out) {
  for (int r = 0; r < 4; ++r) out[r] = Dot(rows[r], x, n_blocks);
}

// Value i of a 5-bit block: the nibble, plus bit i of the little-endian u32 qh as bit 4.
inline int32_t five_bits(const uint8_t* qh, const uint8_t* qs, int64_t i) {
  uint32_t h;
  std::memcpy(&h, qh, sizeof h);
  return nibble(qs, i) | static_cast<int32_t>(((h >> i) & 1u) << 4);
}

// Weight value i of a block as an integer, and the block's float offset per unit of x (the
// Q4_1/Q5_1 minimum; Q4_0's -8 and Q5_0's -16 are part of the integer).
inline int32_t weight_int(const BlockQ4_0& b, int64_t i) { return nibble(b.qs, i) - 8; }
inline int32_t weight_int(const BlockQ4_1& b, int64_t i) { return nibble(b.qs, i); }
inline int32_t weight_int(const BlockQ8_0& b, int64_t i) { return b.qs[i]; }
inline int32_t weight_int(const BlockQ5_0& b, int64_t i) { return five_bits(b.qh, b.qs, i) - 16; }
inline int32_t weight_int(const BlockQ5_1& b, int64_t i) { return five_bits(b.qh, b.qs, i); }
inline float weight_min(const BlockQ4_1& b) { return half_to_float(b.m); }
inline float weight_min(const BlockQ5_1& b) { return half_to_float(b.m); }
template <typename Block>
inline float weight_min(const Block&) { return 0.0f; }

// Four rows of 32-value blocks against 8-bit (BlockQ8A) or 16-bit (BlockQ16A) activations.
template <typename Block, typename Activations>
void dot4_blocks(const Block* const* rows, const Activations* x, int64_t n_blocks, float* out) {
  for (int r = 0; r < 4; ++r) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n_blocks; ++b) {
      int32_t isum = 0;  // |sum| <= 32 * 128 * 32767 < 2^31
      for (int64_t i = 0; i < kBlock; ++i) isum += weight_int(rows[r][b], i) * x[b].qs[i];
      sum += half_to_float(rows[r][b].d) * x[b].d * static_cast<float>(isum) + weight_min(rows[r][b]) * x[b].s;
    }
    out[r] = sum;
  }
}

// ---- K-quant superblocks, one 32-value sub-block (one activation block) at a time ----

// Sub-block j of a superblock (values 32j .. 32j + 31): value i = scale[i / 16] * q[i] - min.
// The two scales differ only in Q6_K, whose scales cover 16 values.
struct SubBlock {
  int32_t q[32];
  float scale[2];
  float min;
};

// The 6-bit scale and min of sub-block j of Q4_K/Q5_K (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* packed, int32_t* scale, int32_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
    *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

template <typename Block>  // BlockQ4_K or BlockQ5_K
SubBlock k4_sub_block(const Block& b, int j) {
  SubBlock s;
  int32_t scale, min;
  scale_min_k4(j, b.scales, &scale, &min);
  s.scale[0] = s.scale[1] = half_to_float(b.d) * static_cast<float>(scale);  // exact: 11 + 6 bits
  s.min = half_to_float(b.dmin) * static_cast<float>(min);
  const uint8_t* q = b.qs + 32 * (j / 2);
  for (int i = 0; i < 32; ++i) s.q[i] = j % 2 == 0 ? (q[i] & 0x0F) : (q[i] >> 4);
  if constexpr (std::is_same_v<Block, BlockQ5_K>)
    for (int i = 0; i < 32; ++i) s.q[i] |= ((b.qh[i] >> j) & 1) << 4;
  return s;
}
SubBlock sub_block(const BlockQ4_K& b, int j) { return k4_sub_block(b, j); }
SubBlock sub_block(const BlockQ5_K& b, int j) { return k4_sub_block(b, j); }

SubBlock sub_block(const BlockQ6_K& b, int j) {
  SubBlock s;
  const int half = j / 4, t = j % 4;
  const uint8_t* ql = b.ql + 64 * half + 32 * (t % 2);
  const uint8_t* qh = b.qh + 32 * half;
  for (int i = 0; i < 32; ++i) s.q[i] = ((t < 2 ? ql[i] & 0x0F : ql[i] >> 4) | (((qh[i] >> (2 * t)) & 3) << 4)) - 32;
  const float d = half_to_float(b.d);
  s.scale[0] = d * static_cast<float>(b.scales[2 * j]);
  s.scale[1] = d * static_cast<float>(b.scales[2 * j + 1]);
  s.min = 0.0f;
  return s;
}

// sum over activation blocks b of x.d * (scale_lo * sum_lo(q x.qs) + scale_hi * sum_hi(q x.qs)) - min * x.s,
// where x.s = x.d * sum(x.qs) (blocks.h): the dequantized weights times the dequantized activations.
template <typename Block, typename Activations>
void dot4_kquant(const Block* const* rows, const Activations* x, int64_t n_blocks, float* out) {
  for (int r = 0; r < 4; ++r) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const SubBlock s = sub_block(rows[r][b / 8], static_cast<int>(b % 8));
      int32_t lo = 0, hi = 0;  // |sum| <= 16 * 63 * 32767 < 2^31
      for (int i = 0; i < 16; ++i) lo += s.q[i] * x[b].qs[i];
      for (int i = 16; i < 32; ++i) hi += s.q[i] * x[b].qs[i];
      sum += x[b].d * (s.scale[0] * static_cast<float>(lo) + s.scale[1] * static_cast<float>(hi)) - s.min * x[b].s;
    }
    out[r] = sum;
  }
}

// A K-quant row to float, operation for operation as io/dequant.cpp (ggml's dequantize_row_*):
// (d * sc) * q - dmin * mn. Q6_K's min is 0 and x - 0.0f is x, signed zeros included.
template <typename Block>
void kquant_to_f32(const Block* blocks, float* out, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const SubBlock s = sub_block(blocks[b / 8], static_cast<int>(b % 8));
    for (int i = 0; i < 32; ++i) out[b * kBlock + i] = s.scale[i / 16] * static_cast<float>(s.q[i]) - s.min;
  }
}

void dot4_q8_0_f32(const BlockQ8_0* const* rows, const float* x, int64_t n_blocks, float* out) {
  for (int r = 0; r < 4; ++r) {
    float sum = 0.0f;
    for (int64_t b = 0; b < n_blocks; ++b) {
      float block = 0.0f;
      for (int64_t i = 0; i < kBlock; ++i) block += static_cast<float>(rows[r][b].qs[i]) * x[b * kBlock + i];
      sum += half_to_float(rows[r][b].d) * block;
    }
    out[r] = sum;
  }
}

float dot_f32(const float* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += half_to_float(w[i]) * x[i];
  return sum;
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_float(w[i]) * x[i];
  return sum;
}

void row_to_f32(RowType type, const void* row, float* out, int64_t n) {
  switch (type) {
    case RowType::F32: std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float)); return;
    case RowType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(static_cast<const uint16_t*>(row)[i]);
      return;
    case RowType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(static_cast<const uint16_t*>(row)[i]);
      return;
    case RowType::Q4_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(row)[b];
        const float d = half_to_float(blk.d);
        for (int64_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = d * static_cast<float>(nibble(blk.qs, i) - 8);
      }
      return;
    case RowType::Q4_1:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ4_1& blk = static_cast<const BlockQ4_1*>(row)[b];
        const float d = half_to_float(blk.d), m = half_to_float(blk.m);
        for (int64_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = d * static_cast<float>(nibble(blk.qs, i)) + m;
      }
      return;
    case RowType::Q8_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
        const float d = half_to_float(blk.d);
        for (int64_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = d * static_cast<float>(blk.qs[i]);
      }
      return;
    case RowType::Q5_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ5_0& blk = static_cast<const BlockQ5_0*>(row)[b];
        const float d = half_to_float(blk.d);
        for (int64_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = d * static_cast<float>(weight_int(blk, i));
      }
      return;
    case RowType::Q5_1:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        const BlockQ5_1& blk = static_cast<const BlockQ5_1*>(row)[b];
        const float d = half_to_float(blk.d), m = half_to_float(blk.m);
        for (int64_t i = 0; i < kBlock; ++i) out[b * kBlock + i] = d * static_cast<float>(weight_int(blk, i)) + m;
      }
      return;
    case RowType::Q4_K: return kquant_to_f32(static_cast<const BlockQ4_K*>(row), out, n);
    case RowType::Q5_K: return kquant_to_f32(static_cast<const BlockQ5_K*>(row), out, n);
    case RowType::Q6_K: return kquant_to_f32(static_cast<const BlockQ6_K*>(row), out, n);
  }
}

void f32_to_row(RowType type, const float* x, void* row, int64_t n) {
  switch (type) {
    case RowType::F32: std::memcpy(row, x, static_cast<size_t>(n) * sizeof(float)); return;
    case RowType::F16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(row)[i] = float_to_half(x[i]);
      return;
    case RowType::BF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(row)[i] = float_to_bf16(x[i]);
      return;
    case RowType::Q8_0:
      for (int64_t b = 0; b < n / kBlock; ++b) {
        BlockQ8_0& blk = static_cast<BlockQ8_0*>(row)[b];
        float amax = 0.0f;
        for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[b * kBlock + i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int64_t i = 0; i < kBlock; ++i) blk.qs[i] = static_cast<int8_t>(std::nearbyint(x[b * kBlock + i] * id));
        blk.d = float_to_half(d);
      }
      return;
    case RowType::Q4_0:
    case RowType::Q4_1:
    case RowType::Q5_0:
    case RowType::Q5_1:
    case RowType::Q4_K:
    case RowType::Q5_K:
    case RowType::Q6_K: break;
  }
  fail("cannot store rows as ", row_type_name(type), "; KV rows are f32, f16, bf16 or q8_0");
}

// Row r of n values of `type` as floats, into a buffer of the calling thread.
const float* widened_row(RowType type, const void* rows, int64_t stride, int64_t r, int64_t n) {
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(n));
  row_to_f32(type, static_cast<const uint8_t*>(rows) + r * stride, row.data(), n);
  return row.data();
}

void scores(RowType type, const void* rows, int64_t stride, int64_t n_rows, int64_t n, const float* q, int64_t n_q,
            float scale, float* out, int64_t out_stride, float* max) {
  for (int64_t h = 0; h < n_q; ++h) max[h] = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = widened_row(type, rows, stride, r, n);
    for (int64_t h = 0; h < n_q; ++h) {
      out[h * out_stride + r] = scale * dot_f32(row, q + h * n, n);
      max[h] = std::max(max[h], out[h * out_stride + r]);
    }
  }
}

void accumulate(RowType type, const void* rows, int64_t stride, int64_t n_rows, int64_t n, const float* p,
                int64_t p_stride, int64_t n_q, float* acc, int64_t acc_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = widened_row(type, rows, stride, r, n);
    for (int64_t h = 0; h < n_q; ++h)
      for (int64_t i = 0; i < n; ++i) acc[h * acc_stride + i] += p[h * p_stride + r] * row[i];
  }
}

float exp_shift_sum(float* x, int64_t n, float max) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = x[i] == -std::numeric_limits<float>::infinity() ? 0.0f : std::exp(x[i] - max);
    sum += x[i];
  }
  return sum;
}

void rms_norm(const float* x, const float* w, float eps, float* y, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * inv);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace

const KernelTable& scalar_table() {
  static const KernelTable table{.isa = Isa::Scalar,
                                 .quantize_q8a = quantize_q8a,
                                 .dot_q4_0 = dot_q4_0,
                                 .dot_q4_1 = dot_q4_1,
                                 .dot_q8_0 = dot_q8_0,
                                 .dot4_q4_0 = dot4<BlockQ4_0, dot_q4_0>,
                                 .dot4_q4_1 = dot4<BlockQ4_1, dot_q4_1>,
                                 .dot4_q8_0 = dot4<BlockQ8_0, dot_q8_0>,
                                 .dot4_q5_0 = dot4_blocks<BlockQ5_0, BlockQ8A>,
                                 .dot4_q5_1 = dot4_blocks<BlockQ5_1, BlockQ8A>,
                                 .dot4_q4_k = dot4_kquant<BlockQ4_K, BlockQ8A>,
                                 .dot4_q5_k = dot4_kquant<BlockQ5_K, BlockQ8A>,
                                 .dot4_q6_k = dot4_kquant<BlockQ6_K, BlockQ8A>,
                                 .quantize_q16a = quantize_q16a,
                                 .dot4_q4_0_q16 = each_token<BlockQ4_0, dot4_blocks<BlockQ4_0, BlockQ16A>>,
                                 .dot4_q4_1_q16 = each_token<BlockQ4_1, dot4_blocks<BlockQ4_1, BlockQ16A>>,
                                 .dot4_q8_0_q16 = each_token<BlockQ8_0, dot4_blocks<BlockQ8_0, BlockQ16A>>,
                                 .dot4_q5_0_q16 = each_token<BlockQ5_0, dot4_blocks<BlockQ5_0, BlockQ16A>>,
                                 .dot4_q5_1_q16 = each_token<BlockQ5_1, dot4_blocks<BlockQ5_1, BlockQ16A>>,
                                 .dot4_q4_k_q16 = each_token<BlockQ4_K, dot4_kquant<BlockQ4_K, BlockQ16A>>,
                                 .dot4_q5_k_q16 = each_token<BlockQ5_K, dot4_kquant<BlockQ5_K, BlockQ16A>>,
                                 .dot4_q6_k_q16 = each_token<BlockQ6_K, dot4_kquant<BlockQ6_K, BlockQ16A>>,
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
