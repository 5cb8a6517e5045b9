// Recall beyond the window: what a compressed cache still knows about text that has left the
// raw recent window, where compression (not the local context) decides the prediction.
//   repeat:  a passage of the text recurs after a gap longer than any method's raw window at the
//            ratios evaluated; scored on the recurrence only (a full cache copies it almost
//            perfectly, a method that dropped it must guess).
//   passkey: a random 5-digit key stated once at some depth in filler text, asked for at the end
//            (Mohtashami & Jaggi 2023, "Landmark Attention"); scored on the key's tokens.
// Every case is read by a fresh Session under the policy, context then target, `chunk` tokens per
// pass, compressing throughout; the target is teacher-forced, so "exact" means greedy decoding
// would have produced it token for token.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "sentinel/model/decoder.h"
#include "sentinel/policies/policy.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

struct RecallCase {
  std::vector<int32_t> context;  // read first (the long part)
  std::vector<int32_t> target;   // then scored, token by token
  int64_t distance = 0;          // tokens between the recalled information and the end of the context
};

// Cases of `ctx` tokens (context + target) cut from `text` without overlap: context = a stretch
// of the text, target = the `passage` tokens that start `lead` tokens into it. At most n_cases.
std::vector<RecallCase> repeat_cases(std::span<const int32_t> text, int64_t ctx, int64_t passage, int64_t lead,
                                     int64_t n_cases);

// n_cases passkey prompts of about `ctx` tokens, the key at depths spread evenly over (0, 1),
// keys drawn from `seed`.
std::vector<RecallCase> passkey_cases(const Tokenizer& tokenizer, int64_t ctx, int64_t n_cases, uint64_t seed);

struct RecallScore {
  int64_t n_cases = 0;
  int64_t exact = 0;        // cases whose every target token was the model's top choice
  int64_t n_target = 0;     // target tokens scored
  double nll_sum = 0;       // natural-log NLL over the target tokens
  int64_t ordinary_fed = 0; // over all cases, at the end of each
  int64_t cells_retained = 0;
  double seconds = 0;
  double ppl() const { return std::exp(nll_sum / static_cast<double>(n_target)); }
  double exact_rate() const { return static_cast<double>(exact) / static_cast<double>(n_cases); }
  double achieved_ratio() const {
    return ordinary_fed > 0 ? 1.0 - static_cast<double>(cells_retained) / static_cast<double>(ordinary_fed) : 0.0;
  }
};

RecallScore score_recall(DecoderModel& model, std::span<const RecallCase> cases, const PolicyOptions& policy,
                         int64_t chunk, const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace sentinel
