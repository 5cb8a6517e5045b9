// KV cache and incremental processing on the tiny model: any chunking of the input gives the
// logits of one full causal forward; eviction really compacts storage and keeps the rest intact.
// On the tiny Gemma 3, the sliding-window layers keep a bounded window of rows.
#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <random>

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
  const CacheCell cell{4, CellKind::Ordinary};
  const int32_t token[] = {3};
  at::Tensor wrong_mask = at::ones({1, 1, 3}, at::kBool);  // needs [1, 1, 5]
  EXPECT_THROW(session.step(token, std::span(&cell, 1), wrong_mask), Error);
  const int32_t bad_token[] = {static_cast<int32_t>(m.config.n_vocab)};
  EXPECT_THROW(session.step(bad_token, std::span(&cell, 1)), Error);
}

// Evictions near the front move the cells before them up (the layer's rows then start later),
// those near the back move the cells after them down; appends past the end move everything back
// to row 0 or grow. Whatever the mix, every layer holds each kept cell's rows as written.
TEST(KvCache, EvictingFromEitherSideKeepsEveryCellsRows) {
  LoadedModel m = tiny();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{8});
  KvCache& cache = session.cache();
  const std::vector<int32_t> ids = sample_ids(400, static_cast<int>(m.config.n_vocab));
  std::map<int64_t, std::vector<at::Tensor>> written;  // position -> [layer] keys then values, [1, n_head_kv, 1, hd]
  auto remember_last = [&] {
    const int64_t n = cache.size();
    std::vector<at::Tensor>& rows = written[cache.cells().back().position];
    for (int64_t l = 0; l < cache.n_layer(); ++l) {
      rows.push_back(cache.keys(l, n).narrow(2, n - 1, 1).clone());
      rows.push_back(cache.values(l, n).narrow(2, n - 1, 1).clone());
    }
  };
  auto expect_rows_intact = [&](int64_t step) {
    const int64_t n = cache.size();
    for (int64_t l = 0; l < cache.n_layer(); ++l) {
      const at::Tensor keys = cache.keys(l, n), values = cache.values(l, n);
      for (int64_t c = 0; c < n; ++c) {
        const std::vector<at::Tensor>& rows = written.at(cache.cells()[c].position);
        ASSERT_TRUE(at::equal(keys.narrow(2, c, 1), rows[2 * l])) << "step " << step << " layer " << l << " cell " << c;
        ASSERT_TRUE(at::equal(values.narrow(2, c, 1), rows[2 * l + 1])) << "step " << step << " layer " << l;
      }
    }
  };
  std::mt19937 rng(7);
  for (int64_t step = 0; step < static_cast<int64_t>(ids.size()); ++step) {
    session.append(std::span(&ids[step], 1), Logits::None);
    remember_last();
    if (cache.size() < 24) continue;
    // Alternate a run just after 4 sinks (the front moves), a run near the back (the back moves)
    // and scattered cells.
    std::vector<int64_t> evict;
    const int64_t n = cache.size();
    switch (step % 3) {
      case 0: for (int64_t i = 4; i < 12; ++i) evict.push_back(i); break;
      case 1: for (int64_t i = n - 6; i < n - 2; ++i) evict.push_back(i); break;
      default:
        for (int64_t i = 0; i < n; ++i)
          if (rng() % 5 == 0) evict.push_back(i);
    }
    cache.evict(evict);
    expect_rows_intact(step);
  }
  EXPECT_LE(cache.capacity(), 64) << "moving the cells back to row 0 should have kept the storage small";
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

// The tiny Gemma 3 of tests/data/families: layers sliding, global, sliding, an 8-position window.
LoadedModel& gemma3() {
  static LoadedModel m = load_model(testing::source_path("tests/data/families/gemma3/model.f16.gguf"));
  return m;
}

// Decoding far past the window: the global layer keeps every cell, the window layers a bounded
// suffix (the window, the half window of room kept before rows move, the token being fed), and the
// logits are those of one uncached forward pass, which applies the window by positions.
TEST(KvCacheWindow, WindowLayersStayBoundedWhileDecodingPastTheWindow) {
  LoadedModel& m = gemma3();
  c10::InferenceMode guard;
  const int64_t n = 120, W = m.config.sliding_window;
  ASSERT_EQ(W, 8);
  const std::vector<int32_t> ids = sample_ids(static_cast<int>(n), static_cast<int>(m.config.n_vocab));
  const at::Tensor t = at::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  const at::Tensor full = m.model->logits(m.model->forward({t, at::arange(n, at::kLong).unsqueeze(0), {}}).hidden[0]);
  Session session(m.model, KvCacheOptions{4});
  const KvCache& cache = session.cache();
  const int64_t layer_cell = 2 * m.config.kv_dim() * 4;  // K and V of one cell in one layer, f32
  std::vector<at::Tensor> logits;
  for (int64_t i = 0; i < n; ++i) {
    logits.push_back(session.append(std::span(ids).subspan(i, 1), Logits::All));
    const int64_t held = cache.size() - cache.window_begin();
    EXPECT_LE(held, W + W / 2 + 1) << "after " << i + 1 << " tokens";
    EXPECT_EQ(cache.global_bytes_in_use(), 1 * (i + 1) * layer_cell);
    EXPECT_EQ(cache.window_bytes_in_use(), 2 * held * layer_cell);
  }
  EXPECT_LT(testing::max_abs_diff(at::cat(logits), full), 2e-4);
  EXPECT_EQ(cache.size(), n);
  EXPECT_GT(cache.window_begin(), n - 2 * W);
  // Storage: the global layer's grows with the sequence, each window layer's stays ~1.5 windows.
  EXPECT_LE(cache.bytes_allocated() - cache.capacity() * layer_cell, 2 * (W + W / 2 + 1) * layer_cell);
  EXPECT_EQ(cache.bytes_uncompressed(n), (n + 2 * W) * layer_cell);
}

// Eviction through a window: cells before it only shift its start; cells inside leave the window
// layers' rows too, and the rows left are those of the kept cells.
TEST(KvCacheWindow, EvictionCompactsTheWindowLayersToo) {
  LoadedModel& m = gemma3();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{8});
  session.append(sample_ids(30, static_cast<int>(m.config.n_vocab)), Logits::None, 1);
  KvCache& cache = session.cache();
  const int64_t begin = cache.window_begin();
  ASSERT_GT(begin, 4);
  ASSERT_FALSE(cache.is_window_layer(1));
  ASSERT_TRUE(cache.is_window_layer(0));
  const at::Tensor window_keys = cache.keys(0, 30).clone();  // [1, n_head_kv, 30 - begin, head_dim]
  const at::Tensor global_keys = cache.keys(1, 30).clone();  // [1, n_head_kv, 30, head_dim]
  const int64_t evict[] = {1, 3, begin + 2, 28};
  cache.evict(evict);
  ASSERT_EQ(cache.size(), 26);
  EXPECT_EQ(cache.window_begin(), begin - 2);
  EXPECT_EQ(cache.first_cell(0), begin - 2);
  EXPECT_EQ(cache.first_cell(1), 0);
  std::vector<int64_t> kept_window;  // rows of the window layers' kept cells, before eviction
  for (int64_t c = begin; c < 30; ++c)
    if (c != begin + 2 && c != 28) kept_window.push_back(c - begin);
  const at::Tensor after = cache.keys(0, 26);
  ASSERT_EQ(after.size(2), static_cast<int64_t>(kept_window.size()));
  for (size_t i = 0; i < kept_window.size(); ++i)
    EXPECT_TRUE(at::equal(after.select(2, i), window_keys.select(2, kept_window[i]))) << "window row " << i;
  EXPECT_TRUE(at::equal(cache.keys(1, 26).select(2, 2), global_keys.select(2, 4)));
  // The session goes on: the next token sees the same keys as in a fresh pass over what is kept.
  session.append(std::vector<int32_t>{5}, Logits::None);
  EXPECT_EQ(cache.cells().back().position, 30);
}

// A query whose window reaches keys the window layers have dropped is refused, never computed.
TEST(KvCacheWindow, PositionsGoingBackPastTheWindowAreRefused) {
  LoadedModel& m = gemma3();
  c10::InferenceMode guard;
  Session session(m.model, KvCacheOptions{8});
  session.append(sample_ids(30, static_cast<int>(m.config.n_vocab)), Logits::None, 1);
  const CacheCell old{3, CellKind::Ordinary};
  const int32_t token[] = {7};
  try {
    session.step(token, std::span(&old, 1));
    FAIL() << "a query at position 3 was computed after the window moved past it";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("never go back"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sentinel
