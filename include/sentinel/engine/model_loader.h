// Opens a model from a path (a .gguf file or a Hugging Face folder with config.json,
// *.safetensors and tokenizer.json) and returns the model, its tokenizer and a description.
// The one entry point the CLI, tests and benchmarks use to get a runnable model.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "sentinel/model/decoder.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

enum class ModelFormat { Gguf, HuggingFace };

// Which weights a model computes with. Quantized reads a GGUF's Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K/F16/BF16/F32
// matrices in place (float32 compute on the CPU, NativeDecoder); Dense holds float32 or bfloat16
// copies (training, CUDA, Hugging Face folders, parity with transformers). Auto picks Quantized
// wherever it can run and Dense elsewhere. A quantized model becomes dense by itself when a pass
// needs dense matrices (DecoderModelImpl::ensure_dense).
enum class Backend { Auto, Dense, Quantized };
Backend parse_backend(const std::string& name);  // "auto", "dense", "quantized"
std::string backend_name(Backend backend);

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;  // compute and weight dtype: kFloat or kBFloat16
  at::Device device = at::kCPU;
  Backend backend = Backend::Dense;   // the library's default keeps exact parity with transformers
};

struct LoadedModel {
  std::string path;
  ModelFormat format = ModelFormat::Gguf;
  std::string name;                 // general.name, or the folder name
  std::string tensor_types;         // e.g. "Q4_1 x210, F32 x61, Q8_0 x1"
  ModelConfig config;
  DecoderModel model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
};

// Throws Error naming the path when it is neither a GGUF file nor a Llama HF folder.
LoadedModel load_model(const std::string& path, const LoadOptions& options = {});

// "float32" / "bfloat16" <-> dtype; throws on anything else, naming the accepted values.
at::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(at::ScalarType dtype);

}  // namespace sentinel
