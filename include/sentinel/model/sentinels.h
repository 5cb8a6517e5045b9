// The two sentinel tokens of docs/method.md section 2: <CL> = n_vocab and <CR> = n_vocab + 1,
// input-embedding rows appended after the base vocabulary. The tokenizer never produces them and
// the LM head never predicts them.
#pragma once

#include <ATen/ATen.h>

#include "sentinel/model/decoder.h"

namespace sentinel {

struct SentinelTokens {
  int32_t cl = -1;  // <CL>, opens a span
  int32_t cr = -1;  // <CR>, closes it and keeps its summary
};

SentinelTokens sentinel_tokens(const ModelConfig& config);

// The embeddings sentinels start from when no adapter gives them: both rows the mean of the
// base input embeddings ([2, n_embd] f32). The mean is an in-distribution input that favours no
// particular token, the usual start for new vocabulary rows (Hewitt, 2021; transformers'
// resize_token_embeddings(mean_resizing=True) adds noise to it, we keep it exact so runs repeat).
at::Tensor initial_sentinel_embeddings(DecoderModel& model);

// Installs sentinel rows (or the initial ones when `rows` is undefined) as the model's extra
// embeddings; rows: [2, n_embd].
void install_sentinels(DecoderModel& model, const at::Tensor& rows = {});

}  // namespace sentinel
