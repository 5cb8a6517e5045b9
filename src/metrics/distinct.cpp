// distinct-n and seq-rep-n over id sequences (words are interned to ids first).
#include "sentinel/metrics/distinct.h"

#include "sentinel/core/error.h"
#include "sentinel/metrics/ngrams.h"

namespace sentinel::metrics {
namespace {

void check_order(int n, const char* metric) {
  check(n >= 1, metric, " order n = ", n, " is invalid; use n >= 1 (1 to 4 are usual)");
}

int64_t total_count(const NgramCounts& counts) {
  int64_t total = 0;
  for (const auto& [ngram, count] : counts) total += count;
  return total;
}

// Each generation's words as ids, interned over the whole set: ids mean nothing outside it.
std::vector<std::vector<int32_t>> word_ids(const std::vector<std::string>& generations) {
  Vocabulary vocabulary;
  std::vector<std::vector<int32_t>> out;
  out.reserve(generations.size());
  for (const std::string& text : generations) out.push_back(vocabulary.ids(split_whitespace(text)));
  return out;
}

}  // namespace

DistinctN distinct_n(const std::vector<std::vector<int32_t>>& generations, int n) {
  check_order(n, "distinct-n");
  NgramCounts counts;
  for (const std::vector<int32_t>& ids : generations) add_ngrams(ids, n, counts);
  DistinctN result;
  result.n = n;
  result.n_total = total_count(counts);
  result.n_distinct = static_cast<int64_t>(counts.size());
  if (result.n_total > 0) result.value = static_cast<double>(result.n_distinct) / static_cast<double>(result.n_total);
  return result;
}

RepetitionN repetition_n(const std::vector<std::vector<int32_t>>& generations, int n) {
  check_order(n, "seq-rep-n");
  RepetitionN result;
  result.n = n;
  double sum = 0;
  for (const std::vector<int32_t>& ids : generations) {
    NgramCounts counts;
    add_ngrams(ids, n, counts);
    const int64_t total = total_count(counts);
    if (total == 0) continue;
    sum += 1.0 - static_cast<double>(counts.size()) / static_cast<double>(total);
    ++result.n_generations;
  }
  if (result.n_generations > 0) result.value = sum / static_cast<double>(result.n_generations);
  return result;
}

DistinctN distinct_n_words(const std::vector<std::string>& generations, int n) {
  return distinct_n(word_ids(generations), n);
}

RepetitionN repetition_n_words(const std::vector<std::string>& generations, int n) {
  return repetition_n(word_ids(generations), n);
}

}  // namespace sentinel::metrics
