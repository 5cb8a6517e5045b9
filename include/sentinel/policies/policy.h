// Compression policies: every way of deciding which KV entries a query may see and which the
// cache may drop (docs/method.md sections 6-7). A policy only plans: it expands the ordinary
// token stream into the elements to feed (sentinels included), builds the visibility mask of a
// step, and lists the cells to evict; the Session applies the plan to the KvCache.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/policies/policy_options.h"

namespace sentinel {

// One thing fed to the model: an ordinary token or a sentinel, with the cell it will occupy.
struct Element {
  int32_t id = 0;
  CacheCell cell;
  int64_t ordinary_index = -1;  // index in the ordinary token stream; -1 for sentinels
};


class CompressionPolicy {
 public:
  virtual ~CompressionPolicy() = default;
  virtual Method method() const = 0;

  // The cache the policy's plans apply to, given by the session that owns both (once, before the
  // first expand). Only policies that read the cached keys or values keep it (scored.h).
  virtual void attach(const KvCache* cache) { (void)cache; }

  // The elements that feed `tokens` (ordinary indices first_index, first_index+1, ...): the tokens
  // themselves with position = ordinary index, plus any sentinels the policy inserts. The result
  // depends only on the token indices, never on how the stream is chunked.
  virtual std::vector<Element> expand(std::span<const int32_t> tokens, int64_t first_index);

  // Visibility for one step: `cells` lists the cached cells followed by the n_new cells being fed
  // (in feeding order). Returns [1, n_new, cells.size()] bool (true = may attend), or an
  // undefined tensor when plain causal attention over everything is exact.
  virtual at::Tensor mask(std::span<const CacheCell> cells, int64_t n_new) const;

  // Cells (indices into the committed cache) that no later query may see, to evict now.
  // `next_index` is the ordinary index of the next token to come.
  virtual std::vector<int64_t> evictions(std::span<const CacheCell> cells, int64_t next_index);
  // The lowest position a query fed after ordinary index next_index - 1 can have: next_index, or
  // less where a sentinel still to come takes an older position (a scheduled <CR> closing its span
  // late). Sliding-window layers keep the keys such a query still sees.
  virtual int64_t lowest_query_position(int64_t next_index) const { return next_index; }

  // H2O-style policies read attention: when wants_attention(), observe_attention() receives after
  // every step the committed cells and the attention mass each received, summed over layers,
  // heads and the step's queries: mass [cells.size()] float32.
  virtual bool wants_attention() const { return false; }
  virtual void observe_attention(std::span<const CacheCell> cells, const at::Tensor& mass) {
    (void)cells;
    (void)mass;
  }

  // Policies that rank by surprisal: when wants_surprisal(), observe_surprisal() receives after
  // every step, before evictions(), the surprisal (natural-log NLL) of the ordinary tokens whose
  // prediction is now known: nll [n] float32 for ordinary indices first, first + 1, ... A token's
  // prediction comes from the token before it, so the last token of a step is scored with the
  // first of the next, and the first token of a sequence never is.
  virtual bool wants_surprisal() const { return false; }
  virtual void observe_surprisal(int64_t first, const at::Tensor& nll) {
    (void)first;
    (void)nll;
  }

 protected:
  // May an ordinary query at position j see the ordinary key at position k < j? Rule-based
  // baselines override this; mask() and evictions() follow from it.
  virtual bool sees(int64_t j, int64_t k) const {
    (void)j;
    (void)k;
    return true;
  }
};

std::unique_ptr<CompressionPolicy> make_policy(const PolicyOptions& options);

}  // namespace sentinel
