// H2O eviction: after each step, shrink the cache to the budget of the next query, keeping the
// most recent half and the highest-scoring half of the rest (the heavy half takes the rounding).
#include "sentinel/policies/h2o.h"

#include <algorithm>
#include <numeric>

#include "sentinel/core/error.h"
#include "sentinel/policies/scored.h"

namespace sentinel {

std::vector<int64_t> H2OPolicy::evictions(std::span<const CacheCell> cells, int64_t next_index) {
  // The next query sees the cache plus itself: the cache may hold budget - 1 cells. Never fewer
  // than one: at ratio 0.5 the budget after one token leaves room for none, and evicting the
  // first token there would throw away the attention sink every later query leans on (H2O read
  // one token per pass scored 27.7 instead of 22.4 on Alice for that alone). The cache still
  // holds at most kv_budget(ratio, n) cells after n tokens; only the very first query sees one
  // entry more than its budget.
  const int64_t capacity = cells_kept_for_next_query(ratio_, next_index);
  const int64_t n = static_cast<int64_t>(cells.size());
  if (n <= capacity) return {};
  // The heavy half takes the rounding: with room for one cell that cell is the heaviest token
  // (at start-up, the sink), not the most recent one, which the next query barely needs beside
  // itself.
  const int64_t n_heavy = (capacity + 1) / 2;
  const int64_t n_recent = capacity - n_heavy;
  // Cells are in feeding order: the last n_recent are the recent window; the rest are ranked.
  std::vector<int64_t> older(n - n_recent);
  std::iota(older.begin(), older.end(), 0);
  return ranking_.unranked(cells, std::move(older), n_heavy);
}

}  // namespace sentinel
