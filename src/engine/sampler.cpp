// Sampling over the logits of one position.
#include "sentinel/engine/sampler.h"

#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/profile.h"

namespace sentinel {

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) { options.validate(); }

int32_t Sampler::sample(const at::Tensor& logits_in, std::span<const int32_t> history) {
  const profile::Scope scope(profile::Phase::Sampling);
  check(logits_in.dim() == 1, "sampler expects [n_vocab] logits");
  at::Tensor logits = logits_in.to(at::kFloat).contiguous();
  if (options_.repetition_penalty != 1.0 && !history.empty()) {
    logits = logits.clone();
    float* l = logits.data_ptr<float>();
    const int64_t n = logits.numel();
    const float p = static_cast<float>(options_.repetition_penalty);
    std::vector<bool> seen(n, false);
    for (int32_t id : history) {
      if (id < 0 || id >= n || seen[id]) continue;
      seen[id] = true;
      l[id] = l[id] > 0 ? l[id] / p : l[id] * p;
    }
  }
  if (options_.temperature == 0.0) return static_cast<int32_t>(logits.argmax().item<int64_t>());

  logits = logits / options_.temperature;
  at::Tensor candidates;  // token ids, most likely first
  at::Tensor scores;
  if (options_.top_k > 0 && options_.top_k < logits.numel()) {
    std::tie(scores, candidates) = logits.topk(options_.top_k);
  } else {
    std::tie(scores, candidates) = logits.sort(/*dim=*/-1, /*descending=*/true);
  }
  at::Tensor probs = scores.softmax(-1);
  if (options_.top_p < 1.0) {
    // Keep tokens while the mass before them is < top_p (the first token is always kept).
    at::Tensor mass_before = probs.cumsum(-1) - probs;
    const int64_t keep = std::max<int64_t>(1, (mass_before < options_.top_p).sum().item<int64_t>());
    probs = probs.narrow(0, 0, keep);
    candidates = candidates.narrow(0, 0, keep);
    probs = probs / probs.sum();
  }
  probs = probs.contiguous();
  const float* p = probs.data_ptr<float>();
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double u = uniform(rng_), cumulative = 0.0;
  const int64_t n = probs.numel();
  int64_t chosen = n - 1;
  for (int64_t i = 0; i < n; ++i) {
    cumulative += p[i];
    if (u < cumulative) {
      chosen = i;
      break;
    }
  }
  return static_cast<int32_t>(candidates[chosen].item<int64_t>());
}

}  // namespace sentinel
