// Next-token selection from logits: greedy, or sampling with temperature, top-k, top-p and a
// repetition penalty, applied in Hugging Face's order (penalty, temperature, top-k, top-p).
// Deterministic for a given seed. Knows nothing about models or caches.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <span>

#include "sentinel/engine/sampling_options.h"

namespace sentinel {

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  // logits: [n_vocab] float32; history: the tokens the repetition penalty applies to.
  int32_t sample(const at::Tensor& logits, std::span<const int32_t> history);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace sentinel
