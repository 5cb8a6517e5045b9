// Loss, AdamW, schedules, checkpoints and the update loop (docs/method.md section 5).
#include "sentinel/train/trainer.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/utils/clip_grad.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <random>

#include "sentinel/core/error.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/lora.h"

namespace sentinel {
namespace {

void add_tensor(SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  const DType dtype = t.scalar_type() == at::kFloat      ? DType::F32
                      : t.scalar_type() == at::kBFloat16 ? DType::BF16
                      : t.scalar_type() == at::kByte     ? DType::U8
                                                         : (fail("checkpoint: unsupported dtype ", t.scalar_type()), DType::F32);
  writer.add(name, dtype, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
             std::span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes()));
}

at::Tensor read_tensor(const SafetensorsFile& file, const std::string& name) {
  const SafetensorsTensor& t = file.tensor(name);
  const at::ScalarType type = t.dtype == DType::F32    ? at::kFloat
                              : t.dtype == DType::BF16 ? at::kBFloat16
                              : t.dtype == DType::U8   ? at::kByte
                                                       : (fail("checkpoint ", file.path(), ": tensor '", name,
                                                               "' has unsupported dtype ", dtype_name(t.dtype)),
                                                          at::kFloat);
  at::Tensor out = at::empty(std::vector<int64_t>(t.shape.begin(), t.shape.end()), type);
  std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
  return out;
}

}  // namespace

namespace {

// The uncompressed teacher's log-probabilities at every target of a stream batch:
// [B * (n - 1), n_vocab] float32, in the batch's target order (TrainBatch::plain).
at::Tensor teacher_log_probs(DecoderModel& model, const TrainBatch& batch) {
  check(batch.plain.defined(), "distillation needs blocks that hold the same number of ordinary tokens ",
        "(--layout stream); the paper's blocks layout has none");
  at::NoGradGuard no_grad;
  const LoraDisabled base(model);
  const auto device = model->embed_tokens->weight.device();
  const at::Tensor plain = batch.plain.to(device);  // [B, n]
  const int64_t n = plain.size(1);
  const at::Tensor positions = at::arange(n, plain.options()).expand_as(plain);
  const at::Tensor hidden = model->forward(ForwardInput{plain, positions, {}}).hidden;  // [B, n, n_embd]
  const at::Tensor targets = hidden.slice(1, 0, n - 1).reshape({-1, hidden.size(-1)});
  return at::log_softmax(model->logits(targets).to(at::kFloat), -1);
}

}  // namespace

LossTerms training_loss(DecoderModel& model, const TrainBatch& batch, double distill) {
  check(distill >= 0.0 && distill <= 1.0, "--distill must be in [0, 1], got ", distill);
  const auto device = model->embed_tokens->weight.device();
  ForwardInput input{batch.ids.to(device), batch.positions.to(device), batch.mask.to(device)};
  const at::Tensor hidden = model->forward(input).hidden;  // [B, N, n_embd]
  const at::Tensor labels = batch.labels.to(device).reshape({-1});
  const at::Tensor rows = labels.ne(kIgnoreLabel).nonzero().squeeze(1);  // [n_targets]
  if (rows.numel() == 0) return {hidden.sum().to(at::kFloat) * 0.0, 0, 0};  // nothing to predict: zero, with a graph
  // Logits at the target rows only: [n_targets, n_vocab] float32.
  const at::Tensor logits = model->logits(hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows));
  const at::Tensor ce = at::cross_entropy_loss(logits, labels.index_select(0, rows));
  if (distill == 0.0) return {ce, ce.item<double>(), 0};
  const at::Tensor teacher = teacher_log_probs(model, batch);  // [n_targets, n_vocab]
  check(teacher.size(0) == rows.numel(), "distillation: ", teacher.size(0), " teacher rows for ", rows.numel(),
        " targets (every ordinary token but a block's last must take a label)");
  const at::Tensor student = at::log_softmax(logits.to(at::kFloat), -1);
  const at::Tensor kl = (teacher.exp() * (teacher - student)).sum(-1).mean();  // KL(teacher || student)
  return {ce * (1.0 - distill) + kl * distill, ce.item<double>(), kl.item<double>()};
}

at::Tensor lm_loss(DecoderModel& model, const TrainBatch& batch) { return training_loss(model, batch, 0.0).loss; }

LrSchedule parse_lr_schedule(const std::string& name) {
  if (name == "constant") return LrSchedule::Constant;
  if (name == "linear") return LrSchedule::Linear;
  if (name == "cosine") return LrSchedule::Cosine;
  fail("unknown --schedule '", name, "'; use constant, linear or cosine");
}

void OptimizerOptions::validate() const {
  check(lr > 0, "--lr must be > 0, got ", lr);
  check(weight_decay >= 0, "--weight-decay must be >= 0, got ", weight_decay);
  check(clip >= 0, "--clip must be >= 0 (0 = off), got ", clip);
  check(warmup >= 0, "--warmup must be >= 0, got ", warmup);
  check(total_steps >= 1, "the run needs at least one update, got ", total_steps);
}

double lr_at(const OptimizerOptions& o, int64_t step) {
  const auto s = static_cast<double>(step), w = static_cast<double>(o.warmup), t = static_cast<double>(o.total_steps);
  if (step < o.warmup) return o.lr * s / std::max(1.0, w);
  if (o.schedule == LrSchedule::Constant) return o.lr;
  const double progress = (s - w) / std::max(1.0, t - w);
  if (o.schedule == LrSchedule::Linear) return o.lr * std::max(0.0, (t - s) / std::max(1.0, t - w));
  return o.lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, const OptimizerOptions& options)
    : params_(std::move(params)), options_(options) {
  check(!params_.empty(), "nothing to train: no parameter requires a gradient");
  for (const auto& [name, p] : params_) {
    exp_avg[name] = at::zeros_like(p).detach();
    exp_avg_sq[name] = at::zeros_like(p).detach();
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.mutable_grad().defined()) p.mutable_grad().zero_();
}

void AdamW::step(double lr) {
  at::NoGradGuard no_grad;
  ++n_steps;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(n_steps));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, static_cast<double>(n_steps)));
  for (auto& [name, p] : params_) {
    const auto scale = lr_scale.find(name);
    const double lr_p = scale == lr_scale.end() ? lr : lr * scale->second;
    const at::Tensor grad = p.grad().defined() ? p.grad() : at::zeros_like(p);
    at::Tensor& m = exp_avg.at(name);
    at::Tensor& v = exp_avg_sq.at(name);
    if (options_.weight_decay != 0) p.mul_(1.0 - lr_p * options_.weight_decay);
    m.lerp_(grad, 1.0 - b1);
    v.mul_(b2).addcmul_(grad, grad, 1.0 - b2);
    const at::Tensor denom = (v.sqrt() / bias2_sqrt).add_(options_.eps);
    p.addcdiv_(m, denom, -lr_p / bias1);
  }
}

namespace {

at::Generator device_generator(DecoderModel& model) {
  const at::Device device = model->embed_tokens->weight.device();
  return device.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(device);
}

// Runs `body` with the device's default generator in state `state`, then stores the advanced
// state back and restores the generator as it was.
template <typename Body>
void with_generator(at::Generator gen, at::Tensor& state, Body&& body) {
  const at::Tensor outside = gen.get_state();
  gen.set_state(state);
  try {
    body();
  } catch (...) {
    gen.set_state(outside);
    throw;
  }
  state = gen.get_state();
  gen.set_state(outside);
}

}  // namespace

Trainer::Trainer(DecoderModel model, std::vector<std::pair<std::string, at::Tensor>> trainable,
                 const OptimizerOptions& options, uint64_t seed)
    : model_(std::move(model)), options_(options), optimizer_(std::move(trainable), options), seed_(seed) {
  options_.validate();
  at::Generator gen = device_generator(model_);
  const at::Tensor outside = gen.get_state();
  gen.set_current_seed(seed);
  rng_state_ = gen.get_state();
  gen.set_state(outside);
}

void Trainer::distribute(ProcessGroup& group, const BucketOptions& buckets) {
  check(group_ == nullptr, "Trainer::distribute called twice");
  group_ = &group;
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : optimizer_.params()) params.push_back(p);
  {
    at::NoGradGuard no_grad;
    for (auto& p : params) {
      at::Tensor t = p.detach();
      group.broadcast(t, 0, "broadcasting the initial weights from rank 0");
    }
  }
  buckets_ = std::make_unique<GradientBuckets>(group, params, buckets);
  // Each rank draws its own dropout masks (rank 0 keeps the single-process stream).
  at::Generator gen = device_generator(model_);
  const at::Tensor outside = gen.get_state();
  gen.set_current_seed(seed_ + 1000003ull * static_cast<uint64_t>(group.rank()));
  rng_state_ = gen.get_state();
  gen.set_state(outside);
}

bool Trainer::any_rank(bool local) {
  if (group_ == nullptr) return local;
  std::vector<at::Tensor> flag{at::full({1}, local ? 1.0f : 0.0f)};
  group_->all_reduce_sum(flag, "agreeing on stopping after update " + std::to_string(optimizer_.n_steps));
  return flag[0].item<float>() > 0;
}

StepResult Trainer::step(std::span<const TrainBatch> micro_batches) {
  check(!micro_batches.empty(), "an update needs at least one micro-batch");
  model_->train();
  optimizer_.zero_grad();
  StepResult r;
  const std::string update = "update " + std::to_string(optimizer_.n_steps + 1);
  // Targets of the whole update, over every rank: each micro-batch's mean loss counts by its share.
  double n_update_targets = 0;
  for (const TrainBatch& b : micro_batches) n_update_targets += static_cast<double>(b.n_targets);
  if (group_ != nullptr) {
    std::vector<at::Tensor> count{at::full({1}, n_update_targets, at::kDouble)};
    group_->all_reduce_sum(count, "counting the targets of " + update);
    n_update_targets = count[0].item<double>();
  }
  const at::DeviceType device = model_->embed_tokens->weight.device().type();
  with_generator(device_generator(model_), rng_state_, [&] {
    for (size_t m = 0; m < micro_batches.size(); ++m) {
      const TrainBatch& b = micro_batches[m];
      const double weight = n_update_targets > 0 ? static_cast<double>(b.n_targets) / n_update_targets : 0.0;
      if (buckets_ != nullptr && m + 1 == micro_batches.size()) buckets_->arm(update);
      LossTerms loss;
      if (compute_dtype == at::kFloat) {
        loss = training_loss(model_, b, distill);
      } else {
        const bool was_enabled = at::autocast::is_autocast_enabled(device);
        const at::ScalarType was_dtype = at::autocast::get_autocast_dtype(device);
        at::autocast::set_autocast_dtype(device, compute_dtype);
        at::autocast::set_autocast_enabled(device, true);
        try {
          loss = training_loss(model_, b, distill);
        } catch (...) {
          at::autocast::set_autocast_enabled(device, was_enabled);
          at::autocast::set_autocast_dtype(device, was_dtype);
          throw;
        }
        at::autocast::set_autocast_enabled(device, was_enabled);
        at::autocast::set_autocast_dtype(device, was_dtype);
        at::autocast::clear_cache();
      }
      (loss.loss * weight).backward();
      r.loss += loss.loss.item<double>() * weight;
      r.ce += loss.ce * weight;
      r.kl += loss.kl * weight;
      r.n_targets += b.n_targets;
      r.n_elements += b.n_elements;
    }
  });
  if (group_ != nullptr) {
    buckets_->finish();  // .grad() now holds the sum over ranks of the weighted gradients
    std::vector<at::Tensor> stats{at::tensor({r.loss, r.ce, r.kl, static_cast<double>(r.n_targets),
                                              static_cast<double>(r.n_elements)}, at::kDouble)};
    group_->all_reduce_sum(stats, "summing the statistics of " + update);
    const auto v = stats[0].accessor<double, 1>();
    r.loss = v[0], r.ce = v[1], r.kl = v[2];
    r.n_targets = static_cast<int64_t>(v[3]), r.n_elements = static_cast<int64_t>(v[4]);
  }
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : optimizer_.params()) params.push_back(p);
  if (options_.clip > 0) {
    r.grad_norm = torch::nn::utils::clip_grad_norm_(params, options_.clip);
  } else {
    double sum = 0;
    for (const auto& p : params)
      if (p.grad().defined()) sum += std::pow(p.grad().norm().item<double>(), 2);
    r.grad_norm = std::sqrt(sum);
  }
  r.lr = lr_at(options_, optimizer_.n_steps);
  optimizer_.step(r.lr);
  r.step = optimizer_.n_steps;
  return r;
}

void Trainer::save_checkpoint(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  SafetensorsWriter writer;
  for (const auto& [name, p] : optimizer_.params()) {
    add_tensor(writer, "param." + name, p);
    add_tensor(writer, "exp_avg." + name, optimizer_.exp_avg.at(name));
    add_tensor(writer, "exp_avg_sq." + name, optimizer_.exp_avg_sq.at(name));
  }
  add_tensor(writer, "rng", rng_state_);
  if (group_ != nullptr) {
    // Every rank's dropout stream, so that a resumed job continues each one exactly.
    const at::Tensor mine = rng_state_.contiguous();
    const auto states = group_->gather_to_root(
        std::string(static_cast<const char*>(mine.data_ptr()), mine.nbytes()), "rng states at update " +
                                                                                  std::to_string(optimizer_.n_steps));
    if (!group_->is_root()) return;  // rank 0 writes the file
    for (int rank = 1; rank < group_->world(); ++rank) {
      const std::string& bytes = states[rank];
      check(bytes.size() == mine.nbytes(), "rank ", rank, " sent an RNG state of ", bytes.size(), " bytes, expected ",
            mine.nbytes());
      writer.add("rng.rank" + std::to_string(rank), DType::U8, {static_cast<int64_t>(bytes.size())},
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
  }
  writer.set_metadata("world_size", std::to_string(group_ != nullptr ? group_->world() : 1));
  for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
  writer.set_metadata("format", "sentinel-checkpoint");
  writer.set_metadata("step", std::to_string(optimizer_.n_steps));
  writer.write(path);
}

std::map<std::string, std::string> Trainer::load_checkpoint(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  auto meta = file.metadata();
  check(meta["format"] == "sentinel-checkpoint", "'", path, "' is not a sentinel training checkpoint");
  const int world = group_ != nullptr ? group_->world() : 1;
  const int saved_world = meta.count("world_size") ? std::stoi(meta["world_size"]) : 1;
  check(saved_world == world, "--resume: checkpoint ", path, " was written by a job of ", saved_world, " process",
        saved_world == 1 ? "" : "es", ", this one has ", world, ". Which blocks each rank reads and each rank's ",
        "dropout stream depend on the world size: relaunch with ",
        saved_world == 1 ? "a single process (no torchrun)" : "torchrun --nproc-per-node " + std::to_string(saved_world) +
                                                                 " (WORLD_SIZE=" + std::to_string(saved_world) + ")",
        ", or start afresh without --resume");
  at::NoGradGuard no_grad;
  for (auto& [name, p] : optimizer_.params()) {
    check(file.find("param." + name) != nullptr, "checkpoint ", path, " lacks trainable tensor '", name,
          "'; it was written by a run with other options (--lora-targets, --full, --method)");
    for (const auto& [prefix, target] : {std::pair<std::string, at::Tensor>{"param.", p},
                                         {"exp_avg.", optimizer_.exp_avg.at(name)},
                                         {"exp_avg_sq.", optimizer_.exp_avg_sq.at(name)}}) {
      const at::Tensor t = read_tensor(file, prefix + name);
      check(t.sizes() == target.sizes(), "checkpoint ", path, ": '", prefix, name, "' has shape ", t.sizes(),
            ", this run's is ", target.sizes(), " (another --lora-rank?)");
      at::Tensor(target).copy_(t);
    }
  }
  optimizer_.n_steps = std::stoll(meta["step"]);
  const int rank = group_ != nullptr ? group_->rank() : 0;
  rng_state_ = read_tensor(file, rank == 0 ? "rng" : "rng.rank" + std::to_string(rank));
  return meta;
}

void TrainLoopOptions::validate(int64_t n_blocks) const {
  check(batch >= 1, "--batch must be >= 1, got ", batch);
  check(accum >= 1, "--accum must be >= 1, got ", accum);
  check(world >= 1 && rank >= 0 && rank < world, "rank ", rank, " is outside a world of ", world);
  check(steps >= 1, "the run needs at least one update (--steps or --epochs), got ", steps);
  check(val_every >= 0 && save_every >= 0, "--val-every and --save-every must be >= 0");
  check(world * batch * accum <= n_blocks, "one update reads ", world > 1 ? std::to_string(world) + " processes x " : "",
        "--batch ", batch, " x --accum ", accum, " = ", world * batch * accum, " blocks, but the training data has only ",
        n_blocks, "; give more text or lower --batch/--accum/--block");
}

int64_t updates_per_epoch(int64_t n_blocks, const TrainLoopOptions& options) {
  options.validate(n_blocks);
  return n_blocks / (options.world * options.batch * options.accum);
}

std::vector<int64_t> blocks_of_update(int64_t n_blocks, const TrainLoopOptions& options, int64_t step) {
  const int64_t per_epoch = updates_per_epoch(n_blocks, options);
  const int64_t epoch = step / per_epoch, within = step % per_epoch;
  // Seeded Fisher-Yates per epoch, modulo draws: the same order on every platform and every resume.
  std::mt19937_64 rng(options.seed * 1000003ull + static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(n_blocks);
  for (int64_t i = 0; i < n_blocks; ++i) order[i] = i;
  for (int64_t i = n_blocks - 1; i > 0; --i) std::swap(order[i], order[rng() % static_cast<uint64_t>(i + 1)]);
  // The update's slice of the order; micro-batch m is its m-th run of world x batch blocks, of
  // which this rank takes every world-th (one process with world x batch reads them all).
  const int64_t per_micro = options.world * options.batch, per_update = per_micro * options.accum;
  std::vector<int64_t> mine;
  for (int64_t m = 0; m < options.accum; ++m)
    for (int64_t j = 0; j < options.batch; ++j)
      mine.push_back(order[within * per_update + m * per_micro + options.rank + j * options.world]);
  return mine;
}

TrainOutcome run_training(Trainer& trainer, const TrainData& data, const TrainLoopOptions& options,
                          const TrainCallbacks& callbacks, const std::atomic<bool>* stop) {
  options.validate(data.n_blocks());
  auto checkpoint = [&] {
    if (options.checkpoint.empty()) return;
    trainer.save_checkpoint(options.checkpoint, options.checkpoint_metadata);
    if (callbacks.on_checkpoint) callbacks.on_checkpoint(trainer.steps_done(), options.checkpoint);
  };
  while (trainer.steps_done() < options.steps) {
    const std::vector<int64_t> blocks = blocks_of_update(data.n_blocks(), options, trainer.steps_done());
    std::vector<TrainBatch> micro;
    for (int64_t m = 0; m < options.accum; ++m)
      micro.push_back(data.batch(std::span<const int64_t>(blocks).subspan(m * options.batch, options.batch)));
    const StepResult r = trainer.step(micro);
    if (callbacks.on_step) callbacks.on_step(r);
    if (options.val_every > 0 && r.step % options.val_every == 0 && callbacks.on_validate) callbacks.on_validate(r.step);
    const bool stopping = trainer.any_rank(stop != nullptr && stop->load());
    if (stopping || r.step == options.steps || (options.save_every > 0 && r.step % options.save_every == 0))
      checkpoint();
    if (stopping && r.step < options.steps) return TrainOutcome::Stopped;
  }
  return TrainOutcome::Finished;
}

}  // namespace sentinel
