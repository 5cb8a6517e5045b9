// Preparing a base model for fine-tuning and extracting the trained adapter.
#include "sentinel/train/setup.h"

#include "sentinel/core/error.h"
#include "sentinel/model/sentinels.h"

namespace sentinel {

std::vector<std::pair<std::string, at::Tensor>> prepare_for_training(DecoderModel& model, const ModelSetup& setup) {
  at::manual_seed(setup.seed);
  if (setup.method == Method::Sentinel && model->n_extra_tokens() == 0) install_sentinels(model);
  if (setup.scope == TrainScope::Adapter) add_lora(model, setup.lora);
  return set_trainable(model, setup.scope);
}

Adapter trained_adapter(DecoderModel& model, const ModelSetup& setup, std::map<std::string, std::string> metadata) {
  check(setup.scope == TrainScope::Adapter, "full fine-tuning changes every weight: it has no adapter file");
  Adapter adapter;
  if (setup.method == Method::Sentinel) adapter.sentinel_embeddings = model->extra_embeddings.detach().to(at::kFloat).clone();
  for (const auto& [name, tensor] : lora_tensors(model)) adapter.lora[name] = tensor.detach().to(at::kFloat).clone();
  adapter.lora_rank = setup.lora.rank;
  adapter.lora_alpha = setup.lora.alpha;
  adapter.lora_positions = setup.lora.positions;
  adapter.metadata = std::move(metadata);
  return adapter;
}

}  // namespace sentinel
