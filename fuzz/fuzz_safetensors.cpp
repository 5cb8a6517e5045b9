// libFuzzer target: parse arbitrary bytes as safetensors and touch every byte of every tensor the
// parse returned, so ASan checks the spans. sentinel::Error is the expected outcome for bad input;
// any other exception (nlohmann's included) or crash is a bug.
#include <cstddef>
#include <cstdint>

#include "sentinel/core/error.h"
#include "sentinel/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = sentinel::SafetensorsFile::parse({data, size}, "fuzz.safetensors");
    unsigned checksum = 0;
    for (const auto& tensor : file.tensors()) {
      if (&file.tensor(tensor.name) != &tensor) __builtin_trap();
      const auto expected = static_cast<uint64_t>(tensor.n_elements()) * sentinel::dtype_size(tensor.dtype);
      if (tensor.data.size() != expected) __builtin_trap();
      for (uint8_t byte : tensor.data) checksum += byte;
    }
    for (const auto& [key, value] : file.metadata()) checksum += static_cast<unsigned>(key.size() + value.size());
    volatile unsigned sink = checksum;
    (void)sink;
  } catch (const sentinel::Error&) {
  }
  return 0;
}
