// What a fine-tuning run changes in the base model, and what it hands back: sentinel rows for
// --method sentinel, LoRA on the target projections (or every weight with --full), everything
// else frozen; and the adapter file contents after training. Not the update loop (trainer.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "sentinel/model/adapter.h"
#include "sentinel/model/lora.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

struct ModelSetup {
  Method method = Method::Sentinel;  // sentinel: the two sentinel rows are installed and trained
  TrainScope scope = TrainScope::Adapter;
  LoraOptions lora;                  // used when scope == Adapter
  uint64_t seed = 0;                 // torch's generator: LoRA init, then dropout
};

// Seeds torch, installs initial sentinel rows (method.md section 2) when the method uses them,
// attaches LoRA (Adapter scope) and sets requires_grad. Returns the trainable tensors by name.
std::vector<std::pair<std::string, at::Tensor>> prepare_for_training(DecoderModel& model, const ModelSetup& setup);

// The adapter of a model prepared by prepare_for_training (Adapter scope): LoRA tensors by peft
// name, sentinel rows when installed, r and alpha; `metadata` is recorded as given.
Adapter trained_adapter(DecoderModel& model, const ModelSetup& setup, std::map<std::string, std::string> metadata);

}  // namespace sentinel
