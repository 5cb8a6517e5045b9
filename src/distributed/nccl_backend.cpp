// ProcessGroupNCCL, libtorch's CUDA collectives (libtorch_cuda). Compiled in when the build finds
// NCCL's header (the nvidia-nccl wheel torch depends on ships it; CMakeLists.txt).
#include "sentinel/distributed/process_group.h"

#ifdef SENTINEL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace sentinel {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                    std::chrono::milliseconds timeout) {
#ifdef SENTINEL_WITH_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
#else
  (void)store, (void)rank, (void)world, (void)timeout;
  return {};
#endif
}

}  // namespace sentinel
