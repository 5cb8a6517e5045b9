// The rule-based baselines of docs/method.md section 7. Each is one sees(j, k) rule over
// ordinary positions, monotone in j, so the masked full forward and incremental decoding with
// eviction see exactly the same entries. All but the fixed window spend the same budget: after
// n tokens the cache holds at most kv_budget(ratio, n) entries (streaming: unless its sinks alone
// exceed it), and the next query sees those plus itself.
#include <cmath>

#include "sentinel/policies/policy.h"
#include "sentinel/policies/rules.h"

namespace sentinel {

// Paper: query j attends to keys floor(j * r) <= k <= j, the oldest fraction r dropped.
bool LocalPolicy::sees(int64_t j, int64_t k) const {
  if (window_ > 0) return k > j - window_;
  return k >= static_cast<int64_t>(std::floor(static_cast<double>(j) * ratio_));
}

// Each key is kept with probability 1 - r, decided once per position from the seed (a hash,
// not a generator, so the decision does not depend on the order tokens arrive in).
bool ScatteredPolicy::kept(int64_t k) const {
  uint64_t z = seed_ + 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(k + 1);  // splitmix64
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  return u >= ratio_;
}

bool ScatteredPolicy::sees(int64_t /*j*/, int64_t k) const { return kept(k); }

// Half the budget is a recent window, the other half every s-th older token, with
// s = (1 + r) / (1 - r) so that the two halves balance at steady state. s stays fractional (the
// kept older tokens are k = ceil(m * s)): rounding it to an integer overshoots or undercuts the
// budget whenever s is not one (r = 0.4: s 2.33 -> 2 kept 8% over budget; r < 1/3: s -> 1 kept
// every token). An s within rounding of an integer is snapped to it, so r = 0.9 strides by 19.
StridedPolicy::StridedPolicy(double ratio) : ratio_(ratio) {
  stride_ = (1.0 + ratio) / (1.0 - ratio);
  if (std::abs(stride_ - std::round(stride_)) < 1e-9) stride_ = std::round(stride_);
}

bool StridedPolicy::on_stride(int64_t k) const {
  return k == 0 || std::floor(static_cast<double>(k) / stride_) > std::floor(static_cast<double>(k - 1) / stride_);
}

int64_t StridedPolicy::recent(int64_t n) const { return (kv_budget(ratio_, n) + 1) / 2; }

bool StridedPolicy::sees(int64_t j, int64_t k) const { return k > j - recent(j + 1) || on_stride(k); }

// StreamingLLM: the first `sinks` tokens plus a recent window filling the rest of the budget.
int64_t StreamingPolicy::recent(int64_t n) const { return std::max<int64_t>(1, kv_budget(ratio_, n) - sinks_); }

bool StreamingPolicy::sees(int64_t j, int64_t k) const { return k < sinks_ || k > j - recent(j + 1); }

}  // namespace sentinel
