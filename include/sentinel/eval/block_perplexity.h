// Perplexity in the paper's setting (docs/method.md sections 5 and 8): the text laid out in fixed
// blocks with the method's spans or mask (TrainData, exactly as in training), each block read by
// one masked forward pass, loss on ordinary tokens only. Nothing is evicted here: the mask alone
// decides what each query sees, so the compression achieved is measured on the mask. The
// streaming counterpart, where a Session really evicts, is compressed_perplexity (perplexity.h).
#pragma once

#include <cstdint>

#include "sentinel/eval/perplexity.h"
#include "sentinel/model/decoder.h"
#include "sentinel/train/data.h"

namespace sentinel {

struct BlockPerplexityResult {
  double ppl = 0;            // exp(nll_sum / n_scored)
  double nll_sum = 0;        // natural-log negative log-likelihood over the scored tokens
  int64_t n_scored = 0;      // ordinary tokens predicted (labels of the blocks)
  int64_t n_blocks = 0;
  // Over every scored query: KV entries it may attend (sentinels included) and entries a plain
  // causal pass over the block's ordinary tokens would let it attend.
  int64_t entries_visible = 0;
  int64_t entries_causal = 0;
  double seconds = 0;
  // 1 - entries_visible / entries_causal: the fraction of the context each prediction goes without.
  double achieved_ratio() const;
  // Mean KV entries a scored query attends.
  double mean_entries_visible() const;
};

// Reads every block of `data`, `batch` blocks per forward pass, without gradients.
BlockPerplexityResult block_perplexity(DecoderModel& model, const TrainData& data, int64_t batch,
                                       const ProgressCallback& progress = {});

}  // namespace sentinel
