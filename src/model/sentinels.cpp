// Sentinel token ids and their embedding rows.
#include "sentinel/model/sentinels.h"

#include "sentinel/core/error.h"

namespace sentinel {

SentinelTokens sentinel_tokens(const ModelConfig& config) {
  return SentinelTokens{static_cast<int32_t>(config.n_vocab), static_cast<int32_t>(config.n_vocab + 1)};
}

at::Tensor initial_sentinel_embeddings(DecoderModel& model) {
  at::NoGradGuard no_grad;
  at::Tensor mean;  // [n_embd]
  if (!model->is_quantized()) {
    mean = model->embed_tokens->weight.to(at::kFloat).mean(0);
  } else {  // summed in slices, so the table is never dense all at once
    const int64_t n = model->config().n_vocab, slice = 4096;
    at::Tensor sum = at::zeros({model->config().n_embd}, at::kDouble);
    for (int64_t b = 0; b < n; b += slice) sum += model->embedding_rows(b, std::min(n, b + slice)).to(at::kDouble).sum(0);
    mean = (sum / static_cast<double>(n)).to(at::kFloat);
  }
  return mean.unsqueeze(0).repeat({2, 1});                                  // [2, n_embd]
}

void install_sentinels(DecoderModel& model, const at::Tensor& rows) {
  const at::Tensor sentinel_rows = rows.defined() ? rows : initial_sentinel_embeddings(model);
  check(sentinel_rows.dim() == 2 && sentinel_rows.size(0) == 2, "sentinel embeddings must be [2, n_embd], got ",
        sentinel_rows.sizes());
  model->set_extra_embeddings(sentinel_rows.to(model->dtype()));
}

}  // namespace sentinel
