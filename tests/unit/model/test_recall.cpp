// The recall probes (eval/recall.h) on the tiny model: the cases hold what they claim (the passage
// that recurs, the key that is asked for), and scoring through a full-cache session is exactly the
// plain causal pass's log-likelihood of the target, whatever the chunking.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/eval/recall.h"
#include "sentinel/model/sentinels.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

std::vector<int32_t> counting(int n) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = 3 + i % 200;
  return ids;
}

TEST(RecallCases, RepeatTargetIsThePassageAfterTheLead) {
  const std::vector<int32_t> text = counting(1000);
  const std::vector<RecallCase> cases = repeat_cases(text, 200, 20, 8, 3);
  ASSERT_EQ(cases.size(), 3u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const RecallCase& c = cases[i];
    EXPECT_EQ(c.context.size() + c.target.size(), 200u);
    EXPECT_TRUE(std::equal(c.target.begin(), c.target.end(), c.context.begin() + 8));
    EXPECT_EQ(c.context.front(), text[i * 180]) << "cases must not overlap";
    EXPECT_EQ(c.distance, 180 - 8 - 20);
  }
  EXPECT_EQ(repeat_cases(text, 200, 20, 8, 100).size(), 1000u / 180);
  EXPECT_THROW(repeat_cases(text, 40, 20, 8, 1), Error);  // no gap left
  EXPECT_THROW(repeat_cases(counting(100), 200, 20, 8, 1), Error);
}

TEST(RecallCases, PasskeyStatesTheKeyOnceAtItsDepthAndAsksAtTheEnd) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  const std::vector<RecallCase> cases = passkey_cases(*m.tokenizer, 300, 4, 7);
  ASSERT_EQ(cases.size(), 4u);
  int64_t previous_distance = 1 << 30;
  for (const RecallCase& c : cases) {
    const std::string context = m.tokenizer->decode(c.context), key = m.tokenizer->decode(c.target);
    ASSERT_EQ(key.size(), 6u) << key;  // " 12345"
    EXPECT_NE(context.find("The pass key is" + key + "."), std::string::npos);
    EXPECT_TRUE(context.ends_with("What is the pass key? The pass key is")) << context.substr(context.size() - 60);
    EXPECT_NEAR(static_cast<double>(c.context.size() + c.target.size()), 300.0, 2.0);
    EXPECT_LT(c.distance, previous_distance) << "depths must go deeper case by case";
    previous_distance = c.distance;
  }
  EXPECT_NE(cases[0].target, cases[1].target) << "keys are drawn per case";
  EXPECT_THROW(passkey_cases(*m.tokenizer, 40, 1, 0), Error);
}

TEST(RecallScore, FullCacheEqualsThePlainPassForAnyChunking) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  at::set_num_threads(1);  // the tiny model's ops are too small to split; barriers would dominate
  const std::vector<RecallCase> cases = repeat_cases(counting(600), 120, 16, 4, 2);
  double expected = 0;
  for (const RecallCase& c : cases) expected += continuation_nll(m.model, c.context, c.target);
  for (int64_t chunk : {1, 7, 64}) {
    const RecallScore s = score_recall(m.model, cases, PolicyOptions{}, chunk);
    EXPECT_EQ(s.n_cases, 2);
    EXPECT_EQ(s.n_target, 32);
    EXPECT_NEAR(s.nll_sum, expected, 1e-3 * std::abs(expected)) << "chunk " << chunk;
    EXPECT_EQ(s.achieved_ratio(), 0.0);
  }
}

TEST(RecallScore, CompressionKeepsFewerEntries) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  install_sentinels(m.model);
  const SentinelTokens st = sentinel_tokens(m.config);
  PolicyOptions p;
  p.method = Method::Sentinel;
  p.ratio = 0.5;
  p.span = 8;
  p.cl_id = st.cl;
  p.cr_id = st.cr;
  const std::vector<RecallCase> cases = repeat_cases(counting(600), 200, 16, 4, 1);
  const RecallScore s = score_recall(m.model, cases, p, 32);
  EXPECT_NEAR(s.achieved_ratio(), 0.5, 0.06);
  EXPECT_GT(s.nll_sum, 0.0);
}

}  // namespace
}  // namespace sentinel
