// distinct-n and seq-rep-n on hand-checked sets of generations, over words and over token ids,
// and Python's str.split() that cuts the words.
#include <gtest/gtest.h>

#include "sentinel/core/error.h"
#include "sentinel/metrics/distinct.h"
#include "sentinel/metrics/ngrams.h"

namespace sentinel::metrics {
namespace {

TEST(MetricsDistinct, CountsDistinctWordNgramsOverTheSet) {
  const std::vector<std::string> generations = {"a b a b", "a b c"};
  const DistinctN d1 = distinct_n_words(generations, 1);  // a b a b a b c: {a, b, c}
  EXPECT_EQ(d1.n_total, 7);
  EXPECT_EQ(d1.n_distinct, 3);
  EXPECT_DOUBLE_EQ(d1.value, 3.0 / 7.0);
  const DistinctN d2 = distinct_n_words(generations, 2);  // ab ba ab | ab bc (no "b a" across the boundary)
  EXPECT_EQ(d2.n_total, 5);
  EXPECT_EQ(d2.n_distinct, 3);
  EXPECT_DOUBLE_EQ(d2.value, 0.6);
  const DistinctN d3 = distinct_n_words(generations, 3);  // aba bab | abc
  EXPECT_EQ(d3.n_total, 3);
  EXPECT_EQ(d3.n_distinct, 3);
  EXPECT_DOUBLE_EQ(d3.value, 1.0);
  const DistinctN d4 = distinct_n_words(generations, 4);  // abab | (none: 3 words)
  EXPECT_EQ(d4.n_total, 1);
  EXPECT_DOUBLE_EQ(d4.value, 1.0);
  EXPECT_EQ(d4.n, 4);
}

TEST(MetricsDistinct, WordsKeepCaseAndPunctuation) {
  const DistinctN d = distinct_n_words({"Cat cat cat, cat\u00a0cat\tcat\n"}, 1);
  EXPECT_EQ(d.n_total, 6);
  EXPECT_EQ(d.n_distinct, 3);  // "Cat", "cat", "cat,"
}

TEST(MetricsDistinct, WorksOnTokenIds) {
  const std::vector<std::vector<int32_t>> ids = {{5, 5, 5, 5}, {5, 7}, {}};
  const DistinctN d1 = distinct_n(ids, 1);
  EXPECT_EQ(d1.n_total, 6);
  EXPECT_EQ(d1.n_distinct, 2);
  const DistinctN d2 = distinct_n(ids, 2);  // 55 55 55 | 57
  EXPECT_EQ(d2.n_total, 4);
  EXPECT_EQ(d2.n_distinct, 2);
  EXPECT_DOUBLE_EQ(d2.value, 0.5);
}

TEST(MetricsDistinct, EmptyInputIsZero) {
  EXPECT_EQ(distinct_n_words({}, 1).value, 0.0);
  EXPECT_EQ(distinct_n_words({"", "  "}, 2).n_total, 0);
  EXPECT_EQ(distinct_n_words({"one"}, 2).value, 0.0);
  EXPECT_EQ(repetition_n_words({"one"}, 2).n_generations, 0);
}

TEST(MetricsDistinct, RepetitionIsMeanRepeatedFractionPerGeneration) {
  const RepetitionN r = repetition_n_words({"a b a b", "a b c", "x"}, 2);
  EXPECT_EQ(r.n_generations, 2);  // "x" has no bigram
  EXPECT_DOUBLE_EQ(r.value, (1.0 - 2.0 / 3.0 + 1.0 - 2.0 / 2.0) / 2.0);
  EXPECT_DOUBLE_EQ(repetition_n({{1, 1, 1, 1, 1}}, 1).value, 0.8);
}

TEST(MetricsDistinct, RejectsOrderBelowOne) {
  EXPECT_THROW(distinct_n_words({"a"}, 0), Error);
  EXPECT_THROW(repetition_n({}, -1), Error);
}

TEST(MetricsNgrams, SplitsAndStripsAsPython) {
  EXPECT_EQ(split_whitespace(" a\u3000b\u00a0 c\x1f" "d\u200be "), (std::vector<std::string>{"a", "b", "c", "d\u200be"}));
  EXPECT_EQ(split_whitespace("\xFF x"), (std::vector<std::string>{"\uFFFD", "x"}));
  EXPECT_TRUE(split_whitespace("").empty());
  EXPECT_EQ(rstrip_whitespace(" a b \u2028\t"), " a b");
}

}  // namespace
}  // namespace sentinel::metrics
