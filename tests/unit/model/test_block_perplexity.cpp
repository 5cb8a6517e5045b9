// Perplexity in the paper's setting (eval/block_perplexity.h) on the tiny model: without
// compression it is the strided perplexity of disjoint windows of one block; with sentinels it is
// the mean NLL of each block's masked logits computed here by hand; the achieved ratio is read
// off the mask.
#include <gtest/gtest.h>

#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/engine/masked_forward.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/eval/block_perplexity.h"
#include "sentinel/model/sentinels.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

std::string text() {
  std::string t;
  for (int r = 0; r < 12; ++r) {
    for (int w = 0; w < 40; ++w) t += (w ? " " : "") + std::string(w % 3 ? "brown fox" : "dog") + std::to_string((r * 3 + w) % 17);
    t += "\n";
  }
  return t;
}

struct Tiny {
  LoadedModel m = load_model(testing::source_path("tests/data/tiny/hf"));
  SentinelTokens st;
  Tiny() {
    install_sentinels(m.model);
    st = sentinel_tokens(m.config);
  }
  TrainDataOptions options(Method method, double ratio) const {
    TrainDataOptions d;
    d.method = method;
    d.ratio = ratio;
    d.block = 48;
    d.seed = 3;
    d.cl_id = st.cl;
    d.cr_id = st.cr;
    return d;
  }
};

TEST(BlockPerplexity, WithoutCompressionItIsTheStridedPerplexityOfOneBlockWindows) {
  Tiny t;
  const TrainData data(build_corpus(*t.m.tokenizer, text(), nullptr, 0), t.options(Method::None, 0.0));
  const BlockPerplexityResult r = block_perplexity(t.m.model, data, /*batch=*/3);
  const std::span<const int32_t> tokens(data.corpus().tokens.data(), data.n_blocks() * 48);
  const PerplexityResult strided = strided_perplexity(t.m.model, tokens, PerplexityOptions{48, 48});
  // Neither predicts a block's (window's) first token: both score 47 tokens per block.
  EXPECT_EQ(r.n_scored, data.n_blocks() * 47);
  EXPECT_EQ(r.n_scored, strided.n_scored);
  EXPECT_NEAR(r.achieved_ratio(), 0.0, 1e-12);
  EXPECT_NEAR(r.nll_sum, strided.nll_sum, 1e-3 * std::abs(strided.nll_sum));
}

TEST(BlockPerplexity, SentinelBlocksScoreTheirMaskedLogitsAndMeasureTheMask) {
  Tiny t;
  SpanSamplerOptions spans;
  spans.ratio = 0.5;
  spans.max_length = 6;
  const TrainData data(build_corpus(*t.m.tokenizer, text(), &spans, 4), t.options(Method::Sentinel, 0.5));
  ASSERT_GE(data.n_blocks(), 3);
  double nll = 0;
  int64_t scored = 0;
  {
    c10::InferenceMode guard;
    for (int64_t b = 0; b < data.n_blocks(); ++b) {
      const MaskedSequence block = data.block(b);
      const at::Tensor logits = masked_logits(t.m.model, block).log_softmax(-1);  // [n_ordinary, n_vocab]
      const at::Tensor labels = next_ordinary_labels(block);                       // [N]
      for (size_t i = 0; i + 1 < block.ordinary_rows.size(); ++i) {
        const int64_t target = labels[block.ordinary_rows[i]].item<int64_t>();
        nll -= logits[static_cast<int64_t>(i)][target].item<double>();
        ++scored;
      }
    }
  }
  const BlockPerplexityResult r = block_perplexity(t.m.model, data, /*batch=*/2);
  EXPECT_EQ(r.n_scored, scored);
  EXPECT_NEAR(r.nll_sum, nll, 1e-4 * std::abs(nll));
  EXPECT_NEAR(r.ppl, std::exp(nll / scored), 1e-4 * r.ppl);
  // Spans remove context: fewer entries visible than a causal pass, but never all of it.
  EXPECT_GT(r.achieved_ratio(), 0.1);
  EXPECT_LT(r.achieved_ratio(), 0.6);
  EXPECT_LT(r.mean_entries_visible(), 24.0);

  const TrainData local(build_corpus(*t.m.tokenizer, text(), nullptr, 0), t.options(Method::Local, 0.5));
  EXPECT_NEAR(block_perplexity(t.m.model, local, 4).achieved_ratio(), 0.5, 0.05);
}

TEST(BlockPerplexity, H2oHasNoFixedMaskToLayOut) {
  Tiny t;
  EXPECT_THROW(TrainData(build_corpus(*t.m.tokenizer, text(), nullptr, 0), t.options(Method::H2O, 0.5)), Error);
}

}  // namespace
}  // namespace sentinel
