// The heavy layout's eviction (policy.h, SpanLayout::Heavy): summaries beside heavy hitters.
// After every step the cache shrinks to the budget of the next query, exactly as H2O's does
// (h2o.cpp), but the cells kept outright are the sinks, H2O's recent half and every <CR>; the
// rest of the budget goes to the older tokens with the most accumulated attention.
#include <algorithm>
#include <numeric>

#include "sentinel/policies/sentinel.h"

namespace sentinel {

int64_t SentinelPolicy::heavy_capacity(int64_t n) const {
  // Never empty: at ratio 0.5 the budget after one token leaves room for none (see h2o.cpp).
  return std::max<int64_t>(1, kv_budget(options_.ratio, n + 1) - 1);
}

int64_t SentinelPolicy::heavy_recent(int64_t n) const {
  return std::max(options_.window, heavy_capacity(n) / 2);  // H2O's recent half, its heavy half takes an odd cell
}

std::vector<int64_t> SentinelPolicy::heavy_evictions(std::span<const CacheCell> cells, int64_t next_index) const {
  // <CL> is fed right before its <CR> and read by nothing else: dead once the step is done.
  std::vector<int64_t> dead;
  std::vector<int64_t> scored, recent, summaries, sinks;  // cell indices by what protects them
  const int64_t recent_begin = next_index - heavy_recent(next_index);
  for (size_t i = 0; i < cells.size(); ++i) {
    const CacheCell& c = cells[i];
    const auto index = static_cast<int64_t>(i);
    if (c.kind == CellKind::CompressLeft) dead.push_back(index);
    else if (c.kind == CellKind::CompressRight) summaries.push_back(index);
    else if (c.position < options_.sinks) sinks.push_back(index);
    else if (c.position >= recent_begin) recent.push_back(index);
    else scored.push_back(index);
  }
  const int64_t live = static_cast<int64_t>(cells.size() - dead.size());
  int64_t excess = live - heavy_capacity(next_index);
  if (excess > 0) {
    // What goes first: the older tokens from the bottom of H2O's ranking (highest score first,
    // ties keep the older token); then, only when the protected cells alone overflow the budget
    // (the first few steps, or a ratio whose summaries outgrow it), the oldest of the recent
    // window, the oldest <CR>s, and the sinks from the last one down, so that the first token is
    // the last cell to go.
    std::stable_sort(scored.begin(), scored.end(), [&](int64_t a, int64_t b) {
      return scores_.score(cells[a].position) > scores_.score(cells[b].position);
    });
    std::vector<int64_t> order(scored.rbegin(), scored.rend());
    order.insert(order.end(), recent.begin(), recent.end());
    order.insert(order.end(), summaries.begin(), summaries.end());
    order.insert(order.end(), sinks.rbegin(), sinks.rend());
    for (size_t i = 0; i < order.size() && excess > 0; ++i, --excess) dead.push_back(order[i]);
  }
  std::sort(dead.begin(), dead.end());
  return dead;
}

}  // namespace sentinel
