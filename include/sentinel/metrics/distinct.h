// Diversity and repetition of a set of generations, over whitespace words or token ids:
// distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation
// Models") and seq-rep-n (Welleck et al. 2019, "Neural Text Generation with Unlikelihood Training").
// No reference is involved; for overlap with a reference see bleu.h and rouge.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sentinel::metrics {

// distinct-n of a set of generations: the number of distinct n-grams divided by the number of
// n-grams, both counted over the whole set. N-grams never span two generations: a generation of
// L units has max(0, L - n + 1) of them. value is 0 when there is no n-gram at all.
// Example (words, n = 2): {"a b a b", "a b c"} has 3 + 2 = 5 bigrams, of which 3 are distinct
// ("a b", "b a", "b c"): distinct-2 = 0.6.
struct DistinctN {
  int n = 0;
  int64_t n_distinct = 0;
  int64_t n_total = 0;
  double value = 0;  // n_distinct / n_total
};

// seq-rep-n: for each generation with at least one n-gram, 1 - distinct n-grams / n-grams of that
// generation (the fraction of its n-grams that repeat an earlier one); the mean over those
// generations. value is 0 when no generation has an n-gram. Example (n = 2): {"a b a b", "a b c"}:
// (1 - 2/3 + 1 - 2/2) / 2 = 1/6.
struct RepetitionN {
  int n = 0;
  int64_t n_generations = 0;  // generations that have at least one n-gram (the ones averaged)
  double value = 0;
};

// Units are token ids (the model's tokens, or any integers). Throws Error unless n >= 1.
DistinctN distinct_n(const std::vector<std::vector<int32_t>>& generations, int n);
RepetitionN repetition_n(const std::vector<std::vector<int32_t>>& generations, int n);

// Units are words: each generation split as Python's str.split() splits (Unicode whitespace, see
// ngrams.h), case and punctuation kept ("Cat", "cat" and "cat," are three words).
DistinctN distinct_n_words(const std::vector<std::string>& generations, int n);
RepetitionN repetition_n_words(const std::vector<std::string>& generations, int n);

}  // namespace sentinel::metrics
