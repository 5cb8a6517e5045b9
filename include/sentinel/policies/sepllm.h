// SepLLM (Chen et al., "SepLLM: Accelerate Large Language Models by Compressing One Segment into
// One Separator", ICML 2025), training-free streaming form: the cache keeps the first `sinks`
// tokens, separator tokens (punctuation and white space, which the paper finds gather the
// information of the segment they close) and a recent window, under the same budget as every
// other method here (kv_budget: budget(j + 1) entries visible to the query at index j).
//
// The paper's streaming cache has fixed regions (its streaming runs keep 4 initial, 64 separator
// and 256 local entries); here the regions follow the budget. After the sinks, separators may hold
// at most kSeparatorShare of the room (a tenth); the window holds the rest, and also what the separators
// leave unused. As the budget is exceeded, the oldest window token leaves the window (a separator
// moves to the separator region, any other token is evicted), and when the separators are over
// their share the oldest one is evicted. Both regions only ever move forward, so the rule is a
// monotone sees(j, k), exact under any chunking, and the plan depends on the tokens and their
// indices alone (resumable).
#pragma once

#include <vector>

#include "sentinel/policies/policy.h"

namespace sentinel {

class SepLLMPolicy final : public CompressionPolicy {
 public:
  // The share of the room after the sinks that separators may take, chosen on validation text
  // (WikiText-2 valid, first 60,000 characters, SmolLM2-135M, perplexity): 0.1 was best at
  // windows of 1,024 / ratio 0.75 (of 0, 0.1, 0.2, 0.35, 0.5) and 2,048 / 0.5 (of 0, 0.05, 0.1,
  // 0.15), and 0.4% behind 0.05 at 2,048 / 0.75. The published configuration's proportion,
  // 64 / (64 + 256) = 0.2, was worse than no separators at all at 1,024 / 0.75 on this model.
  static constexpr double kSeparatorShare = 0.1;

  SepLLMPolicy(double ratio, int64_t sinks, std::vector<int32_t> separators);
  Method method() const override { return Method::SepLLM; }
  std::vector<Element> expand(std::span<const int32_t> tokens, int64_t first_index) override;
  bool sees(int64_t j, int64_t k) const override;

  // The query at index j sees [window_start(j), j] and the separators in
  // [separators_from(j), window_start(j)), besides the sinks. Defined up to the next index to read.
  int64_t window_start(int64_t j) const;
  int64_t separators_from(int64_t j) const;

 private:
  void advance_to(int64_t j);  // computes the regions of the queries up to index j
  int64_t tokens_read() const { return static_cast<int64_t>(separators_before_.size()) - 1; }
  bool is_separator(int64_t k) const {  // token k, read
    return separators_before_[static_cast<size_t>(k) + 1] != separators_before_[static_cast<size_t>(k)];
  }

  double ratio_;
  int64_t sinks_;
  std::vector<bool> is_separator_id_;  // [max id + 1]
  std::vector<int64_t> separators_before_;  // [tokens read + 1] separators among tokens [0, k)
  std::vector<int64_t> window_start_, separators_from_;  // [queries planned]
};

}  // namespace sentinel
