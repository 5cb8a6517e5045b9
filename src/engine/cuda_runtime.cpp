// Loading libtorch's CUDA half at run time (cuda_runtime.h).
#include "sentinel/engine/cuda_runtime.h"

#include <ATen/Context.h>
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace sentinel {
namespace {

struct CudaState {
  bool loaded = false;
  std::string status = "not loaded";
};

// The folder of libtorch_cpu.so, where the wheel keeps libtorch_cuda.so.
std::string torch_library_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<const void*>(&at::globalContext), &info) == 0 || info.dli_fname == nullptr) return "";
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

CudaState load() {
  CudaState s;
  const char* choice = std::getenv("SENTINEL_CUDA");
  const std::string wanted = choice != nullptr ? choice : "";
  if (wanted == "0") {
    s.status = "not loaded: SENTINEL_CUDA=0";
    return s;
  }
  if (wanted != "1" && dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) == nullptr) {
    s.status = "not loaded: no NVIDIA driver on this machine (libcuda.so.1 not found); SENTINEL_CUDA=1 loads it anyway";
    return s;
  }
  const std::string folder = torch_library_folder();
  const std::string path = (std::filesystem::path(folder) / "libtorch_cuda.so").string();
  // RTLD_GLOBAL: its kernels and hooks register with libtorch_cpu's dispatcher as they would at link time.
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char* why = dlerror();
    s.status = std::string("not loaded: ") + (why != nullptr ? why : path + " failed to load");
    return s;
  }
  s.loaded = at::globalContext().hasCUDA();
  s.status = s.loaded ? "loaded (" + path + ")" : "loaded, but no CUDA device is visible";
  return s;
}

CudaState& state() {
  static std::once_flag once;
  static CudaState s;
  std::call_once(once, [] { s = load(); });
  return s;
}

}  // namespace

bool ensure_cuda_runtime() { return state().loaded; }

std::string cuda_runtime_status() { return state().status; }

}  // namespace sentinel
