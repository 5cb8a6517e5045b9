// Sentinel span scheduling, masking and eviction. The mask is the pure rule of sentinel_mask();
// this file decides where <CL>/<CR> go and drops a span's cells once its <CR> is in the cache.
#include "sentinel/policies/sentinel.h"

#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/policies/mask.h"

namespace sentinel {

SentinelPolicy::SentinelPolicy(const PolicyOptions& options) : options_(options), ranking_(options.older_rank) {
  options_.validate();
  if (options_.spans.empty() && options_.ratio > 0)
    period_ = options_.layout == SpanLayout::Periodic ? static_cast<double>(options_.span - 1) / options_.ratio
                                                      : static_cast<double>(options_.span);
}

std::optional<Span> SentinelPolicy::span(int64_t k) const {
  if (!options_.spans.empty()) {
    if (k >= static_cast<int64_t>(options_.spans.size())) return std::nullopt;
    return options_.spans[k];
  }
  if (period_ <= 0) return std::nullopt;
  if (options_.layout != SpanLayout::Periodic) {
    const int64_t begin = options_.sinks + k * options_.span;
    return Span{begin, begin + options_.span};
  }
  const int64_t begin = static_cast<int64_t>(std::floor(static_cast<double>(k) * period_));
  return Span{begin, begin + options_.span};
}

bool SentinelPolicy::closes_after(int64_t k, const Span& s, int64_t index) const {
  if (!options_.spans.empty()) return s.end - 1 == index;
  if (options_.layout == SpanLayout::Periodic) return s.end - 1 + options_.window == index;
  // Heavy: as soon as the span lies wholly before the recent window of the next query.
  if (options_.layout == SpanLayout::Heavy) return s.end <= index + 1 - heavy_recent(index + 1);
  // Stream: fed already, outside the window floor, and needed so that the next query (index + 1)
  // sees no more than the budget of index + 2 tokens. k spans closed leave index + 1 - k (L - 1)
  // entries plus the next query itself.
  if (s.end - 1 + options_.window > index) return false;
  const int64_t seen_by_next = index + 2 - k * (options_.span - 1);
  return seen_by_next > kv_budget(options_.ratio, index + 2);
}

Element SentinelPolicy::sentinel(int32_t id, CellKind kind, int64_t position, int64_t k) const {
  return Element{id, CacheCell{position, kind, static_cast<int32_t>(k)}, -1};
}

std::vector<Element> SentinelPolicy::expand(std::span<const int32_t> tokens, int64_t first_index) {
  check(first_index == next_index_, "sentinel policy: expected ordinary index ", next_index_, ", got ", first_index,
        " (tokens must be fed in order, once)");
  const bool explicit_spans = !options_.spans.empty();
  std::vector<Element> out;
  out.reserve(tokens.size() + 2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t index = first_index + static_cast<int64_t>(i);
    // In-stream <CL> for an explicit span starting here; it takes the previous token's id.
    if (explicit_spans) {
      if (auto s = span(next_open_); s && s->begin == index) {
        out.push_back(sentinel(options_.cl_id, CellKind::CompressLeft, std::max<int64_t>(index - 1, 0), next_open_));
        ++next_open_;
      }
    }
    while (auto s = span(next_member_)) {
      if (s->end > index) break;
      ++next_member_;
    }
    int32_t member = -1;
    if (auto s = span(next_member_); s && s->begin <= index) member = static_cast<int32_t>(next_member_);
    out.push_back(Element{tokens[i], CacheCell{index, CellKind::Ordinary, member}, index});
    // Close every span whose time has come. A scheduled span gets its <CL> here too: <CL> sees
    // only itself, so its K/V do not depend on when it is fed (method.md section 6).
    while (auto s = span(next_close_)) {
      if (!closes_after(next_close_, *s, index)) break;
      if (!explicit_spans)
        out.push_back(sentinel(options_.cl_id, CellKind::CompressLeft, std::max<int64_t>(s->begin - 1, 0), next_close_));
      out.push_back(sentinel(options_.cr_id, CellKind::CompressRight, s->end - 1, next_close_));
      closing_.insert(static_cast<int32_t>(next_close_));
      ++next_close_;
    }
  }
  next_index_ = first_index + static_cast<int64_t>(tokens.size());
  return out;
}

int64_t SentinelPolicy::lowest_query_position(int64_t next_index) const {
  // Sentinels still to come take their span's positions however late they are fed: the <CL> the
  // one before its first token (in-stream, that is next_index - 1), the <CR> its last.
  const std::optional<Span> s = span(next_close_);
  return std::max<int64_t>(std::min(next_index, s ? s->begin : next_index) - 1, 0);
}

at::Tensor SentinelPolicy::mask(std::span<const CacheCell> cells, int64_t n_new) const {
  return sentinel_mask(cells, n_new, heavy() ? ClosedSpans::Visible : ClosedSpans::Hidden);
}

std::vector<int64_t> SentinelPolicy::evictions(std::span<const CacheCell> cells, int64_t next_index) {
  if (heavy()) {
    closing_.clear();  // a closed span's tokens are evicted by score, not for being closed
    return heavy_evictions(cells, next_index);
  }
  std::vector<int64_t> dead;
  if (closing_.empty()) return dead;
  for (size_t i = 0; i < cells.size(); ++i)
    if (cells[i].kind != CellKind::CompressRight && closing_.count(cells[i].span) > 0)
      dead.push_back(static_cast<int64_t>(i));
  closing_.clear();
  return dead;
}

}  // namespace sentinel
