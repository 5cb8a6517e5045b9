// Exclusive per-phase timing (profile.h): a small stack of open phases per thread; entering a
// phase charges the elapsed time to the one below it, leaving charges it to the phase left.
#include "sentinel/core/profile.h"

#include <vector>

namespace sentinel::profile {

namespace detail {
std::atomic<bool> g_enabled{false};
}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;

struct ThreadState {
  Totals totals;
  std::vector<Phase> open;  // innermost last
  Clock::time_point since;  // when the innermost open phase last resumed
};

ThreadState& state() {
  thread_local ThreadState s;
  return s;
}

void charge(ThreadState& s, Clock::time_point now) {
  if (!s.open.empty())
    s.totals.seconds[static_cast<size_t>(s.open.back())] += std::chrono::duration<double>(now - s.since).count();
  s.since = now;
}

}  // namespace

std::string_view phase_name(Phase phase) {
  switch (phase) {
    case Phase::Matrices: return "matrices";
    case Phase::Attention: return "attention";
    case Phase::LayerMath: return "layer_math";
    case Phase::LmHead: return "lm_head";
    case Phase::Plan: return "plan";
    case Phase::Evictions: return "evictions";
    case Phase::Cache: return "cache";
    case Phase::AttentionBookkeeping: return "attention_bookkeeping";
    case Phase::Surprisal: return "surprisal";
    case Phase::Sampling: return "sampling";
    case Phase::kCount: break;
  }
  return "unknown";
}

void set_enabled(bool on) { detail::g_enabled.store(on, std::memory_order_relaxed); }

void reset() {
  ThreadState& s = state();
  s.totals = {};
  s.since = Clock::now();
}

Totals totals() { return state().totals; }

namespace detail {

void enter(Phase phase) {
  ThreadState& s = state();
  charge(s, Clock::now());
  s.open.push_back(phase);
}

void leave() {
  ThreadState& s = state();
  charge(s, Clock::now());
  if (!s.open.empty()) s.open.pop_back();
}

}  // namespace detail

}  // namespace sentinel::profile
