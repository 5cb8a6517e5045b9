// SepLLM's regions, advanced one query at a time (the rule and its budget: sepllm.h).
#include "sentinel/policies/sepllm.h"

#include <algorithm>
#include <cmath>

#include "sentinel/core/error.h"

namespace sentinel {

SepLLMPolicy::SepLLMPolicy(double ratio, int64_t sinks, std::vector<int32_t> separators)
    : ratio_(ratio), sinks_(sinks), separators_before_{0} {
  check(!separators.empty(), "sepllm needs the separator token ids of the model's tokenizer (separators.h); "
                             "none were given");
  for (int32_t id : separators) {
    check(id >= 0, "sepllm: separator id ", id, " is negative");
    if (static_cast<size_t>(id) >= is_separator_id_.size()) is_separator_id_.resize(static_cast<size_t>(id) + 1, false);
    is_separator_id_[static_cast<size_t>(id)] = true;
  }
}

std::vector<Element> SepLLMPolicy::expand(std::span<const int32_t> tokens, int64_t first_index) {
  check(first_index == tokens_read(), "sepllm reads tokens in order: index ", first_index, " given after ",
        tokens_read(), " tokens");
  for (int32_t id : tokens) {
    const bool sep = id >= 0 && static_cast<size_t>(id) < is_separator_id_.size() && is_separator_id_[static_cast<size_t>(id)];
    separators_before_.push_back(separators_before_.back() + (sep ? 1 : 0));
  }
  // The queries of these tokens, and the next one (evictions() asks what it will see).
  advance_to(first_index + static_cast<int64_t>(tokens.size()));
  return CompressionPolicy::expand(tokens, first_index);
}

void SepLLMPolicy::advance_to(int64_t last) {
  for (int64_t j = static_cast<int64_t>(window_start_.size()); j <= last; ++j) {
    // Start from the previous query's regions with token j added to the window.
    int64_t start = window_start_.empty() ? 0 : window_start_.back();
    int64_t from = separators_from_.empty() ? 0 : separators_from_.back();
    start = std::max(start, sinks_);
    from = std::max(from, sinks_);
    const int64_t sinks = std::min(sinks_, j + 1);
    auto separators_in = [&](int64_t a, int64_t b) {  // separators among tokens [a, b), all read
      return a >= b ? 0 : separators_before_[static_cast<size_t>(b)] - separators_before_[static_cast<size_t>(a)];
    };
    const int64_t budget = kv_budget(ratio_, j + 1);
    const auto room = std::max<int64_t>(0, budget - sinks);
    const auto separator_room = static_cast<int64_t>(std::floor(kSeparatorShare * static_cast<double>(room)));
    int64_t held = sinks + separators_in(from, start) + std::max<int64_t>(0, j + 1 - start);
    while (held > budget && start <= j) {
      if (separators_in(from, start) > separator_room) {
        while (!is_separator(from)) ++from;  // the oldest separator kept goes
        ++from;
        --held;
      } else if (start < j) {  // the window's oldest token leaves it; the query itself stays
        if (!is_separator(start)) --held;
        ++start;
      } else {
        break;
      }
    }
    from = std::min(from, start);  // nothing of the separator region lies inside the window
    window_start_.push_back(start);
    separators_from_.push_back(from);
  }
}

int64_t SepLLMPolicy::window_start(int64_t j) const {
  check(j >= 0 && j < static_cast<int64_t>(window_start_.size()), "sepllm: query ", j, " is past the tokens read");
  return window_start_[static_cast<size_t>(j)];
}

int64_t SepLLMPolicy::separators_from(int64_t j) const {
  check(j >= 0 && j < static_cast<int64_t>(separators_from_.size()), "sepllm: query ", j, " is past the tokens read");
  return separators_from_[static_cast<size_t>(j)];
}

bool SepLLMPolicy::sees(int64_t j, int64_t k) const {
  if (k < sinks_ || k >= window_start(j)) return true;
  return is_separator(k) && k >= separators_from(j);
}

}  // namespace sentinel
