// What the sentence encoder refuses before reading any weights: configs that are not a BERT it
// implements (all problems named at once), folders that are not sentence-transformers folders,
// and cosine helpers given mismatched shapes. No model needed; parity is in
// tests/parity/model/test_minilm_encoder.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "sentinel/core/error.h"
#include "sentinel/eval/sentence_encoder.h"

namespace sentinel {
namespace {

nlohmann::json minilm_config() {
  return {{"model_type", "bert"},         {"hidden_act", "gelu"},         {"hidden_size", 384},
          {"num_hidden_layers", 6},       {"num_attention_heads", 12},   {"intermediate_size", 1536},
          {"max_position_embeddings", 512}, {"type_vocab_size", 2},       {"vocab_size", 30522},
          {"layer_norm_eps", 1e-12},      {"position_embedding_type", "absolute"}};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BertConfig, ReadsMiniLm) {
  const BertConfig c = BertConfig::from_hf_config(minilm_config(), "config.json");
  EXPECT_EQ(c.n_embd, 384);
  EXPECT_EQ(c.head_dim(), 32);
  EXPECT_EQ(c.n_ff, 1536);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
}

TEST(BertConfig, NamesEveryProblemAtOnce) {
  nlohmann::json config = minilm_config();
  config["model_type"] = "roberta";
  config["hidden_act"] = "gelu_new";
  config["position_embedding_type"] = "relative_key";
  config["num_attention_heads"] = 7;
  config.erase("vocab_size");
  const std::string message = error_of([&] { BertConfig::from_hf_config(config, "cfg.json"); });
  for (const char* needle : {"'cfg.json'", "model_type is 'roberta'", "hidden_act is 'gelu_new'", "relative_key",
                             "vocab_size must be a positive integer", "not a multiple of num_attention_heads 7"}) {
    EXPECT_NE(message.find(needle), std::string::npos) << needle << " missing from: " << message;
  }
}

void expect_load_error(const std::string& folder, SentenceEncoderOptions options, const std::string& needle) {
  const std::string message = error_of([&] { SentenceEncoder::load(folder, options); });
  EXPECT_NE(message.find(needle), std::string::npos) << needle << " missing from: " << message;
}

TEST(SentenceEncoder, RefusesWhatIsNotASentenceTransformersFolder) {
  expect_load_error("/nonexistent/folder", {}, "is not a folder");
  // Plain POSIX calls: std::filesystem would bind to libtorch's exported copies (see test_cli.cpp).
  char dir_template[] = "/tmp/sentinel-encoder-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template, config_path = dir + "/config.json";
  nlohmann::json config = minilm_config();
  config["model_type"] = "gpt2";
  std::ofstream(config_path) << config.dump();
  expect_load_error(dir, {}, "model_type is 'gpt2'");
  std::ofstream(config_path) << minilm_config().dump();
  expect_load_error(dir, {}, "tokenizer.json");
  expect_load_error(dir, {.batch_size = 0}, "batch_size is 0");
  ::unlink(config_path.c_str());
  ::rmdir(dir.c_str());
}

TEST(CosineSimilarity, ChecksShapesAndHandlesZeroVectors) {
  const at::Tensor a = at::tensor({1.0f, 0.0f}), b = at::tensor({1.0f, 1.0f});
  EXPECT_NEAR(embedding_cosine_similarity(a, b), 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_EQ(embedding_cosine_similarity(a, at::zeros({2})), 0.0);
  EXPECT_THROW(embedding_cosine_similarity(a, at::zeros({3})), Error);
  const at::Tensor m = at::stack({a, b});  // [2, 2]
  EXPECT_NEAR(pairwise_cosine_similarity(m, m)[1].item<float>(), 1.0f, 1e-6);
  EXPECT_EQ(cosine_similarity_matrix(m, m.slice(0, 0, 1)).sizes(), (at::IntArrayRef{2, 1}));
  EXPECT_THROW(pairwise_cosine_similarity(m, m.slice(0, 0, 1)), Error);
  EXPECT_THROW(cosine_similarity_matrix(m, at::zeros({2, 3})), Error);
}

}  // namespace
}  // namespace sentinel
