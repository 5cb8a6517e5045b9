// The tiny random-weight Llama (tests/data/tiny, from reference/make_tiny_model.py) against
// transformers: per-layer outputs, logits, a masked forward with explicit positions, and greedy
// tokens, loaded from both the Hugging Face folder and the GGUF (same weights).
#include <gtest/gtest.h>

#include "sentinel/engine/generator.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::load_tensor_fixture;
using testing::relative_error;
using testing::source_path;

class TinyLlama : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { expected_ = load_tensor_fixture(source_path("tests/data/tiny/expected.safetensors")); }
  LoadedModel load() const { return load_model(source_path(GetParam())); }
  static inline std::map<std::string, at::Tensor> expected_;
};

TEST_P(TinyLlama, LayerOutputsAndLogitsMatchTransformers) {
  LoadedModel m = load();
  c10::InferenceMode guard;
  for (int s = 0; s < 2; ++s) {
    const std::string p = "s" + std::to_string(s) + ".";
    const at::Tensor ids = expected_.at(p + "ids").unsqueeze(0);
    const at::Tensor positions = at::arange(ids.size(1), at::kLong).unsqueeze(0);
    ForwardOutput out = m.model->forward({ids, positions, {}}, /*keep_per_layer=*/true);
    for (int64_t layer = 0; layer < m.config.n_layer; ++layer) {
      const double err = relative_error(out.per_layer[layer + 1][0], expected_.at(p + "layer" + std::to_string(layer)));
      EXPECT_LT(err, 1e-5) << "sequence " << s << ": first diverging layer is " << layer;
    }
    EXPECT_LT(relative_error(out.hidden[0], expected_.at(p + "final_norm")), 1e-5);
    EXPECT_LT(relative_error(m.model->logits(out.hidden[0]), expected_.at(p + "logits")), 1e-5);
  }
}

TEST_P(TinyLlama, MaskedForwardWithExplicitPositionsMatchesTransformers) {
  LoadedModel m = load();
  c10::InferenceMode guard;
  const at::Tensor ids = expected_.at("masked.ids").unsqueeze(0);
  const at::Tensor positions = expected_.at("masked.positions").unsqueeze(0);
  const at::Tensor allow = expected_.at("masked.allow").unsqueeze(0);  // [1, T, T]
  const at::Tensor logits = m.model->logits(m.model->forward({ids, positions, allow}).hidden[0]);
  EXPECT_LT(relative_error(logits, expected_.at("masked.logits")), 1e-5);
}

TEST_P(TinyLlama, GreedyTokensMatchTransformers) {
  LoadedModel m = load();
  c10::InferenceMode guard;
  for (int s = 0; s < 2; ++s) {
    const std::string p = "s" + std::to_string(s) + ".";
    const std::vector<int32_t> prompt = testing::to_ids(expected_.at(p + "ids"));
    Session session(m.model, KvCacheOptions{8});  // small on purpose: exercises cache growth
    GenerationOptions options;
    options.max_tokens = 24;
    options.stop_at_eos = false;
    options.prefill_chunk = 3;
    const GenerationResult r = generate(session, *m.tokenizer, prompt, options);
    EXPECT_EQ(r.tokens, testing::to_ids(expected_.at(p + "greedy"))) << "sequence " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, TinyLlama, ::testing::Values("tests/data/tiny/hf", "tests/data/tiny/tiny.gguf"),
                         [](const auto& info) { return info.param.ends_with(".gguf") ? "gguf" : "safetensors"; });

TEST(TinyLlamaFormats, GgufAndSafetensorsLoadIdenticalWeights) {
  LoadedModel hf = load_model(source_path("tests/data/tiny/hf"));
  LoadedModel gg = load_model(source_path("tests/data/tiny/tiny.gguf"));
  auto a = hf.model->named_parameters(), b = gg.model->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(at::equal(item.value(), b[item.key()])) << item.key();
}

}  // namespace
}  // namespace sentinel
