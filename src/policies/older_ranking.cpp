// Ranking older tokens by attention, surprisal or both (older_ranking.h).
#include "sentinel/policies/older_ranking.h"

#include <algorithm>

namespace sentinel {

int64_t ranked_by_attention(OlderRank rank, int64_t n_ranked) {
  switch (rank) {
    case OlderRank::Attention: return n_ranked;
    case OlderRank::Surprisal: return 0;
    case OlderRank::Both: return (n_ranked + 1) / 2;
  }
  return n_ranked;
}

std::vector<int64_t> OlderRanking::unranked(std::span<const CacheCell> cells, std::vector<int64_t> candidates,
                                            int64_t n_keep) const {
  auto keep_highest = [&](int64_t n, auto score_of) {
    if (n <= 0) return;
    std::stable_sort(candidates.begin(), candidates.end(), [&](int64_t a, int64_t b) {
      return score_of(cells[a].position) > score_of(cells[b].position);
    });
    candidates.erase(candidates.begin(), candidates.begin() + n);
    std::sort(candidates.begin(), candidates.end());
  };
  const int64_t by_attention = ranked_by_attention(rank_, n_keep);
  keep_highest(by_attention, [this](int64_t p) { return attention(p); });
  keep_highest(n_keep - by_attention, [this](int64_t p) { return surprisal(p); });
  return candidates;
}

}  // namespace sentinel
