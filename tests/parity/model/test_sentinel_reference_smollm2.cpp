// Our sentinel masked forward on the default model (SmolLM2-135M-Instruct, Q4_1 GGUF, float32)
// against transformers' LlamaForCausalLM loading the same GGUF, given the same sentinel rows,
// positions and dense 4D mask, whose layout Python built from docs/method.md alone
// (tests/data/model/smollm2-sentinel.safetensors, from reference/make_sentinel_fixtures.py).
// The tiny-model twin is tests/unit/model/test_sentinel_reference.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "sentinel/engine/model_loader.h"
#include "support/sentinel_reference.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::kSentinelRegenerate;
using testing::SentinelReference;
using testing::source_path;

// float32 on both sides with the same dequantized weights. transformers' own sdpa and eager paths
// disagree by up to 1.5e-6 on these layouts; 1e-5 leaves margin for GEMM blocking and still
// fails on a wrong mask, position or sentinel row by orders of magnitude.
constexpr double kTolerance = 1e-5;
constexpr double kNearTie = 1e-3;  // logits

class SentinelReferenceSmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = std::make_unique<SentinelReference>(source_path("tests/data/model/smollm2-sentinel.safetensors"));
    model_ = std::make_unique<LoadedModel>(load_model(testing::default_model(), LoadOptions{at::kFloat, at::kCPU}));
    install_sentinels(model_->model, reference_->sentinel_rows());
  }
  static void TearDownTestSuite() {
    model_.reset();
    reference_.reset();
  }
  static inline std::unique_ptr<SentinelReference> reference_;
  static inline std::unique_ptr<LoadedModel> model_;
};

TEST_F(SentinelReferenceSmolLM2, LayoutMatchesMethodRulesBuiltInPython) {
  for (int i = 0; i < reference_->n_layouts(); ++i) {
    const MaskedSequence ours = reference_->build(i, model_->config);
    EXPECT_EQ(reference_->layout_mismatch(i, ours), "") << "layout " << i << "; " << kSentinelRegenerate;
  }
}

TEST_F(SentinelReferenceSmolLM2, MaskedLogitsMatchTransformers) {
  c10::InferenceMode guard;
  for (int i = 0; i < reference_->n_layouts(); ++i) {
    const MaskedSequence sequence = reference_->build(i, model_->config);
    ASSERT_EQ(reference_->layout_mismatch(i, sequence), "") << "layout " << i << ": the layout differs, not the math";
    const auto c = reference_->compare_logits(i, masked_logits(model_->model, sequence), kNearTie);
    EXPECT_LT(c.relative_error, kTolerance) << "layout " << i << "; " << kSentinelRegenerate;
    EXPECT_TRUE(c.top_disagreements.empty()) << "layout " << i << ": " << c.top_disagreements.size() << " of "
                                             << c.n_rows << " rows pick another top token";
    std::printf("layout %d (%lld rows): logits relative error %.3e, max abs diff %.3e\n", i,
                static_cast<long long>(sequence.ids.size(1)), c.relative_error, c.max_abs_diff);
  }
}

}  // namespace
}  // namespace sentinel
