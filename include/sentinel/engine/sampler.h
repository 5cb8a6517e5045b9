// Next-token selection from logits: greedy, or sampling with temperature, top-k, top-p and a
// repetition penalty, applied in Hugging Face's order (penalty, temperature, top-k, top-p).
// Deterministic for a given seed. Knows nothing about models or caches.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <span>

namespace sentinel {

struct SamplingOptions {
  double temperature = 0.0;         // 0 = greedy (argmax)
  int64_t top_k = 0;                // keep the k most likely tokens; 0 = off
  double top_p = 1.0;               // keep the smallest set with cumulative probability >= p; 1 = off
  double repetition_penalty = 1.0;  // > 1 discourages tokens already in the context (CTRL / HF rule)
  uint64_t seed = 0;

  void validate() const;  // throws Error naming every bad field
};

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
