// SepLLM (policies/sepllm.h): sinks, the most recent separators and a recent window under the
// shared budget. The rule is checked against a plain re-statement over random streams (which
// separators and which window each query sees), for the properties eviction needs (monotone,
// chunk-independent, within budget, budget used), and its separator set against a real tokenizer.
#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/policies/separators.h"
#include "sentinel/policies/sepllm.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

constexpr int32_t kSeparator = 1, kWord = 2;  // ids of the streams below: 1 is the one separator

std::vector<int32_t> stream(int64_t n, double separator_share, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution sep(separator_share);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = sep(rng) ? kSeparator : kWord;
  return ids;
}

// What query j sees, by SepLLM's own account: the sinks, the window [start, j], and the separators
// in [from, start) — where every separator in that region is kept.
std::set<int64_t> visible(const SepLLMPolicy& p, int64_t j) {
  std::set<int64_t> seen;
  for (int64_t k = 0; k <= j; ++k)
    if (k == j || p.sees(j, k)) seen.insert(k);
  return seen;
}

struct Case {
  double ratio;
  int64_t sinks;
  double separator_share;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << "ratio " << c.ratio << ", " << c.sinks << " sinks, separators " << c.separator_share;
}

class SepLLMRule : public ::testing::TestWithParam<Case> {};

TEST_P(SepLLMRule, FillsTheBudgetWithSinksRecentSeparatorsAndTheWindow) {
  const Case c = GetParam();
  const int64_t n = 300;
  const std::vector<int32_t> ids = stream(n, c.separator_share, 7);
  SepLLMPolicy p(c.ratio, c.sinks, {kSeparator});
  p.expand(ids, 0);
  for (int64_t j = 0; j < n; ++j) {
    SCOPED_TRACE("query " + std::to_string(j));
    const std::set<int64_t> seen = visible(p, j);
    const int64_t budget = kv_budget(c.ratio, j + 1);
    // Within the budget (the sinks are always seen, as StreamingLLM's), and the budget used.
    EXPECT_EQ(static_cast<int64_t>(seen.size()), std::max(budget, std::min(c.sinks, j) + 1));
    const int64_t start = p.window_start(j), from = p.separators_from(j);
    for (int64_t k = 0; k <= j; ++k) {
      const bool expected = k < c.sinks || k >= start || (ids[k] == kSeparator && k >= from);
      ASSERT_EQ(seen.count(k) == 1, expected) << "key " << k;
    }
    // The separators kept are the most recent ones before the window, within their share.
    int64_t kept = 0;
    for (int64_t k = std::max(from, c.sinks); k < start; ++k) kept += ids[k] == kSeparator;
    const auto room = std::max<int64_t>(0, budget - std::min(c.sinks, j + 1));
    EXPECT_LE(kept, static_cast<int64_t>(SepLLMPolicy::kSeparatorShare * static_cast<double>(room)));
    if (j > 0) {
      EXPECT_GE(start, p.window_start(j - 1));
      EXPECT_GE(from, p.separators_from(j - 1));
    }
  }
}

// The cache as SepLLM describes it, kept literally: sinks, a separator store and a window of
// positions; each query adds itself, then while over budget the oldest separator goes when the
// store is over its share, else the window's oldest token leaves (to the store if a separator).
std::vector<std::set<int64_t>> simulated(const std::vector<int32_t>& ids, double ratio, int64_t sinks) {
  std::set<int64_t> sink, store, window;
  std::vector<std::set<int64_t>> seen;
  for (int64_t j = 0; j < static_cast<int64_t>(ids.size()); ++j) {
    (j < sinks ? sink : window).insert(j);
    const int64_t budget = kv_budget(ratio, j + 1);
    const int64_t room = std::max<int64_t>(0, budget - static_cast<int64_t>(sink.size()));
    const auto cap = static_cast<int64_t>(SepLLMPolicy::kSeparatorShare * static_cast<double>(room));
    while (static_cast<int64_t>(sink.size() + store.size() + window.size()) > budget) {
      if (static_cast<int64_t>(store.size()) > cap) {
        store.erase(store.begin());
      } else if (window.size() > 1) {
        const int64_t oldest = *window.begin();
        window.erase(window.begin());
        if (ids[oldest] == kSeparator) store.insert(oldest);
      } else {
        break;
      }
    }
    std::set<int64_t> all = sink;
    all.insert(store.begin(), store.end());
    all.insert(window.begin(), window.end());
    seen.push_back(all);
  }
  return seen;
}

TEST_P(SepLLMRule, SeesWhatTheLiteralCacheHolds) {
  const Case c = GetParam();
  const std::vector<int32_t> ids = stream(400, c.separator_share, 5);
  SepLLMPolicy p(c.ratio, c.sinks, {kSeparator});
  p.expand(ids, 0);
  const std::vector<std::set<int64_t>> expected = simulated(ids, c.ratio, c.sinks);
  for (int64_t j = 0; j < static_cast<int64_t>(ids.size()); ++j) ASSERT_EQ(visible(p, j), expected[j]) << "query " << j;
}

TEST_P(SepLLMRule, IsMonotoneAndIndependentOfChunking) {
  const Case c = GetParam();
  const int64_t n = 200;
  const std::vector<int32_t> ids = stream(n, c.separator_share, 11);
  SepLLMPolicy whole(c.ratio, c.sinks, {kSeparator});
  whole.expand(ids, 0);
  for (int64_t chunk : {1, 3, 17}) {
    SepLLMPolicy pieces(c.ratio, c.sinks, {kSeparator});
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t count = std::min(chunk, n - begin);
      pieces.expand(std::span(ids.data() + begin, count), begin);
    }
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_EQ(pieces.window_start(j), whole.window_start(j)) << "chunk " << chunk << " query " << j;
      ASSERT_EQ(pieces.separators_from(j), whole.separators_from(j)) << "chunk " << chunk << " query " << j;
    }
  }
  for (int64_t j = 1; j < n; ++j)
    for (int64_t k = 0; k < j - 1; ++k)
      if (!whole.sees(j - 1, k)) ASSERT_FALSE(whole.sees(j, k)) << "key " << k << " came back at query " << j;
}

INSTANTIATE_TEST_SUITE_P(Budgets, SepLLMRule,
                         ::testing::Values(Case{0.5, 4, 0.1}, Case{0.75, 4, 0.1}, Case{0.875, 4, 0.15},
                                           Case{0.5, 0, 0.3}, Case{0.5, 2, 0.0}, Case{0.875, 4, 0.9}));

TEST(SepLLMRule, KeepsSeparatorsAWindowAloneWouldDrop) {
  // A separator every 10 tokens: at ratio 0.75 the window alone would hold the last ~70 of 300
  // tokens; SepLLM also keeps separators older than that.
  std::vector<int32_t> ids(300, kWord);
  for (size_t k = 5; k < ids.size(); k += 10) ids[k] = kSeparator;
  SepLLMPolicy p(0.75, 4, {kSeparator});
  p.expand(ids, 0);
  const int64_t j = 299, start = p.window_start(j);
  int64_t older_separators_seen = 0;
  for (int64_t k = 4; k < start; ++k) older_separators_seen += p.sees(j, k);
  EXPECT_GT(older_separators_seen, 5);
  for (int64_t k = 4; k < start; ++k)
    if (p.sees(j, k)) EXPECT_EQ(ids[k], kSeparator) << k;
}

TEST(SepLLMRule, NeedsSeparatorIds) {
  EXPECT_THROW(SepLLMPolicy(0.5, 4, {}), Error);
  PolicyOptions o;
  o.method = Method::Streaming;
  o.ratio = 0.5;
  o.separators = {1};
  EXPECT_THROW(o.validate(), Error);  // separators belong to sepllm
}

// The paper's separators, found through a real byte-level BPE vocabulary (the tiny model's: every
// byte is a token, and some merges): punctuation with or without its leading space, and white
// space; never a word, a number or a special token.
TEST(SeparatorIds, ArePunctuationAndWhiteSpaceOfTheVocabulary) {
  const Tokenizer t = Tokenizer::from_json_file(testing::source_path("tests/data/tiny/hf/tokenizer.json"));
  const std::vector<int32_t> ids = separator_ids(t);
  const std::set<int32_t> set(ids.begin(), ids.end());
  for (const std::string text : {".", ",", "?", "!", ";", ":", " ", "\n", "\t", " .", " ,", "\n\n", "  "}) {
    const std::vector<int32_t> encoded = t.encode(text, false);
    if (text.size() == 1) ASSERT_EQ(encoded.size(), 1u) << "byte '" << text << "' is not one token";
    if (encoded.size() == 1) EXPECT_TRUE(set.count(encoded[0])) << "'" << text << "' (id " << encoded[0] << ")";
  }
  for (int32_t id : ids) {
    const std::string text = t.token_bytes(id);
    EXPECT_NE(t.token_kind(id), TokenKind::Special) << text;
    EXPECT_EQ(text.find_first_not_of(" \t\n\r.,?!;:"), std::string::npos) << "'" << text << "' is not a separator";
  }
  for (const std::string text : {"a", "0", "e", "-"}) EXPECT_FALSE(set.count(t.encode(text, false).at(0))) << text;
}

}  // namespace
}  // namespace sentinel
