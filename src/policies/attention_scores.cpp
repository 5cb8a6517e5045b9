// Accumulated attention mass per ordinary token (attention_scores.h).
#include "sentinel/policies/attention_scores.h"

#include "sentinel/core/error.h"

namespace sentinel {

void AttentionScores::add(std::span<const CacheCell> cells, const at::Tensor& mass) {
  check(mass.dim() == 1 && mass.size(0) == static_cast<int64_t>(cells.size()), "attention mass has shape [",
        mass.numel(), "], expected [", cells.size(), "]");
  const at::Tensor mass64 = mass.to(at::kDouble).contiguous();
  const double* m = mass64.data_ptr<double>();
  for (size_t i = 0; i < cells.size(); ++i) {
    if (cells[i].kind != CellKind::Ordinary) continue;
    const int64_t position = cells[i].position;
    if (position >= static_cast<int64_t>(score_.size())) score_.resize(position + 1, 0.0);
    score_[position] += m[i];
  }
}

double AttentionScores::score(int64_t position) const {
  return position >= 0 && position < static_cast<int64_t>(score_.size()) ? score_[position] : 0.0;
}

}  // namespace sentinel
