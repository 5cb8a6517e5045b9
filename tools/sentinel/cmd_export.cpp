// `sentinel export`: an adapter written by `sentinel train` (the shipped one included) as a folder
// that Hugging Face peft loads as it is (model/peft_export.h).
#include <cstdio>

#include "common.h"
#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/peft_export.h"

namespace sentinel::cli {
namespace {

struct ExportArgs {
  std::string adapter;
  std::string peft_dir;
  std::string peft_base;
  double lora_dropout = 0.0;
};

int run_export(const ExportArgs& a) {
  std::printf("%s\n", export_adapter(a.adapter, a.peft_dir, a.peft_base, a.lora_dropout).c_str());
  return 0;
}

}  // namespace

std::string export_adapter(const std::string& adapter_path, const std::string& dir, const std::string& base_name,
                           double lora_dropout) {
  const Adapter adapter = load_adapter(adapter_path);
  check(adapter.full_weights.empty(), adapter_path, " holds full weights (train --full), not an adapter: load it with ",
        "--adapter, there is no LoRA to export");
  const std::string base = !base_name.empty()                      ? base_name
                           : adapter.metadata.count("base_model") ? adapter.metadata.at("base_model")
                                                                  : "";
  export_peft(adapter, dir, PeftExportOptions{base, lora_dropout});
  char line[512];
  std::snprintf(line, sizeof line, "%s: adapter_config.json, adapter_model.safetensors (%zu LoRA tensors, r=%lld, alpha %g)%s",
                dir.c_str(), adapter.lora.size(), static_cast<long long>(adapter.lora_rank), adapter.lora_alpha,
                adapter.sentinel_embeddings.defined() ? ", sentinel_embeddings.safetensors, README.md" : "");
  return line;
}

Runner register_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "Write an adapter as a folder Hugging Face peft loads as it is");
  cmd->footer(
      "In Python: PeftModel.from_pretrained(hf_model, DIR). The sentinel rows are in DIR/sentinel_embeddings.safetensors;\n"
      "DIR/README.md shows how to add them (resize the embeddings to n_vocab + 2, write the two rows).");
  cmd->add_option("adapter", a->adapter, "Adapter file from `sentinel train`")->required()->check(CLI::ExistingFile);
  cmd->add_option("--peft-dir", a->peft_dir, "Folder to write (created when missing)")->required();
  cmd->add_option("--peft-base", a->peft_base,
                  "base_model_name_or_path for adapter_config.json, e.g. HuggingFaceTB/SmolLM2-135M-Instruct "
                  "(default: the base model's name recorded in the adapter)");
  cmd->add_option("--lora-dropout", a->lora_dropout, "lora_dropout recorded in adapter_config.json")
      ->capture_default_str();
  return [a] { return run_export(*a); };
}

}  // namespace sentinel::cli
