// Fine-tuning (docs/method.md section 5): the loss over ordinary tokens, AdamW exactly as
// torch.optim.AdamW computes it (its state kept as named tensors so checkpoints hold it), the
// Hugging Face learning-rate schedules, and the update loop with gradient accumulation, clipping,
// validation, atomic checkpoints and exact resume. Not the data layout (data.h) nor the CLI.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/distributed/gradient_buckets.h"
#include "sentinel/distributed/process_group.h"
#include "sentinel/model/decoder.h"
#include "sentinel/train/data.h"

namespace sentinel {

// The training objective over the batch's targets (labels != kIgnoreLabel), logits over the base
// vocabulary only: (1 - distill) * cross-entropy + distill * KL(teacher || student), each a mean
// per target. The teacher is the same model with its LoRA switched off reading the ordinary tokens
// alone (batch.plain) with full causal attention and no gradient: the uncompressed base model
// whose next-token distributions compression should keep. distill = 0: cross-entropy alone.
struct LossTerms {
  at::Tensor loss;       // float32 scalar with a graph back to the trainable tensors
  double ce = 0;         // the cross-entropy term's value
  double kl = 0;         // the KL term's value (0 when distill = 0)
};
LossTerms training_loss(DecoderModel& model, const TrainBatch& batch, double distill = 0.0);
// training_loss(model, batch, 0).loss: mean next-token cross-entropy.
at::Tensor lm_loss(DecoderModel& model, const TrainBatch& batch);

enum class LrSchedule { Constant, Linear, Cosine };
LrSchedule parse_lr_schedule(const std::string& name);  // "constant" | "linear" | "cosine"

struct OptimizerOptions {
  double lr = 5e-5;              // peak learning rate
  double weight_decay = 0.0;     // AdamW's decoupled decay
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double clip = 1.0;             // max global gradient norm; 0 = no clipping
  int64_t warmup = 0;            // updates of linear warm-up from 0
  LrSchedule schedule = LrSchedule::Linear;  // decay after warm-up, to 0 at total_steps
  int64_t total_steps = 1;
  void validate() const;
};

// The learning rate of update `step` (0-based), as transformers' get_{constant,linear,cosine}_
// schedule_with_warmup: lr * lambda(step).
double lr_at(const OptimizerOptions& options, int64_t step);

// torch.optim.AdamW (single-tensor path, amsgrad off), its moments by parameter name.
class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, const OptimizerOptions& options);
  // One update from the parameters' .grad() (a missing grad counts as zero); parameter p moves at
  // lr * lr_scale[p] (1 when absent): torch's parameter groups, one per scaled parameter.
  void step(double lr);
  std::map<std::string, double> lr_scale;
  void zero_grad();
  int64_t n_steps = 0;    // updates done (torch's state "step")
  std::map<std::string, at::Tensor> exp_avg, exp_avg_sq;  // same shape and dtype as each parameter
  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  OptimizerOptions options_;
};

// What one update did, over every rank of a data-parallel job.
struct StepResult {
  int64_t step = 0;        // updates done after this one
  double loss = 0;         // mean loss per target over the update's targets
  double ce = 0, kl = 0;   // its terms (LossTerms), same mean
  double lr = 0;           // learning rate used
  double grad_norm = 0;    // global gradient norm before clipping
  int64_t n_targets = 0;   // tokens that took loss
  int64_t n_elements = 0;  // elements read (sentinels included)
};

// One model, its trainable tensors and their optimiser.
class Trainer {
 public:
  // `seed` starts the trainer's own random stream (LoRA dropout): it is swapped into the device's
  // default generator for each update and out again, so a run does not depend on what else drew
  // random numbers in the process, and checkpoints carry it.
  Trainer(DecoderModel model, std::vector<std::pair<std::string, at::Tensor>> trainable, const OptimizerOptions& options,
          uint64_t seed = 0);
  // One update: forward and backward over each micro-batch, clip, AdamW at lr_at(step). Model in
  // training mode. The update's loss is the mean per target over all its targets (each micro-batch
  // mean weighted by its share of the targets, on every rank), so an update reads the same however
  // its blocks are split into micro-batches and processes.
  StepResult step(std::span<const TrainBatch> micro_batches);
  int64_t steps_done() const { return optimizer_.n_steps; }

  // Data parallelism: this trainer is one rank of `group` (which must outlive it). Broadcasts the
  // trainable tensors from rank 0 (every rank starts from the same weights), gives each rank its own
  // dropout stream, and from then on sums gradients over ranks in buckets overlapped with the
  // backward pass (gradient_buckets.h), so every rank takes the same AdamW step.
  void distribute(ProcessGroup& group, const BucketOptions& buckets = {});
  ProcessGroup* group() const { return group_; }
  // Whether any rank asks to stop (a collective under data parallelism; `local` otherwise).
  bool any_rank(bool local);
  double distill = 0.0;  // weight of the KL term of training_loss
  // kBFloat16: forward and backward under autocast (matmuls in bfloat16, weights, gradients and
  // AdamW state stay float32). kFloat: plain float32.
  at::ScalarType compute_dtype = at::kFloat;
  DecoderModel& model() { return model_; }
  AdamW& optimizer() { return optimizer_; }

  // Checkpoint: trainable tensors, AdamW moments and step, the trainer's RNG state (every rank's,
  // and the world size, under data parallelism: every rank calls it, rank 0 writes), and
  // `metadata` (the run's options, to refuse resuming a different run). Atomic.
  void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& metadata) const;
  // Restores everything save_checkpoint wrote (each rank its own RNG state); returns its metadata.
  // Throws naming the file and the mismatch when it does not fit this model's trainable tensors or
  // was written by a job of another world size.
  std::map<std::string, std::string> load_checkpoint(const std::string& path);

 private:
  DecoderModel model_;
  OptimizerOptions options_;
  AdamW optimizer_;
  uint64_t seed_ = 0;
  at::Tensor rng_state_;  // the trainer's generator state (format of the model device's generator)
  ProcessGroup* group_ = nullptr;             // data parallelism, when distribute() was called
  std::unique_ptr<GradientBuckets> buckets_;  // its gradient all-reduce
};

// The run around the Trainer: which blocks each update reads (an epoch is a seeded permutation
// of the blocks; update u of the run reads a fixed slice, so the data position is the step),
// when to validate and checkpoint, and stopping on request. Under data parallelism the slice is
// world x batch x accum blocks and rank r reads every world-th of each micro-batch's share, so the
// ranks together read exactly what one process with world x batch would.
struct TrainLoopOptions {
  int64_t batch = 1;          // blocks per micro-batch (one forward pass) of this process
  int rank = 0, world = 1;    // this process in the data-parallel job
  int64_t accum = 1;          // micro-batches per update
  int64_t steps = 0;          // updates in the whole run
  uint64_t seed = 0;          // block order
  int64_t val_every = 0;      // updates between validations (0 = never)
  int64_t save_every = 0;     // updates between checkpoints (0 = only at the end / on stop)
  std::string checkpoint;     // checkpoint file ("" = none)
  std::map<std::string, std::string> checkpoint_metadata;
  void validate(int64_t n_blocks) const;
};

// Updates per epoch: n_blocks / (world * batch * accum), at least 1 or the options are refused.
int64_t updates_per_epoch(int64_t n_blocks, const TrainLoopOptions& options);
// Block indices this rank reads in update `step` (0-based), micro-batch after micro-batch.
std::vector<int64_t> blocks_of_update(int64_t n_blocks, const TrainLoopOptions& options, int64_t step);

struct TrainCallbacks {
  std::function<void(const StepResult&)> on_step;
  std::function<void(int64_t step)> on_validate;      // called every val_every updates
  std::function<void(int64_t step, const std::string& path)> on_checkpoint;
};

enum class TrainOutcome { Finished, Stopped };

// Runs updates steps_done()+1 .. options.steps. Checks `stop` after each update (any rank's, under
// data parallelism, so all stop together); when set, writes a checkpoint (if a path is given) and
// returns Stopped. Checkpoints every save_every updates and at the end.
TrainOutcome run_training(Trainer& trainer, const TrainData& data, const TrainLoopOptions& options,
                          const TrainCallbacks& callbacks = {}, const std::atomic<bool>* stop = nullptr);

}  // namespace sentinel
