// CUDA support, loaded only where it can run. The torch wheel's libtorch is a CUDA build, and its
// CUDA half (libtorch_cuda with cuBLASLt, cuFFT, cuSPARSE, nvJitLink... behind it) costs about
// 200 MiB of resident memory and a slower start the moment it is loaded, GPU or not: cuBLASLt alone
// touches an 88 MB zero-initialised segment. Sentinel therefore links libtorch's CPU half alone and
// loads the CUDA half at start-up only on a machine with an NVIDIA driver (libcuda.so.1).
// SENTINEL_CUDA=0 skips it there too (a CPU-only run on a GPU machine); SENTINEL_CUDA=1 insists.
#pragma once

#include <string>

namespace sentinel {

// Loads libtorch_cuda (beside libtorch_cpu) when the machine has a GPU driver. Idempotent and
// thread-safe; returns whether CUDA tensors can now be made (at::globalContext().hasCUDA()).
bool ensure_cuda_runtime();

// One line for `sentinel info` and for errors: "loaded, 1 device" or "not loaded: ..." with the reason.
std::string cuda_runtime_status();

}  // namespace sentinel
