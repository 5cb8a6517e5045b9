// Where a decode step's time goes: exclusive wall time per phase, on the calling thread, while
// profiling is on (`sentinel bench --profile`). Off, a scope costs one relaxed load and a branch.
//
// Phases nest: a scope pauses the one it opens inside and resumes it on close, so each phase's
// time excludes what ran inside it (the LM head inside surprisal is charged to the LM head).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace sentinel::profile {

enum class Phase : uint8_t {
  Matrices,   // the layers' quantized products (Q/K/V, O, gate/up, down) and activation quantizing
  Attention,  // the attention kernel: scores, softmax, values (and the attention mass it adds up)
  LayerMath,  // the rest of a forward pass: embedding, norms, RoPE, K/V writes, LoRA, residuals
  LmHead,     // the output projection to the vocabulary
  Plan,       // the policy's expansion of the new tokens (<CL>/<CR> placement) and its mask
  Evictions,  // the policy choosing which cells to evict (ranking by score, span bookkeeping)
  Cache,      // committing the new cells and moving the cache's rows on eviction
  AttentionBookkeeping,  // adding a pass's attention mass to the policy's per-cell totals (H2O)
  Surprisal,             // -log p(token) from the logits, recorded for the policy's ranking
  Sampling,              // choosing the next token from the logits
  kCount
};
inline constexpr size_t kPhases = static_cast<size_t>(Phase::kCount);

std::string_view phase_name(Phase phase);

// Seconds per phase, summed on this thread since the last reset().
struct Totals {
  std::array<double, kPhases> seconds{};
};

void set_enabled(bool on);  // for every thread
void reset();         // this thread's totals to zero
Totals totals();      // this thread's totals so far

namespace detail {
extern std::atomic<bool> g_enabled;
void enter(Phase phase);
void leave();
}  // namespace detail

// Charges the time until it closes to `phase` (minus nested scopes).
class Scope {
 public:
  explicit Scope(Phase phase) : active_(detail::g_enabled.load(std::memory_order_relaxed)) {
    if (active_) detail::enter(phase);
  }
  ~Scope() {
    if (active_) detail::leave();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool active_;
};

}  // namespace sentinel::profile
