// The prompt cache's prefix matching (no model): the longest proper prefix under the same
// compression wins, a state under other options or with a half-open span never matches, and the
// byte budget evicts the least recently used.
#include <gtest/gtest.h>

#include "sentinel/server/prompt_cache.h"

namespace sentinel::server {
namespace {

std::shared_ptr<SessionState> state(std::vector<int32_t> tokens, PolicyOptions policy = {}, size_t row_bytes = 0) {
  auto s = std::make_shared<SessionState>();
  s->tokens = std::move(tokens);
  s->policy = policy;
  s->keys.push_back(std::vector<uint8_t>(row_bytes));
  s->values.push_back(std::vector<uint8_t>(row_bytes));
  return s;
}

PolicyOptions sentinel_policy(std::vector<Span> spans = {}) {
  PolicyOptions p;
  p.method = Method::Sentinel;
  p.ratio = 0.5;
  p.span = 4;
  p.cl_id = 100;
  p.cr_id = 101;
  p.spans = std::move(spans);
  return p;
}

TEST(PromptCache, LongestProperPrefixWins) {
  PromptCache cache(1 << 20);
  cache.insert(state({1, 2}));
  cache.insert(state({1, 2, 3, 4}));
  cache.insert(state({1, 2, 3, 4, 5, 6}));  // as long as the prompt: no token left to read
  cache.insert(state({1, 9, 9}));
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6};
  auto hit = cache.lookup(prompt, {});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tokens.size(), 4u);
  EXPECT_FALSE(cache.lookup(std::vector<int32_t>{7, 1, 2}, {}));
  EXPECT_EQ(cache.hits(), 1);
}

TEST(PromptCache, OtherCompressionNeverMatches) {
  PromptCache cache(1 << 20);
  cache.insert(state({1, 2, 3, 4}, sentinel_policy()));
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  EXPECT_FALSE(cache.lookup(prompt, {}));  // full cache asked
  PolicyOptions other = sentinel_policy();
  other.ratio = 0.25;
  EXPECT_FALSE(cache.lookup(prompt, other));
  EXPECT_TRUE(cache.lookup(prompt, sentinel_policy()));
}

TEST(PromptCache, ExplicitSpansMustAgreeInsideThePrefix) {
  PromptCache cache(1 << 20);
  cache.insert(state({1, 2, 3, 4, 5, 6}, sentinel_policy({{0, 4}})));
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  // Later spans past the prefix do not matter; the ones inside it must be the same.
  EXPECT_TRUE(cache.lookup(prompt, sentinel_policy({{0, 4}, {7, 9}})));
  EXPECT_FALSE(cache.lookup(prompt, sentinel_policy({{1, 5}})));
  // A span that would straddle the prefix's end makes the cached state unusable.
  EXPECT_TRUE(policy_key(sentinel_policy({{4, 8}}), 6).empty());
  EXPECT_FALSE(cache.lookup(prompt, sentinel_policy({{0, 4}, {5, 8}})));
}

TEST(PromptCache, H2OIsNeverCached) {
  PromptCache cache(1 << 20);
  PolicyOptions h2o;
  h2o.method = Method::H2O;
  h2o.ratio = 0.5;
  cache.insert(state({1, 2, 3}, h2o));
  EXPECT_EQ(cache.size(), 0);
}

TEST(PromptCache, ByteBudgetEvictsLeastRecentlyUsed) {
  PromptCache cache(3000);
  cache.insert(state({1, 1}, {}, 500));  // ~1000 bytes each
  cache.insert(state({2, 2}, {}, 500));
  ASSERT_TRUE(cache.lookup(std::vector<int32_t>{1, 1, 5}, {}));  // {1,1} is now the most recent
  cache.insert(state({3, 3}, {}, 500));
  EXPECT_LE(cache.bytes(), 3000);
  EXPECT_EQ(cache.size(), 2);
  EXPECT_TRUE(cache.lookup(std::vector<int32_t>{1, 1, 5}, {}));
  EXPECT_FALSE(cache.lookup(std::vector<int32_t>{2, 2, 5}, {}));
  cache.insert(state({4, 4}, {}, 5000));  // larger than the budget: not kept
  EXPECT_FALSE(cache.lookup(std::vector<int32_t>{4, 4, 5}, {}));
}

}  // namespace
}  // namespace sentinel::server
