// Perplexity over fixed masked blocks (the paper's evaluation setting).
#include "sentinel/eval/block_perplexity.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "sentinel/core/error.h"
#include "sentinel/train/trainer.h"

namespace sentinel {

double BlockPerplexityResult::achieved_ratio() const {
  return entries_causal > 0 ? 1.0 - static_cast<double>(entries_visible) / static_cast<double>(entries_causal) : 0.0;
}

double BlockPerplexityResult::mean_entries_visible() const {
  return n_scored > 0 ? static_cast<double>(entries_visible) / static_cast<double>(n_scored) : 0.0;
}

BlockPerplexityResult block_perplexity(DecoderModel& model, const TrainData& data, int64_t batch,
                                       const ProgressCallback& progress) {
  check(batch >= 1, "--batch must be >= 1, got ", batch);
  c10::InferenceMode inference;
  const auto start = std::chrono::steady_clock::now();
  BlockPerplexityResult result;
  result.n_blocks = data.n_blocks();
  for (int64_t first = 0; first < data.n_blocks(); first += batch) {
    std::vector<int64_t> indices(std::min(batch, data.n_blocks() - first));
    std::iota(indices.begin(), indices.end(), first);
    const TrainBatch b = data.batch(indices);
    // lm_loss is the mean over the batch's targets: scaled back to a sum, summed over batches.
    result.nll_sum += lm_loss(model, b).item<double>() * static_cast<double>(b.n_targets);
    result.n_scored += b.n_targets;
    // The visibility of each scored query, and its causal context: the ordinary tokens up to it.
    const at::Tensor scored = b.labels.ne(kIgnoreLabel);                                  // [B, N]
    const at::Tensor ordinary = b.ids.lt(static_cast<int64_t>(model->config().n_vocab));  // [B, N]
    const at::Tensor causal = ordinary.to(at::kLong).cumsum(1);                           // [B, N]
    result.entries_visible += b.mask.sum(2).masked_select(scored).sum().item<int64_t>();
    result.entries_causal += causal.masked_select(scored).sum().item<int64_t>();
    if (progress) progress(first + static_cast<int64_t>(indices.size()), data.n_blocks());
  }
  check(result.n_scored > 0, "the evaluation blocks hold no token to predict");
  result.ppl = std::exp(result.nll_sum / static_cast<double>(result.n_scored));
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace sentinel
