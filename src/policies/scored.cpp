// ScoredPolicy: the caller's scores, the engine's budget (scored.h).
#include "sentinel/policies/scored.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sentinel/core/error.h"

namespace sentinel {

int64_t cells_kept_for_next_query(double ratio, int64_t n_read) {
  // Never fewer than one: the first token is the attention sink every later query leans on (h2o.cpp says more).
  return std::max<int64_t>(1, kv_budget(ratio, n_read + 1) - 1);
}

ScoredPolicy::ScoredPolicy(double ratio, CellScorer score, AttentionObserver observe, Method method)
    : method_(method), ratio_(ratio), score_(std::move(score)), observe_(std::move(observe)) {
  check(static_cast<bool>(score_), "a scored policy needs a scorer");
}

std::vector<int64_t> ScoredPolicy::evictions(std::span<const CacheCell> cells, int64_t next_index) {
  const int64_t n = static_cast<int64_t>(cells.size());
  const int64_t keep = cells_kept_for_next_query(ratio_, next_index);
  if (n <= keep) return {};
  const at::Tensor scores = score_(ScoreRequest{cells, cache_, keep, next_index});
  check(scores.defined() && scores.dim() == 1 && scores.size(0) == n, "the policy's score() must return one score ",
        "per cached entry, a 1-D tensor of ", n, " values; got ",
        scores.defined() ? c10::str(scores.sizes()) : std::string("nothing"));
  check(!scores.is_complex(), "the policy's scores must be real numbers, got complex ones");
  const at::Tensor values = scores.to(at::kCPU, at::kDouble).contiguous();
  const double* score = values.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i)
    check(!std::isnan(score[i]), "the policy's score() returned NaN for entry ", i, " (position ", cells[i].position,
          "); give every entry a real score");
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  std::vector<int64_t> evicted(order.begin() + keep, order.end());
  std::sort(evicted.begin(), evicted.end());
  return evicted;
}

std::unique_ptr<CompressionPolicy> make_tova_policy(double ratio) {
  // The last pass's attention, per cell of the committed cache: the cells evictions() is shown next.
  auto last_pass = std::make_shared<at::Tensor>();
  return std::make_unique<ScoredPolicy>(
      ratio, [last_pass](const ScoreRequest&) { return *last_pass; },
      [last_pass](std::span<const CacheCell>, const at::Tensor& mass) { *last_pass = mass.to(at::kDouble).clone(); },
      Method::Tova);
}

}  // namespace sentinel
