// The policy base: the mask and eviction plans that rule-based policies derive from their
// sees(j, k) rule.
#include "sentinel/policies/policy.h"

#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/policies/mask.h"

namespace sentinel {

std::vector<Element> CompressionPolicy::expand(std::span<const int32_t> tokens, int64_t first_index) {
  std::vector<Element> elements(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t index = first_index + static_cast<int64_t>(i);
    elements[i] = Element{tokens[i], CacheCell{index, CellKind::Ordinary, -1}, index};
  }
  return elements;
}

at::Tensor CompressionPolicy::mask(std::span<const CacheCell> cells, int64_t n_new) const {
  return build_mask(cells, n_new, [this](const CacheCell& query, const CacheCell& key) {
    return sees(query.position, key.position);
  });
}

std::vector<int64_t> CompressionPolicy::evictions(std::span<const CacheCell> cells, int64_t next_index) {
  // The rules are monotone (a key hidden from query j stays hidden from every later query), so
  // a cell the next query cannot see is dead for good.
  std::vector<int64_t> dead;
  for (size_t i = 0; i < cells.size(); ++i)
    if (!sees(next_index, cells[i].position)) dead.push_back(static_cast<int64_t>(i));
  return dead;
}

}  // namespace sentinel
