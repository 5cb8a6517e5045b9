// The multi-token contract of the 16-bit four-row products (kernels.h): token t of a call with
// several tokens gives, bit for bit, what a call with token t alone gives.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "sentinel/kernels/kernels.h"

namespace sentinel::kernels {

template <typename Block>
using Dot4Q16 = void (*)(const Block* const*, const BlockQ16A*, int64_t n_tokens, int64_t n_blocks, float*);

// x holds kMaxDotTokens tokens' activation rows of n_blocks blocks each.
template <typename Block>
void expect_each_token_as_alone(Dot4Q16<Block> dot, const Block* const* rows, const BlockQ16A* x, int64_t n_blocks,
                                const std::string& where) {
  float alone[kMaxDotTokens][4];
  for (int64_t t = 0; t < kMaxDotTokens; ++t) dot(rows, x + t * n_blocks, 1, n_blocks, alone[t]);
  for (int64_t n_tokens = 2; n_tokens <= kMaxDotTokens; ++n_tokens) {
    float together[4 * kMaxDotTokens];
    dot(rows, x, n_tokens, n_blocks, together);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int r = 0; r < 4; ++r) {
        uint32_t a, b;
        std::memcpy(&a, &alone[t][r], 4);
        std::memcpy(&b, &together[4 * t + r], 4);
        EXPECT_EQ(a, b) << where << ": token " << t << " of " << n_tokens << ", row " << r << ": "
                        << together[4 * t + r] << " together, " << alone[t][r] << " alone";
      }
  }
}

}  // namespace sentinel::kernels
