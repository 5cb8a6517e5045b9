// Block formats of the quantized CPU path. Weight blocks are ggml's on-disk layouts, read in
// place from a memory-mapped GGUF file (ggml-common.h: block_q4_0, block_q4_1, block_q5_0,
// block_q5_1, block_q8_0, and the K-quant superblocks block_q4_K, block_q5_K, block_q6_K).
// Activations are quantized per 32 values to 8 bits in BlockQ8A (llama.cpp's scheme) or to 16 bits
// in BlockQ16A; both carry the block sum so that the Q4_0 offset and the Q4_1 minimum become one
// multiply per block.
#pragma once

#include <cstdint>

namespace sentinel::kernels {

inline constexpr int64_t kBlock = 32;        // values per block: activations and the 32-value weight blocks
inline constexpr int64_t kSuperBlock = 256;  // values per K-quant superblock (ggml's QK_K): 8 activation blocks

// x[i] = d * (q[i] - 8); q[i] is the low nibble of qs[i] for i < 16, the high nibble of qs[i - 16] after.
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[16];
};
// x[i] = d * q[i] + m, nibbles as in BlockQ4_0.
struct BlockQ4_1 {
  uint16_t d, m;  // f16 scale and minimum
  uint8_t qs[16];
};
// x[i] = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[32];
};
// x[i] = d * (q[i] - 16); q[i] is the nibble of BlockQ4_0 plus, as bit 4, bit i of the little-endian u32 qh.
struct BlockQ5_0 {
  uint16_t d;  // f16 scale
  uint8_t qh[4];
  uint8_t qs[16];
};
// x[i] = d * q[i] + m, q[i] as in BlockQ5_0.
struct BlockQ5_1 {
  uint16_t d, m;  // f16 scale and minimum
  uint8_t qh[4];
  uint8_t qs[16];
};

// K-quant superblocks of 256 values in eight 32-value sub-blocks j = i / 32, each with 6-bit scale
// sc[j] and min mn[j] packed in scales[12] (ggml's get_scale_min_k4: for j < 4, sc = scales[j] & 63
// and mn = scales[j + 4] & 63; for j >= 4 the low 4 bits come from scales[j + 4]'s nibbles and the
// high 2 bits from the top bits of scales[j - 4] (sc) and scales[j] (mn)).
// x[i] = d * sc[j] * q[i] - dmin * mn[j]; q[i] is the low nibble of qs[32 * (j / 2) + i % 32] for
// even j, the high nibble for odd j.
struct BlockQ4_K {
  uint16_t d, dmin;  // f16 super-scales of the scales and of the mins
  uint8_t scales[12];
  uint8_t qs[128];
};
// As BlockQ4_K with q[i] in 0..31: bit j of qh[i % 32] is bit 4 of q[i].
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// x[i] = d * scales[i / 16] * (q[i] - 32), q[i] 6 bits: in half h = i / 128, with t = (i % 128) / 32 and
// l = i % 32, the low 4 bits are the low (t < 2) or high (t >= 2) nibble of ql[64 h + 32 (t % 2) + l]
// and the high 2 bits are bits 2t, 2t + 1 of qh[32 h + l].
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];  // one per 16 values: two per activation block
  uint16_t d;         // f16
};

// An activation block: x[i] ~= d * qs[i] with d = max|x| / 127, and s = d * sum(qs) (float, not
// ggml's f16 Q8_1, so the sum carries no extra rounding).
struct BlockQ8A {
  float d;
  float s;
  int8_t qs[32];
};

// The same with 16 bits: d = max|x| / 32767. Its rounding error is 258 times smaller than
// BlockQ8A's, which on SmolLM2 is the difference between 96.9% and 99.8% of tokens whose top
// prediction matches the float32 path (docs/performance.md), for the same weight bytes read.
struct BlockQ16A {
  float d;
  float s;
  int16_t qs[32];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8A) == 40 && sizeof(BlockQ16A) == 72);

// IEEE half <-> float with round-to-nearest-even, as F16C's vcvtps2ph / vcvtph2ps.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
inline float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace sentinel::kernels
