// BLEU against sacrebleu 2.6 (tests/data/metrics/bleu.json): the 13a tokenizer string for string,
// the sufficient statistics exactly, and score, precisions and bp for every smoothing method with
// and without effective order, at the sentence and the corpus level. Precisions are divisions and
// must be bit-equal; score and bp go through exp/log and are held to 1e-12 relative.
#include <gtest/gtest.h>

#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/metrics/bleu.h"
#include "support/metric_fixtures.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel::metrics {
namespace {

using nlohmann::json;
using testing::kRegenerateMetricFixtures;
using testing::printable;

BleuOptions options_of(const json& config) {
  BleuOptions options;
  options.smoothing = parse_bleu_smoothing(config["smoothing"].get<std::string>());
  if (!config["smooth_value"].is_null()) options.smooth_value = config["smooth_value"].get<double>();
  options.effective_order = config["effective_order"].get<bool>();
  return options;
}

std::string describe(const json& config) { return config.dump(); }

// score and bp: relative 1e-12 (exp and log may differ in the last bit between libms);
// precisions: exact.
void expect_same_score(const BleuScore& ours, const json& want, const std::string& where) {
  const double score = want["score"].get<double>(), bp = want["bp"].get<double>();
  EXPECT_NEAR(ours.score, score, 1e-12 * std::fabs(score)) << where;
  EXPECT_NEAR(ours.bp, bp, 1e-12 * std::fabs(bp)) << where;
  const auto precisions = want["precisions"].get<std::vector<double>>();
  EXPECT_EQ(ours.precisions, precisions) << where;
}

TEST(MetricsBleu, Tokenizes13aAsSacrebleu) {
  const json fixture = testing::read_metric_fixture("bleu.json");
  ASSERT_GE(fixture["tokenize_13a"].size(), 90u) << kRegenerateMetricFixtures;
  for (const json& entry : fixture["tokenize_13a"]) {
    const std::string text = entry["text"].get<std::string>();
    EXPECT_EQ(tokenize_13a(text), entry["tokens"].get<std::string>()) << "input " << printable(text);
  }
}

TEST(MetricsBleu, SentenceBleuMatchesSacrebleu) {
  const json pairs = testing::read_metric_fixture("pairs.json");
  const json fixture = testing::read_metric_fixture("bleu.json");
  const json& configs = fixture["configs"];
  ASSERT_GE(fixture["sentence"].size(), 70u) << kRegenerateMetricFixtures;
  for (const json& entry : fixture["sentence"]) {
    const testing::MetricPair pair = testing::metric_pair(pairs, entry["pair"]);
    const std::string where = "pair '" + pair.name + "': hypothesis " + printable(pair.hypothesis) +
                              "\nreference " + printable(pair.reference);
    const BleuStats stats = bleu_statistics(pair.hypothesis, pair.reference);
    EXPECT_EQ(stats.sys_len, entry["sys_len"].get<int64_t>()) << where;
    EXPECT_EQ(stats.ref_len, entry["ref_len"].get<int64_t>()) << where;
    EXPECT_EQ(stats.counts, entry["counts"].get<std::vector<int64_t>>()) << where;
    EXPECT_EQ(stats.totals, entry["totals"].get<std::vector<int64_t>>()) << where;
    for (size_t c = 0; c < entry["results"].size(); ++c) {
      const BleuScore ours = sentence_bleu(pair.hypothesis, pair.reference, options_of(configs[c]));
      expect_same_score(ours, entry["results"][c], where + "\nconfig " + describe(configs[c]));
      EXPECT_EQ(ours.sys_len, stats.sys_len);
    }
    // configs[0] is sentence_bleu's default.
    expect_same_score(sentence_bleu(pair.hypothesis, pair.reference), entry["results"][0], where + "\ndefaults");
  }
}

TEST(MetricsBleu, CorpusBleuMatchesSacrebleu) {
  const json pairs = testing::read_metric_fixture("pairs.json");
  const json fixture = testing::read_metric_fixture("bleu.json");
  const json& configs = fixture["configs"];
  ASSERT_GE(fixture["corpus"].size(), 5u) << kRegenerateMetricFixtures;
  for (const json& corpus : fixture["corpus"]) {
    std::vector<std::string> hypotheses, references;
    for (const json& index : corpus["pairs"]) {
      const testing::MetricPair pair = testing::metric_pair(pairs, index);
      hypotheses.push_back(pair.hypothesis);
      references.push_back(pair.reference);
    }
    for (size_t c = 0; c < configs.size(); ++c) {
      const json& want = corpus["results"][c];
      const std::string where = "corpus '" + corpus["name"].get<std::string>() + "', config " + describe(configs[c]);
      const BleuScore ours = corpus_bleu(hypotheses, references, options_of(configs[c]));
      expect_same_score(ours, want, where);
      EXPECT_EQ(ours.sys_len, want["sys_len"].get<int64_t>()) << where;
      EXPECT_EQ(ours.ref_len, want["ref_len"].get<int64_t>()) << where;
    }
    // configs[1] is corpus_bleu's default.
    expect_same_score(corpus_bleu(hypotheses, references), corpus["results"][1], "corpus defaults");
  }
}

TEST(MetricsBleu, HandCheckedValues) {
  const BleuScore same = sentence_bleu("the cat sat on the mat", "the cat sat on the mat");
  EXPECT_DOUBLE_EQ(same.score, 100.0);
  EXPECT_EQ(same.sys_len, 6);
  EXPECT_DOUBLE_EQ(same.ratio, 1.0);
  // 2 of 3 unigrams, 1 of 2 bigrams, 0 of 1 trigram (exp: 1/2 of a match), no 4-gram (effective
  // order 3): 100 * (2/3 * 1/2 * 1/2)^(1/3).
  const BleuScore short_one = sentence_bleu("a b c", "a b d");
  EXPECT_NEAR(short_one.score, 100.0 * std::cbrt(1.0 / 6.0), 1e-12);
  EXPECT_EQ(short_one.counts, (std::vector<int64_t>{2, 1, 0, 0}));
  EXPECT_EQ(short_one.totals, (std::vector<int64_t>{3, 2, 1, 0}));
  // Without smoothing the unmatched trigram makes it 0; without effective order the missing 4-gram does.
  BleuOptions none = sentence_bleu_defaults();
  none.smoothing = BleuSmoothing::None;
  EXPECT_EQ(sentence_bleu("a b c", "a b d", none).score, 0.0);
  EXPECT_EQ(sentence_bleu("a b c", "a b c", corpus_bleu_defaults()).score, 0.0);
  // Too short: every precision 100, brevity penalty exp(1 - 3/2).
  const BleuScore brief = sentence_bleu("a b", "a b c");
  EXPECT_NEAR(brief.score, 100.0 * std::exp(-0.5), 1e-12);
  EXPECT_NEAR(brief.bp, std::exp(-0.5), 1e-15);
  // Nothing matches: 0, whatever the smoothing.
  EXPECT_EQ(sentence_bleu("x y", "a b").score, 0.0);
  EXPECT_EQ(sentence_bleu("", "a b").bp, 0.0);
}

TEST(MetricsBleu, RejectsBadInput) {
  EXPECT_THROW(corpus_bleu({"a", "b"}, {"a"}), Error);
  EXPECT_THROW(corpus_bleu({}, {}), Error);
  EXPECT_THROW(parse_bleu_smoothing("exponential"), Error);
  EXPECT_THROW(bleu_statistics("a", "a", 0), Error);
  BleuOptions three;
  three.max_ngram_order = 3;
  EXPECT_THROW(compute_bleu(bleu_statistics("a b", "a b", 4), three), Error);
  try {
    corpus_bleu({"a", "b"}, {"a"});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 hypotheses but 1 references"), std::string::npos) << e.what();
  }
  for (const BleuSmoothing s : {BleuSmoothing::None, BleuSmoothing::Floor, BleuSmoothing::AddK, BleuSmoothing::Exp})
    EXPECT_EQ(parse_bleu_smoothing(bleu_smoothing_name(s)), s);
}

}  // namespace
}  // namespace sentinel::metrics
