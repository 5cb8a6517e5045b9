// The update loop on the tiny model: the same seed gives the same run, an interrupted run resumed
// from its checkpoint continues exactly as the uninterrupted one, the schedules follow
// transformers', and the data order covers every block once per epoch.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <set>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/model/lora.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/setup.h"
#include "sentinel/train/trainer.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

std::string sample_text() {
  std::string text;
  for (int r = 0; r < 12; ++r) {
    for (int w = 0; w < 36; ++w) text += (w ? " " : "") + std::string(w % 3 ? "fox" : "dog") + std::to_string((r * 5 + w) % 13);
    text += "\n";
  }
  return text;
}

struct TrainRun {
  LoadedModel model;
  std::unique_ptr<TrainData> data;
  std::unique_ptr<Trainer> trainer;
  TrainLoopOptions loop;
};

TrainRun make_run(uint64_t seed, const std::string& checkpoint) {
  TrainRun run{load_model(source_path("tests/data/tiny/hf")), nullptr, nullptr, {}};
  SpanSamplerOptions spans;
  spans.ratio = 0.5;
  spans.max_length = 8;
  TrainDataOptions d;
  d.block = 48;
  const SentinelTokens st = sentinel_tokens(run.model.config);
  d.cl_id = st.cl;
  d.cr_id = st.cr;
  run.data = std::make_unique<TrainData>(build_corpus(*run.model.tokenizer, sample_text(), &spans, seed), d);
  // Dropout on, so that the RNG state is part of what resuming must restore.
  const ModelSetup setup{Method::Sentinel, TrainScope::Adapter, LoraOptions{4, 8.0, 0.1}, seed};
  auto trainable = prepare_for_training(run.model.model, setup);
  OptimizerOptions o;
  o.lr = 3e-3;
  o.warmup = 2;
  o.schedule = LrSchedule::Cosine;
  o.total_steps = 8;
  run.trainer = std::make_unique<Trainer>(run.model.model, trainable, o, seed);
  run.loop.batch = 2;
  run.loop.accum = 2;
  run.loop.steps = 8;
  run.loop.seed = seed;
  run.loop.checkpoint = checkpoint;
  run.loop.checkpoint_metadata = {{"seed", std::to_string(seed)}};
  return run;
}

std::vector<double> train(TrainRun& run, int64_t stop_after = -1) {
  std::vector<double> losses;
  std::atomic<bool> stop{false};
  TrainCallbacks callbacks;
  callbacks.on_step = [&](const StepResult& r) {
    losses.push_back(r.loss);
    if (r.step == stop_after) stop = true;  // as the SIGINT handler does
  };
  const TrainOutcome outcome = run_training(*run.trainer, *run.data, run.loop, callbacks, &stop);
  EXPECT_EQ(outcome, stop_after > 0 ? TrainOutcome::Stopped : TrainOutcome::Finished);
  return losses;
}

class TrainerRun : public ::testing::Test {
 protected:
  // One thread: on a busy machine, OpenMP barriers over the tiny model's small ops cost 50-100x
  // the work itself; determinism is checked at a fixed thread count either way.
  void SetUp() override {
    path_ = "/tmp/sentinel-ckpt-test-" + std::to_string(::getpid()) + ".safetensors";
    threads_ = at::get_num_threads();
    at::set_num_threads(1);
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    at::set_num_threads(threads_);
  }
  std::string path_;
  int threads_ = 1;
};

TEST_F(TrainerRun, SameSeedSameLossesOtherSeedOtherLosses) {
  TrainRun a = make_run(7, ""), b = make_run(7, ""), c = make_run(8, "");
  const auto la = train(a), lb = train(b), lc = train(c);
  ASSERT_EQ(la.size(), 8u);
  EXPECT_EQ(la, lb);
  EXPECT_NE(la, lc);
  EXPECT_LT(la.back(), la.front()) << "the loss did not fall";
}

TEST_F(TrainerRun, InterruptedAndResumedEqualsUninterrupted) {
  TrainRun whole = make_run(7, "");
  const auto expected = train(whole);

  TrainRun first = make_run(7, path_);
  auto losses = train(first, /*stop_after=*/3);
  ASSERT_EQ(losses.size(), 3u);
  TrainRun second = make_run(7, path_);
  const auto meta = second.trainer->load_checkpoint(path_);
  EXPECT_EQ(meta.at("step"), "3");
  EXPECT_EQ(second.trainer->steps_done(), 3);
  const auto rest = train(second);
  losses.insert(losses.end(), rest.begin(), rest.end());
  EXPECT_EQ(losses, expected);
  for (const auto& [name, t] : whole.trainer->optimizer().params()) {
    const auto& other = second.trainer->optimizer().params();
    const auto it = std::find_if(other.begin(), other.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, other.end());
    EXPECT_TRUE(at::equal(t, it->second)) << name << " differs after resuming";
  }
}

TEST_F(TrainerRun, Bfloat16AutocastFollowsFloat32AndKeepsFloat32State) {
  TrainRun f32 = make_run(7, ""), bf16 = make_run(7, "");
  bf16.trainer->compute_dtype = at::kBFloat16;
  f32.loop.steps = bf16.loop.steps = 3;
  const auto a = train(f32), b = train(bf16);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(b[i], a[i], 0.02 * a[i]) << "update " << i;
  EXPECT_NE(a, b);  // it really ran in bfloat16
  for (const auto& [name, t] : bf16.trainer->optimizer().params()) EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
}

// Distillation: the teacher is the base model reading the plain tokens. With LoRA at its zero
// start and no compression the student is the teacher, so KL is 0 and the loss is (1 - w) CE; once
// LoRA moves, KL is positive, and the teacher (LoRA off) still matches the base model.
TEST(TrainerDistillation, KlIsZeroForTheUncompressedBaseAndPositiveOnceLoraMoves) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  at::set_num_threads(1);
  const ModelSetup setup{Method::Sentinel, TrainScope::Adapter, LoraOptions{4, 8.0, 0.0}, 3};
  prepare_for_training(m.model, setup);
  m.model->eval();
  TrainDataOptions d;
  d.layout = TrainLayout::Stream;
  d.method = Method::Local;  // a fixed mask without sentinels; with ratio ~0 it removes nothing
  d.ratio_min = d.ratio_max = 1e-9;
  d.seq_len = 48;
  d.span_min = d.span_max = 4;
  const TrainData data(build_corpus(*m.tokenizer, sample_text(), nullptr, 0), d);
  const std::vector<int64_t> idx = {0, 2};
  const TrainBatch batch = data.batch(idx);
  ASSERT_TRUE(at::equal(batch.mask, at::ones_like(batch.mask).tril())) << "the student should be uncompressed";
  const LossTerms start = training_loss(m.model, batch, 0.7);
  EXPECT_NEAR(start.kl, 0.0, 1e-6);
  EXPECT_NEAR(start.loss.item<double>(), 0.3 * start.ce, 1e-5);
  EXPECT_NEAR(start.ce, lm_loss(m.model, batch).item<double>(), 1e-6);

  const at::Tensor before = m.model->forward(ForwardInput{batch.plain, at::arange(48).expand_as(batch.plain), {}}).hidden;
  {
    at::NoGradGuard no_grad;
    for (auto& [name, t] : lora_tensors(m.model))
      if (name.find("lora_B") != std::string::npos) t.normal_(0.0, 0.05);
  }
  const LossTerms moved = training_loss(m.model, batch, 1.0);
  EXPECT_GT(moved.kl, 1e-4);
  EXPECT_NEAR(moved.loss.item<double>(), moved.kl, 1e-5);
  {
    const LoraDisabled base(m.model);
    const at::Tensor off = m.model->forward(ForwardInput{batch.plain, at::arange(48).expand_as(batch.plain), {}}).hidden;
    EXPECT_LT((off - before).abs().max().item<double>(), 1e-6) << "LoraDisabled is not the base model";
  }
  const at::Tensor on = m.model->forward(ForwardInput{batch.plain, at::arange(48).expand_as(batch.plain), {}}).hidden;
  EXPECT_GT((on - before).abs().max().item<double>(), 1e-4) << "LoRA stayed off after the guard";
  EXPECT_THROW(training_loss(m.model, batch, 1.5), Error);
}

// A scaled parameter moves at lr * scale: Adam's first step is lr * sign(grad) for every entry.
TEST(TrainerOptimizer, PerParameterLearningRateScale) {
  at::Tensor a = at::zeros({3}).requires_grad_(true), b = at::zeros({3}).requires_grad_(true);
  OptimizerOptions o;
  AdamW adam({{"a", a}, {"b", b}}, o);
  adam.lr_scale["b"] = 10.0;
  a.mutable_grad() = at::ones({3});
  b.mutable_grad() = at::ones({3});
  adam.step(0.01);
  EXPECT_NEAR(a[0].item<double>(), -0.01, 1e-6);
  EXPECT_NEAR(b[0].item<double>(), -0.1, 1e-5);
}

TEST(TrainerSchedule, WarmupThenLinearOrCosineAsTransformers) {
  OptimizerOptions o;
  o.lr = 1.0;
  o.warmup = 2;
  o.total_steps = 10;
  EXPECT_DOUBLE_EQ(lr_at(o, 0), 0.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 1), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(o, 2), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(o, 6), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(o, 10), 0.0);
  o.schedule = LrSchedule::Cosine;
  EXPECT_NEAR(lr_at(o, 6), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(o, 4), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  o.schedule = LrSchedule::Constant;
  EXPECT_DOUBLE_EQ(lr_at(o, 9), 1.0);
}

TEST(TrainerSchedule, EachEpochReadsEveryBlockOnceInASeededOrder) {
  TrainLoopOptions o;
  o.batch = 2;
  o.accum = 3;
  o.steps = 100;
  o.seed = 4;
  const int64_t n_blocks = 20;  // 3 updates of 6 blocks per epoch; 2 blocks left out each epoch
  EXPECT_EQ(updates_per_epoch(n_blocks, o), 3);
  std::set<int64_t> seen;
  for (int64_t s = 0; s < 3; ++s)
    for (int64_t b : blocks_of_update(n_blocks, o, s)) EXPECT_TRUE(seen.insert(b).second) << "block " << b << " twice";
  EXPECT_EQ(seen.size(), 18u);
  EXPECT_NE(blocks_of_update(n_blocks, o, 0), blocks_of_update(n_blocks, o, 3));  // a new order next epoch
  EXPECT_EQ(blocks_of_update(n_blocks, o, 4), blocks_of_update(n_blocks, o, 4));
}

TEST(TrainerSchedule, RanksTogetherReadWhatOneProcessWithTheirWholeBatchReads) {
  const int64_t n_blocks = 50;
  TrainLoopOptions one;
  one.batch = 6;  // 3 ranks x batch 2
  one.accum = 2;
  one.steps = 10;
  one.seed = 9;
  for (int64_t step : {0, 1, 3}) {
    const std::vector<int64_t> whole = blocks_of_update(n_blocks, one, step);
    std::vector<std::vector<int64_t>> by_rank;
    for (int rank = 0; rank < 3; ++rank) {
      TrainLoopOptions r = one;
      r.batch = 2;
      r.rank = rank;
      r.world = 3;
      EXPECT_EQ(updates_per_epoch(n_blocks, r), updates_per_epoch(n_blocks, one));
      by_rank.push_back(blocks_of_update(n_blocks, r, step));
      ASSERT_EQ(by_rank.back().size(), 4u);
    }
    for (int64_t m = 0; m < 2; ++m) {  // micro-batch m of the ranks together = micro-batch m of one process
      std::multiset<int64_t> ranks, single(whole.begin() + m * 6, whole.begin() + (m + 1) * 6);
      for (const auto& blocks : by_rank) ranks.insert(blocks.begin() + m * 2, blocks.begin() + (m + 1) * 2);
      EXPECT_EQ(ranks, single) << "update " << step << " micro-batch " << m;
    }
  }
  TrainLoopOptions too_many = one;
  too_many.world = 5;  // 5 x 6 x 2 = 60 blocks per update > 50
  EXPECT_THROW(too_many.validate(n_blocks), Error);
}

}  // namespace
}  // namespace sentinel
