// Perplexity of a token sequence with the usual strided sliding window: windows of `ctx`
// tokens start every `stride` tokens, and each token is scored exactly once, in the first
// window that covers it after the previous window's end (as in Hugging Face's guide
// "Perplexity of fixed-length models", but summing exact per-token log-likelihoods).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "sentinel/model/llama.h"

namespace sentinel {

struct PerplexityOptions {
  int64_t ctx = 1024;     // tokens per window
  int64_t stride = 512;   // window start spacing; == ctx gives disjoint windows
  void validate() const;
};

struct PerplexityResult {
  double ppl = 0;          // exp(nll_sum / n_scored)
  double nll_sum = 0;      // natural-log negative log-likelihood, summed
  int64_t n_tokens = 0;    // tokens in the sequence
  int64_t n_scored = 0;    // tokens predicted (n_tokens - 1)
  int64_t n_windows = 0;
  double seconds = 0;
};

// Called after each window with (windows done, windows total).
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

PerplexityResult strided_perplexity(LlamaModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                    const ProgressCallback& progress = {});

}  // namespace sentinel
