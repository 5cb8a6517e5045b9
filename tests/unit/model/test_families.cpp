// Every supported family against transformers, on tiny random-weight models that llama.cpp's own
// converter and llama-quantize turned into GGUF files (tests/data/families, from
// reference/make_family_fixtures.py): Llama 3 with its llama3 RoPE scaling, Qwen2 with Q/K/V biases,
// Qwen3 with per-head Q/K norms and head_dim != hidden / heads, Gemma 3 with sliding-window and
// global layers (their own RoPE bases), sandwich norms, GELU-tanh, a scaled embedding and 1 + w norms.
//   - dense path, from the Hugging Face folder and from the F16 GGUF: each layer, the logits (within
//     1e-4 of max |logit|) and 16 greedy tokens decoded through the KV cache;
//   - tokenizer ids from tokenizer.json and from the GGUF's vocabulary;
//   - quantized path, every GGUF (F16, Q8_0, Q5_0, Q5_1, Q4_K_M, Q5_K_M, Q6_K): logits against the
//     dense path of the same file (the kernels' own error, not the quantization's) and greedy tokens.
#include <gtest/gtest.h>

#include <cctype>
#include <tuple>
#include <nlohmann/json.hpp>

#include "sentinel/engine/generator.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/model/rope.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::load_tensor_fixture;
using testing::relative_error;
using testing::source_path;
using testing::to_ids;

constexpr int kSequences = 3;

std::string family_path(const std::string& family, const std::string& file) {
  return source_path("tests/data/families/" + family + "/" + file);
}

const std::map<std::string, at::Tensor>& expected(const std::string& family) {
  static std::map<std::string, std::map<std::string, at::Tensor>> cache;
  auto it = cache.find(family);
  if (it == cache.end()) it = cache.emplace(family, load_tensor_fixture(family_path(family, "expected.safetensors"))).first;
  return it->second;
}

// max |a - b| / max |b|: the measure for logits (a few large logits decide the tokens).
double max_relative(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).abs().max() / b.to(at::kDouble).abs().max()).item<double>();
}

// Logits of every position through the cached path (session appends): on the quantized path this
// runs its own kernels, where forward() would switch the model to dense matrices for good.
at::Tensor cached_logits(LoadedModel& m, const at::Tensor& ids, int64_t chunk) {
  Session session(m.model, KvCacheOptions{ids.size(0)});
  const std::vector<int32_t> tokens = to_ids(ids);
  return session.append(tokens, Logits::All, chunk);  // [T, n_vocab]
}

at::Tensor forward_logits(LoadedModel& m, const at::Tensor& ids, std::vector<at::Tensor>* per_layer = nullptr) {
  const at::Tensor tokens = ids.unsqueeze(0);
  const at::Tensor positions = at::arange(ids.size(0), at::kLong).unsqueeze(0);
  ForwardOutput out = m.model->forward({tokens, positions, {}}, per_layer != nullptr);
  if (per_layer != nullptr) *per_layer = out.per_layer;
  return m.model->logits(out.hidden[0]);
}

std::vector<int32_t> greedy(LoadedModel& m, const at::Tensor& ids, int64_t n) {
  Session session(m.model, KvCacheOptions{8});  // small on purpose: exercises cache growth
  GenerationOptions options;
  options.max_tokens = n;
  options.stop_at_eos = false;
  options.prefill_chunk = 3;
  return generate(session, *m.tokenizer, to_ids(ids), options).tokens;
}

// --- dense path against transformers ---

struct DenseCase {
  std::string family, source;  // source: "hf" or a GGUF file name
};

class FamilyDense : public ::testing::TestWithParam<DenseCase> {
 protected:
  LoadedModel load() const { return load_model(family_path(GetParam().family, GetParam().source)); }
  const std::map<std::string, at::Tensor>& ref() const { return expected(GetParam().family); }
};

TEST_P(FamilyDense, LayersAndLogitsMatchTransformers) {
  LoadedModel m = load();
  c10::InferenceMode guard;
  for (int s = 0; s < kSequences; ++s) {
    const std::string p = "seq" + std::to_string(s) + ".";
    std::vector<at::Tensor> per_layer;
    const at::Tensor logits = forward_logits(m, ref().at(p + "ids"), &per_layer);
    testing::StageParity parity(1e-5);
    parity.add("embeddings", per_layer[0][0], ref().at(p + "embeddings"));
    for (int64_t l = 0; l < m.config.n_layer; ++l)
      parity.add("layer " + std::to_string(l), per_layer[l + 1][0], ref().at(p + "layer" + std::to_string(l)));
    parity.add("logits", logits, ref().at(p + "logits"));
    EXPECT_EQ(parity.first_diverging(), -1) << "sequence " << s << ": " << parity.describe();
    EXPECT_LT(max_relative(logits, ref().at(p + "logits")), 1e-4) << "sequence " << s;
  }
}

TEST_P(FamilyDense, GreedyTokensMatchTransformers) {
  LoadedModel m = load();
  c10::InferenceMode guard;
  for (int s = 0; s < kSequences; ++s) {
    const std::string p = "seq" + std::to_string(s) + ".";
    EXPECT_EQ(greedy(m, ref().at(p + "ids"), 16), to_ids(ref().at(p + "greedy"))) << "sequence " << s;
  }
}

TEST_P(FamilyDense, TokenizerGivesTransformersIds) {
  LoadedModel m = load();
  const std::map<std::string, at::Tensor>& r = ref();
  // The fixture's texts: seq0 and seq2 encoded with the model's special tokens, seq1 (a rendered
  // chat) without, as transformers' tokenizer(text, add_special_tokens=...) was called.
  const nlohmann::json meta = nlohmann::json::parse(testing::read_file(family_path(GetParam().family, "expected.json")));
  for (const auto& seq : meta.at("sequences")) {
    const std::string key = seq.at("key");
    const std::vector<int32_t> ids = m.tokenizer->encode(seq.at("text").get<std::string>(), seq.at("add_special_tokens"));
    EXPECT_EQ(ids, to_ids(r.at(key + ".ids"))) << key;
  }
}

// Only llama3 keeps its safetensors (tests/data/families/README.md); every family has its F16 GGUF.
std::vector<DenseCase> dense_cases() {
  return {{"llama3", "hf"},
          {"llama3", "model.f16.gguf"},
          {"qwen2", "model.f16.gguf"},
          {"qwen3", "model.f16.gguf"},
          {"gemma3", "model.f16.gguf"}};
}

std::string case_name(const std::string& family, const std::string& source) {
  std::string name = family + "_" + source;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyDense, ::testing::ValuesIn(dense_cases()),
                         [](const auto& info) { return case_name(info.param.family, info.param.source); });

class FamilyFolder : public ::testing::TestWithParam<std::string> {};

// What the Hugging Face folder says equals what llama.cpp's converter wrote: the same description
// (RoPE frequencies included, whatever their spelling) and the same token ids from tokenizer.json.
TEST_P(FamilyFolder, ConfigAndTokenizerAgreeWithTheGguf) {
  const std::string family = GetParam();
  const ModelConfig hf = ModelConfig::from_hf_config(
      nlohmann::json::parse(testing::read_file(family_path(family, "hf/config.json"))), "config.json");
  const LoadedModel gguf = load_model(family_path(family, "model.f16.gguf"));
  const ModelConfig& g = gguf.config;
  EXPECT_EQ(hf.architecture, g.architecture);
  EXPECT_EQ(std::make_tuple(hf.n_vocab, hf.n_embd, hf.n_layer, hf.n_head, hf.n_head_kv, hf.head_dim, hf.n_ff),
            std::make_tuple(g.n_vocab, g.n_embd, g.n_layer, g.n_head, g.n_head_kv, g.head_dim, g.n_ff));
  EXPECT_EQ(std::make_tuple(hf.tied_embeddings, hf.attention_bias, hf.qk_norm),
            std::make_tuple(g.tied_embeddings, g.attention_bias, g.qk_norm));
  EXPECT_FLOAT_EQ(hf.rms_norm_eps, g.rms_norm_eps);
  EXPECT_LT(relative_error(rotary_inv_freq(hf), rotary_inv_freq(g)), 1e-6);

  const Tokenizer json = Tokenizer::from_json_file(family_path(family, "hf/tokenizer.json"));
  const nlohmann::json meta = nlohmann::json::parse(testing::read_file(family_path(family, "expected.json")));
  for (const auto& seq : meta.at("sequences")) {
    const std::string text = seq.at("text");
    const bool special = seq.at("add_special_tokens");
    EXPECT_EQ(json.encode(text, special), to_ids(expected(family).at(seq.at("key").get<std::string>() + ".ids")))
        << seq.at("key");
    EXPECT_EQ(json.encode(text, special), gguf.tokenizer->encode(text, special)) << seq.at("key");
  }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyFolder, ::testing::Values("llama3", "qwen2", "qwen3", "gemma3"));

TEST(FamilyGemma3, SlidingWindowIsApplied) {
  // Layers 0 and 2 see 8 positions back; seq2 has 97 tokens, so a model that attended to every
  // key would be far off (the fixture's logits without the window differ by up to ~5).
  const auto& r = expected("gemma3");
  LoadedModel m = load_model(family_path("gemma3", "model.f16.gguf"));
  EXPECT_EQ(m.config.sliding_window, 8);
  EXPECT_EQ(m.config.sliding_layers, (std::vector<uint8_t>{1, 0, 1}));
  c10::InferenceMode guard;
  const at::Tensor logits = forward_logits(m, r.at("seq2.ids"));
  const double unwindowed_gap = max_relative(r.at("seq2.logits_no_sliding_window"), r.at("seq2.logits"));
  EXPECT_GT(unwindowed_gap, 1e-2);
  EXPECT_LT(max_relative(logits, r.at("seq2.logits")), unwindowed_gap / 100);
}

TEST(FamilyLlama3, RopeScalingIsApplied) {
  // The fixture's original context is 32 tokens, so the scaling moves the logits of these short
  // sequences far more than rounding would: a model run without it could not pass.
  const auto& r = expected("llama3");
  LoadedModel m = load_model(family_path("llama3", "model.f16.gguf"));
  EXPECT_EQ(m.config.rope_scaling.type, RopeScaling::Type::Factors);
  LoadedModel hf = load_model(family_path("llama3", "hf"));
  EXPECT_EQ(hf.config.rope_scaling.type, RopeScaling::Type::Llama3);
  c10::InferenceMode guard;
  const at::Tensor logits = forward_logits(m, r.at("seq2.ids"));
  const double unscaled_gap = max_relative(r.at("seq2.logits_no_rope_scaling"), r.at("seq2.logits"));
  EXPECT_GT(unscaled_gap, 1e-2);
  EXPECT_LT(max_relative(logits, r.at("seq2.logits")), unscaled_gap / 100);
}

// --- the quantized path against the dense path of the same file ---

struct QuantizedCase {
  std::string family, file, type;  // type: what backend_description() must name
};

class FamilyQuantized : public ::testing::TestWithParam<QuantizedCase> {};

TEST_P(FamilyQuantized, KernelsAgreeWithTheDensePathOfTheSameFile) {
  const QuantizedCase& c = GetParam();
  const std::string path = family_path(c.family, c.file);
  LoadedModel dense = load_model(path, LoadOptions{at::kFloat, at::kCPU, Backend::Dense});
  LoadedModel quantized = load_model(path, LoadOptions{at::kFloat, at::kCPU, Backend::Quantized});
  EXPECT_NE(quantized.model->backend_description().find(c.type), std::string::npos)
      << quantized.model->backend_description();
  c10::InferenceMode guard;
  const auto& r = expected(c.family);
  for (int s = 0; s < kSequences; ++s) {
    const std::string p = "seq" + std::to_string(s) + ".";
    const at::Tensor ids = r.at(p + "ids");
    // Chunks of 3 go through the native step, whole prompts through the dequantize-and-GEMM path:
    // both against the dense path's logits.
    const at::Tensor reference = forward_logits(dense, ids);
    EXPECT_LT(max_relative(cached_logits(quantized, ids, 3), reference), 1e-3) << "sequence " << s << ", native";
    EXPECT_LT(max_relative(cached_logits(quantized, ids, 512), reference), 1e-4) << "sequence " << s << ", GEMM";
    EXPECT_EQ(greedy(quantized, ids, 16), greedy(dense, ids, 16)) << "sequence " << s;
    EXPECT_TRUE(quantized.model->is_quantized()) << "a pass made the quantized model dense";
  }
}

std::vector<QuantizedCase> quantized_cases() {
  std::vector<QuantizedCase> cases;
  for (const char* family : {"llama3", "qwen2", "qwen3", "gemma3"}) {
    cases.push_back({family, "model.f16.gguf", "f16"});
    cases.push_back({family, "model.q4_k_m.gguf", "q4_k"});
  }
  cases.push_back({"llama3", "model.q5_k_m.gguf", "q5_k"});
  cases.push_back({"llama3", "model.q5_0.gguf", "q5_0"});
  cases.push_back({"llama3", "model.q5_1.gguf", "q5_1"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyQuantized, ::testing::ValuesIn(quantized_cases()),
                         [](const auto& info) { return case_name(info.param.family, info.param.file); });

}  // namespace
}  // namespace sentinel
