// H2O (Zhang et al., 2023, "Heavy-Hitter Oracle"): keep a recent window plus the "heavy hitters",
// the older entries that have received the most attention so far (attention_scores.h). Half the
// budget is recent, half heavy (the heavy half takes an odd cell), and the cache never empties,
// so the first token survives start-up. With --older-rank surprisal the older half goes to the
// tokens the model least expected instead (token_surprisal.h), with both half of it each: training-free
// rules of their own.
#pragma once

#include <vector>

#include "sentinel/policies/attention_scores.h"
#include "sentinel/policies/policy.h"
#include "sentinel/policies/token_surprisal.h"

namespace sentinel {

class H2OPolicy final : public CompressionPolicy {
 public:
  explicit H2OPolicy(double ratio, OlderRank rank = OlderRank::Attention) : ratio_(ratio), rank_(rank) {}
  Method method() const override { return Method::H2O; }
  at::Tensor mask(std::span<const CacheCell>, int64_t) const override { return {}; }
  std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index) override;
  bool wants_attention() const override { return rank_ != OlderRank::Surprisal; }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) override { scores_.add(cells, mass); }
  bool wants_surprisal() const override { return rank_ != OlderRank::Attention; }
  void observe_surprisal(int64_t first, const at::Tensor& nll) override { surprisal_.record(first, nll); }
  double attention(int64_t position) const { return scores_.score(position); }  // accumulated attention mass
  double surprisal(int64_t position) const { return surprisal_.at(position); }  // -log p as read, nats
  // What the older tokens are ranked by (the first rank's, with both).
  double score(int64_t position) const {
    return rank_ == OlderRank::Surprisal ? surprisal(position) : attention(position);
  }

 private:
  double ratio_;
  OlderRank rank_;
  AttentionScores scores_;
  TokenSurprisal surprisal_;
};

}  // namespace sentinel
