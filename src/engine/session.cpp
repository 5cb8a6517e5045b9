// Session: chunked incremental forward passes over a KV cache, with the policy's plan applied
// after every pass (commit the new cells, then evict what no later query can see).
#include "sentinel/engine/session.h"

#include <algorithm>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel {

double CompressionStats::achieved_ratio() const {
  return ordinary_seen > 0 ? 1.0 - static_cast<double>(cells_in_use) / static_cast<double>(ordinary_seen) : 0.0;
}

Session::Session(LlamaModel model, const KvCacheOptions& cache_options, const PolicyOptions& policy)
    : model_(std::move(model)), cache_(model_->config(), cache_options), policy_options_(policy),
      policy_(make_policy(policy)) {}

void Session::reset() {
  cache_.clear();
  policy_ = make_policy(policy_options_);
  stats_ = {};
  next_position_ = 0;
}

namespace {

// [1, T] int64 tensors of ids and positions.
std::pair<at::Tensor, at::Tensor> ids_and_positions(std::span<const int32_t> ids, std::span<const CacheCell> cells) {
  const int64_t T = static_cast<int64_t>(ids.size());
  at::Tensor id_tensor = at::empty({1, T}, at::kLong);
  at::Tensor position_tensor = at::empty({1, T}, at::kLong);
  int64_t* id_data = id_tensor.data_ptr<int64_t>();
  int64_t* position_data = position_tensor.data_ptr<int64_t>();
  for (int64_t i = 0; i < T; ++i) {
    id_data[i] = ids[i];
    position_data[i] = cells[i].position;
  }
  return {id_tensor, position_tensor};
}

}  // namespace

at::Tensor Session::step(std::span<const int32_t> tokens, std::span<const CacheCell> cells, const at::Tensor& mask) {
  check(tokens.size() == cells.size(), "step: ", tokens.size(), " tokens but ", cells.size(), " cells");
  const auto device = model_->embed_tokens->weight.device();
  auto [ids, positions] = ids_and_positions(tokens, cells);
  ForwardInput input{ids.to(device), positions.to(device), mask.defined() ? mask.to(device) : mask};
  at::Tensor hidden = model_->forward(input, &cache_).hidden;  // [1, T, n_embd]
  cache_.commit(cells);
  return hidden[0];
}

at::Tensor Session::feed(std::span<const Element> elements) {
  const int64_t T = static_cast<int64_t>(elements.size());
  std::vector<int32_t> ids(T);
  std::vector<CacheCell> cells(cache_.cells());  // cached cells, then the new ones
  cells.reserve(cache_.size() + T);
  for (const Element& e : elements) {
    ids[&e - elements.data()] = e.id;
    cells.push_back(e.cell);
    if (e.ordinary_index < 0) ++stats_.sentinels_fed;
  }
  const std::span<const CacheCell> new_cells(cells.data() + cache_.size(), T);
  const at::Tensor mask = policy_->mask(cells, T);  // [1, T, S] or undefined

  const auto device = model_->embed_tokens->weight.device();
  auto [id_tensor, positions] = ids_and_positions(ids, new_cells);
  ForwardInput input{id_tensor.to(device), positions.to(device), mask.defined() ? mask.to(device) : mask,
                     policy_->wants_attention()};
  ForwardOutput out = model_->forward(input, &cache_);
  cache_.commit(new_cells);

  stats_.peak_cells = std::max(stats_.peak_cells, cache_.size());
  stats_.peak_bytes = std::max(stats_.peak_bytes, cache_.bytes_in_use());
  if (policy_->wants_attention()) policy_->observe_attention(cache_.cells(), out.attention_mass);
  return out.hidden[0];
}

at::Tensor Session::append(std::span<const int32_t> tokens, Logits which, int64_t chunk) {
  check(chunk > 0, "chunk size must be > 0, got ", chunk);
  std::vector<at::Tensor> all_logits;
  at::Tensor last;
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(chunk)) {
    const size_t n = std::min(tokens.size() - begin, static_cast<size_t>(chunk));
    const std::vector<Element> elements = policy_->expand(tokens.subspan(begin, n), next_position_);
    at::Tensor hidden = feed(elements);  // [T, n_embd], T = n + sentinels
    next_position_ += static_cast<int64_t>(n);
    stats_.ordinary_seen = next_position_;

    const std::vector<int64_t> dead = policy_->evictions(cache_.cells(), next_position_);
    cache_.evict(dead);
    stats_.cells_evicted += static_cast<int64_t>(dead.size());
    stats_.cells_in_use = cache_.size();

    if (which == Logits::None) continue;
    // Rows of the ordinary tokens; sentinel rows produce no logits (method.md section 2).
    std::vector<int64_t> rows;
    for (size_t i = 0; i < elements.size(); ++i)
      if (elements[i].ordinary_index >= 0) rows.push_back(static_cast<int64_t>(i));
    if (which == Logits::All) {
      const bool all_ordinary = rows.size() == elements.size();
      at::Tensor ordinary = all_ordinary ? hidden : hidden.index_select(0, at::tensor(rows, at::kLong).to(hidden.device()));
      all_logits.push_back(model_->logits(ordinary));
    } else if (begin + n == tokens.size()) {
      last = model_->logits(hidden[rows.back()]);
    }
  }
  if (which == Logits::All) return all_logits.empty() ? at::Tensor() : at::cat(all_logits, 0);
  return last;
}

}  // namespace sentinel
