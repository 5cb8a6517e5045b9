// What the policies that read while they evict (h2o, sentinel's heavy layout) rank older tokens
// by (policy.h: OlderRank): the attention each drew (attention_scores.h), the surprisal the model
// gave it (token_surprisal.h), or half the ranked room each. One object per policy holds both
// records and picks the survivors, so the two policies rank alike.
#pragma once

#include <span>
#include <vector>

#include "sentinel/policies/attention_scores.h"
#include "sentinel/policies/policy.h"
#include "sentinel/policies/token_surprisal.h"

namespace sentinel {

// Of n_ranked older cells kept by score, how many the attention rank picks (the rest: surprisal).
int64_t ranked_by_attention(OlderRank rank, int64_t n_ranked);

class OlderRanking {
 public:
  explicit OlderRanking(OlderRank rank) : rank_(rank) {}
  bool wants_attention() const { return rank_ != OlderRank::Surprisal; }
  bool wants_surprisal() const { return rank_ != OlderRank::Attention; }
  void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) { attention_.add(cells, mass); }
  void observe_surprisal(int64_t first, const at::Tensor& nll) { surprisal_.record(first, nll); }
  double attention(int64_t position) const { return attention_.score(position); }  // accumulated mass
  double surprisal(int64_t position) const { return surprisal_.at(position); }      // -log p as read, nats

  // Keeps the n_keep best of `candidates` (indices into `cells`, ascending): the heavy hitters
  // first, then the most surprising of what they leave, highest score first, ties keeping the
  // older token. Returns the candidates not kept, ascending.
  std::vector<int64_t> unranked(std::span<const CacheCell> cells, std::vector<int64_t> candidates,
                                int64_t n_keep) const;

 private:
  OlderRank rank_;
  AttentionScores attention_;
  TokenSurprisal surprisal_;
};

}  // namespace sentinel
