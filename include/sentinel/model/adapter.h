// Adapter files: what fine-tuning adds to a base model, as one safetensors file. Version 1 holds
// the two sentinel embedding rows and metadata naming the base model it was trained on; version 2
// adds LoRA weights under peft's tensor names (lora.h) with lora_rank, lora_alpha and
// lora_target_modules (and lora_positions: all or sentinels) in the metadata, and may omit the sentinel rows (baselines trained without
// sentinels). Loading an adapter onto another base model is refused, because sentinel rows and
// LoRA deltas only mean something next to the weights they were trained with.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "sentinel/model/decoder.h"
#include "sentinel/policies/span_layout.h"

namespace sentinel {

inline constexpr const char* kAdapterFormat = "sentinel-adapter";
// `sentinel train --full`: every weight of the fine-tuned model under its Hugging Face name, plus the
// sentinel rows; loads with --adapter like an adapter (it replaces the base weights it names).
inline constexpr const char* kFullWeightsFormat = "sentinel-full-weights";
inline constexpr const char* kSentinelEmbeddingsTensor = "sentinel_embeddings";  // [2, n_embd] F32: <CL>, <CR>

struct Adapter {
  at::Tensor sentinel_embeddings;              // [2, n_embd] float32; undefined when trained without sentinels
  std::map<std::string, std::string> metadata;  // safetensors "__metadata__"
  std::string path;
  std::map<std::string, at::Tensor> lora;       // peft name -> lora_A [r, in] / lora_B [out, r] float32
  int64_t lora_rank = 0;                        // r (0 when no LoRA)
  double lora_alpha = 0.0;                      // scaling = alpha / r
  LoraPositions lora_positions = LoraPositions::All;  // metadata lora_positions (absent: all)
  std::map<std::string, at::Tensor> full_weights;  // kFullWeightsFormat: HF name -> float32 weight
};

// Identity of a base model's weights, independent of the compute dtype: SHA-256 over the
// architecture sizes and a strided sample of token-embedding rows rounded to bfloat16. Cheap
// (a few hundred rows) and different for any two differently trained or quantized models.
std::string model_fingerprint(DecoderModel& model);

// Writes `adapter` for `base` (name recorded for messages), adding the base identity to the
// metadata. Atomic (see SafetensorsWriter::write).
void save_adapter(const std::string& path, const Adapter& adapter, DecoderModel& base, const std::string& base_name);

// Reads and validates an adapter file (or a --full fine-tune's weights); throws Error naming the
// file on anything foreign.
Adapter load_adapter(const std::string& path);

// Checks the adapter belongs to `base`, installs its sentinel rows and merges its LoRA into the
// base projections (W += alpha/r * B A in float32): merged, inference runs at the base model's
// speed and every code path (sessions, caches, policies) stays unchanged. Merging is done once
// per loaded model. Throws Error naming both models when the adapter belongs to another one.
// Full weights replace the base's (dense models only: the error says to pass --backend dense).
void apply_adapter(DecoderModel& base, const std::string& base_name, const Adapter& adapter);

// Whether `adapter` was trained on `base` (apply_adapter refuses it otherwise).
bool adapter_belongs_to(const Adapter& adapter, DecoderModel& base);

// The sentinel adapters trained for the default model and shipped in the source tree (adapters/,
// docs/training.md says how they were made), one per span layout it was trained on, which
// `--compress sentinel --layout L` uses when no --adapter is given; $SENTINEL_ADAPTER_DIR
// overrides the folder. "" when the file is absent.
inline constexpr const char* kBundledSentinelAdapter = "SmolLM2-135M-Instruct.sentinel.safetensors";
inline constexpr const char* kBundledHeavyAdapter = "SmolLM2-135M-Instruct.sentinel-heavy.safetensors";
const char* bundled_sentinel_adapter(SpanLayout layout);  // the file name: heavy's, or the stream one
std::string bundled_sentinel_adapter_path(SpanLayout layout = default_span_layout());

}  // namespace sentinel
