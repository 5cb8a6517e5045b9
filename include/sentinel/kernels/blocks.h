// Block formats of the quantized CPU path. Weight blocks are ggml's on-disk layouts, read in
// place from a memory-mapped GGUF file (ggml-common.h: block_q4_0, block_q4_1, block_q8_0).
// Activations are quantized per 32 values to 8 bits in BlockQ8A (llama.cpp's scheme) or to 16 bits
// in BlockQ16A; both carry the block sum so that the Q4_0 offset and the Q4_1 minimum become one
// multiply per block.
#pragma once

#include <cstdint>

namespace sentinel::kernels {

inline constexpr int64_t kBlock = 32;  // values per block, every format here

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
