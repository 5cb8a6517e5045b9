// Policies that evict by attention (h2o, sentinel's heavy layout) have no mask before the text is
// read, so they are trained on a replay: the steps a session recorded, turned into one masked pass
// (masked_forward.h: replayed_sequence). On the tiny model, that pass must give the logits the
// session gave, at every chunk size, and for a fixed-mask layout it must be the layout's own mask.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "sentinel/engine/masked_forward.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/model/sentinels.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

constexpr int64_t kTokens = 40;
// As test_compression_equivalence.cpp: the two paths differ in how attention is blocked only.
constexpr double kTolerance = 5e-5;

struct Tiny {
  LoadedModel m;
  SentinelTokens ids;
};

Tiny& tiny() {
  static Tiny t = [] {
    Tiny out{load_model(testing::source_path("tests/data/tiny/hf")), {}};
    install_sentinels(out.m.model);
    out.ids = sentinel_tokens(out.m.config);
    return out;
  }();
  return t;
}

std::vector<int32_t> input_ids() {
  std::vector<int32_t> ids(kTokens);
  for (int64_t i = 0; i < kTokens; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % tiny().m.config.n_vocab);
  return ids;
}

PolicyOptions policy(Method method, double ratio, SpanLayout layout = SpanLayout::Stream,
                     OlderRank rank = OlderRank::Attention) {
  PolicyOptions o;
  o.method = method;
  o.older_rank = rank;
  o.ratio = ratio;
  o.layout = layout;
  o.span = 4;
  o.sinks = 2;
  if (method == Method::Sentinel) {
    o.cl_id = tiny().ids.cl;
    o.cr_id = tiny().ids.cr;
  }
  return o;
}

struct Read {
  at::Tensor logits;  // [kTokens, n_vocab]
  std::vector<StepRecord> steps;
};

Read read(const PolicyOptions& options, int64_t chunk) {
  Read r;
  Session session(tiny().m.model, KvCacheOptions{8}, options);
  session.record_steps(&r.steps);
  r.logits = session.append(input_ids(), Logits::All, chunk);
  return r;
}

class ReplayOfAttentionPolicies : public ::testing::TestWithParam<PolicyOptions> {};

TEST_P(ReplayOfAttentionPolicies, GivesTheSessionsLogitsAtEveryChunkSize) {
  c10::InferenceMode guard;
  ASSERT_TRUE(reads_attention(GetParam()));
  double worst = 0;
  for (int64_t chunk : std::vector<int64_t>{1, 2, 3, 5, 16, kTokens}) {
    const Read r = read(GetParam(), chunk);
    const MaskedSequence replay = replayed_sequence(r.steps);
    ASSERT_EQ(static_cast<int64_t>(replay.ordinary_rows.size()), kTokens);
    const at::Tensor logits = masked_logits(tiny().m.model, replay);
    ASSERT_EQ(logits.sizes(), r.logits.sizes()) << "chunk " << chunk;
    const double diff = testing::max_abs_diff(logits, r.logits);
    worst = std::max(worst, diff);
    EXPECT_LT(diff, kTolerance) << "chunk " << chunk;
  }
  std::printf("%s %s %.2f: max abs logit diff, replay vs session: %.3e\n", method_name(GetParam().method).c_str(),
              span_layout_name(GetParam().layout).c_str(), GetParam().ratio, worst);
}

INSTANTIATE_TEST_SUITE_P(Policies, ReplayOfAttentionPolicies,
                         ::testing::Values(policy(Method::H2O, 0.5), policy(Method::H2O, 0.75),
                                           policy(Method::Sentinel, 0.5, SpanLayout::Heavy),
                                           policy(Method::Sentinel, 0.75, SpanLayout::Heavy),
                                           policy(Method::H2O, 0.5, SpanLayout::Stream, OlderRank::Surprisal),
                                           policy(Method::Sentinel, 0.5, SpanLayout::Heavy, OlderRank::Surprisal)),
                         [](const auto& info) {
                           return method_name(info.param.method) + "_" + span_layout_name(info.param.layout) + "_" +
                                  std::to_string(static_cast<int>(info.param.ratio * 100)) + "_" +
                                  older_rank_name(info.param.older_rank);
                         });

// Without this, a replay that let every element see everything would pass whenever the session
// evicted nothing that mattered: the heavy layout's summaries and evictions do change the logits.
TEST(ReplayOfAttentionPolicies, TheHeavyLayoutChangesTheLogits) {
  c10::InferenceMode guard;
  const Read none = read(policy(Method::None, 0.0), kTokens);
  const Read heavy = read(policy(Method::Sentinel, 0.5, SpanLayout::Heavy), 5);
  const Read h2o = read(policy(Method::H2O, 0.5), 5);
  EXPECT_GT(testing::max_abs_diff(heavy.logits, none.logits), 1e-2);
  EXPECT_GT(testing::max_abs_diff(heavy.logits, h2o.logits), 1e-2) << "the <CR>s are read";
}

// For a policy with a fixed mask, replaying its steps rebuilds exactly the mask masked_sequence
// builds from the layout alone (compared over the ordinary tokens' rows and the cells both keep).
TEST(ReplayOfFixedMasks, RebuildsTheLayoutsOwnMask) {
  c10::InferenceMode guard;
  for (int64_t chunk : std::vector<int64_t>{1, 7, kTokens}) {
    const PolicyOptions stream = policy(Method::Sentinel, 0.5, SpanLayout::Stream);
    const MaskedSequence replay = replayed_sequence(read(stream, chunk).steps);
    const MaskedSequence layout = masked_sequence(*make_policy(stream), input_ids());
    ASSERT_EQ(replay.elements.size(), layout.elements.size()) << "chunk " << chunk;
    EXPECT_TRUE(at::equal(replay.ids, layout.ids));
    EXPECT_TRUE(at::equal(replay.positions, layout.positions));
    EXPECT_TRUE(at::equal(replay.mask, layout.mask)) << "chunk " << chunk;
  }
}

TEST(ReadAndReplay, IsTheReplayOfAFreshSession) {
  c10::InferenceMode guard;
  const PolicyOptions heavy = policy(Method::Sentinel, 0.5, SpanLayout::Heavy);
  const MaskedSequence direct = read_and_replay(tiny().m.model, heavy, input_ids(), 16);
  const MaskedSequence replay = replayed_sequence(read(heavy, 16).steps);
  EXPECT_TRUE(at::equal(direct.mask, replay.mask));
  EXPECT_TRUE(at::equal(direct.ids, replay.ids));
}

}  // namespace
}  // namespace sentinel
