// H2O (Zhang et al., 2023, "Heavy-Hitter Oracle"): keep a recent window plus the "heavy hitters",
// the older entries that have received the most attention so far (attention_scores.h). Half the
// budget is recent, half heavy (the heavy half takes an odd cell), and the cache never empties,
// so the first token survives start-up. With --older-rank surprisal the older half goes to the
// tokens the model least expected instead, with both half of it to each (older_ranking.h): rules
// of their own, not the published H2O.
#pragma once

#include <vector>

#include "sentinel/policies/older_ranking.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

class H2OPolicy final : public CompressionPolicy {
 public:
  explicit H2OPolicy(double ratio, OlderRank rank = OlderRank::Attention) : ratio_(ratio), rank_(rank), ranking_(rank) {}
  Method method() const override { return Method::H2O; }
  at::Tensor mask(std::span<const CacheCell>, int64_t) const override { return {}; }
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;
  bool wants_attention() const override { return ranking_.wants_attention(); }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) override {
    ranking_.observe_attention(cells, mass);
  }
  bool wants_surprisal() const override { return ranking_.wants_surprisal(); }
  void observe_surprisal(int64_t first, const at::Tensor& nll) override { ranking_.observe_surprisal(first, nll); }
  // What the older tokens are ranked by (the first rank's, with both).
  double score(int64_t position) const {
    return rank_ == OlderRank::Surprisal ? ranking_.surprisal(position) : ranking_.attention(position);
  }

 private:
  double ratio_;
  OlderRank rank_;
  OlderRanking ranking_;
};

}  // namespace sentinel
