// LoRA on the Llama projections (Hu et al. 2021, as Hugging Face peft implements it), and which
// parameters fine-tuning trains. Tensors are named exactly as peft saves them
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), so an adapter trained here
// loads onto the Hugging Face model with peft. Not the adapter file format: see adapter.h.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/model/decoder.h"

namespace sentinel {

struct LoraOptions {
  int64_t rank = 16;     // r: inner dimension of A [r, in] and B [out, r]
  double alpha = 32.0;   // scaling = alpha / r
  double dropout = 0.05; // on the LoRA input, training only
  // Projection names to adapt (peft's target_modules): any of q_proj, k_proj, v_proj, o_proj,
  // gate_proj, up_proj, down_proj. Default: the attention projections (method.md section 5).
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  LoraPositions positions = LoraPositions::All;  // --lora-positions: every token, or <CL>/<CR> only
  void validate() const;  // throws naming the bad value and the accepted ones
};

// The projection names LoRA may target, attention first.
const std::vector<std::string>& lora_target_names();
// "q_proj,v_proj" -> {"q_proj", "v_proj"}; validated.
std::vector<std::string> parse_lora_targets(const std::string& comma_list);

// Attaches fresh LoRA (A kaiming-uniform, B zero) to every targeted projection of every layer,
// acting at options.positions.
void add_lora(DecoderModel& model, const LoraOptions& options);

// peft's name of one of our parameters: "layers.0.self_attn.q_proj.lora_A" ->
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".
std::string peft_name(const std::string& parameter_name);

// The attached LoRA parameters by peft name (live tensors, not copies), sorted by name.
std::map<std::string, at::Tensor> lora_tensors(DecoderModel& model);

// Copies `tensors` (peft names) into the attached LoRA parameters; every attached one must be
// given with its exact shape. Used to resume and by the parity tests.
void load_lora(DecoderModel& model, const std::map<std::string, at::Tensor>& tensors);

// While alive, every attached LoRA is switched off: the model computes as its base weights (the
// teacher of distillation, trainer.h). Restores the previous state on destruction.
class LoraDisabled {
 public:
  explicit LoraDisabled(DecoderModel& model);
  ~LoraDisabled();
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;

 private:
  std::vector<std::pair<ProjectionImpl*, bool>> saved_;  // owned by the model, which outlives the guard
};

// Folds LoRA weights given by peft name into the base projections: W += (alpha / r) * B A,
// computed in float32 and cast to W's dtype. Nothing is attached; inference costs nothing extra.
// On the quantized path (weights read in place), and for LoRA acting at the sentinels only
// (which no merged weight can express), the LoRA is attached unmerged instead.
void merge_lora(DecoderModel& model, const std::map<std::string, at::Tensor>& tensors, double alpha,
                LoraPositions positions = LoraPositions::All);

// What fine-tuning trains. Adapter: the attached LoRA tensors plus the sentinel embedding rows
// (when installed); everything else frozen. Full: every parameter, sentinel rows included.
enum class TrainScope { Adapter, Full };

// Sets requires_grad on every parameter for `scope` and returns the trainable ones by our
// parameter name, in a fixed order (the model's registration order).
std::vector<std::pair<std::string, at::Tensor>> set_trainable(DecoderModel& model, TrainScope scope);

}  // namespace sentinel
