// --older-rank surprisal (policy.h: OlderRank): the session scores every token it reads with the
// negative log-probability its own logits gave it, before the step's evictions, across chunk
// boundaries; the ranking policies keep the tokens the model least expected.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/policies/h2o.h"
#include "sentinel/policies/token_surprisal.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

TEST(TokenSurprisal, RecordsRunsAndKnowsWhatItHasNotSeen) {
  TokenSurprisal s;
  EXPECT_EQ(s.at(0), std::numeric_limits<double>::infinity());
  s.record(3, at::tensor({0.5f, 2.0f}));
  EXPECT_DOUBLE_EQ(s.at(3), 0.5);
  EXPECT_DOUBLE_EQ(s.at(4), 2.0);
  EXPECT_EQ(s.at(2), std::numeric_limits<double>::infinity()) << "a gap stays unknown";
  EXPECT_EQ(s.at(5), std::numeric_limits<double>::infinity());
  s.record(2, at::tensor({1.0f}));
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);
  EXPECT_THROW(s.record(-1, at::tensor({1.0f})), Error);
}

TEST(OlderRank, NamesParseAndApplyOnlyWhereTokensAreRanked) {
  EXPECT_EQ(parse_older_rank("surprisal"), OlderRank::Surprisal);
  EXPECT_EQ(older_rank_name(parse_older_rank("attention")), "attention");
  EXPECT_EQ(older_rank_name(parse_older_rank("both")), "both");
  EXPECT_THROW(parse_older_rank("entropy"), Error);
  EXPECT_EQ(ranked_by_attention(OlderRank::Both, 5), 3) << "the heavy hitters take the odd cell";
  EXPECT_EQ(ranked_by_attention(OlderRank::Attention, 5), 5);
  EXPECT_EQ(ranked_by_attention(OlderRank::Surprisal, 5), 0);
  PolicyOptions o;
  o.ratio = 0.5;
  o.older_rank = OlderRank::Surprisal;
  o.method = Method::H2O;
  EXPECT_NO_THROW(o.validate());
  o.method = Method::Streaming;
  EXPECT_THROW(o.validate(), Error);
  o.method = Method::Sentinel;
  o.cl_id = 10, o.cr_id = 11;
  o.layout = SpanLayout::Stream;
  EXPECT_THROW(o.validate(), Error) << "the stream layout ranks nothing";
  o.layout = SpanLayout::Heavy;
  EXPECT_NO_THROW(o.validate());
}

const LoadedModel& tiny() {
  static const LoadedModel m = load_model(testing::source_path("tests/data/tiny/hf"));
  return m;
}

PolicyOptions h2o(double ratio, OlderRank rank) {
  PolicyOptions options;
  options.method = Method::H2O;
  options.ratio = ratio;
  options.older_rank = rank;
  return options;
}

// The positions a session's cache holds.
std::vector<int64_t> cached_positions(const Session& session) {
  std::vector<int64_t> out;
  for (const CacheCell& c : session.cache().cells()) out.push_back(c.position);
  return out;
}

std::vector<int32_t> input_ids(int64_t n) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % tiny().config.n_vocab);
  return ids;
}

// The scores H2O ranks by are -log softmax(logits[t - 1])[token t], from the very logits the
// session returns, at every chunk size (a chunk's first token is scored with the previous
// chunk's last row); the first token has none.
TEST(TokenSurprisal, TheSessionScoresEveryTokenWithItsOwnLogits) {
  c10::InferenceMode guard;
  constexpr int64_t n = 29;
  const std::vector<int32_t> ids = input_ids(n);
  const PolicyOptions options = h2o(0.25, OlderRank::Surprisal);
  for (int64_t chunk : std::vector<int64_t>{1, 3, 7, n}) {
    Session session(tiny().model, KvCacheOptions{8}, options);
    const at::Tensor logits = session.append(ids, Logits::All, chunk);  // [n, n_vocab]
    const at::Tensor log_p = logits.log_softmax(-1);
    const auto& h2o = dynamic_cast<const H2OPolicy&>(session.policy());
    EXPECT_EQ(h2o.score(0), std::numeric_limits<double>::infinity()) << "chunk " << chunk;
    for (int64_t t = 1; t < n; ++t)
      EXPECT_NEAR(h2o.score(t), -log_p[t - 1][ids[t]].item<double>(), 1e-4) << "token " << t << ", chunk " << chunk;
    EXPECT_EQ(h2o.score(n), std::numeric_limits<double>::infinity()) << "its successor is not read yet";
  }
}

// Logits::Last and Logits::None read the same plan: the session scores every token whatever the
// caller asks back, and the last logits are the same row.
TEST(TokenSurprisal, TheCallersLogitsDoNotChangeThePlan) {
  c10::InferenceMode guard;
  const std::vector<int32_t> ids = input_ids(40);
  const PolicyOptions options = h2o(0.5, OlderRank::Surprisal);
  Session all(tiny().model, KvCacheOptions{8}, options), last(tiny().model, KvCacheOptions{8}, options);
  const at::Tensor every = all.append(ids, Logits::All, 5);
  const at::Tensor final_row = last.append(ids, Logits::Last, 5);
  EXPECT_TRUE(at::allclose(every[39], final_row));
  EXPECT_EQ(cached_positions(all), cached_positions(last));
}

// The rank decides: over the same text, H2O by surprisal keeps other older tokens than H2O by
// attention, and every one it keeps is at least as surprising as every older one it dropped.
TEST(TokenSurprisal, H2OKeepsTheMostSurprisingOlderTokens) {
  c10::InferenceMode guard;
  const std::vector<int32_t> ids = input_ids(60);
  Session by_attention(tiny().model, KvCacheOptions{8}, h2o(0.5, OlderRank::Attention));
  by_attention.append(ids, Logits::None, 60);
  Session by_surprisal(tiny().model, KvCacheOptions{8}, h2o(0.5, OlderRank::Surprisal));
  by_surprisal.append(ids, Logits::None, 60);  // one pass: every token scored before the eviction
  const std::vector<int64_t> kept_surprisal = cached_positions(by_surprisal);
  EXPECT_NE(cached_positions(by_attention), kept_surprisal);
  const auto& h2o = dynamic_cast<const H2OPolicy&>(by_surprisal.policy());
  const int64_t recent_begin = 60 - (static_cast<int64_t>(kept_surprisal.size()) / 2);  // the recent half
  double least_kept = std::numeric_limits<double>::infinity(), most_dropped = 0;
  for (int64_t t = 0; t < recent_begin; ++t) {
    const bool kept = std::find(kept_surprisal.begin(), kept_surprisal.end(), t) != kept_surprisal.end();
    if (kept) least_kept = std::min(least_kept, h2o.score(t));
    else most_dropped = std::max(most_dropped, h2o.score(t));
  }
  EXPECT_GE(least_kept, most_dropped);
  EXPECT_NE(std::find(kept_surprisal.begin(), kept_surprisal.end(), 0), kept_surprisal.end())
      << "the first token, never scored, stays";
}

}  // namespace
}  // namespace sentinel
