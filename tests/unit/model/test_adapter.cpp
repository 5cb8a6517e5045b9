// Adapter files: the sentinel rows survive a save/load round trip exactly, follow the model into
// its forward pass, and are refused on any other base model or when the file is not an adapter.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <tuple>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

// Plain unlink: std::filesystem would bind to libtorch's exported copies (see test_cli.cpp).
class AdapterFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = "/tmp/sentinel-adapter-test-" + std::to_string(::getpid()) + ".safetensors";
    tiny_ = load_model(source_path("tests/data/tiny/hf"));
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  Adapter random_adapter() {
    at::manual_seed(7);
    return Adapter{at::randn({2, tiny_.config.n_embd}), {{"method", "sentinel"}, {"ratio", "0.5"}}, ""};
  }

  std::string path_;
  LoadedModel tiny_;
};

TEST_F(AdapterFile, RoundTripKeepsRowsAndMetadataAndNamesTheBase) {
  const Adapter written = random_adapter();
  save_adapter(path_, written, tiny_.model, tiny_.name);
  const Adapter read = load_adapter(path_);
  EXPECT_TRUE(at::equal(read.sentinel_embeddings, written.sentinel_embeddings));
  EXPECT_EQ(read.metadata.at("method"), "sentinel");
  EXPECT_EQ(read.metadata.at("ratio"), "0.5");
  EXPECT_EQ(read.metadata.at("base_model"), tiny_.name);
  EXPECT_EQ(read.metadata.at("base_fingerprint"), model_fingerprint(tiny_.model));
}

TEST_F(AdapterFile, AppliedRowsAreTheSentinelEmbeddings) {
  const Adapter adapter = random_adapter();
  save_adapter(path_, adapter, tiny_.model, tiny_.name);
  apply_adapter(tiny_.model, tiny_.name, load_adapter(path_));
  ASSERT_EQ(tiny_.model->n_extra_tokens(), 2);  // <CL>, <CR> at ids n_vocab, n_vocab + 1
  EXPECT_TRUE(at::equal(tiny_.model->extra_embeddings, adapter.sentinel_embeddings));
}

TEST_F(AdapterFile, FingerprintIgnoresComputeDtypeButNotWeights) {
  LoadedModel bf16 = load_model(source_path("tests/data/tiny/hf"), LoadOptions{at::kBFloat16});
  EXPECT_EQ(model_fingerprint(bf16.model), model_fingerprint(tiny_.model));
  LoadedModel gguf = load_model(source_path("tests/data/tiny/tiny.gguf"));  // same weights, other format
  EXPECT_EQ(model_fingerprint(gguf.model), model_fingerprint(tiny_.model));

  const std::string before = model_fingerprint(tiny_.model);
  {
    at::NoGradGuard no_grad;
    tiny_.model->embed_tokens->weight[0][0].add_(1.0f);  // row 0 is in the sample
  }
  EXPECT_NE(model_fingerprint(tiny_.model), before);
}

TEST_F(AdapterFile, AnotherBaseModelIsRefusedNamingBoth) {
  save_adapter(path_, random_adapter(), tiny_.model, "tiny-original");
  LoadedModel other = load_model(source_path("tests/data/tiny/hf"));
  {
    at::NoGradGuard no_grad;
    other.model->embed_tokens->weight.mul_(1.5f);  // "fine-tuned" differently
  }
  try {
    apply_adapter(other.model, "tiny-other", load_adapter(path_));
    FAIL() << "adapter accepted on another model";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("trained on \"tiny-original\""), std::string::npos) << message;
    EXPECT_NE(message.find("not on this model \"tiny-other\""), std::string::npos) << message;
  }
}

TEST_F(AdapterFile, ForeignOrDamagedFilesAreRefused) {
  // A valid safetensors file that is not an adapter.
  SafetensorsWriter writer;
  const std::vector<float> zeros(8, 0.0f);
  writer.add("weight", DType::F32, {2, 4}, std::span(reinterpret_cast<const uint8_t*>(zeros.data()), 32));
  writer.write(path_);
  EXPECT_THROW(
      {
        try {
          load_adapter(path_);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("not a Sentinel adapter"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);

  // A real adapter whose metadata disagrees with its tensors: each key altered in turn.
  Adapter lora = random_adapter();
  lora.lora_rank = 2;
  lora.lora_alpha = 4;
  lora.lora["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = at::randn({2, tiny_.config.n_embd});
  lora.lora["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = at::randn({tiny_.config.n_embd, 2});
  save_adapter(path_, lora, tiny_.model, tiny_.name);
  ASSERT_NO_THROW(load_adapter(path_));
  const std::vector<std::tuple<std::string, std::string, std::string>> altered = {
      {"lora_target_modules", "q_proj,v_proj", "disagrees with its tensors"},
      {"n_embd", "7", "metadata n_embd 7"},
      {"lora_alpha", "0", "must be positive"},
  };
  for (const auto& [key, value, message] : altered) {
    const SafetensorsFile saved = SafetensorsFile::open(path_);
    SafetensorsWriter rewrite;
    for (const auto& t : saved.tensors()) rewrite.add(t.name, t.dtype, t.shape, t.data);
    for (const auto& [k, v] : saved.metadata()) rewrite.set_metadata(k, k == key ? value : v);
    const std::string other = path_ + ".altered";
    rewrite.write(other);
    try {
      load_adapter(other);
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    ::unlink(other.c_str());
  }

  // A real adapter cut short.
  save_adapter(path_, random_adapter(), tiny_.model, tiny_.name);
  std::string bytes = testing::read_file(path_);
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 10);
  EXPECT_THROW(load_adapter(path_), Error);
}

}  // namespace
}  // namespace sentinel

namespace sentinel {
namespace {

// On the quantized path the adapter's LoRA stays unmerged beside the stored matrices (every
// projection, MLP included): the logits equal those of the dense model with the LoRA merged, and
// the fingerprint of the in-place weights is the dense one's.
// A random LoRA on q, v, o and down of every layer, with sentinel rows, for `model`.
Adapter random_lora_adapter(LoadedModel& model, LoraPositions positions) {
  Adapter adapter;
  adapter.path = "generated";
  adapter.lora_rank = 4;
  adapter.lora_alpha = 8.0;
  adapter.lora_positions = positions;
  at::manual_seed(3);
  const ModelConfig& c = model.config;
  const std::map<std::string, std::pair<int64_t, int64_t>> shapes = {  // module -> (out, in)
      {"self_attn.q_proj", {c.n_head * c.head_dim, c.n_embd}}, {"self_attn.v_proj", {c.kv_dim(), c.n_embd}},
      {"self_attn.o_proj", {c.n_embd, c.n_head * c.head_dim}}, {"mlp.down_proj", {c.n_embd, c.n_ff}}};
  for (int64_t layer = 0; layer < c.n_layer; ++layer)
    for (const auto& [module, shape] : shapes) {
      const std::string base = "base_model.model.model.layers." + std::to_string(layer) + "." + module;
      adapter.lora[base + ".lora_A.weight"] = at::randn({4, shape.second}) * 0.3;
      adapter.lora[base + ".lora_B.weight"] = at::randn({shape.first, 4}) * 0.3;
    }
  adapter.sentinel_embeddings = at::randn({2, c.n_embd});
  adapter.metadata = {{"base_model", model.name}, {"base_fingerprint", model_fingerprint(model.model)}};
  return adapter;
}

LoadedModel quantized_tiny() {
  LoadOptions options;
  options.backend = Backend::Quantized;
  LoadedModel m = load_model(source_path("tests/data/tiny/tiny.gguf"), options);
  m.model->set_kv_storage(KvStorage::F32);
  return m;
}

// On the quantized path the adapter's LoRA stays unmerged beside the stored matrices (every
// projection, MLP included): the logits equal those of the dense model with the LoRA merged, and
// the fingerprint of the in-place weights is the dense one's.
TEST(AdapterOnQuantizedPath, UnmergedLoraGivesTheMergedLogits) {
  c10::InferenceMode guard;
  LoadedModel dense = load_model(source_path("tests/data/tiny/tiny.gguf"));
  LoadedModel quantized = quantized_tiny();
  ASSERT_TRUE(quantized.model->is_quantized());
  EXPECT_EQ(model_fingerprint(quantized.model), model_fingerprint(dense.model));

  const Adapter adapter = random_lora_adapter(dense, LoraPositions::All);
  const ModelConfig& c = dense.config;
  apply_adapter(dense.model, dense.name, adapter);
  apply_adapter(quantized.model, quantized.name, adapter);
  EXPECT_FALSE(dense.model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->has_lora());  // merged
  EXPECT_TRUE(quantized.model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->has_lora());  // beside

  LoadedModel plain = quantized_tiny();  // no adapter
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 24; ++i) ids.push_back((i * 29 + 5) % static_cast<int32_t>(c.n_vocab));
  for (int64_t chunk : {1, 24}) {  // decode steps (native) and one prefill pass (dequantized GEMMs)
    Session a(dense.model, dense.model->cache_options(8)), b(quantized.model, quantized.model->cache_options(8));
    Session without(plain.model, plain.model->cache_options(8));
    const at::Tensor expected = a.append(ids, Logits::All, chunk);
    const at::Tensor actual = b.append(ids, Logits::All, chunk);
    EXPECT_LT((expected - actual).abs().max().item<double>(), 5e-5) << "chunk " << chunk;
    EXPECT_GT((expected - without.append(ids, Logits::All, chunk)).abs().max().item<double>(), 1e-2)
        << "the LoRA must change the logits for this comparison to mean anything";
  }
}

// LoRA at the sentinels only, on both paths: the native decode step and the dense model (LoRA
// unmerged there too) agree, and rows before the first sentinel are the base model's exactly.
TEST(AdapterOnQuantizedPath, SentinelOnlyLoraAgreesWithTheDensePath) {
  c10::InferenceMode guard;
  LoadedModel dense = load_model(source_path("tests/data/tiny/tiny.gguf"));
  dense.model->set_kv_storage(KvStorage::F32);
  LoadedModel quantized = quantized_tiny();
  const Adapter adapter = random_lora_adapter(dense, LoraPositions::Sentinels);
  apply_adapter(dense.model, dense.name, adapter);
  apply_adapter(quantized.model, quantized.name, adapter);
  EXPECT_TRUE(dense.model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->has_lora()) << "not mergeable";
  LoadedModel plain = quantized_tiny();
  install_sentinels(plain.model, adapter.sentinel_embeddings);

  const auto cr = static_cast<int32_t>(dense.config.n_vocab + 1);
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 24; ++i) ids.push_back(i == 9 || i == 17 ? cr : (i * 29 + 5) % static_cast<int32_t>(dense.config.n_vocab));
  for (int64_t chunk : {1, 5, 24}) {
    Session a(dense.model, dense.model->cache_options(8)), b(quantized.model, quantized.model->cache_options(8));
    Session without(plain.model, plain.model->cache_options(8));
    const at::Tensor expected = a.append(ids, Logits::All, chunk);  // [24, n_vocab]
    const at::Tensor actual = b.append(ids, Logits::All, chunk);
    const at::Tensor base = without.append(ids, Logits::All, chunk);
    EXPECT_LT((expected - actual).abs().max().item<double>(), 5e-5) << "chunk " << chunk;
    EXPECT_TRUE(at::equal(actual.narrow(0, 0, 9), base.narrow(0, 0, 9))) << "chunk " << chunk;
    EXPECT_GT((actual.narrow(0, 9, 15) - base.narrow(0, 9, 15)).abs().max().item<double>(), 1e-2) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace sentinel
