// libFuzzer target: parse arbitrary bytes as GGUF, then use everything the parse returned (every
// metadata value through every accessor, every tensor dequantized) the way the model loader
// would. sentinel::Error is the expected outcome for bad input; any other exception or crash is a bug.
#include <cstddef>
#include <cstdint>

#include "sentinel/core/error.h"
#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"

namespace {

constexpr size_t kMaxTensorBytes = 4 << 20;  // larger tensors cost time without new coverage

// Each accessor either converts or throws Error; both are fine, anything else is not.
void walk(const sentinel::GgufValue& value) {
  auto attempt = [](auto&& f) {
    try {
      f();
    } catch (const sentinel::Error&) {
    }
  };
  attempt([&] { (void)value.as_int(); });
  attempt([&] { (void)value.as_uint(); });
  attempt([&] { (void)value.as_float(); });
  attempt([&] { (void)value.as_bool(); });
  attempt([&] { (void)value.as_string(); });
  attempt([&] { (void)value.as_string_array(); });
  attempt([&] { (void)value.as_int_array(); });
  attempt([&] { (void)value.as_float_array(); });
  (void)value.to_display();
  if (value.type() == sentinel::GgufValueType::ARRAY)
    for (const auto& element : value.as_array()) walk(element);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = sentinel::GgufFile::parse({data, size}, "fuzz.gguf");
    for (const auto& key : file.metadata_keys()) walk(file.get(key));
    for (const auto& tensor : file.tensors()) {
      if (&file.tensor(tensor.name) != &tensor) __builtin_trap();  // the index must agree with the list
      if (!sentinel::ggml_can_dequantize(tensor.type) || tensor.data.size() > kMaxTensorBytes) continue;
      const auto values = sentinel::dequantize(tensor);
      if (static_cast<int64_t>(values.size()) != tensor.n_elements()) __builtin_trap();
    }
  } catch (const sentinel::Error&) {
  }
  return 0;
}
