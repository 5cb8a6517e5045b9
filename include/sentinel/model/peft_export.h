// An adapter as a peft folder: what `PeftModel.from_pretrained(hf_model, DIR)` loads with no code
// of ours (adapter_config.json + adapter_model.safetensors, LoRA under peft's tensor names), plus
// the two sentinel rows in sentinel_embeddings.safetensors and a README.md saying how to add them to
// the Hugging Face model (resize the embeddings to n_vocab + 2, write rows n_vocab and n_vocab + 1).
// Not the adapter file itself (adapter.h).
#pragma once

#include <string>

#include "sentinel/model/adapter.h"

namespace sentinel {

struct PeftExportOptions {
  // adapter_config.json's base_model_name_or_path: the Hugging Face id or folder of the base model
  // (peft records it; from_pretrained takes the model object, so it is informative).
  std::string base_model_name_or_path;
  double lora_dropout = 0.0;  // recorded for peft (it only matters if training continues in Python)
};

// Writes the folder `dir` (created if missing; files in it replaced). Throws Error when the adapter
// has no LoRA (a rows-only adapter: nothing for peft to load; the rows file is written anyway).
void export_peft(const Adapter& adapter, const std::string& dir, const PeftExportOptions& options);

}  // namespace sentinel
