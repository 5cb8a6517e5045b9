// Sampler: greedy is argmax, seeded sampling is reproducible, each filter narrows the choice as
// documented, and invalid options are refused.
#include <gtest/gtest.h>

#include <set>

#include "sentinel/core/error.h"
#include "sentinel/engine/sampler.h"

namespace sentinel {
namespace {

at::Tensor logits_of(std::vector<float> v) { return at::tensor(v); }

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(SamplingOptions{});
  EXPECT_EQ(s.sample(logits_of({0.1f, 2.0f, -1.0f, 1.9f}), {}), 1);
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  Sampler a(o), b(o);
  const at::Tensor l = logits_of({1.0f, 1.1f, 0.9f, 1.05f, 0.5f});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(l, {}), b.sample(l, {}));
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  SamplingOptions k;
  k.temperature = 1.0;
  k.top_k = 1;
  SamplingOptions p;
  p.temperature = 1.0;
  p.top_p = 1e-6;
  Sampler sk(k), sp(p);
  const at::Tensor l = logits_of({0.5f, 0.1f, 0.7f, 0.69f});
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(sk.sample(l, {}), 2);
    EXPECT_EQ(sp.sample(l, {}), 2);
  }
}

TEST(Sampler, TopKLimitsTheSupport) {
  SamplingOptions o;
  o.temperature = 5.0;
  o.top_k = 2;
  Sampler s(o);
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(s.sample(logits_of({3.0f, 0.0f, 2.9f, 0.1f}), {}));
  EXPECT_EQ(seen, (std::set<int32_t>{0, 2}));
}

TEST(Sampler, RepetitionPenaltyFollowsTheHuggingFaceRule) {
  SamplingOptions o;
  o.repetition_penalty = 2.0;
  Sampler s(o);
  // token 0: 3.0 -> 1.5 (divided), token 1: 2.0 stays: greedy now picks 1.
  const int32_t history[] = {0};
  EXPECT_EQ(s.sample(logits_of({3.0f, 2.0f, -1.0f}), history), 1);
  // negative logits are multiplied: -0.5 -> -1.0, so token 2 (-0.8) wins.
  const int32_t history2[] = {1};
  EXPECT_EQ(s.sample(logits_of({-5.0f, -0.5f, -0.8f}), history2), 2);
}

TEST(Sampler, RejectsInvalidOptions) {
  SamplingOptions o;
  o.top_p = 0.0;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.temperature = -1;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.top_k = -3;
  EXPECT_THROW(Sampler{o}, Error);
}

}  // namespace
}  // namespace sentinel
