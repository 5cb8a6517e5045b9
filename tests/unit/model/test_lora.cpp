// LoRA on the projections: peft's initialisation and names, the adapted forward, freezing, and
// adapter files with LoRA (round trip, merged application equal to the unmerged model, the old
// sentinel-only format still loading, another base model refused).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/lora.h"
#include "sentinel/model/peft_export.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/setup.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

LoadedModel tiny() { return load_model(source_path("tests/data/tiny/hf")); }

at::Tensor forward_logits(DecoderModel& model, at::Tensor ids = at::arange(12, at::kLong).unsqueeze(0) * 7 % 300) {
  at::NoGradGuard no_grad;
  const at::Tensor positions = at::arange(12, at::kLong).unsqueeze(0);
  return model->logits(model->forward({ids, positions, {}}).hidden);
}

void randomize_lora(DecoderModel& model) {
  at::NoGradGuard no_grad;
  at::manual_seed(11);
  for (auto& [name, t] : lora_tensors(model)) t.copy_(at::randn(t.sizes()) * 0.1);
}

TEST(Lora, InitialisedLikePeftAndNamedLikePeft) {
  LoadedModel m = tiny();
  at::manual_seed(1);
  add_lora(m.model, LoraOptions{4, 8.0, 0.0, {"q_proj", "v_proj", "down_proj"}});
  const auto tensors = lora_tensors(m.model);
  EXPECT_EQ(tensors.size(), 2u * 3u * static_cast<size_t>(m.config.n_layer));
  const std::string q_a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  ASSERT_TRUE(tensors.count(q_a)) << "peft name missing";
  ASSERT_TRUE(tensors.count("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_FALSE(tensors.count("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"));
  const at::Tensor a = tensors.at(q_a);  // [r, in]: kaiming-uniform a=sqrt(5) is U(-1/sqrt(in), 1/sqrt(in))
  EXPECT_EQ(a.sizes(), (at::IntArrayRef{4, m.config.n_embd}));
  const double bound = 1.0 / std::sqrt(static_cast<double>(m.config.n_embd));
  EXPECT_LE(a.abs().max().item<double>(), bound);
  EXPECT_GT(a.abs().max().item<double>(), 0.8 * bound);
  const at::Tensor b = tensors.at("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
  EXPECT_EQ(b.sizes(), (at::IntArrayRef{m.config.n_head * m.config.head_dim, 4}));
  EXPECT_EQ(b.abs().max().item<double>(), 0.0);  // B = 0: the adapted model starts as the base
}

TEST(Lora, FreshLoraLeavesOutputsAndNonzeroLoraChangesThem) {
  LoadedModel m = tiny();
  const at::Tensor base = forward_logits(m.model);
  add_lora(m.model, LoraOptions{4, 8.0, 0.0});
  EXPECT_TRUE(at::equal(forward_logits(m.model), base));
  randomize_lora(m.model);
  EXPECT_GT((forward_logits(m.model) - base).abs().max().item<double>(), 1e-3);
}

TEST(Lora, DropoutOnlyWhileTraining) {
  LoadedModel m = tiny();
  add_lora(m.model, LoraOptions{4, 8.0, 0.5});
  randomize_lora(m.model);
  m.model->eval();
  const at::Tensor a = forward_logits(m.model), b = forward_logits(m.model);
  EXPECT_TRUE(at::equal(a, b));
  m.model->train();
  EXPECT_FALSE(at::equal(forward_logits(m.model), a));
}

TEST(Lora, AdapterScopeTrainsLoraAndSentinelRowsOnly) {
  LoadedModel m = tiny();
  const auto trainable = prepare_for_training(m.model, ModelSetup{Method::Sentinel, TrainScope::Adapter, {}, 0});
  size_t n_lora = 0;
  for (const auto& [name, t] : trainable) {
    EXPECT_TRUE(name.ends_with("lora_A") || name.ends_with("lora_B") || name == "sentinel_embeddings") << name;
    n_lora += name != "sentinel_embeddings";
  }
  EXPECT_EQ(n_lora, 8u * static_cast<size_t>(m.config.n_layer));  // q, k, v, o: A and B
  EXPECT_EQ(trainable.size(), n_lora + 1);
  EXPECT_FALSE(m.model->embed_tokens->weight.requires_grad());
  EXPECT_FALSE(m.model->norm->weight.requires_grad());

  LoadedModel full = tiny();
  const auto all = prepare_for_training(full.model, ModelSetup{Method::Local, TrainScope::Full, {}, 0});
  EXPECT_EQ(all.size(), full.model->parameters().size());
}

TEST(Lora, BadOptionsAreRefusedNamingTheFix) {
  EXPECT_THROW(parse_lora_targets("q_proj,qq_proj"), Error);
  try {
    LoraOptions{0, 8.0, 0.0}.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--lora-rank"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_lora_targets("q_proj,up_proj"), (std::vector<std::string>{"q_proj", "up_proj"}));
}

// LoRA at the sentinels only: every row without a sentinel at or before it computes exactly as
// the base model; rows that read a sentinel's keys and values see the adapted summary.
TEST(Lora, AtTheSentinelsOnlyOrdinaryTokensComputeAsTheBase) {
  LoadedModel base = tiny();
  install_sentinels(base.model);
  LoadedModel gated = tiny();
  const ModelSetup setup{Method::Sentinel, TrainScope::Adapter, LoraOptions{4, 8.0, 0.0, {"q_proj", "v_proj", "down_proj"},
                                                                            LoraPositions::Sentinels}, 3};
  prepare_for_training(gated.model, setup);
  gated.model->eval();
  {
    at::NoGradGuard no_grad;
    gated.model->extra_embeddings.copy_(base.model->extra_embeddings);
  }
  randomize_lora(gated.model);
  EXPECT_EQ(gated.model->lora_positions(), LoraPositions::Sentinels);
  EXPECT_TRUE(at::equal(forward_logits(gated.model), forward_logits(base.model))) << "no sentinel: the base model";

  const int64_t cr = base.config.n_vocab + 1;
  at::Tensor ids = at::arange(12, at::kLong).unsqueeze(0) * 7 % 300;
  ids[0][5] = cr;
  const at::Tensor with_sentinel = forward_logits(gated.model, ids), plain = forward_logits(base.model, ids);
  EXPECT_TRUE(at::equal(with_sentinel.narrow(1, 0, 5), plain.narrow(1, 0, 5))) << "rows before the sentinel";
  EXPECT_GT((with_sentinel.narrow(1, 5, 7) - plain.narrow(1, 5, 7)).abs().max().item<double>(), 1e-3)
      << "the sentinel's row and every row reading it are adapted";

  LoadedModel everywhere = tiny();
  prepare_for_training(everywhere.model, ModelSetup{Method::Sentinel, TrainScope::Adapter,
                                                    LoraOptions{4, 8.0, 0.0, {"q_proj", "v_proj", "down_proj"}}, 3});
  everywhere.model->eval();
  randomize_lora(everywhere.model);
  EXPECT_GT((forward_logits(everywhere.model) - forward_logits(base.model)).abs().max().item<double>(), 1e-3)
      << "the same LoRA at every position moves ordinary tokens";
}

class LoraAdapterFile : public ::testing::Test {
 protected:
  void SetUp() override { path_ = "/tmp/sentinel-lora-test-" + std::to_string(::getpid()) + ".safetensors"; }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_;
};

TEST_F(LoraAdapterFile, MergedOnLoadEqualsTheTrainedUnmergedModel) {
  LoadedModel trained = tiny();
  const ModelSetup setup{Method::Sentinel, TrainScope::Adapter, LoraOptions{4, 8.0, 0.0}, 3};
  prepare_for_training(trained.model, setup);
  randomize_lora(trained.model);
  {
    at::NoGradGuard no_grad;
    trained.model->extra_embeddings.add_(0.25);
  }
  trained.model->eval();
  const at::Tensor expected = forward_logits(trained.model);
  save_adapter(path_, trained_adapter(trained.model, setup, {{"method", "sentinel"}}), trained.model, trained.name);

  const Adapter read = load_adapter(path_);
  EXPECT_EQ(read.metadata.at("format_version"), "2");
  EXPECT_EQ(read.metadata.at("lora_rank"), "4");
  EXPECT_EQ(read.metadata.at("lora_target_modules"), "q_proj,k_proj,v_proj,o_proj");
  EXPECT_EQ(read.lora.size(), lora_tensors(trained.model).size());
  LoadedModel fresh = tiny();
  apply_adapter(fresh.model, fresh.name, read);
  EXPECT_TRUE(at::equal(fresh.model->extra_embeddings, trained.model->extra_embeddings));
  const at::Tensor merged = forward_logits(fresh.model);
  EXPECT_LT(((merged - expected).norm() / expected.norm()).item<double>(), 1e-5);
}

TEST_F(LoraAdapterFile, BaselineAdapterWithoutSentinelsAndWrongBaseRefused) {
  LoadedModel trained = tiny();
  const ModelSetup setup{Method::Local, TrainScope::Adapter, LoraOptions{2, 4.0, 0.0}, 3};
  prepare_for_training(trained.model, setup);
  randomize_lora(trained.model);
  save_adapter(path_, trained_adapter(trained.model, setup, {{"method", "local"}}), trained.model, "tiny-a");
  const Adapter read = load_adapter(path_);
  EXPECT_FALSE(read.sentinel_embeddings.defined());
  LoadedModel other = tiny();
  {
    at::NoGradGuard no_grad;
    other.model->embed_tokens->weight.mul_(1.5f);
  }
  EXPECT_THROW(apply_adapter(other.model, "tiny-b", read), Error);
  EXPECT_EQ(read.lora_positions, LoraPositions::All);
  LoadedModel same = tiny();
  apply_adapter(same.model, "tiny-a", read);
  EXPECT_EQ(same.model->n_extra_tokens(), 0);
}

// A sentinels-only adapter records where its LoRA acts, comes back unmerged (no merged weight can
// express it), and gives the trained model's logits.
TEST_F(LoraAdapterFile, SentinelOnlyLoraRoundTripsUnmerged) {
  LoadedModel trained = tiny();
  const ModelSetup setup{Method::Sentinel, TrainScope::Adapter,
                         LoraOptions{4, 8.0, 0.0, {"q_proj", "k_proj", "v_proj", "o_proj"}, LoraPositions::Sentinels}, 3};
  prepare_for_training(trained.model, setup);
  randomize_lora(trained.model);
  trained.model->eval();
  at::Tensor ids = at::arange(12, at::kLong).unsqueeze(0) * 7 % 300;
  ids[0][3] = trained.config.n_vocab + 1;
  const at::Tensor expected = forward_logits(trained.model, ids);
  save_adapter(path_, trained_adapter(trained.model, setup, {{"method", "sentinel"}}), trained.model, trained.name);

  const Adapter read = load_adapter(path_);
  EXPECT_EQ(read.metadata.at("lora_positions"), "sentinels");
  EXPECT_EQ(read.lora_positions, LoraPositions::Sentinels);
  LoadedModel fresh = tiny();
  apply_adapter(fresh.model, fresh.name, read);
  EXPECT_EQ(fresh.model->lora_positions(), LoraPositions::Sentinels);
  EXPECT_TRUE(fresh.model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->has_lora()) << "kept unmerged";
  EXPECT_LT(((forward_logits(fresh.model, ids) - expected).norm() / expected.norm()).item<double>(), 1e-6);
  const std::string peft_dir = path_ + ".peft";
  try {
    export_peft(read, peft_dir, PeftExportOptions{"tiny", 0.0});
    FAIL() << "a sentinels-only adapter was exported to peft";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("peft cannot express"), std::string::npos) << e.what();
  }
  EXPECT_NE(::access(peft_dir.c_str(), F_OK), 0) << "refused before writing anything";
  try {
    parse_lora_positions("tokens");
    FAIL() << "an unknown value was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use all (every token) or sentinels"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sentinel
