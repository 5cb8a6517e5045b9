// compressed_perplexity scores exactly the tokens strided_perplexity scores: without compression
// the two agree for any chunking, and with compression the chunking still does not matter.
#include <gtest/gtest.h>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/model/sentinels.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

std::vector<int32_t> tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919 + 13) % vocab);
  return ids;
}

TEST(CompressedPerplexity, WithoutCompressionEqualsStridedForEveryChunk) {
  LoadedModel m = load_model(testing::source_path("tests/data/tiny/hf"));
  const std::vector<int32_t> ids = tokens(70, m.config.n_vocab);
  const PerplexityOptions windows{32, 12};  // overlapping windows, a short last one
  const PerplexityResult plain = strided_perplexity(m.model, ids, windows);
  for (int64_t chunk : {1, 5, 32}) {
    const PerplexityResult r = compressed_perplexity(m.model, ids, windows, PolicyOptions{}, chunk);
    EXPECT_EQ(r.n_scored, plain.n_scored);
    EXPECT_EQ(r.n_windows, plain.n_windows);
    EXPECT_NEAR(r.nll_sum, plain.nll_sum, 1e-4 * plain.nll_sum) << "chunk " << chunk;
    EXPECT_EQ(r.achieved_ratio(), 0.0);
  }
}

TEST(CompressedPerplexity, SentinelResultDoesNotDependOnChunking) {
  LoadedModel m = load_model(testing::source_path("tests/data/tiny/hf"));
  install_sentinels(m.model);
  const SentinelTokens sentinels = sentinel_tokens(m.config);
  PolicyOptions policy;
  policy.method = Method::Sentinel;
  policy.ratio = 0.5;
  policy.span = 4;
  policy.cl_id = sentinels.cl;
  policy.cr_id = sentinels.cr;
  const std::vector<int32_t> ids = tokens(48, m.config.n_vocab);
  const PerplexityOptions windows{48, 48};
  const PerplexityResult reference = compressed_perplexity(m.model, ids, windows, policy, 48);
  // Spans of 4 every 6 tokens closed at 3, 9, ..., 45: 8 spans, each leaving 1 of its 4 entries.
  EXPECT_EQ(reference.cells_retained, 48 - 8 * 3);
  for (int64_t chunk : {1, 2, 7}) {
    const PerplexityResult r = compressed_perplexity(m.model, ids, windows, policy, chunk);
    EXPECT_NEAR(r.nll_sum, reference.nll_sum, 1e-4 * reference.nll_sum) << "chunk " << chunk;
    EXPECT_EQ(r.cells_retained, reference.cells_retained);
  }
}

TEST(CompressedPerplexity, ImpossibleRequestsNameTheOption) {
  PolicyOptions policy;
  policy.method = Method::Sentinel;
  policy.ratio = 0.5;
  policy.span = 64;
  policy.cl_id = 10;
  policy.cr_id = 11;
  EXPECT_THROW(validate_compressed_perplexity(PerplexityOptions{32, 32}, policy, 1), Error);
  policy.span = 8;
  policy.window = 32;
  EXPECT_THROW(validate_compressed_perplexity(PerplexityOptions{32, 32}, policy, 1), Error);
  policy.window = 0;
  EXPECT_THROW(validate_compressed_perplexity(PerplexityOptions{32, 32}, policy, 0), Error);
  EXPECT_NO_THROW(validate_compressed_perplexity(PerplexityOptions{32, 32}, policy, 1));
}

}  // namespace
}  // namespace sentinel
