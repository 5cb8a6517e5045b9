// Session: chunked incremental forward passes over a KV cache.
#include "sentinel/engine/session.h"

#include <algorithm>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel {

Session::Session(LlamaModel model, const KvCacheOptions& cache_options)
    : model_(std::move(model)), cache_(model_->config(), cache_options) {}

void Session::reset() {
  cache_.clear();
  next_position_ = 0;
}

at::Tensor Session::step(std::span<const int32_t> tokens, std::span<const CacheCell> cells, const at::Tensor& mask) {
  check(tokens.size() == cells.size(), "step: ", tokens.size(), " tokens but ", cells.size(), " cells");
  const int64_t T = static_cast<int64_t>(tokens.size());
  const auto device = model_->embed_tokens->weight.device();
  at::Tensor ids = at::empty({1, T}, at::kLong);
  at::Tensor positions = at::empty({1, T}, at::kLong);
  for (int64_t i = 0; i < T; ++i) {
    ids[0][i] = tokens[i];
    positions[0][i] = cells[i].position;
  }
  ForwardInput input{ids.to(device), positions.to(device), mask};
  at::Tensor hidden = model_->forward(input, &cache_).hidden;  // [1, T, n_embd]
  cache_.commit(cells);
  return hidden[0];
}

at::Tensor Session::append(std::span<const int32_t> tokens, Logits which, int64_t chunk) {
  check(chunk > 0, "chunk size must be > 0, got ", chunk);
  std::vector<at::Tensor> all_logits;
  at::Tensor last;
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(chunk)) {
    const size_t n = std::min(tokens.size() - begin, static_cast<size_t>(chunk));
    std::vector<CacheCell> cells(n);
    for (size_t i = 0; i < n; ++i) cells[i] = CacheCell{next_position_ + static_cast<int64_t>(i), CellKind::Ordinary, 0};
    at::Tensor hidden = step(tokens.subspan(begin, n), cells);  // [n, n_embd]
    next_position_ += static_cast<int64_t>(n);
    if (which == Logits::All) all_logits.push_back(model_->logits(hidden));
    if (which == Logits::Last && begin + n == tokens.size()) last = model_->logits(hidden[n - 1]);
  }
  if (which == Logits::All) return all_logits.empty() ? at::Tensor() : at::cat(all_logits, 0);
  return last;
}

}  // namespace sentinel
