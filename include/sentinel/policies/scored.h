// A policy whose evictions are decided by a scorer its caller supplies (the Python API's Policy
// class): after every forward pass, when the cache holds more cells than the next query's budget
// leaves room for, the scorer gives each cached cell a score and the engine keeps the highest,
// evicting the rest from every layer, so memory is really freed. The budget is H2O's (h2o.h): the
// next query sees the cache plus itself, so the cache keeps max(1, kv_budget(ratio, n + 1) - 1)
// cells. No mask: tokens of one pass see each other in full, as with H2O.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <span>

#include "sentinel/policies/policy.h"

namespace sentinel {

// What a scorer sees when the engine must evict.
struct ScoreRequest {
  std::span<const CacheCell> cells;  // [n] the committed cells, in feeding order
  const KvCache* cache = nullptr;    // their keys and values: KvCache::keys(layer, n)
  int64_t keep = 0;                  // cells that stay (< n)
  int64_t next_index = 0;            // ordinary tokens read so far
};

// Returns [n] scores (any real dtype); the `keep` highest stay, ties to the older cell.
using CellScorer = std::function<at::Tensor(const ScoreRequest&)>;
// Called after every pass with the committed cells and the attention mass each received in that
// pass (summed over layers, heads and the pass's queries: [cells.size()] float32).
using AttentionObserver = std::function<void(std::span<const CacheCell>, const at::Tensor&)>;

class ScoredPolicy final : public CompressionPolicy {
 public:
  // `observe` may be empty: the policy then asks for no attention (which costs an explicit softmax).
  ScoredPolicy(double ratio, CellScorer score, AttentionObserver observe = {}, Method method = Method::Custom);
  Method method() const override { return method_; }
  void attach(const KvCache* cache) override { cache_ = cache; }
  at::Tensor mask(std::span<const CacheCell>, int64_t) const override { return {}; }
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;
  bool wants_attention() const override { return static_cast<bool>(observe_); }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) override { observe_(cells, mass); }

 private:
  Method method_;
  double ratio_;
  CellScorer score_;
  AttentionObserver observe_;
  const KvCache* cache_ = nullptr;
};

// Cells the cache keeps after n_read ordinary tokens: what ScoredPolicy and H2O leave for the next query.
int64_t cells_kept_for_next_query(double ratio, int64_t n_read);

// TOVA (Oren et al., 2024, "Transformers are Multi-State RNNs"): keep the entries the newest
// queries attended to most, with H2O's budget. The score of an entry is the attention it received
// in the last forward pass, summed over layers, heads and the pass's queries (TOVA's is per layer
// and averaged over heads, for the newest query alone: ours is one set of cells for every layer,
// and read one token per pass the pass's query is the newest). Ties keep the older entry.
std::unique_ptr<CompressionPolicy> make_tova_policy(double ratio);

}  // namespace sentinel
