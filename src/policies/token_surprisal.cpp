// Surprisal per ordinary token (token_surprisal.h).
#include "sentinel/policies/token_surprisal.h"

#include <algorithm>
#include <limits>

#include "sentinel/core/error.h"

namespace sentinel {

void TokenSurprisal::record(int64_t first, const at::Tensor& nll) {
  check(first >= 0 && nll.dim() == 1, "surprisal: expected nll [n] from position >= 0, got shape ", nll.sizes(),
        " from ", first);
  const at::Tensor nll64 = nll.to(at::kCPU, at::kDouble).contiguous();
  const double* v = nll64.data_ptr<double>();
  const auto end = static_cast<size_t>(first + nll64.size(0));
  if (end > nll_.size()) nll_.resize(end, std::numeric_limits<double>::infinity());
  std::copy_n(v, nll64.size(0), nll_.begin() + first);
}

double TokenSurprisal::at(int64_t position) const {
  return position >= 0 && position < static_cast<int64_t>(nll_.size()) ? nll_[static_cast<size_t>(position)]
                                                                         : std::numeric_limits<double>::infinity();
}

}  // namespace sentinel
