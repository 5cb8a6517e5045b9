// Sentinel compression (docs/method.md sections 2-6): spans of ordinary tokens are closed by a
// <CR> whose K/V summarise them, then the span and its <CL> leave the cache in every layer.
// Spans are either named by the caller (in-stream: <CL> before the span, <CR> right after it) or
// scheduled: span k covers [floor(k * P), floor(k * P) + L) with P = (L - 1) / ratio, so that at
// steady state the fraction of entries removed is `ratio`, and it is compressed (its <CL> and
// <CR> fed together) once it is older than the protected recent window.
#pragma once

#include <unordered_set>

#include "sentinel/policies/policy.h"

namespace sentinel {

class SentinelPolicy final : public CompressionPolicy {
 public:
  explicit SentinelPolicy(const PolicyOptions& options);
  Method method() const override { return Method::Sentinel; }
  std::vector<Element> expand(std::span<const int32_t> tokens, int64_t first_index) override;
  at::Tensor mask(std::span<const CacheCell> cells, int64_t n_new) const override;
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;

  // Span k (explicit, or the scheduler's k-th); nullopt past the last explicit span or at ratio 0.
  std::optional<Span> span(int64_t k) const;

 private:
  // Ordinary index after which span k's <CR> is fed.
  int64_t close_after(const Span& span) const;
  Element sentinel(int32_t id, CellKind kind, int64_t position, int64_t k) const;

  PolicyOptions options_;
  double period_ = 0;            // scheduler: ordinary tokens per span period, P
  int64_t next_index_ = 0;       // ordinary index expand() expects next
  int64_t next_member_ = 0;      // first span that may still contain next_index_
  int64_t next_open_ = 0;        // explicit: first span whose <CL> is not fed yet
  int64_t next_close_ = 0;       // first span whose <CR> is not fed yet
  std::unordered_set<int32_t> closing_;  // spans whose <CR> was fed and whose cells await eviction
};

}  // namespace sentinel
