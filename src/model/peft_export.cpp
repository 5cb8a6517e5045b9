// The peft folder of an adapter (peft_export.h). peft's names are already ours (lora.h), so this
// writes the tensors as they are, under the config peft's LoraConfig reads.
#include "sentinel/model/peft_export.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/io/safetensors.h"

namespace sentinel {
namespace {

namespace fs = std::filesystem;

void add_f32(SafetensorsWriter& writer, const std::string& name, const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kCPU).to(at::kFloat).contiguous();
  writer.add(name, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
             std::span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes()));
}

std::vector<std::string> target_modules(const Adapter& adapter) {
  std::set<std::string> names;  // "...self_attn.q_proj.lora_A.weight" -> "q_proj"
  for (const auto& [name, t] : adapter.lora) {
    const size_t end = name.rfind(".lora_");
    const size_t start = name.rfind('.', end - 1);
    check(end != std::string::npos && start != std::string::npos, "adapter ", adapter.path, ": tensor '", name,
          "' is not named as peft names LoRA weights");
    names.insert(name.substr(start + 1, end - start - 1));
  }
  return {names.begin(), names.end()};
}

std::string readme(const Adapter& adapter, int64_t n_vocab) {
  std::ostringstream out;
  out << "# Sentinel adapter, as peft loads it\n\n"
      << "Exported from `" << adapter.path << "` (base model: "
      << (adapter.metadata.count("base_model") ? adapter.metadata.at("base_model") : std::string("unknown")) << ").\n"
      << "The LoRA loads with `PeftModel.from_pretrained`; the two sentinel tokens of the compression\n"
      << "(`<CL>` = id " << n_vocab << ", `<CR>` = id " << n_vocab + 1 << ") are new rows of the token embedding:\n\n"
      << "```python\n"
      << "import torch\n"
      << "from peft import PeftModel\n"
      << "from safetensors.torch import load_file\n"
      << "from transformers import AutoModelForCausalLM\n\n"
      << "model = AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32)\n"
      << "rows = load_file(\"DIR/sentinel_embeddings.safetensors\")[\"sentinel_embeddings\"]  # [2, n_embd]: <CL>, <CR>\n"
      << "n_vocab = model.get_input_embeddings().weight.shape[0]                          # " << n_vocab << "\n"
      << "model.resize_token_embeddings(n_vocab + 2)\n"
      << "with torch.no_grad():\n"
      << "    model.get_input_embeddings().weight[n_vocab:] = rows\n"
      << "model = PeftModel.from_pretrained(model, \"DIR\")\n"
      << "# logits[..., :n_vocab] are the base vocabulary's; the sentinels are inputs, never predicted\n"
      << "```\n";
  return out.str();
}

}  // namespace

void export_peft(const Adapter& adapter, const std::string& dir, const PeftExportOptions& options) {
  check(adapter.lora_positions == LoraPositions::All, "adapter ", adapter.path, " applies its LoRA at the sentinel ",
        "tokens only (lora_positions sentinels), which peft cannot express: a peft model would apply it at every token. ",
        "Train with --lora-positions all to export to peft");
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create the peft folder '", dir, "': ", ec.message());
  const int64_t n_vocab = adapter.metadata.count("n_vocab") ? std::stoll(adapter.metadata.at("n_vocab")) : -1;
  if (adapter.sentinel_embeddings.defined()) {
    SafetensorsWriter rows;
    add_f32(rows, kSentinelEmbeddingsTensor, adapter.sentinel_embeddings);
    rows.set_metadata("format", "pt");
    rows.set_metadata("cl_id", std::to_string(n_vocab));
    rows.set_metadata("cr_id", std::to_string(n_vocab + 1));
    rows.write((fs::path(dir) / "sentinel_embeddings.safetensors").string());
    std::ofstream((fs::path(dir) / "README.md").string()) << readme(adapter, n_vocab);
  }
  check(!adapter.lora.empty(), "adapter ", adapter.path, " has no LoRA weights, only sentinel rows: peft has nothing to ",
        "load (the rows are in ", dir, "/sentinel_embeddings.safetensors)");
  SafetensorsWriter weights;
  for (const auto& [name, t] : adapter.lora) add_f32(weights, name, t);
  weights.set_metadata("format", "pt");  // what peft's save_pretrained writes
  weights.write((fs::path(dir) / "adapter_model.safetensors").string());
  const nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", options.base_model_name_or_path},
      {"r", adapter.lora_rank},
      {"lora_alpha", adapter.lora_alpha},
      {"lora_dropout", options.lora_dropout},
      {"target_modules", target_modules(adapter)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"use_rslora", false},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"revision", nullptr}};
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  std::ofstream out(config_path);
  out << config.dump(2) << "\n";
  check(out.good(), "cannot write '", config_path, "'");
}

}  // namespace sentinel
