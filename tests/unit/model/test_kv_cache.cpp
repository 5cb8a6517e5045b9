// KV cache and incremental processing on the tiny model: any chunking of the input gives the
// logits of one full causal forward; eviction really compacts storage and keeps the rest intact.
#include <gtest/gtest.h>

#include <numeric>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

LoadedModel tiny() { return load_model(testing::source_path("tests/data/tiny/hf")); }

std::vector<int32_t> sample_ids(int n, int n_vocab) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = (i * 37 + 11) % n_vocab;
  return ids;
}

TEST(Session, EveryChunkSizeGivesTheFullForwardLogits) {
  LoadedModel m = tiny();
  c10::InferenceMode guard;
  const std::vector<int32_t> ids = sample_ids(23, static_cast<int>(m.config.n_vocab));
  at::Tensor t = at::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  const at::Tensor full = m.model->logits(m.model->forward({t, at::arange(23, at::kLong).unsqueeze(0), {}}).hidden[0]);
  for (int64_t chunk : {1, 2, 5, 8, 23, 64}) {
    Session session(m.model, KvCacheOptions{4});
    const at::Tensor logits = session.append(ids, Logits::All, chunk);
    EXPECT_LT(testing::max_abs_diff(logits, full), 1e-5) << "chunk " << chunk;
    EXPECT_EQ(session.cache().size(), 23);
    EXPECT_EQ(session.next_position(), 23);
  }
}

TEST(KvCache, EvictionCompactsAndKeepsTheRemainingEntries) {
  LoadedModel m = tiny();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{16});
  session.append(sample_ids(10, static_cast<int>(m.config.n_vocab)), Logits::None);
  KvCache& cache = session.cache();
  const at::Tensor keys_before = cache.keys(1, 10).clone();  // [1, n_head_kv, 10, head_dim]
  const int64_t bytes_before = cache.bytes_in_use();
  const int64_t evict[] = {7, 2, 3};
  cache.evict(evict);
  ASSERT_EQ(cache.size(), 7);
  EXPECT_EQ(cache.bytes_in_use() * 10, bytes_before * 7);
  const std::vector<int64_t> kept = {0, 1, 4, 5, 6, 8, 9};
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(cache.cells()[i].position, kept[i]);
    EXPECT_TRUE(at::equal(cache.keys(1, 7).select(2, i), keys_before.select(2, kept[i]))) << "cell " << i;
  }
  // Positions never move back: the next token continues the count (docs/method.md section 4).
  session.append(std::vector<int32_t>{5}, Logits::None);
  EXPECT_EQ(cache.cells().back().position, 10);
}

TEST(KvCache, RejectsBadEvictionsAndMasks) {
  LoadedModel m = tiny();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{8});
  session.append(sample_ids(4, static_cast<int>(m.config.n_vocab)), Logits::None);
  const int64_t out_of_range[] = {4};
  EXPECT_THROW(session.cache().evict(out_of_range), Error);
  const int64_t twice[] = {1, 1};
  EXPECT_THROW(session.cache().evict(twice), Error);
  const CacheCell cell{4, CellKind::Ordinary, 0};
  const int32_t token[] = {3};
  at::Tensor wrong_mask = at::ones({1, 1, 3}, at::kBool);  // needs [1, 1, 5]
  EXPECT_THROW(session.step(token, std::span(&cell, 1), wrong_mask), Error);
  const int32_t bad_token[] = {static_cast<int32_t>(m.config.n_vocab)};
  EXPECT_THROW(session.step(bad_token, std::span(&cell, 1)), Error);
}

TEST(KvCache, GrowsByDoublingAndReportsBytes) {
  LoadedModel m = tiny();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{2});
  session.append(sample_ids(9, static_cast<int>(m.config.n_vocab)), Logits::None, 1);
  EXPECT_EQ(session.cache().size(), 9);
  EXPECT_GE(session.cache().capacity(), 9);
  const int64_t per_cell = 2 * m.config.n_layer * m.config.kv_dim() * 4;
  EXPECT_EQ(session.cache().bytes_in_use(), 9 * per_cell);
}

}  // namespace
}  // namespace sentinel
