// The prompt cache: compressed session states kept in memory so that a request whose prompt
// starts with a cached prefix resumes from it and reads only the rest ("compress once, ask
// many"). Bounded in bytes, least recently used evicted first. A state is reusable only under the
// same compression over its tokens (policy_key). Thread-safe: the scheduler writes, the HTTP
// threads' /slots restore inserts.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "sentinel/server/session_state.h"

namespace sentinel::server {

// Identity of the compression that produced the first n_tokens of a sequence: the options plus
// the explicit spans inside [0, n_tokens). Empty when no state of n_tokens can be reused under
// `policy` (h2o, or an explicit span crossing n_tokens, whose cells are half-compressed).
std::string policy_key(const PolicyOptions& policy, int64_t n_tokens);

class PromptCache {
 public:
  // min_shared_tokens: the shortest common prefix worth cutting out of a longer state (below).
  explicit PromptCache(int64_t max_bytes, int64_t min_shared_tokens = 16)
      : max_bytes_(max_bytes), min_shared_tokens_(min_shared_tokens) {}

  // The longest cached state whose tokens are a proper prefix of `tokens` (at least one token
  // is left to read, so the request gets logits) and whose key matches under `policy`. Failing
  // that, for an uncompressed request, the longest common prefix (at least min_shared_tokens) with
  // an uncompressed state cut out of it (session_state.h: truncated_state): a state saved after a
  // chat holds the prompt and the answer, and the same question asked again shares the prompt
  // only. Null if none.
  std::shared_ptr<const SessionState> lookup(std::span<const int32_t> tokens, const PolicyOptions& policy);
  // Adds a state (replacing one with the same tokens and key), then evicts the least recently
  // used until the total fits. A state larger than the whole budget is not kept.
  void insert(std::shared_ptr<const SessionState> state);
  // Drops `state` if it is cached (a restored state the session refused: it would fail every
  // request that starts with its tokens).
  void erase(const SessionState* state);

  int64_t bytes() const;
  int64_t size() const;
  int64_t hits() const;
  int64_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const SessionState> state;
  };
  mutable std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
  int64_t max_bytes_;
  int64_t min_shared_tokens_;
  int64_t bytes_ = 0;
  int64_t hits_ = 0;
};

}  // namespace sentinel::server
