// The kernel tables each instruction set defines (private to src/kernels).
#pragma once

#include "sentinel/kernels/kernels.h"

namespace sentinel::kernels {

const KernelTable& scalar_table();
const KernelTable& avx2_table();    // defined in avx2.cpp, compiled for AVX2/FMA/F16C
const KernelTable& avx512_table();  // avx512.cpp, for AVX-512 F/BW/DQ/VL/VNNI (and AVX2 for the rest)

// A one-token four-row product (16-bit activations) as the table's multi-token entry: token t's
// activations at x + t * n_blocks, its four sums at out + 4 * t. Tables without a kernel that
// unpacks each weight block once for every token use this.
template <typename Block, void (*Dot4)(const Block* const*, const BlockQ16A*, int64_t, float*)>
void each_token(const Block* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out) {
  for (int64_t t = 0; t < n_tokens; ++t) Dot4(rows, x + t * n_blocks, n_blocks, out + 4 * t);
}

// bfloat16 with round-to-nearest-even (NaN kept quiet), as torch's float -> bfloat16.
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  __builtin_memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x007FFFFFu) != 0) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace sentinel::kernels
