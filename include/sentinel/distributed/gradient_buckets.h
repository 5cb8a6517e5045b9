// Data-parallel gradient averaging as torch's DistributedDataParallel does it: the trainable
// tensors are grouped into buckets (reverse registration order, the order backward produces their
// gradients; the first bucket small so communication starts early), and during the backward pass
// that ends an update each bucket is all-reduced as soon as its last gradient is accumulated, while
// autograd goes on with earlier layers. Buckets launch in index order on every rank (collectives
// must match), and finish() waits for them all and writes the sums back into .grad(). Earlier
// micro-batches of gradient accumulation communicate nothing (DDP's no_sync).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "sentinel/distributed/process_group.h"

namespace sentinel {

struct BucketOptions {
  int64_t bucket_bytes = 25 << 20;       // DDP's bucket_cap_mb = 25
  int64_t first_bucket_bytes = 1 << 20;  // DDP's first bucket: 1 MiB
};

class GradientBuckets {
 public:
  // `params` in registration order (Trainer's trainable tensors), each a float leaf; the group and
  // the tensors must outlive this object. Installs a post-accumulate-grad hook on each.
  GradientBuckets(ProcessGroup& group, std::vector<at::Tensor> params, const BucketOptions& options = {});
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // The next backward pass ends the update: all-reduce its gradients as they land. `what` names
  // the update in errors ("update 3").
  void arm(const std::string& what);
  // After that backward: launches the buckets still waiting (a tensor without a gradient counts as
  // zero, and gets the sum), waits for every bucket and writes the sums into .grad(). Disarms.
  void finish();

  int64_t n_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets that were sent while backward was still running, in the last finish()ed update.
  int64_t n_overlapped() const { return n_overlapped_; }

  void on_gradient_ready(size_t param);  // the hook's entry (public for it alone)

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t n_elements = 0;
    at::Tensor flat;             // [n_elements] f32: the gradients side by side while in flight
    size_t n_ready = 0;
    PendingCollective pending;
  };
  void launch(size_t bucket);
  void launch_ready_in_order();

  ProcessGroup& group_;
  std::vector<at::Tensor> params_;
  std::vector<size_t> bucket_of_;   // param index -> bucket
  std::vector<bool> ready_;         // per param, this update
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;          // buckets launch in order: 0 .. next_launch_ - 1 are sent
  bool armed_ = false;
  bool in_backward_ = false;
  int64_t n_overlapped_ = 0;
  std::string what_;
};

}  // namespace sentinel
