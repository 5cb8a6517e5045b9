// ROUGE-L and its tokenizer and Porter stemmer against rouge-score 0.1.2 / nltk 3.10
// (tests/data/metrics/rouge.json): tokens string for string, stems word for word, and precision,
// recall and F-measure bit-equal (they are divisions of integers, in Python's order).
#include <gtest/gtest.h>

#include <set>

#include "sentinel/core/error.h"
#include "sentinel/metrics/porter_stemmer.h"
#include "sentinel/metrics/rouge.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/metric_fixtures.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel::metrics {
namespace {

using nlohmann::json;
using testing::kRegenerateMetricFixtures;
using testing::printable;

std::vector<double> triple(const RougeScore& s) { return {s.precision, s.recall, s.fmeasure}; }

TEST(MetricsRouge, StemsAsNltkPorterStemmer) {
  const json fixture = testing::read_metric_fixture("rouge.json");
  ASSERT_GE(fixture["stems"].size(), 1000u) << kRegenerateMetricFixtures;
  for (const auto& [word, stem] : fixture["stems"].items())
    EXPECT_EQ(porter_stem(word), stem.get<std::string>()) << "word '" << word << "'";
}

TEST(MetricsRouge, TokenizesAsRougeScore) {
  const json fixture = testing::read_metric_fixture("rouge.json");
  ASSERT_GE(fixture["tokens"].size(), 90u) << kRegenerateMetricFixtures;
  for (const json& entry : fixture["tokens"]) {
    const std::string text = entry["text"].get<std::string>();
    EXPECT_EQ(rouge_tokenize(text, Stemming::Off), entry["plain"].get<std::vector<std::string>>())
        << "input " << printable(text);
    EXPECT_EQ(rouge_tokenize(text, Stemming::Porter), entry["stemmed"].get<std::vector<std::string>>())
        << "input " << printable(text);
  }
}

// Python's str.lower() keeps [a-z0-9] out of every non-ASCII character but two; the fixture lists
// them from all 1.1M code points, and every other one must be a separator for us.
TEST(MetricsRouge, LowercasesEveryCodePointAsPython) {
  const json fixture = testing::read_metric_fixture("rouge.json");
  std::set<char32_t> special;
  for (const json& entry : fixture["lowercase_to_ascii"]) special.insert(entry[0].get<char32_t>());
  EXPECT_EQ(special, (std::set<char32_t>{0x130, 0x212A})) << kRegenerateMetricFixtures;
  EXPECT_EQ(rouge_tokenize("\u0130stanbul 5\u212A", Stemming::Off), (std::vector<std::string>{"i", "stanbul", "5k"}));
  for (char32_t c = 0x80; c <= 0x10FFFF; ++c) {
    if ((c >= 0xD800 && c <= 0xDFFF) || special.count(c) > 0) continue;
    std::string text = "a";
    unicode::append_utf8(text, c);
    text += "b";
    ASSERT_EQ(rouge_tokenize(text, Stemming::Off).size(), 2u) << "code point U+" << std::hex << uint32_t(c);
  }
}

TEST(MetricsRouge, RougeLMatchesRougeScore) {
  const json pairs = testing::read_metric_fixture("pairs.json");
  const json fixture = testing::read_metric_fixture("rouge.json");
  ASSERT_GE(fixture["pairs"].size(), 70u) << kRegenerateMetricFixtures;
  std::vector<std::string> hypotheses, references;
  for (const json& entry : fixture["pairs"]) {
    const testing::MetricPair pair = testing::metric_pair(pairs, entry["pair"]);
    hypotheses.push_back(pair.hypothesis);
    references.push_back(pair.reference);
    const std::string where = "pair '" + pair.name + "': hypothesis " + printable(pair.hypothesis) +
                              "\nreference " + printable(pair.reference);
    EXPECT_EQ(triple(rouge_l(pair.hypothesis, pair.reference)), entry["plain"].get<std::vector<double>>()) << where;
    EXPECT_EQ(triple(rouge_l(pair.hypothesis, pair.reference, Stemming::Porter)),
              entry["stemmed"].get<std::vector<double>>())
        << where << "\nwith the stemmer";
  }
  for (const auto& [kind, stemming] : {std::pair{"plain", Stemming::Off}, std::pair{"stemmed", Stemming::Porter}}) {
    const std::vector<RougeScore> scores = rouge_l(hypotheses, references, stemming);
    EXPECT_EQ(triple(mean_rouge(scores)), fixture["mean"][kind].get<std::vector<double>>()) << kind;
  }
}

TEST(MetricsRouge, HandCheckedValues) {
  // LCS "the cat the mat" (4) of 6 hypothesis and 6 reference tokens.
  const RougeScore s = rouge_l("The cat sat on the mat.", "the cat lay under the mat");
  EXPECT_DOUBLE_EQ(s.precision, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.recall, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(s.fmeasure, 4.0 / 6.0);
  EXPECT_EQ(triple(rouge_l("", "a")), (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(triple(rouge_l("running cats", "runs cat", Stemming::Porter)), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(rouge_l("running cats", "runs cat").fmeasure, 0.0);
}

TEST(MetricsRouge, RejectsBadInput) {
  EXPECT_THROW(rouge_l(std::vector<std::string>{"a"}, std::vector<std::string>{}), Error);
  EXPECT_THROW(mean_rouge({}), Error);
}

}  // namespace
}  // namespace sentinel::metrics
