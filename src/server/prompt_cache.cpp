// Longest-prefix lookup over a small LRU list. The list holds tens of entries at most (each is
// megabytes of K/V), so a linear scan with a token compare is cheaper than any index.
#include "sentinel/server/prompt_cache.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace sentinel::server {

std::string policy_key(const PolicyOptions& policy, int64_t n_tokens) {
  if (!resumable(policy)) return "";
  std::ostringstream key;
  key << method_name(policy.method);
  // Every option a resumable plan reads (stride_share and older_rank only matter to the heavy
  // layout, which is not resumable); the ratio to every digit, so 0.5 and 0.5000001 differ.
  if (policy.method != Method::None)
    key << " r" << std::setprecision(17) << policy.ratio << " L" << policy.span << " w" << policy.window << " k"
        << policy.sinks << " s" << policy.seed << " " << span_layout_name(policy.layout);
  for (const Span& s : policy.spans) {
    if (s.begin >= n_tokens) break;
    if (s.end > n_tokens) return "";  // a span still open at the prefix's end
    key << " [" << s.begin << "," << s.end << ")";
  }
  return key.str();
}

std::shared_ptr<const SessionState> PromptCache::lookup(std::span<const int32_t> tokens, const PolicyOptions& policy) {
  std::lock_guard lock(mutex_);
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const auto& cached = it->state->tokens;
    if (cached.size() >= tokens.size()) continue;
    if (best != entries_.end() && cached.size() <= best->state->tokens.size()) continue;
    if (!std::equal(cached.begin(), cached.end(), tokens.begin())) continue;
    const std::string key = policy_key(policy, static_cast<int64_t>(cached.size()));
    if (key.empty() || key != it->key) continue;
    best = it;
  }
  if (best != entries_.end()) {
    entries_.splice(entries_.begin(), entries_, best);  // most recently used
    ++hits_;
    return entries_.front().state;
  }
  if (policy.method != Method::None || tokens.empty()) return nullptr;
  // A shared beginning of an uncompressed state: cut at the longest one.
  int64_t shared = 0;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->state->policy.method != Method::None) continue;
    const auto& cached = it->state->tokens;
    const size_t limit = std::min(cached.size(), tokens.size() - 1);  // one token left to read
    const auto n = static_cast<int64_t>(std::mismatch(cached.begin(), cached.begin() + limit, tokens.begin()).first -
                                        cached.begin());
    if (n > shared && n >= min_shared_tokens_) {
      shared = n;
      best = it;
    }
  }
  if (best == entries_.end()) return nullptr;
  std::optional<SessionState> cut = truncated_state(*best->state, shared);
  if (!cut) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);
  ++hits_;
  return std::make_shared<const SessionState>(std::move(*cut));
}

void PromptCache::insert(std::shared_ptr<const SessionState> state) {
  const std::string key = policy_key(state->policy, static_cast<int64_t>(state->tokens.size()));
  if (key.empty() || state->bytes() > max_bytes_) return;
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->key == key && it->state->tokens == state->tokens) {
      bytes_ -= it->state->bytes();
      entries_.erase(it);
      break;
    }
  }
  bytes_ += state->bytes();
  entries_.push_front({key, std::move(state)});
  while (bytes_ > max_bytes_ && !entries_.empty()) {
    bytes_ -= entries_.back().state->bytes();
    entries_.pop_back();
  }
}

void PromptCache::erase(const SessionState* state) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->state.get() == state) {
      bytes_ -= it->state->bytes();
      entries_.erase(it);
      return;
    }
  }
}

int64_t PromptCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

int64_t PromptCache::size() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(entries_.size());
}

int64_t PromptCache::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

}  // namespace sentinel::server
