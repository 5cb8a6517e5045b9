// H2O (Zhang et al., 2023, "Heavy-Hitter Oracle"): keep a recent window plus the "heavy hitters",
// the older entries that have received the most attention so far (attention_scores.h). Half the
// budget is recent, half heavy (the heavy half takes an odd cell), and the cache never empties,
// so the first token survives start-up.
#pragma once

#include <vector>

#include "sentinel/policies/attention_scores.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

class H2OPolicy final : public CompressionPolicy {
 public:
  explicit H2OPolicy(double ratio) : ratio_(ratio) {}
  Method method() const override { return Method::H2O; }
  at::Tensor mask(std::span<const CacheCell>, int64_t) const override { return {}; }
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;
  bool wants_attention() const override { return true; }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) override { scores_.add(cells, mass); }
  double score(int64_t position) const { return scores_.score(position); }  // accumulated attention mass

 private:
  double ratio_;
  AttentionScores scores_;
};

}  // namespace sentinel
