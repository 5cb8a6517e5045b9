// Perplexity of a token sequence with the usual strided sliding window: windows of `ctx`
// tokens start every `stride` tokens, and each token is scored exactly once, in the first
// window that covers it after the previous window's end (as in Hugging Face's guide
// "Perplexity of fixed-length models", but summing exact per-token log-likelihoods).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>

#include "sentinel/model/decoder.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

struct PerplexityOptions {
  int64_t ctx = 1024;     // tokens per window
  int64_t stride = 512;   // window start spacing; == ctx gives disjoint windows
  bool per_token = false; // compressed_perplexity: also return each scored token's values (PerplexityResult)
  void validate() const;
};

struct PerplexityResult {
  double ppl = 0;          // exp(nll_sum / n_scored)
  double nll_sum = 0;      // natural-log negative log-likelihood, summed
  int64_t n_tokens = 0;    // tokens in the sequence
  int64_t n_scored = 0;    // tokens predicted (n_tokens - 1)
  int64_t n_windows = 0;
  double seconds = 0;            // the whole evaluation, the reference's passes included
  double reference_seconds = 0;  // of which reading with the reference model and comparing (--kl-divergence)
  // Compression (compressed_perplexity only): cache state at the end of each window, summed.
  int64_t ordinary_fed = 0;   // ordinary tokens fed, all windows
  int64_t cells_retained = 0; // cells left in the cache at the ends of the windows
  int64_t peak_kv_bytes = 0;  // most K/V bytes held at once in any window
  // 1 - cells retained / ordinary tokens fed, over all windows (0 for a full cache).
  double achieved_ratio() const;
  // Against a reference model (compressed_perplexity with `reference`), llama-perplexity style:
  // the reference's own perplexity on the same tokens, the mean per-token KL divergence
  // KL(p_reference || p) in nats, and how often both put the same token on top.
  bool has_reference = false;
  double reference_nll_sum = 0;
  double kl_sum = 0;
  int64_t top1_agree = 0;
  double reference_ppl() const { return std::exp(reference_nll_sum / static_cast<double>(n_scored)); }
  double mean_kl() const { return kl_sum / static_cast<double>(n_scored); }
  double top1_agreement() const { return static_cast<double>(top1_agree) / static_cast<double>(n_scored); }
  // With PerplexityOptions::per_token, for the scored tokens 1 .. n_tokens - 1 in order: log p(token |
  // what the policy kept of the text before it) [n_scored] float32, whether it was the model's top
  // prediction [n_scored] bool, and with a reference KL(p_reference || p) [n_scored] float32.
  at::Tensor token_logprob, token_greedy, token_kl;
};

// Called after each window with (windows done, windows total).
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

PerplexityResult strided_perplexity(DecoderModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                    const ProgressCallback& progress = {});

// The same windows and scored tokens as strided_perplexity, but each window is read
// incrementally by a fresh Session under `policy`, `chunk` tokens per forward pass (1 = pure
// decoding), compressing as it goes: the perplexity a user of that policy actually gets.
// Throws Error naming the option when the combination cannot be evaluated (a span longer than
// the window, a protected window covering it all, ...). compressed_perplexity calls it first.
void validate_compressed_perplexity(const PerplexityOptions& options, const PolicyOptions& policy, int64_t chunk);

// With `reference`, each window is also read by that model in one plain causal pass (no
// compression; the dense path, e.g. a float32 copy of a quantized model) and compared token by
// token (PerplexityResult's reference fields).
PerplexityResult compressed_perplexity(DecoderModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                       const PolicyOptions& policy, int64_t chunk,
                                       const ProgressCallback& progress = {}, DecoderModel* reference = nullptr);

// -sum log p(continuation | prefix) under the model read plainly (one causal pass, no
// compression): the fluency of a generated continuation as the uncompressed model judges it.
double continuation_nll(DecoderModel& model, std::span<const int32_t> prefix, std::span<const int32_t> continuation);

}  // namespace sentinel
