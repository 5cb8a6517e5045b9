// Strided perplexity. Each window is an independent causal forward pass (positions restart at
// 0), and only the window's new tokens are projected to logits, which keeps memory at
// O(stride * n_vocab) instead of O(ctx * n_vocab).
#include "sentinel/eval/perplexity.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>

#include "sentinel/core/error.h"

namespace sentinel {

void PerplexityOptions::validate() const {
  check(ctx >= 2, "--ctx must be >= 2, got ", ctx);
  check(stride >= 1 && stride <= ctx, "--stride must be in [1, ctx=", ctx, "], got ", stride);
}

PerplexityResult strided_perplexity(LlamaModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                    const ProgressCallback& progress) {
  options.validate();
  const int64_t n = static_cast<int64_t>(ids.size());
  check(n >= 2, "perplexity needs at least 2 tokens, got ", n);
  c10::InferenceMode inference;
  const auto start = std::chrono::steady_clock::now();
  const auto device = model->embed_tokens->weight.device();
  const at::Tensor all_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong);

  int64_t n_windows = 0;
  for (int64_t begin = 0;; begin += options.stride) {
    ++n_windows;
    if (std::min(begin + options.ctx, n) == n) break;
  }

  PerplexityResult result;
  result.n_tokens = n;
  result.n_windows = n_windows;
  int64_t prev_end = 0, window = 0;
  for (int64_t begin = 0;; begin += options.stride) {
    const int64_t end = std::min(begin + options.ctx, n);
    const int64_t first_scored = std::max(prev_end, begin + 1);  // token index of the first prediction target
    at::Tensor window_ids = all_ids.slice(0, begin, end).unsqueeze(0).to(device);  // [1, L]
    at::Tensor positions = at::arange(end - begin, at::kLong).unsqueeze(0).to(device);
    at::Tensor hidden = model->forward({window_ids, positions, {}}).hidden[0];  // [L, n_embd]
    // hidden at index i predicts token i + 1 of the window.
    at::Tensor predictors = hidden.slice(0, first_scored - 1 - begin, end - 1 - begin);
    at::Tensor targets = all_ids.slice(0, first_scored, end).to(device);
    at::Tensor log_probs = model->logits(predictors).log_softmax(-1);  // [n_new, n_vocab] f32
    result.nll_sum -= log_probs.gather(1, targets.unsqueeze(1)).sum().item<double>();
    result.n_scored += end - first_scored;
    prev_end = end;
    if (progress) progress(++window, n_windows);
    if (end == n) break;
  }
  result.ppl = std::exp(result.nll_sum / static_cast<double>(result.n_scored));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace sentinel
