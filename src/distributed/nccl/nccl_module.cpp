// libsentinel_nccl.so: ProcessGroupNCCL (libtorch_cuda) behind one C entry point, built as its own
// module so that the sentinel binary does not link libtorch's CUDA half (engine/cuda_runtime.h).
// nccl_backend.cpp loads it when the nccl backend is asked for.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <chrono>

// `store` is borrowed (the caller keeps its reference); the returned backend carries one reference
// that the caller takes over (c10::intrusive_ptr::reclaim). Errors propagate as C++ exceptions:
// both sides are C++ built against the same libtorch.
extern "C" __attribute__((visibility("default"))) c10d::Backend* sentinel_make_nccl_backend(c10d::Store* store, int rank,
                                                                                            int world, int64_t timeout_ms) {
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = std::chrono::milliseconds(timeout_ms);
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::intrusive_ptr<c10d::Store>::reclaim_copy(store), rank,
                                                             world, options);
  return backend.release();
}
