// Surprisal per ordinary token, -log p(x_t | x_<t) as the model read it: what --older-rank
// surprisal ranks cells by (policy.h: OlderRank). Attention mass says what the text has leaned
// on so far; surprisal says what the model could not have predicted, so what it cannot rebuild
// once the entry is dropped (a key among filler keeps its digits, the filler goes).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace sentinel {

class TokenSurprisal {
 public:
  // nll [n] float: the surprisal of the ordinary tokens at positions first, first + 1, ...
  void record(int64_t first, const at::Tensor& nll);
  // The token's surprisal in nats; +infinity while it has none (the first token of a sequence,
  // or one whose successor has not been read): nothing yet says the model could rebuild it.
  double at(int64_t position) const;

 private:
  std::vector<double> nll_;  // [positions up to the last recorded]; +infinity where none was recorded
};

}  // namespace sentinel
