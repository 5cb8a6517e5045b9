// The real Gemma 3 270M (Q4_K_M GGUF, installed by scripts/setup.sh) against transformers, which
// dequantized the same file to float32 (tests/data/model/gemma3-270m-reference.*, from
// reference/make_gemma3_270m_fixtures.py): token ids, logits, the log-likelihood of every next
// token, and 64 greedy tokens on the dense path; and the quantized path (its own Q4_K / Q5_0 /
// Q6_K / Q8_0 kernels) against the dense one on 300 tokens of WikiText-2 test.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sentinel/core/paths.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::load_tensor_fixture;
using testing::source_path;
using testing::to_ids;

class Gemma3Real : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = gemma3_model_path();  // fails naming scripts/setup.sh when it is missing
    expected_ = load_tensor_fixture(source_path("tests/data/model/gemma3-270m-reference.safetensors"));
    meta_ = nlohmann::json::parse(testing::read_file(source_path("tests/data/model/gemma3-270m-reference.json")));
    dense_ = new LoadedModel(load_model(path_, LoadOptions{at::kFloat, at::kCPU, Backend::Dense}));
  }
  static void TearDownTestSuite() {
    delete dense_;
    dense_ = nullptr;
  }
  // Every position's float32 logits of a whole-sequence pass: [T, n_vocab].
  static at::Tensor all_logits(LoadedModel& m, const at::Tensor& ids) {
    const at::Tensor positions = at::arange(ids.size(0), at::kLong).unsqueeze(0);
    return m.model->logits(m.model->forward({ids.unsqueeze(0), positions, {}}).hidden[0]);
  }
  static inline std::string path_;
  static inline std::map<std::string, at::Tensor> expected_;
  static inline nlohmann::json meta_;
  static inline LoadedModel* dense_ = nullptr;
};

TEST_F(Gemma3Real, TokenizerGivesTransformersIds) {
  for (const auto& seq : meta_.at("sequences")) {
    const std::string key = seq.at("key");
    // The WikiText-2 case is read from the shared corpus, not copied into the fixture: its first
    // text_chars characters (lines 1-5, ASCII).
    const std::string text =
        seq.at("text").is_null()
            ? testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw")).substr(0, seq.at("text_chars"))
            : seq.at("text").get<std::string>();
    std::vector<int32_t> ids = dense_->tokenizer->encode(text, seq.at("add_special_tokens").get<bool>());
    const std::vector<int32_t> expected = to_ids(expected_.at(key + ".ids"));
    ASSERT_GE(ids.size(), expected.size()) << key;
    ids.resize(expected.size());  // the fixture keeps the first 300 of the WikiText lines' ids
    EXPECT_EQ(ids, expected) << key;
  }
}

TEST_F(Gemma3Real, DenseLogitsAndNextTokenLikelihoodsMatchTransformers) {
  c10::InferenceMode guard;
  for (const char* key : {"plain", "chat", "wiki"}) {
    const std::string p = std::string(key) + ".";
    const at::Tensor ids = expected_.at(p + "ids");
    const at::Tensor logits = all_logits(*dense_, ids);  // [T, V]
    // The last 8 positions, every 16th vocabulary column, within 1e-4 of the largest logit.
    const at::Tensor rows = logits.index_select(0, expected_.at(p + "last8_positions"));
    const at::Tensor sampled = rows.slice(1, 0, rows.size(1), 16);
    const at::Tensor reference = expected_.at(p + "last8_logits_stride16");
    const double scale = reference.abs().max().item<double>();
    EXPECT_LT((sampled - reference).abs().max().item<double>() / scale, 1e-4) << key;
    // The 64 largest logits of those positions, by id.
    const at::Tensor top = rows.gather(1, expected_.at(p + "last8_top64_ids"));
    EXPECT_LT((top - expected_.at(p + "last8_top64_logits")).abs().max().item<double>() / scale, 1e-4) << key;
    // log p(next token) at every position, and the top token wherever transformers' top two differ.
    const at::Tensor log_p = logits.log_softmax(-1);
    const at::Tensor next = ids.slice(0, 1).unsqueeze(1);
    const at::Tensor next_logprob = log_p.slice(0, 0, ids.size(0) - 1).gather(1, next).squeeze(1);
    EXPECT_LT((next_logprob - expected_.at(p + "next_logprob")).abs().max().item<double>(), 1e-3) << key;
    const at::Tensor decided = expected_.at(p + "top2_margin") > 1e-3;
    const at::Tensor agree = logits.argmax(-1).eq(expected_.at(p + "top1")).logical_or(decided.logical_not());
    EXPECT_TRUE(agree.all().item<bool>()) << key << ": top token differs where transformers' margin is clear";
  }
}

TEST_F(Gemma3Real, DenseGreedyTokensMatchTransformers) {
  c10::InferenceMode guard;
  for (const char* key : {"plain", "chat"}) {
    const std::string p = std::string(key) + ".";
    Session session(dense_->model, dense_->model->cache_options(128));
    GenerationOptions options;
    options.max_tokens = 64;
    options.stop_at_eos = false;
    const GenerationResult r = generate(session, *dense_->tokenizer, to_ids(expected_.at(p + "ids")), options);
    EXPECT_EQ(r.tokens, to_ids(expected_.at(p + "greedy"))) << key;
  }
}

TEST_F(Gemma3Real, QuantizedPathStaysCloseToDense) {
  // The default path for this file: Q4_K / Q5_0 / Q6_K / Q8_0 rows read in place by the decode
  // kernels, against the dense float32 path on the same weights, 300 WikiText-2 tokens decoded
  // through the KV cache in chunks of 4 (the native step) with f16 K/V as users run it.
  LoadedModel quantized = load_model(path_, LoadOptions{at::kFloat, at::kCPU, Backend::Quantized});
  ASSERT_TRUE(quantized.model->is_quantized());
  c10::InferenceMode guard;
  const at::Tensor ids = expected_.at("wiki.ids");
  Session session(quantized.model, quantized.model->cache_options(ids.size(0)));
  const at::Tensor q_log_p = session.append(to_ids(ids), Logits::All, /*chunk=*/4).log_softmax(-1);  // [T, V]
  const at::Tensor d_log_p = all_logits(*dense_, ids).log_softmax(-1);
  const double kl = (d_log_p.exp() * (d_log_p - q_log_p)).sum(-1).mean().item<double>();
  const double same_top = q_log_p.argmax(-1).eq(d_log_p.argmax(-1)).to(at::kDouble).mean().item<double>();
  EXPECT_LT(kl, 0.01);
  EXPECT_GE(same_top, 0.97);
  RecordProperty("mean_kl", std::to_string(kl));
  RecordProperty("same_top_token", std::to_string(same_top));
}

}  // namespace
}  // namespace sentinel
