// The NCCL backend, from libsentinel_nccl.so (src/distributed/nccl/), loaded on first use with the
// CUDA half of libtorch it needs (engine/cuda_runtime.h).
#include <dlfcn.h>

#include <cstdlib>

#include "sentinel/core/error.h"
#include "sentinel/distributed/process_group.h"
#include "sentinel/engine/cuda_runtime.h"

namespace sentinel {

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                    std::chrono::milliseconds timeout) {
#ifdef SENTINEL_NCCL_MODULE
  check(ensure_cuda_runtime(), "the nccl backend needs CUDA, which is ", cuda_runtime_status(), "; use gloo");
  const char* override_path = std::getenv("SENTINEL_NCCL_MODULE");
  const std::string path = override_path != nullptr && *override_path != '\0' ? override_path : SENTINEL_NCCL_MODULE;
  void* module = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) {
    const char* why = dlerror();
    fail("cannot load the nccl backend ", path, ": ", why != nullptr ? why : "unknown error",
         " (SENTINEL_NCCL_MODULE names another copy of libsentinel_nccl.so)");
  }
  using Make = c10d::Backend* (*)(c10d::Store*, int, int, int64_t);
  auto make = reinterpret_cast<Make>(dlsym(module, "sentinel_make_nccl_backend"));
  check(make != nullptr, path, " has no sentinel_make_nccl_backend: it is not this build's NCCL module");
  return c10::intrusive_ptr<c10d::Backend>::reclaim(make(store.get(), rank, world, timeout.count()));
#else
  (void)store, (void)rank, (void)world, (void)timeout;
  return {};
#endif
}

}  // namespace sentinel
