// The trainer against transformers + peft (tests/data/tiny/train-reference.safetensors, written by
// reference/make_train_fixtures.py): the layout, labels, loss and the gradient of every trainable
// tensor of one batch, with LoRA on the attention projections, on all seven, and under full
// fine-tuning; then a 10-update AdamW trajectory (accumulation, clipping, warm-up + linear decay),
// and the trained adapter applied merged against peft loading it by name. Float32, CPU.
// Regenerate: ~/.cache/sentinel/venv/bin/python reference/make_train_fixtures.py
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "sentinel/engine/model_loader.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/lora.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/setup.h"
#include "sentinel/train/trainer.h"
#include "support/tensor_fixture.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::relative_error;
using testing::source_path;

constexpr const char* kRegenerate = "; regenerate with reference/make_train_fixtures.py";

class TrainParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fx_ = testing::load_tensor_fixture(source_path("tests/data/tiny/train-reference.safetensors"));
  }
  // One thread: on a busy machine, OpenMP barriers over the tiny model's small ops cost 50-100x
  // the work itself; the results do not depend on it.
  void SetUp() override {
    threads_ = at::get_num_threads();
    at::set_num_threads(1);
  }
  void TearDown() override { at::set_num_threads(threads_); }
  int threads_ = 1;

  // The tiny model prepared as the reference is, with the reference's initial tensors.
  std::pair<LoadedModel, std::vector<std::pair<std::string, at::Tensor>>> prepare(const std::string& prefix,
                                                                                   std::vector<std::string> targets) {
    LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
    auto trainable = prepare_for_training(m.model, ModelSetup{Method::Sentinel, TrainScope::Adapter,
                                                              LoraOptions{4, 8.0, 0.0, std::move(targets)}, 0});
    std::map<std::string, at::Tensor> init;
    const std::string head = prefix + "init.";
    for (const auto& [name, t] : fx_)
      if (name.rfind(head + "base_model.", 0) == 0) init[name.substr(head.size())] = t;
    load_lora(m.model, init);
    install_sentinels(m.model, fx_.at(head + "sentinel_embeddings"));
    return {std::move(m), std::move(trainable)};
  }

  // Built by our pipeline from the fixture's tokens and spans, then checked against its layout.
  std::vector<MaskedSequence> blocks(const ModelConfig& config) {
    std::vector<MaskedSequence> out;
    const std::vector<int32_t> tokens = testing::to_ids(fx_.at("tokens"));
    for (int b = 0; b < 2; ++b) {
      PolicyOptions p;
      p.method = Method::Sentinel;
      const SentinelTokens st = sentinel_tokens(config);
      p.cl_id = st.cl;
      p.cr_id = st.cr;
      const at::Tensor spans = fx_.at("spans" + std::to_string(b));
      for (int64_t s = 0; s < spans.size(0); ++s)
        p.spans.push_back(Span{spans[s][0].item<int64_t>(), spans[s][1].item<int64_t>()});
      out.push_back(masked_sequence(*make_policy(p), tokens));
    }
    return out;
  }

  static std::string fixture_name(const std::string& ours) {
    return ours == "sentinel_embeddings" ? ours : peft_name(ours);
  }

  void check_gradients(const std::string& prefix, std::vector<std::string> targets) {
    auto [m, trainable] = prepare(prefix, std::move(targets));
    const TrainBatch batch = make_batch(blocks(m.config));
    ASSERT_TRUE(at::equal(batch.ids, fx_.at("batch.ids"))) << "layout ids differ" << kRegenerate;
    ASSERT_TRUE(at::equal(batch.positions, fx_.at("batch.positions"))) << "positions differ";
    ASSERT_TRUE(at::equal(batch.mask, fx_.at("batch.allow"))) << "masks differ";
    ASSERT_TRUE(at::equal(batch.labels, fx_.at("batch.labels"))) << "labels differ";
    const at::Tensor loss = lm_loss(m.model, batch);
    loss.backward();
    const double expected = fx_.at(prefix + "loss").item<double>();
    EXPECT_NEAR(loss.item<double>(), expected, 1e-5 * expected) << prefix << "loss" << kRegenerate;
    size_t checked = 0;
    double worst = 0;
    for (const auto& [name, t] : trainable) {
      const std::string key = prefix + "grad." + fixture_name(name);
      ASSERT_TRUE(fx_.count(key)) << "no reference gradient for " << key;
      ASSERT_TRUE(t.grad().defined()) << name << " got no gradient";
      const double err = relative_error(t.grad(), fx_.at(key));
      worst = std::max(worst, err);
      EXPECT_LT(err, 1e-5) << "gradient of " << name << " (" << key << ")" << kRegenerate;
      ++checked;
    }
    size_t in_fixture = 0;
    for (const auto& [name, t] : fx_) in_fixture += name.rfind(prefix + "grad.", 0) == 0;
    EXPECT_EQ(checked, in_fixture) << "trainable tensors differ from the reference's";
    std::printf("[ parity ] %s loss |diff| %.2e, worst gradient relative error %.2e over %zu tensors\n",
                prefix.empty() ? "qkvo" : "all", std::abs(loss.item<double>() - expected), worst, checked);
  }

  static inline std::map<std::string, at::Tensor> fx_;
};

TEST_F(TrainParity, LossAndGradientsMatchPeftAttentionTargets) {
  check_gradients("", {"q_proj", "k_proj", "v_proj", "o_proj"});
}

TEST_F(TrainParity, LossAndGradientsMatchPeftAllProjections) {
  check_gradients("all.", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"});
}

TEST_F(TrainParity, LossAndGradientsMatchTransformersFullFineTuning) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  const auto trainable = prepare_for_training(m.model, ModelSetup{Method::Sentinel, TrainScope::Full, {}, 0});
  install_sentinels(m.model, fx_.at("full.init.sentinel_embeddings"));
  const TrainBatch batch = make_batch(blocks(m.config));
  const at::Tensor loss = lm_loss(m.model, batch);
  loss.backward();
  const double expected = fx_.at("full.loss").item<double>();
  EXPECT_NEAR(loss.item<double>(), expected, 1e-5 * expected) << "full fine-tuning loss" << kRegenerate;
  double worst = 0;
  for (const auto& [name, t] : trainable) {
    const std::string key = "full.grad." + (name == "sentinel_embeddings" ? name : DecoderModelImpl::hf_name(name));
    ASSERT_TRUE(fx_.count(key)) << "no reference gradient for " << key;
    ASSERT_TRUE(t.grad().defined()) << name << " got no gradient";
    const double err = relative_error(t.grad(), fx_.at(key));
    worst = std::max(worst, err);
    EXPECT_LT(err, 1e-5) << "gradient of " << name << kRegenerate;
  }
  size_t in_fixture = 0;
  for (const auto& [name, t] : fx_) in_fixture += name.rfind("full.grad.", 0) == 0;
  EXPECT_EQ(trainable.size(), in_fixture) << "trainable tensors differ from the reference's";
  std::printf("[ parity ] full loss |diff| %.2e, worst gradient relative error %.2e over %zu tensors\n",
              std::abs(loss.item<double>() - expected), worst, trainable.size());
}

TEST_F(TrainParity, TenUpdateAdamWTrajectoryMatchesTorch) {
  auto [m, trainable] = prepare("", {"q_proj", "k_proj", "v_proj", "o_proj"});
  const auto seqs = blocks(m.config);
  std::vector<TrainBatch> micro = {make_batch(std::span(seqs).subspan(0, 1)), make_batch(std::span(seqs).subspan(1, 1))};
  OptimizerOptions o;
  o.lr = 5e-3;
  o.weight_decay = 0.01;
  o.clip = 1.0;
  o.warmup = 2;
  o.schedule = LrSchedule::Linear;
  o.total_steps = 10;
  Trainer trainer(m.model, trainable, o);
  const at::Tensor losses = fx_.at("traj.losses"), lrs = fx_.at("traj.lrs"), norms = fx_.at("traj.grad_norms");
  double worst = 0;
  for (int64_t s = 0; s < 10; ++s) {
    const StepResult r = trainer.step(micro);
    EXPECT_NEAR(r.lr, lrs[s].item<double>(), 1e-9) << "learning rate of update " << s;
    EXPECT_NEAR(r.grad_norm, norms[s].item<double>(), 1e-5 * norms[s].item<double>()) << "gradient norm of update " << s;
    EXPECT_NEAR(r.loss, losses[s].item<double>(), 2e-5 * losses[s].item<double>()) << "loss of update " << s << kRegenerate;
    worst = std::max(worst, std::abs(r.loss - losses[s].item<double>()));
  }
  double worst_tensor = 0;
  for (const auto& [name, t] : trainable) {
    const double err = relative_error(t, fx_.at("traj.final." + fixture_name(name)));
    worst_tensor = std::max(worst_tensor, err);
    EXPECT_LT(err, 1e-4) << name << " after 10 updates";
  }
  std::printf("[ parity ] trajectory max |loss diff| %.2e, final tensors max relative error %.2e\n", worst, worst_tensor);
}

// The trained tensors, saved as a Sentinel adapter and applied (merged) by the C++ loader, give the
// logits peft gives after loading the same tensors by their names into the Hugging Face model.
TEST_F(TrainParity, AdapterAppliedMergedMatchesPeftLoadingTheSameNames) {
  LoadedModel trained = load_model(source_path("tests/data/tiny/hf"));
  Adapter adapter;
  adapter.sentinel_embeddings = fx_.at("traj.final.sentinel_embeddings");
  const std::string head = "traj.final.";
  for (const auto& [name, t] : fx_)
    if (name.rfind(head + "base_model.", 0) == 0) adapter.lora[name.substr(head.size())] = t;
  adapter.lora_rank = 4;
  adapter.lora_alpha = 8.0;
  const std::string path = "/tmp/sentinel-peft-parity-" + std::to_string(::getpid()) + ".safetensors";
  save_adapter(path, adapter, trained.model, trained.name);
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  apply_adapter(m.model, m.name, load_adapter(path));
  ::unlink(path.c_str());
  at::NoGradGuard no_grad;
  const at::Tensor ids = fx_.at("tokens").unsqueeze(0);
  const at::Tensor positions = at::arange(ids.size(1), at::kLong).unsqueeze(0);
  const at::Tensor logits = m.model->logits(m.model->forward({ids, positions, {}}).hidden[0]);
  const double err = relative_error(logits, fx_.at("peft.logits"));
  EXPECT_LT(err, 1e-5) << "merged adapter vs peft" << kRegenerate;
  std::printf("[ parity ] merged adapter logits vs peft: relative error %.2e\n", err);
}

}  // namespace
}  // namespace sentinel
