// Our sentinel masked forward (masked_sequence + masked_logits) on the tiny random-weight Llama
// against transformers' LlamaForCausalLM given the same sentinel rows, positions and dense 4D mask,
// whose layout Python built from docs/method.md alone (tests/data/tiny/sentinel-reference.safetensors,
// from reference/make_sentinel_fixtures.py). The mask semantics are checked against code we did
// not write; the SmolLM2 twin is tests/parity/model/test_sentinel_reference_smollm2.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "sentinel/engine/model_loader.h"
#include "support/sentinel_reference.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::kSentinelRegenerate;
using testing::relative_error;
using testing::SentinelReference;
using testing::source_path;

// float32 on both sides, same weights; the measured worst is ~5e-7 (transformers' own sdpa and
// eager paths differ by as much), so 1e-5 leaves 20x margin and a real bug gives errors ~1e-1.
constexpr double kTolerance = 1e-5;
constexpr double kNearTie = 1e-3;  // logits; a reference top-1 margin below this may flip

const SentinelReference& reference() {
  static const SentinelReference r(source_path("tests/data/tiny/sentinel-reference.safetensors"));
  return r;
}

LoadedModel load_with_sentinels(const std::string& path) {
  LoadedModel m = load_model(source_path(path));
  install_sentinels(m.model, reference().sentinel_rows());
  return m;
}

TEST(SentinelReferenceTiny, LayoutMatchesMethodRulesBuiltInPython) {
  const LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  for (int i = 0; i < reference().n_layouts(); ++i) {
    const MaskedSequence ours = reference().build(i, m.config);
    EXPECT_EQ(reference().layout_mismatch(i, ours), "") << "layout " << i << "; " << kSentinelRegenerate;
  }
}

class SentinelReferenceTinyFormats : public ::testing::TestWithParam<std::string> {};

TEST_P(SentinelReferenceTinyFormats, MaskedLogitsMatchTransformers) {
  LoadedModel m = load_with_sentinels(GetParam());
  c10::InferenceMode guard;
  for (int i = 0; i < reference().n_layouts(); ++i) {
    const MaskedSequence sequence = reference().build(i, m.config);
    ASSERT_EQ(reference().layout_mismatch(i, sequence), "") << "layout " << i << ": the layout differs, not the math";
    const auto c = reference().compare_logits(i, masked_logits(m.model, sequence), kNearTie);
    EXPECT_LT(c.relative_error, kTolerance) << "layout " << i << "; " << kSentinelRegenerate;
    EXPECT_TRUE(c.top_disagreements.empty()) << "layout " << i << ": " << c.top_disagreements.size() << " of "
                                             << c.n_rows << " rows pick another top token";
    std::printf("layout %d (%lld rows): logits relative error %.3e, max abs diff %.3e\n", i,
                static_cast<long long>(sequence.ids.size(1)), c.relative_error, c.max_abs_diff);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, SentinelReferenceTinyFormats,
                         ::testing::Values("tests/data/tiny/hf", "tests/data/tiny/tiny.gguf"),
                         [](const auto& info) { return info.param.ends_with(".gguf") ? "gguf" : "safetensors"; });

// The comparison above can fail: the reference logits are far from what a plain causal mask,
// consecutive positions or other sentinel rows give on the same layout, so each of the three
// inputs transformers received is actually checked.
TEST(SentinelReferenceTiny, ComparisonDetectsWrongMaskPositionsOrSentinelRows) {
  LoadedModel m = load_with_sentinels("tests/data/tiny/hf");
  c10::InferenceMode guard;
  const MaskedSequence right = reference().build(0, m.config);
  const auto error_of = [&](const MaskedSequence& sequence) {
    return reference().compare_logits(0, masked_logits(m.model, sequence), kNearTie).relative_error;
  };
  ASSERT_LT(error_of(right), kTolerance);

  MaskedSequence causal = right;
  causal.mask = at::ones_like(right.mask).tril();
  EXPECT_NE(reference().layout_mismatch(0, causal).find("mask cells differ"), std::string::npos);
  const double causal_error = error_of(causal);
  EXPECT_GT(causal_error, 100 * kTolerance) << "a causal mask went unnoticed";

  MaskedSequence consecutive = right;
  consecutive.positions = at::arange(right.positions.size(1), at::kLong).unsqueeze(0);
  EXPECT_NE(reference().layout_mismatch(0, consecutive).find("positions differ"), std::string::npos);
  const double positions_error = error_of(consecutive);
  EXPECT_GT(positions_error, 100 * kTolerance) << "consecutive positions went unnoticed";

  install_sentinels(m.model, reference().sentinel_rows().flip(0));  // <CL> and <CR> rows swapped
  const double rows_error = error_of(right);
  EXPECT_GT(rows_error, 100 * kTolerance) << "swapped sentinel rows went unnoticed";
  std::printf("relative error with a causal mask %.2e, consecutive positions %.2e, swapped sentinel rows %.2e\n",
              causal_error, positions_error, rows_error);
}

}  // namespace
}  // namespace sentinel
