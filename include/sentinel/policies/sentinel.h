// Sentinel compression (docs/method.md sections 2-6): spans of ordinary tokens are closed by a
// <CR> whose K/V summarise them, then the span and its <CL> leave the cache in every layer.
// Spans are either named by the caller (in-stream: <CL> before the span, <CR> right after it) or
// scheduled (its <CL> and <CR> fed together when it is compressed), in one of two layouts
// (policy.h: SpanLayout): stream, after the attention sinks, each span compressed as the budget
// pushes it out of the raw recent window; or periodic, the paper setting's spans every
// P = (L - 1) / ratio tokens from the first one, compressed once older than `window`; or heavy,
// stream's spans beside H2O's heavy hitters, where eviction reads accumulated attention.
#pragma once

#include <unordered_set>

#include "sentinel/policies/older_ranking.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

class SentinelPolicy final : public CompressionPolicy {
 public:
  explicit SentinelPolicy(const PolicyOptions& options);
  Method method() const override { return Method::Sentinel; }
  std::vector<Element> expand(std::span<const int32_t> tokens, int64_t first_index) override;
  at::Tensor mask(std::span<const CacheCell> cells, int64_t n_new) const override;
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;
  int64_t lowest_query_position(int64_t next_index) const override;
  bool wants_attention() const override { return heavy() && ranking_.wants_attention(); }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) override {
    ranking_.observe_attention(cells, mass);
  }
  bool wants_surprisal() const override { return heavy() && ranking_.wants_surprisal(); }
  void observe_surprisal(int64_t first, const at::Tensor& nll) override { ranking_.observe_surprisal(first, nll); }

  // Span k (explicit, or the scheduler's k-th); nullopt past the last explicit span or at ratio 0.
  std::optional<Span> span(int64_t k) const;

  // Heavy layout: the cells the cache may hold once n ordinary tokens are in (the next query sees
  // them plus itself: the budget of n + 1 tokens), and the raw recent window among them, H2O's
  // recent half (at least --window).
  int64_t heavy_capacity(int64_t n) const;
  int64_t heavy_recent(int64_t n) const;

 private:
  bool heavy() const { return options_.spans.empty() && options_.layout == SpanLayout::Heavy; }
  std::vector<int64_t> heavy_evictions(std::span<const CacheCell> cells, int64_t next_index) const;
  // Of the heavy layout's older cells (indices into `cells`, ascending), the `count` to evict.
  std::vector<int64_t> older_evictions(std::span<const CacheCell> cells, const std::vector<int64_t>& older,
                                       int64_t count, int64_t recent_begin) const;
  // Is span k's <CR> fed right after ordinary index `index`? (Asked in order, k = next_close_.)
  bool closes_after(int64_t k, const Span& span, int64_t index) const;
  Element sentinel(int32_t id, CellKind kind, int64_t position, int64_t k) const;

  PolicyOptions options_;
  double period_ = 0;            // scheduler: ordinary tokens per span period (0: no scheduled spans)
  int64_t next_index_ = 0;       // ordinary index expand() expects next
  int64_t next_member_ = 0;      // first span that may still contain next_index_
  int64_t next_open_ = 0;        // explicit: first span whose <CL> is not fed yet
  int64_t next_close_ = 0;       // first span whose <CR> is not fed yet
  std::unordered_set<int32_t> closing_;  // spans whose <CR> was fed and whose cells await eviction
  OlderRanking ranking_;                 // heavy layout: what eviction ranks older tokens by
};

}  // namespace sentinel
