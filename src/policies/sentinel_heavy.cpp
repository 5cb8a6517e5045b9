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

namespace {

// Which `count` of the cells at `positions` (ascending, strictly inside (lo, hi)) to drop so that
// the rest stay evenly spread over [lo, hi], as strided's older tokens are: again and again, the
// cell whose neighbours lie closest together goes (the densest place), the newer one on a tie, so
// that tokens just out of the window thin out to the spacing of the older ones instead of the
// older ones thinning further. Returns indices into `positions`. O(n * count); n is the older
// cells of one cache, count the tokens of one step.
std::vector<size_t> thin_evenly(const std::vector<int64_t>& positions, int64_t lo, int64_t hi, size_t count) {
  const size_t n = positions.size();
  std::vector<size_t> prev(n), next(n);  // neighbours among the survivors; n = the bound
  for (size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? n : i - 1;
    next[i] = i + 1;
  }
  auto at = [&](size_t i, int64_t bound) { return i == n ? bound : positions[i]; };
  std::vector<bool> gone(n, false);
  std::vector<size_t> dropped;
  for (size_t round = 0; round < count && round < n; ++round) {
    size_t densest = n;
    int64_t best = 0;
    for (size_t i = 0; i < n; ++i) {
      if (gone[i]) continue;
      const int64_t spread = at(next[i], hi) - at(prev[i], lo);
      if (densest == n || spread <= best) densest = i, best = spread;
    }
    gone[densest] = true;
    dropped.push_back(densest);
    if (prev[densest] != n) next[prev[densest]] = next[densest];
    if (next[densest] != n) prev[next[densest]] = prev[densest];
  }
  return dropped;
}

}  // namespace

std::vector<int64_t> SentinelPolicy::older_evictions(std::span<const CacheCell> cells, const std::vector<int64_t>& older,
                                                     int64_t count, int64_t recent_begin) const {
  // The survivors: a share of them (stride_share) spread evenly over the older tokens, the rest
  // the tokens with the highest score (older_rank: H2O's heavy hitters, the tokens the model least
  // expected, or half of each; ties keep the older token). The ranked tokens are chosen first, from
  // every older token, the heavy hitters before the surprising ones; the even share from what they
  // leave.
  const auto keep = static_cast<int64_t>(older.size()) - count;
  const auto n_even = static_cast<int64_t>(std::llround(options_.stride_share * static_cast<double>(keep)));
  std::vector<int64_t> rest = ranking_.unranked(cells, older, keep - n_even);  // ascending = position order
  if (n_even == 0) return rest;
  std::vector<int64_t> positions;
  for (int64_t index : rest) positions.push_back(cells[index].position);
  std::vector<int64_t> dead;
  for (size_t i : thin_evenly(positions, options_.sinks - 1, recent_begin, rest.size() - n_even)) dead.push_back(rest[i]);
  return dead;
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
    // What goes first: older tokens, until the budget is met or none is left (see older_evictions);
    // then, only when the protected cells alone overflow the budget (the first few steps, or a
    // ratio whose summaries outgrow it), the oldest of the recent window, the oldest <CR>s, and
    // the sinks from the last one down, so that the first token is the last cell to go.
    const int64_t from_older = std::min<int64_t>(excess, static_cast<int64_t>(scored.size()));
    for (int64_t index : older_evictions(cells, scored, from_older, recent_begin)) dead.push_back(index);
    excess -= from_older;
    std::vector<int64_t> order(recent);
    order.insert(order.end(), summaries.begin(), summaries.end());
    order.insert(order.end(), sinks.rbegin(), sinks.rend());
    for (size_t i = 0; i < order.size() && excess > 0; ++i, --excess) dead.push_back(order[i]);
  }
  std::sort(dead.begin(), dead.end());
  return dead;
}

}  // namespace sentinel
