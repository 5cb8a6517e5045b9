// Building a step's visibility mask from a per-pair rule over cache cells. Keys are the cached
// cells followed by the new ones; a query sees itself always and never a later cell (causality).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <span>

#include "sentinel/cache/kv_cache.h"

namespace sentinel {

// rule(query, key) for key strictly before query. Returns [1, n_new, cells.size()] bool, or an
// undefined tensor when every causal pair is allowed (the model then runs plain causal attention).
using VisibilityRule = std::function<bool(const CacheCell& query, const CacheCell& key)>;
at::Tensor build_mask(std::span<const CacheCell> cells, int64_t n_new, const VisibilityRule& rule);

// Whether an ordinary query sees the tokens of a span closed before it. Hidden is method.md's
// rule; Visible is the heavy layout's (policy.h), where what eviction leaves of a span stays
// beside its <CR>.
enum class ClosedSpans { Hidden, Visible };

// The sentinel rules of docs/method.md section 3, generalised to spans closed later than their
// last token (a delayed <CR>): cells in feeding order; a span is closed for every query fed after
// its <CR>. For the query:
//   <CL>: itself only.   <CR> of span s: the cells of span s (its <CL> and its tokens) and itself.
//   ordinary: every <CR>; an ordinary key unless its span is closed (and `closed` is Hidden); never a <CL>.
// Returns [1, n_new, cells.size()] bool, or undefined when all causal pairs are allowed.
at::Tensor sentinel_mask(std::span<const CacheCell> cells, int64_t n_new, ClosedSpans closed = ClosedSpans::Hidden);

}  // namespace sentinel
