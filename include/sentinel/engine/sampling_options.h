// How the next token is chosen (sampler.h applies it), as plain data: requests carry these before
// any model or tensor is involved.
#pragma once

#include <cstdint>

namespace sentinel {

struct SamplingOptions {
  double temperature = 0.0;         // 0 = greedy (argmax)
  int64_t top_k = 0;                // keep the k most likely tokens; 0 = off
  double top_p = 1.0;               // keep the smallest set with cumulative probability >= p; 1 = off
  double repetition_penalty = 1.0;  // > 1 discourages tokens already in the context (CTRL / HF rule)
  uint64_t seed = 0;

  void validate() const;  // throws Error naming every bad field
};

}  // namespace sentinel
