// The sentence encoder (all-MiniLM-L6-v2, installed by scripts/setup.sh) against
// sentence-transformers and transformers (tests/data/minilm/embeddings.safetensors from
// reference/make_minilm_fixtures.py): hidden states layer by layer, the embeddings of 20 varied
// sentences (one truncated at 256 tokens) and their cosine similarities, batching invariance.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

#include "sentinel/core/paths.h"
#include "sentinel/eval/sentence_encoder.h"
#include "sentinel/io/safetensors.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::max_abs_diff;

constexpr const char* kRegenerate = "fixtures from: python3 reference/make_minilm_fixtures.py";
constexpr double kEmbeddingTolerance = 1e-4;  // max abs difference, float32 on the CPU
constexpr double kStageTolerance = 1e-5;      // relative error of each hidden state

class MiniLmEncoder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    encoder_ = std::make_unique<SentenceEncoder>(SentenceEncoder::load(minilm_model_path()));
    const std::string path = testing::source_path("tests/data/minilm/embeddings.safetensors");
    fixture_ = testing::load_tensor_fixture(path);
    const SafetensorsFile file = SafetensorsFile::open(path);
    sentences_ = nlohmann::json::parse(file.metadata().at("sentences")).get<std::vector<std::string>>();
    n_tokens_ = nlohmann::json::parse(file.metadata().at("n_tokens")).get<std::vector<int64_t>>();
  }
  static void TearDownTestSuite() {
    encoder_.reset();
    fixture_.clear();
  }
  static const SentenceEncoder& enc() { return *encoder_; }
  static const at::Tensor& fixture(const std::string& key) { return fixture_.at(key); }
  static const std::vector<std::string>& sentences() { return sentences_; }

  static inline std::vector<int64_t> n_tokens_;

 private:
  static inline std::unique_ptr<SentenceEncoder> encoder_;
  static inline std::map<std::string, at::Tensor> fixture_;
  static inline std::vector<std::string> sentences_;
};

TEST_F(MiniLmEncoder, ReadsTheSentenceTransformersFolder) {
  EXPECT_EQ(enc().dim(), 384);
  EXPECT_EQ(enc().max_seq_length(), 256);
  EXPECT_TRUE(enc().normalizes());
  EXPECT_EQ(enc().config().n_layer, 6);
  EXPECT_EQ(enc().config().layer_norm_eps, 1e-12);
}

TEST_F(MiniLmEncoder, HiddenStatesMatchTransformersLayerByLayer) {
  const std::vector<int32_t> ids32 = enc().tokenizer().encode(sentences()[0], 256);
  const at::Tensor ids = at::tensor(std::vector<int64_t>(ids32.begin(), ids32.end()), at::kLong).unsqueeze(0);
  const at::Tensor mask = at::ones_like(ids, at::kBool);
  std::vector<at::Tensor> hidden;
  enc().forward(ids, mask, &hidden);  // [1, t, 384] each
  ASSERT_EQ(hidden.size(), 7u);
  const at::Tensor positions = fixture("hidden_positions");
  testing::StageParity parity(kStageTolerance);
  for (size_t k = 0; k < hidden.size(); ++k) {
    parity.add(k == 0 ? "embeddings" : "layer" + std::to_string(k - 1), hidden[k][0].index_select(0, positions),
               fixture("hidden." + std::to_string(k)));
  }
  std::printf("%s\n", parity.describe().c_str());
  EXPECT_TRUE(parity.ok()) << parity.describe() << "\n" << kRegenerate;
}

TEST_F(MiniLmEncoder, EmbeddingsMatchSentenceTransformers) {
  for (size_t i = 0; i < sentences().size(); ++i) {  // the truncated sentence included
    EXPECT_EQ(static_cast<int64_t>(enc().tokenizer().encode(sentences()[i], 256).size()), n_tokens_[i])
        << "sentence " << i;
  }
  const at::Tensor ours = enc().encode(sentences());  // [20, 384]
  const at::Tensor& expected = fixture("embeddings");
  ASSERT_EQ(ours.sizes(), expected.sizes());
  const double diff = max_abs_diff(ours, expected);
  std::printf("max abs embedding difference vs sentence-transformers: %.3g over %zu sentences\n", diff,
              sentences().size());
  EXPECT_LE(diff, kEmbeddingTolerance) << kRegenerate;
  const at::Tensor norms = ours.norm(2, {1});
  EXPECT_LE(max_abs_diff(norms, at::ones_like(norms)), 1e-5) << "embeddings are normalized";

  const at::Tensor cos_ours = cosine_similarity_matrix(ours, ours);  // [20, 20]
  const at::Tensor cos_expected = cosine_similarity_matrix(expected, expected);
  const double cos_diff = max_abs_diff(cos_ours, cos_expected);
  std::printf("max abs cosine-similarity difference: %.3g\n", cos_diff);
  EXPECT_LE(cos_diff, kEmbeddingTolerance);
  // Paraphrases are closer than unrelated sentences (0/1: guitar, 2/3: stock market).
  EXPECT_GT(embedding_cosine_similarity(ours[0], ours[1]), embedding_cosine_similarity(ours[0], ours[2]) + 0.2);
  EXPECT_GT(pairwise_cosine_similarity(ours.slice(0, 2, 3), ours.slice(0, 3, 4)).item<float>(), 0.5f);
}

TEST_F(MiniLmEncoder, BatchingDoesNotChangeEmbeddings) {
  const at::Tensor batched = enc().encode(sentences());
  for (size_t i : {size_t{0}, size_t{8}, sentences().size() - 1}) {
    const at::Tensor alone = enc().encode(std::span<const std::string>(&sentences()[i], 1));  // [1, 384]
    EXPECT_LE(max_abs_diff(alone[0], batched[static_cast<int64_t>(i)]), 1e-5) << "sentence " << i;
  }
  // Batches of 3 sentences, the long one left out (it alone costs as much as the rest).
  const SentenceEncoder small_batches = SentenceEncoder::load(minilm_model_path(), {.batch_size = 3});
  const auto short_ones = std::span<const std::string>(sentences()).first(sentences().size() - 1);
  EXPECT_LE(max_abs_diff(small_batches.encode(short_ones), batched.slice(0, 0, -1)), 1e-5);
}

}  // namespace
}  // namespace sentinel
