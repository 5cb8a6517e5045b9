// A data-parallel job's process group over c10d, PyTorch's distributed engine as libtorch carries
// it: the TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (hosted by rank 0, or by torchrun's agent)
// and a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA) backend. Every collective waits at most
// the options' timeout; a failure throws Error naming this rank, the collective and what it was
// for, so the job ends with a message instead of hanging. Not the gradient bucketing
// (gradient_buckets.h) nor which data each rank reads (train/trainer.h).
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <memory>
#include <string>
#include <vector>

#include "sentinel/distributed/launch.h"

namespace sentinel {

// An all-reduce in flight: wait() returns once its tensors hold the sum over ranks.
class PendingCollective {
 public:
  PendingCollective() = default;
  PendingCollective(c10::intrusive_ptr<c10d::Work> work, std::string what, std::string who, std::string peers,
                    std::chrono::milliseconds timeout);
  PendingCollective(PendingCollective&&) noexcept;
  PendingCollective& operator=(PendingCollective&&) noexcept;
  ~PendingCollective();
  void wait();  // throws Error naming the rank and the collective
  bool pending() const;

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string what_, who_, peers_;
  std::chrono::milliseconds timeout_{0};
};

class ProcessGroup {
 public:
  // Rendezvous with the other env.world - 1 processes and connect the backend. Every rank must
  // call it; throws Error (naming the store address and rank) when they do not all arrive within
  // the timeout, or the backend is not in this build.
  static std::unique_ptr<ProcessGroup> join(const LaunchEnv& env, const ProcessGroupOptions& options);
  ~ProcessGroup();

  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  bool is_root() const { return env_.rank == 0; }
  const LaunchEnv& env() const { return env_; }
  const char* backend_name() const { return dist_backend_name(options_.backend); }
  // "rank 1 of 2": how messages name this process.
  std::string who() const;
  // Who a failed collective points at: "Rank 0, the other process of the job," in a world of two.
  std::string peers() const;

  // In place: every tensor becomes its sum over ranks. `what` names the purpose in errors.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what);
  PendingCollective all_reduce_sum_async(std::vector<at::Tensor>& tensors, const std::string& what);
  // In place: every rank's `tensor` becomes root's.
  void broadcast(at::Tensor& tensor, int root, const std::string& what);
  void barrier(const std::string& what);
  // Rank 0 gets every rank's `mine`, in rank order; the others get an empty vector. Goes through
  // the store (results, RNG states: bytes, not tensors). `tag` must be unique per call site and use.
  std::vector<std::string> gather_to_root(const std::string& mine, const std::string& tag);

 private:
  ProcessGroup(LaunchEnv env, ProcessGroupOptions options);
  LaunchEnv env_;
  ProcessGroupOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
};

// The backends, each in its own file because each needs its library's headers: nullptr when the
// backend was not compiled in (gloo_backend.cpp, nccl_backend.cpp).
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                    std::chrono::milliseconds timeout);
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                    std::chrono::milliseconds timeout);

}  // namespace sentinel
