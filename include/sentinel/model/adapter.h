// Adapter files: what fine-tuning adds to a base model, as one safetensors file. Version 1 holds
// the two sentinel embedding rows and metadata naming the base model it was trained on; LoRA
// weights join it under peft's tensor names. Loading an adapter onto another base model is
// refused, because sentinel rows only mean something next to the embeddings they were trained with.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "sentinel/model/llama.h"

namespace sentinel {

inline constexpr const char* kAdapterFormat = "sentinel-adapter";
inline constexpr const char* kSentinelEmbeddingsTensor = "sentinel_embeddings";  // [2, n_embd] F32: <CL>, <CR>

struct Adapter {
  at::Tensor sentinel_embeddings;              // [2, n_embd] float32
  std::map<std::string, std::string> metadata;  // safetensors "__metadata__"
  std::string path;
};

// Identity of a base model's weights, independent of the compute dtype: SHA-256 over the
// architecture sizes and a strided sample of token-embedding rows rounded to bfloat16. Cheap
// (a few hundred rows) and different for any two differently trained or quantized models.
std::string model_fingerprint(LlamaModel& model);

// Writes `adapter` for `base` (name recorded for messages), adding the base identity to the
// metadata. Atomic (see SafetensorsWriter::write).
void save_adapter(const std::string& path, const Adapter& adapter, LlamaModel& base, const std::string& base_name);

// Reads and validates an adapter file; throws Error naming the file on anything foreign.
Adapter load_adapter(const std::string& path);

// Checks the adapter belongs to `base` and installs its sentinel rows; throws Error naming both
// models otherwise.
void apply_adapter(LlamaModel& base, const std::string& base_name, const Adapter& adapter);

}  // namespace sentinel
