// Sessions advanced together (append_batch) on the tiny model: each sequence of a batch gets the
// logits, cache contents and compression stats it gets alone, whatever its policy, prompt length
// or chunking, through prefill and greedy decode; misuse is refused with a clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/model/sentinels.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

// float32 on CPU: a batch changes only how the projections' GEMMs are blocked (N rows instead of
// T), so logits agree to rounding (measured worst 4.2e-6, printed by the first test); a token
// attending to another sequence's cache or a misplaced row moves logits by 1e-2 or more.
constexpr double kTolerance = 5e-5;

LoadedModel& tiny() {
  static LoadedModel m = [] {
    LoadedModel out = load_model(testing::source_path("tests/data/tiny/hf"));
    install_sentinels(out.model);
    return out;
  }();
  return m;
}

std::vector<int32_t> prompt(int64_t n, int64_t salt, int64_t n_vocab) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + salt * 101 + 11) % n_vocab);
  return ids;
}

struct Sequence {
  std::string name;
  PolicyOptions policy;
  int64_t prompt_tokens;
};

std::vector<Sequence> mixed_batch() {
  const SentinelTokens st = sentinel_tokens(tiny().config);
  PolicyOptions sentinel;
  sentinel.method = Method::Sentinel;
  sentinel.ratio = 0.5;
  sentinel.span = 4;
  sentinel.cl_id = st.cl;
  sentinel.cr_id = st.cr;
  auto rule = [](Method m) {
    PolicyOptions o;
    o.method = m;
    o.ratio = 0.5;
    o.sinks = 2;
    return o;
  };
  return {{"full", {}, 13},
          {"sentinel", sentinel, 40},
          {"streaming", rule(Method::Streaming), 27},
          {"h2o", rule(Method::H2O), 1},
          {"local", rule(Method::Local), 33}};
}

KvCacheOptions small_cache() {
  KvCacheOptions o;
  o.capacity = 8;  // small, so that caches grow while the batch runs
  return o;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

void expect_batch_matches_alone(LoadedModel& m) {
  c10::InferenceMode inference;
  const int64_t n_vocab = tiny().config.n_vocab;
  const std::vector<Sequence> batch = mixed_batch();
  const int64_t kChunk = 8, kDecode = 12;

  std::vector<std::unique_ptr<Session>> together;
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < batch.size(); ++i) {
    together.push_back(std::make_unique<Session>(m.model, m.model->cache_options(8), batch[i].policy));
    prompts.push_back(prompt(batch[i].prompt_tokens, static_cast<int64_t>(i), n_vocab));
  }
  std::vector<Session*> sessions;
  std::vector<std::span<const int32_t>> spans;
  for (size_t i = 0; i < batch.size(); ++i) {
    sessions.push_back(together[i].get());
    spans.emplace_back(prompts[i]);
  }
  const std::vector<at::Tensor> prefill = append_batch(sessions, spans, Logits::All, kChunk);

  // Greedy decode together; the tokens each sequence chose are replayed alone below.
  std::vector<std::vector<int32_t>> chosen(batch.size());
  std::vector<std::vector<at::Tensor>> decode_logits(batch.size());
  std::vector<at::Tensor> last(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) last[i] = prefill[i][-1];
  for (int64_t step = 0; step < kDecode; ++step) {
    std::vector<int32_t> next(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      next[i] = static_cast<int32_t>(last[i].argmax().item<int64_t>());
      chosen[i].push_back(next[i]);
      spans[i] = std::span<const int32_t>(&next[i], 1);
    }
    last = append_batch(sessions, spans, Logits::Last);
    for (size_t i = 0; i < batch.size(); ++i) decode_logits[i].push_back(last[i]);
  }

  double worst = 0.0;
  for (size_t i = 0; i < batch.size(); ++i) {
    SCOPED_TRACE(batch[i].name);
    Session alone(m.model, m.model->cache_options(8), batch[i].policy);
    const at::Tensor expected_prefill = alone.append(prompts[i], Logits::All, kChunk);
    ASSERT_EQ(prefill[i].sizes(), expected_prefill.sizes());
    EXPECT_LT(max_diff(prefill[i], expected_prefill), kTolerance);
    worst = std::max(worst, max_diff(prefill[i], expected_prefill));
    for (int64_t step = 0; step < kDecode; ++step) {
      const at::Tensor expected = alone.append(std::span<const int32_t>(&chosen[i][step], 1), Logits::Last);
      EXPECT_LT(max_diff(decode_logits[i][step], expected), kTolerance) << "decode step " << step;
      worst = std::max(worst, max_diff(decode_logits[i][step], expected));
    }
    const Session& mine = *together[i];
    ASSERT_EQ(mine.cache().size(), alone.cache().size());
    EXPECT_EQ(mine.stats().cells_evicted, alone.stats().cells_evicted);
    EXPECT_EQ(mine.stats().sentinels_fed, alone.stats().sentinels_fed);
    EXPECT_EQ(mine.stats().peak_cells, alone.stats().peak_cells);
    for (int64_t c = 0; c < alone.cache().size(); ++c) {
      EXPECT_EQ(mine.cache().cells()[c].position, alone.cache().cells()[c].position);
      EXPECT_EQ(mine.cache().cells()[c].kind, alone.cache().cells()[c].kind);
    }
    for (int64_t layer = 0; layer < alone.cache().n_layer(); ++layer)
      EXPECT_LT(max_diff(mine.cache().keys(layer, alone.cache().size()), alone.cache().keys(layer, alone.cache().size())),
                kTolerance);
  }
  std::printf("batched vs alone: worst logit difference %.2e\n", worst);
  // The compressing sequences really compressed while batched.
  EXPECT_GT(together[1]->stats().sentinels_fed, 0);
  EXPECT_GT(together[2]->stats().cells_evicted, 0);
}

TEST(BatchSession, EverySequenceMatchesItsOwnSession) { expect_batch_matches_alone(tiny()); }

// The same on the quantized path (tiny.gguf's F16 matrices in place, K/V as f32): batched decode
// steps run in the NativeDecoder, one region per matrix for every sequence's row.
TEST(BatchSession, EverySequenceMatchesItsOwnSessionOnTheQuantizedPath) {
  static LoadedModel m = [] {
    LoadOptions options;
    options.backend = Backend::Quantized;
    LoadedModel out = load_model(testing::source_path("tests/data/tiny/tiny.gguf"), options);
    out.model->set_kv_storage(KvStorage::F32);
    install_sentinels(out.model);
    return out;
  }();
  ASSERT_TRUE(m.model->is_quantized());
  expect_batch_matches_alone(m);
}

TEST(BatchSession, SequencesWithoutTokensThisRoundAreLeftAlone) {
  c10::InferenceMode inference;
  const std::vector<int32_t> a = prompt(20, 1, tiny().config.n_vocab);
  Session first(tiny().model, small_cache()), second(tiny().model, small_cache());
  std::vector<Session*> sessions{&first, &second};
  std::vector<std::span<const int32_t>> tokens{std::span<const int32_t>(a), {}};
  const std::vector<at::Tensor> logits = append_batch(sessions, tokens, Logits::Last, 6);
  EXPECT_EQ(first.cache().size(), 20);
  EXPECT_EQ(second.cache().size(), 0);
  EXPECT_TRUE(logits[0].defined());
  EXPECT_FALSE(logits[1].defined());
}

TEST(BatchSession, MisuseIsRefused) {
  c10::InferenceMode inference;
  const std::vector<int32_t> a = prompt(3, 0, tiny().config.n_vocab);
  Session first(tiny().model, small_cache());
  LoadedModel other = load_model(testing::source_path("tests/data/tiny/hf"));
  Session foreign(other.model, small_cache());

  std::vector<std::span<const int32_t>> two{std::span<const int32_t>(a), std::span<const int32_t>(a)};
  std::vector<Session*> same_twice{&first, &first};
  EXPECT_THROW(append_batch(same_twice, two, Logits::Last), Error);  // one cache fed twice in one pass
  std::vector<Session*> mixed_models{&first, &foreign};
  EXPECT_THROW(append_batch(mixed_models, two, Logits::Last), Error);
  std::vector<Session*> one{&first};
  EXPECT_THROW(append_batch(one, two, Logits::Last), Error);  // counts differ
  EXPECT_EQ(first.cache().size(), 0);                          // nothing was fed by a refused call
}

}  // namespace
}  // namespace sentinel
