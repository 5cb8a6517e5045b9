// The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against Hugging Face transformers
// loading the same GGUF (fixtures from reference/make_model_fixtures.py): hidden states layer by
// layer, final norm and logits in float32; 64 greedy tokens; WikiText-2 token ids and strided
// perplexity; and a looser bfloat16 check. Not a speed test (see bench/).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "sentinel/core/error.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/eval/perplexity.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::load_tensor_fixture;
using testing::relative_error;
using testing::source_path;
using testing::StageParity;

constexpr const char* kRegenerate = "fixtures from: python3 reference/make_model_fixtures.py";
constexpr int kForwardPrompts = 3;  // p0..p2 in smollm2-forward.safetensors
// float32 on CPU: the same dequantized weights and the same float32 ops as transformers. Measured
// with libtorch 2.11 against torch 2.11: every hidden state and the final norm bit-identical, the
// last logits within 1.4e-6 (we project one row, transformers all rows: another GEMM blocking).
constexpr double kFloat32Tolerance = 1e-4;
// bfloat16 against the float32 reference: see LogitsCloseToFloat32ReferenceWithSameTopToken.
constexpr double kBFloat16Tolerance = 8e-2;
constexpr double kNearTie = 0.5;  // logits

std::string prompt_prefix(int i) { return "p" + std::to_string(i) + "."; }

int64_t top_token(const at::Tensor& logits) { return logits.argmax().item<int64_t>(); }

// Model and fixtures shared by every test of a suite: loading takes seconds, tests take more.
class SmolLM2Test : public ::testing::Test {
 protected:
  static void load(at::ScalarType dtype) {
    model_ = std::make_unique<LoadedModel>(load_model(testing::default_model(), LoadOptions{dtype, at::kCPU}));
    forward_ = load_tensor_fixture(source_path("tests/data/model/smollm2-forward.safetensors"));
    reference_ = nlohmann::json::parse(testing::read_file(source_path("tests/data/model/smollm2-reference.json")));
  }
  static void TearDownTestSuite() {
    model_.reset();
    forward_.clear();
  }
  static LoadedModel& m() { return *model_; }
  static const at::Tensor& fixture(const std::string& key) {
    const auto it = forward_.find(key);
    if (it == forward_.end()) throw Error("smollm2-forward.safetensors has no '" + key + "'; " + kRegenerate);
    return it->second;
  }

  // Forward pass over prompt i of the forward fixture, keeping every layer's output.
  static ForwardOutput run_prompt(int i) {
    const at::Tensor ids = fixture(prompt_prefix(i) + "ids").unsqueeze(0);  // [1, T]
    const at::Tensor positions = at::arange(ids.size(1), at::kLong).unsqueeze(0);
    return m().model->forward({ids, positions, {}}, /*keep_per_layer=*/true);
  }

  static inline std::unique_ptr<LoadedModel> model_;
  static inline std::map<std::string, at::Tensor> forward_;
  static inline nlohmann::json reference_;
};

class SmolLM2 : public SmolLM2Test {
 protected:
  static void SetUpTestSuite() { load(at::kFloat); }
};

TEST_F(SmolLM2, HiddenStatesMatchTransformersLayerByLayer) {
  c10::InferenceMode guard;
  double max_error = 0;
  for (int i = 0; i < kForwardPrompts; ++i) {
    const std::string p = prompt_prefix(i);
    const ForwardOutput out = run_prompt(i);
    ASSERT_EQ(static_cast<int64_t>(out.per_layer.size()), m().config.n_layer + 1);
    const at::Tensor keep = fixture(p + "positions_kept");  // [4] token positions stored in the fixture
    StageParity parity(kFloat32Tolerance);
    parity.add("embeddings", out.per_layer[0][0].index_select(0, keep), fixture(p + "embeddings"));
    for (int64_t layer = 0; layer < m().config.n_layer; ++layer) {
      const std::string name = "layer" + std::to_string(layer);
      parity.add(name, out.per_layer[layer + 1][0].index_select(0, keep), fixture(p + name));
    }
    parity.add("final_norm", out.hidden[0].index_select(0, keep), fixture(p + "final_norm"));
    const at::Tensor logits = m().model->logits(out.hidden[0][-1]);  // [n_vocab] f32
    parity.add("logits_last", logits, fixture(p + "logits_last"));
    EXPECT_TRUE(parity.ok()) << "prompt " << i << ": " << parity.describe() << "\n" << kRegenerate;
    EXPECT_EQ(top_token(logits), top_token(fixture(p + "logits_last"))) << "prompt " << i;
    max_error = std::max(max_error, parity.max_error());
  }
  std::printf("float32 max relative error over all stages and prompts: %.3e\n", max_error);
}

TEST_F(SmolLM2, GreedyTokensMatchTransformers) {
  c10::InferenceMode guard;
  const auto& runs = reference_.at("greedy");
  ASSERT_EQ(runs.size(), 2u) << kRegenerate;
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto prompt = runs[r].at("prompt_ids").get<std::vector<int32_t>>();
    const auto expected = runs[r].at("greedy_ids").get<std::vector<int32_t>>();
    // Generation starts from the fixture's ids; the tokenizer is checked too, but on its own line.
    ASSERT_EQ(m().tokenizer->encode(runs[r].at("prompt").get<std::string>(), false), prompt) << "prompt " << r;
    Session session(m().model, KvCacheOptions{static_cast<int64_t>(prompt.size() + expected.size()) + 1});
    GenerationOptions options;
    options.max_tokens = static_cast<int64_t>(expected.size());
    options.stop_at_eos = false;  // the reference generated with EOS disabled
    const GenerationResult result = generate(session, *m().tokenizer, prompt, options);
    EXPECT_EQ(result.tokens, expected) << "prompt " << r << ": ours " << testing::format_ids(result.tokens)
                                       << "\nexpected " << testing::format_ids(expected) << "\n" << kRegenerate;
  }
}

// The reference tokenized the whole file, then kept the first 8,192 tokens.
TEST_F(SmolLM2, WikiTextIdsAndStridedPerplexityMatchTransformers) {
  const auto& ref = reference_.at("perplexity");
  const std::string text = testing::read_file(testing::shared_data_path(ref.at("data").get<std::string>()));
  std::vector<int32_t> ids = m().tokenizer->encode(text, /*add_bos=*/false);
  const auto n_tokens = ref.at("max_tokens").get<size_t>();
  ASSERT_GE(ids.size(), n_tokens);
  ids.resize(n_tokens);
  ASSERT_EQ(testing::ids_sha256(ids), ref.at("ids_sha256").get<std::string>())
      << "the first " << n_tokens << " token ids differ from the reference tokenizer's: " << kRegenerate;

  PerplexityOptions options;
  options.ctx = ref.at("ctx").get<int64_t>();
  options.stride = ref.at("stride").get<int64_t>();
  const PerplexityResult r = strided_perplexity(m().model, ids, options);
  const double expected = ref.at("ppl").get<double>();
  EXPECT_EQ(r.n_scored, ref.at("scored").get<int64_t>());
  EXPECT_NEAR(r.ppl, expected, 1e-3 * expected) << "nll " << r.nll_sum << " vs " << ref.at("nll").get<double>();
  std::printf("ppl %.6f vs reference %.6f (relative %.2e) in %.1fs\n", r.ppl, expected,
              std::abs(r.ppl - expected) / expected, r.seconds);
}

class SmolLM2BFloat16 : public SmolLM2Test {
 protected:
  static void SetUpTestSuite() { load(at::kBFloat16); }
};

// bfloat16 keeps 8 mantissa bits (relative rounding ~4e-3 per op), and the error compounds over
// 30 layers, so logits can only be close, not equal. Measured on CPU (libtorch 2.11) against the
// float32 reference: relative errors 1.45e-2, 1.48e-2, 3.37e-2 and max abs differences 0.20, 0.42,
// 0.36 logits for p0..p2. kBFloat16Tolerance = 8e-2 leaves ~2.4x margin over the worst prompt
// (other CPUs' bf16 kernels round differently) and still fails on a real bug, which gives errors
// of order 1. kNearTie = 0.5 logits exceeds the largest per-logit difference: a reference margin
// smaller than that may legitimately flip, a larger one may not.
TEST_F(SmolLM2BFloat16, LogitsCloseToFloat32ReferenceWithSameTopToken) {
  c10::InferenceMode guard;
  ASSERT_EQ(m().model->dtype(), at::kBFloat16);
  for (int i = 0; i < kForwardPrompts; ++i) {
    const std::string p = prompt_prefix(i);
    const ForwardOutput out = run_prompt(i);
    const at::Tensor logits = m().model->logits(out.hidden[0][-1]).to(at::kFloat);  // [n_vocab]
    const at::Tensor& expected = fixture(p + "logits_last");                          // [n_vocab] f32
    const double error = relative_error(logits, expected);
    EXPECT_LT(error, kBFloat16Tolerance) << "prompt " << i;
    // Our top token must be the reference's, unless the reference itself scores the two within
    // kNearTie logits: then either is right. (p2 is such a tie: '\n' 13.511 vs ' ' 13.447.)
    const int64_t ours = top_token(logits), theirs = top_token(expected);
    const double shortfall = (expected[theirs] - expected[ours]).item<double>();
    EXPECT_LT(shortfall, kNearTie) << "prompt " << i << ": our top token " << ours << " is " << shortfall
                                   << " logits below the reference's top token " << theirs;
    std::printf("bfloat16 prompt %d: logits relative error %.3e, max abs diff %.3f, top token %lld (reference %lld)\n",
                i, error, testing::max_abs_diff(logits, expected), static_cast<long long>(ours),
                static_cast<long long>(theirs));
  }
}

}  // namespace
}  // namespace sentinel
