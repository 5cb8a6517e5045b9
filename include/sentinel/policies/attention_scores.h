// Accumulated attention per ordinary token: the score H2O ranks cells by ("heavy hitters", Zhang
// et al., 2023). Our cache evicts the same cells in every layer, so a token's score is the mass it
// received summed over layers, heads and queries (ours; the original keeps one set per head).
// Sentinel cells are not scored: a <CR> shares its position with its span's last token.
#pragma once

#include <ATen/ATen.h>

#include <span>
#include <vector>

#include "sentinel/cache/kv_cache.h"

namespace sentinel {

class AttentionScores {
 public:
  // mass: [cells.size()] attention mass each committed cell received in the last step.
  void add(std::span<const CacheCell> cells, const at::Tensor& mass);
  double score(int64_t position) const;  // accumulated mass of the ordinary token at `position`

 private:
  std::vector<double> score_;  // [positions seen] accumulated attention mass
};

}  // namespace sentinel
