// Bucketed, overlapped gradient all-reduce (gradient_buckets.h).
#include "sentinel/distributed/gradient_buckets.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// Called by autograd's AccumulateGrad right after it has added this backward's gradient to .grad().
struct GradientReadyHook final : torch::autograd::PostAccumulateGradHook {
  GradientReadyHook(GradientBuckets* owner, size_t param) : owner_(owner), param_(param) {}
  void operator()(const torch::autograd::Variable& /*tensor*/) override { owner_->on_gradient_ready(param_); }
  GradientBuckets* owner_;
  size_t param_;
};

}  // namespace

GradientBuckets::GradientBuckets(ProcessGroup& group, std::vector<at::Tensor> params, const BucketOptions& options)
    : group_(group), params_(std::move(params)), bucket_of_(params_.size()), ready_(params_.size(), false) {
  check(!params_.empty(), "gradient buckets: nothing to synchronise");
  check(options.bucket_bytes > 0 && options.first_bucket_bytes > 0, "--bucket-mb must be > 0");
  // Reverse registration order, as DDP: the last layers' gradients are ready first.
  Bucket current;
  int64_t cap = options.first_bucket_bytes;
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    check(p.is_leaf() && p.requires_grad() && p.scalar_type() == at::kFloat,
          "gradient buckets: parameter ", k, " must be a float32 leaf that requires grad");
    current.params.push_back(k);
    current.n_elements += p.numel();
    if (current.n_elements * static_cast<int64_t>(sizeof(float)) >= cap) {
      buckets_.push_back(std::move(current));
      current = Bucket{};
      cap = options.bucket_bytes;
    }
  }
  if (!current.params.empty()) buckets_.push_back(std::move(current));
  for (size_t b = 0; b < buckets_.size(); ++b) {
    for (const size_t k : buckets_[b].params) bucket_of_[k] = b;
    buckets_[b].flat = at::empty({buckets_[b].n_elements}, params_[buckets_[b].params[0]].options().requires_grad(false));
  }
  for (size_t k = 0; k < params_.size(); ++k)
    torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<GradientReadyHook>(this, k));
}

GradientBuckets::~GradientBuckets() {
  for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void GradientBuckets::arm(const std::string& what) {
  check(!armed_, "gradient buckets armed twice without finish()");
  armed_ = true;
  in_backward_ = true;
  what_ = what;
  next_launch_ = 0;
  n_overlapped_ = 0;
  std::fill(ready_.begin(), ready_.end(), false);
  for (auto& b : buckets_) b.n_ready = 0;
}

void GradientBuckets::on_gradient_ready(size_t param) {
  if (!armed_ || !in_backward_ || ready_[param]) return;  // an accumulation micro-batch: keep it local
  ready_[param] = true;
  ++buckets_[bucket_of_[param]].n_ready;
  launch_ready_in_order();
}

void GradientBuckets::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].n_ready == buckets_[next_launch_].params.size()) {
    if (in_backward_) ++n_overlapped_;
    launch(next_launch_++);
  }
}

void GradientBuckets::launch(size_t b) {
  Bucket& bucket = buckets_[b];
  at::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const size_t k : bucket.params) {
    const at::Tensor& p = params_[k];
    at::Tensor slot = bucket.flat.narrow(0, offset, p.numel());
    if (p.grad().defined()) {
      slot.copy_(p.grad().reshape({-1}));
    } else {
      slot.zero_();
    }
    offset += p.numel();
  }
  std::vector<at::Tensor> tensors{bucket.flat};
  bucket.pending = group_.all_reduce_sum_async(
      tensors, "all-reduce of gradient bucket " + std::to_string(b) + " of " + std::to_string(buckets_.size()) + " (" +
                   what_ + ")");
}

void GradientBuckets::finish() {
  check(armed_, "gradient buckets: finish() without arm()");
  in_backward_ = false;
  armed_ = false;
  // Tensors that got no gradient on this rank (unused this update) are ready by definition now.
  for (size_t b = next_launch_; b < buckets_.size(); ++b) buckets_[b].n_ready = buckets_[b].params.size();
  launch_ready_in_order();
  at::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    bucket.pending.wait();
    int64_t offset = 0;
    for (const size_t k : bucket.params) {
      at::Tensor& p = params_[k];
      const at::Tensor sum = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      if (p.mutable_grad().defined()) {
        p.mutable_grad().copy_(sum);
      } else {
        p.mutable_grad() = sum.clone();
      }
      offset += p.numel();
    }
  }
}

}  // namespace sentinel
