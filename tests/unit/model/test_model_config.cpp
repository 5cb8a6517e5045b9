// The model description (ModelConfig) as read from GGUF metadata and config.json: each family's
// traits, RoPE scaling in its three spellings, and refusal of everything that would change the
// computation without being implemented (unknown keys, tensors no parameter reads, sliding
// windows, other activations, experts). GGUF files are built in memory (support/gguf_builder.h).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"
#include "sentinel/model/config.h"
#include "sentinel/model/rope.h"
#include "sentinel/model/weights.h"
#include "support/gguf_builder.h"

namespace sentinel {
namespace {

using testing::GgufBuilder;

constexpr int64_t kEmbd = 64, kHeads = 4, kHeadsKv = 2, kHeadDim = 16, kFf = 96, kVocab = 32;

// One block of a tied-embedding model, as llama.cpp names its tensors.
GgufBuilder minimal_gguf(const std::string& arch) {
  GgufBuilder b;
  b.set("general.architecture", arch)
      .set(arch + ".block_count", uint32_t{1})
      .set(arch + ".embedding_length", uint32_t{kEmbd})
      .set(arch + ".feed_forward_length", uint32_t{kFf})
      .set(arch + ".attention.head_count", uint32_t{kHeads})
      .set(arch + ".attention.head_count_kv", uint32_t{kHeadsKv})
      .set(arch + ".attention.layer_norm_rms_epsilon", 1e-5f)
      .set(arch + ".rope.freq_base", 10000.0f)
      .set(arch + ".context_length", uint32_t{128});
  b.tensor("token_embd.weight", {kEmbd, kVocab}).tensor("output_norm.weight", {kEmbd});
  b.tensor("blk.0.attn_norm.weight", {kEmbd}).tensor("blk.0.ffn_norm.weight", {kEmbd});
  b.tensor("blk.0.attn_q.weight", {kEmbd, kHeads * kHeadDim}).tensor("blk.0.attn_k.weight", {kEmbd, kHeadsKv * kHeadDim});
  b.tensor("blk.0.attn_v.weight", {kEmbd, kHeadsKv * kHeadDim}).tensor("blk.0.attn_output.weight", {kHeads * kHeadDim, kEmbd});
  b.tensor("blk.0.ffn_gate.weight", {kEmbd, kFf}).tensor("blk.0.ffn_up.weight", {kEmbd, kFf});
  b.tensor("blk.0.ffn_down.weight", {kFf, kEmbd});
  return b;
}

// Parses the builder's bytes and reads config and weights, as load_model does.
ModelConfig read_gguf(const GgufBuilder& b) {
  const std::vector<uint8_t> bytes = b.bytes();
  const GgufFile file = GgufFile::parse(bytes, "test.gguf");
  ModelConfig c = ModelConfig::from_gguf(file);
  load_gguf_weights(file, c);
  return c;
}

void expect_refused(const GgufBuilder& b, const std::string& phrase) {
  try {
    read_gguf(b);
    ADD_FAILURE() << "accepted; expected an error containing '" << phrase << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

std::vector<double> default_inv_freq(double theta, int64_t dim) {
  std::vector<double> out;
  for (int64_t i = 0; i < dim; i += 2) out.push_back(1.0 / std::pow(theta, static_cast<double>(i) / dim));
  return out;
}

void expect_inv_freq(const ModelConfig& c, const std::vector<double>& expected) {
  const at::Tensor got = rotary_inv_freq(c);
  ASSERT_EQ(got.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(got[static_cast<int64_t>(i)].item<double>(), expected[i], 1e-6 * expected[i]) << "frequency " << i;
}

TEST(ModelConfigGguf, MinimalLlamaIsReadWithItsTraits) {
  const ModelConfig c = read_gguf(minimal_gguf("llama"));
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.head_dim, kHeadDim);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::None);
  expect_inv_freq(c, default_inv_freq(10000.0, kHeadDim));
}

TEST(ModelConfigGguf, Qwen2NeedsItsBiasesAndQwen3ItsNorms) {
  GgufBuilder qwen2 = minimal_gguf("qwen2");
  expect_refused(qwen2, "attn_q.bias");
  qwen2.tensor("blk.0.attn_q.bias", {kHeads * kHeadDim}).tensor("blk.0.attn_k.bias", {kHeadsKv * kHeadDim});
  qwen2.tensor("blk.0.attn_v.bias", {kHeadsKv * kHeadDim});
  EXPECT_TRUE(read_gguf(qwen2).attention_bias);

  GgufBuilder qwen3 = minimal_gguf("qwen3");
  qwen3.tensor("blk.0.attn_q_norm.weight", {kHeadDim});
  expect_refused(qwen3, "attn_k_norm.weight");
  qwen3.tensor("blk.0.attn_k_norm.weight", {kHeadDim});
  EXPECT_TRUE(read_gguf(qwen3).qk_norm);
}

TEST(ModelConfigGguf, TensorsNoParameterReadsAreRefused) {
  // A llama file with Q biases would run without them: refused, naming the tensor.
  expect_refused(minimal_gguf("llama").tensor("blk.0.attn_q.bias", {kHeads * kHeadDim}), "blk.0.attn_q.bias");
  expect_refused(minimal_gguf("llama").tensor("blk.0.attn_post_norm.weight", {kEmbd}), "attn_post_norm");
}

TEST(ModelConfigGguf, UnimplementedMetadataIsRefusedNeverIgnored) {
  expect_refused(minimal_gguf("llama").set("llama.attention.sliding_window", uint32_t{4096}),
                 "llama.attention.sliding_window");
  expect_refused(minimal_gguf("llama").set("llama.final_logit_softcapping", 30.0f), "llama.final_logit_softcapping");
  expect_refused(minimal_gguf("llama").set("llama.attention.max_alibi_bias", 8.0f), "max_alibi_bias");
  expect_refused(minimal_gguf("llama").set("llama.rope.scaling.type", std::string("yarn")), "yarn");
  expect_refused(minimal_gguf("llama").set("llama.expert_count", uint32_t{8}), "mixture-of-experts");
  expect_refused(minimal_gguf("llama").set("llama.rope.dimension_count", uint32_t{8}), "partial rotary");
  expect_refused(minimal_gguf("phi3"), "Sentinel runs llama");
  expect_refused(minimal_gguf("llama").set("general.architecture", std::string("mixtral")), "'mixtral' model");
}

TEST(ModelConfigGguf, Gemma3SlidingLayersFollowLlamaCppsRules) {
  // Seven layers; no pattern key: llama.cpp's default for Gemma 3, every sixth layer global.
  GgufBuilder b = minimal_gguf("gemma3");
  b.set("gemma3.block_count", uint32_t{7}).set("gemma3.attention.sliding_window", uint32_t{512});
  ModelConfig c = ModelConfig::from_gguf(GgufFile::parse(b.bytes(), "g.gguf"));
  EXPECT_EQ(c.architecture, Architecture::Gemma3);
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(c.sliding_layers, (std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 1}));
  EXPECT_EQ(c.rope_theta_sliding, 10000.0);  // llama.cpp's default when rope.freq_base_swa is absent
  EXPECT_TRUE(c.qk_norm && c.sandwich_norms && c.norm_weight_plus_one);
  EXPECT_EQ(c.activation, Activation::GeluTanh);
  EXPECT_FLOAT_EQ(static_cast<float>(c.embedding_scale), std::sqrt(static_cast<float>(kEmbd)));
  EXPECT_DOUBLE_EQ(c.query_scale(), 1.0 / std::sqrt(static_cast<double>(kHeadDim)));
  // A pattern number, and rope.freq_base_swa.
  b.set("gemma3.attention.sliding_window_pattern", uint32_t{3}).set("gemma3.rope.freq_base_swa", 5000.0f);
  c = ModelConfig::from_gguf(GgufFile::parse(b.bytes(), "g.gguf"));
  EXPECT_EQ(c.sliding_layers, (std::vector<uint8_t>{1, 1, 0, 1, 1, 0, 1}));
  EXPECT_EQ(c.rope_theta_sliding, 5000.0);
  // A sliding window on a family that has none is refused, not ignored.
  expect_refused(minimal_gguf("qwen2").set("qwen2.attention.sliding_window", uint32_t{4096}), "gemma3 only");
}

TEST(ModelConfigGguf, LinearScalingDividesEveryFrequency) {
  const ModelConfig c = read_gguf(minimal_gguf("llama")
                                      .set("llama.rope.scaling.type", std::string("linear"))
                                      .set("llama.rope.scaling.factor", 4.0f));
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Linear);
  std::vector<double> expected = default_inv_freq(10000.0, kHeadDim);
  for (double& f : expected) f /= 4.0;
  expect_inv_freq(c, expected);
}

TEST(ModelConfigGguf, RopeFreqsTensorDividesEachFrequency) {
  std::vector<float> factors;
  for (int64_t i = 0; i < kHeadDim / 2; ++i) factors.push_back(1.0f + static_cast<float>(i));
  const ModelConfig c = read_gguf(minimal_gguf("llama").tensor("rope_freqs.weight", {kHeadDim / 2}, factors));
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Factors);
  std::vector<double> expected = default_inv_freq(10000.0, kHeadDim);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] /= factors[i];
  expect_inv_freq(c, expected);

  expect_refused(minimal_gguf("llama").tensor("rope_freqs.weight", {kHeadDim}), "rope_freqs.weight must be F32");
  std::vector<float> zero(static_cast<size_t>(kHeadDim / 2), 0.0f);
  expect_refused(minimal_gguf("llama").tensor("rope_freqs.weight", {kHeadDim / 2}, zero), "factors must be > 0");
}

nlohmann::json hf_config(const std::string& model_type) {
  return {{"model_type", model_type},     {"vocab_size", kVocab},          {"hidden_size", kEmbd},
          {"num_hidden_layers", 2},       {"num_attention_heads", kHeads}, {"num_key_value_heads", kHeadsKv},
          {"intermediate_size", kFf},     {"rms_norm_eps", 1e-6},          {"rope_theta", 500000.0},
          {"max_position_embeddings", 4096}, {"hidden_act", "silu"}};
}

void expect_hf_refused(const nlohmann::json& j, const std::string& phrase) {
  try {
    ModelConfig::from_hf_config(j, "config.json");
    ADD_FAILURE() << "accepted; expected an error containing '" << phrase << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
  }
}

// transformers' _compute_llama3_parameters, in double precision.
std::vector<double> llama3_inv_freq(double theta, int64_t dim, double factor, double low, double high, double context) {
  std::vector<double> out = default_inv_freq(theta, dim);
  for (double& f : out) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < context / high) continue;
    if (wavelen > context / low) {
      f /= factor;
      continue;
    }
    const double smooth = (context / wavelen - low) / (high - low);
    f = (1 - smooth) * f / factor + smooth * f;
  }
  return out;
}

TEST(ModelConfigHf, Llama3ScalingInBothSpellings) {
  const nlohmann::json scaling = {{"rope_type", "llama3"},
                                  {"factor", 8.0},
                                  {"low_freq_factor", 1.0},
                                  {"high_freq_factor", 4.0},
                                  {"original_max_position_embeddings", 8192}};
  nlohmann::json old_style = hf_config("llama");
  old_style["rope_scaling"] = scaling;
  nlohmann::json new_style = hf_config("llama");
  new_style.erase("rope_theta");
  new_style["rope_parameters"] = scaling;
  new_style["rope_parameters"]["rope_theta"] = 500000.0;
  for (const nlohmann::json& j : {old_style, new_style}) {
    const ModelConfig c = ModelConfig::from_hf_config(j, "config.json");
    EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Llama3);
    EXPECT_EQ(c.rope_theta, 500000.0);
    expect_inv_freq(c, llama3_inv_freq(500000.0, kHeadDim, 8.0, 1.0, 4.0, 8192.0));
  }
  // The three regimes all occur at this size: some frequencies kept, some divided, some between.
  const std::vector<double> plain = default_inv_freq(500000.0, kHeadDim);
  const std::vector<double> scaled = llama3_inv_freq(500000.0, kHeadDim, 8.0, 1.0, 4.0, 8192.0);
  int kept = 0, divided = 0, between = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    const double ratio = plain[i] / scaled[i];
    kept += std::abs(ratio - 1) < 1e-12;
    divided += std::abs(ratio - 8) < 1e-9;
    between += ratio > 1 + 1e-9 && ratio < 8 - 1e-9;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(between, 0);
}

TEST(ModelConfigHf, FamiliesAndTheirTraits) {
  EXPECT_TRUE(ModelConfig::from_hf_config(hf_config("qwen2"), "c").attention_bias);
  nlohmann::json qwen3 = hf_config("qwen3");
  qwen3["head_dim"] = 32;  // n_head * head_dim != hidden_size, as in the real Qwen3 models
  qwen3["use_sliding_window"] = false;
  qwen3["sliding_window"] = nullptr;
  const ModelConfig c = ModelConfig::from_hf_config(qwen3, "c");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.q_dim(), kHeads * 32);
  EXPECT_EQ(ModelConfig::from_hf_config(hf_config("mistral"), "c").architecture, Architecture::Llama);
}

TEST(ModelConfigHf, Gemma3LayerTypesAndScales) {
  nlohmann::json j = hf_config("gemma3_text");
  j.erase("hidden_act");
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["head_dim"] = 32;
  j["query_pre_attn_scalar"] = 24;
  j["sliding_window"] = 16;
  j["layer_types"] = {"sliding_attention", "full_attention"};
  j["_sliding_window_pattern"] = 6;  // transformers writes it beside layer_types, which win
  j["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 8.0}, {"rope_theta", 1e6}}},
                          {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  const ModelConfig c = ModelConfig::from_hf_config(j, "c");
  EXPECT_TRUE(c.tied_embeddings);  // Gemma3TextConfig's default
  EXPECT_EQ(c.sliding_layers, (std::vector<uint8_t>{1, 0}));
  EXPECT_DOUBLE_EQ(c.query_scale(), 1.0 / std::sqrt(24.0));
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_theta_sliding, 1e4);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::Linear);  // global layers only
  std::vector<double> local = default_inv_freq(1e4, 32);
  const at::Tensor sliding = rotary_inv_freq(c, /*sliding=*/true);
  for (size_t i = 0; i < local.size(); ++i)
    EXPECT_NEAR(sliding[static_cast<int64_t>(i)].item<double>(), local[i], 1e-6 * local[i]);

  j["final_logit_softcapping"] = 30.0;
  expect_hf_refused(j, "final_logit_softcapping");
  j.erase("final_logit_softcapping");
  j["hidden_activation"] = "gelu";
  expect_hf_refused(j, "hidden_activation");
}

TEST(ModelConfigHf, UnimplementedFeaturesAreRefused) {
  expect_hf_refused(hf_config("phi3"), "'phi3' model");
  nlohmann::json j = hf_config("llama");
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_hf_refused(j, "'yarn'");
  j = hf_config("llama");
  j["hidden_act"] = "gelu_pytorch_tanh";
  expect_hf_refused(j, "hidden_act");
  j = hf_config("llama");
  j["attention_bias"] = true;
  expect_hf_refused(j, "attention biases");
  j = hf_config("mistral");
  j["sliding_window"] = 4096;
  expect_hf_refused(j, "sliding-window");
  j = hf_config("qwen2");
  j["use_sliding_window"] = true;
  expect_hf_refused(j, "sliding-window");
  j = hf_config("qwen3");
  j["layer_types"] = {"full_attention", "sliding_attention"};
  expect_hf_refused(j, "sliding_attention");
  j = hf_config("llama");
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_hf_refused(j, "low_freq_factor");
}

}  // namespace
}  // namespace sentinel
