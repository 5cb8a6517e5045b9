// `sentinel info`: what a model file holds: architecture, sizes, tensor types, tokenizer.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "common.h"
#include "sentinel/engine/cuda_runtime.h"
#include "sentinel/model/quantized_weights.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel::cli {
namespace {

struct InfoArgs {
  ModelArgs model;
  bool json = false;
};

// Bytes of the weights the model computes with: mapped matrices plus dense tensors.
int64_t resident_weight_bytes(const LoadedModel& loaded) {
  int64_t bytes = loaded.model->is_quantized() ? loaded.model->quantized_weights()->bytes() : 0;
  for (const auto& p : loaded.model->parameters()) bytes += p.numel() * static_cast<int64_t>(p.element_size());
  return bytes;
}

int run_info(const InfoArgs& args) {
  LoadedModel loaded = open_model(args.model, /*quiet=*/true);
  const ModelConfig& c = loaded.config;
  // Counted from the shapes: on the quantized path the matrices live in the file, not in tensors.
  int64_t n_params = 0;
  for (const auto& item : loaded.model->named_modules()) {
    if (const auto* p = dynamic_cast<const ProjectionImpl*>(item.value().get())) {
      if (item.key() != "lm_head" || !c.tied_embeddings) n_params += p->in_features() * p->out_features();
    }
  }
  for (const auto& item : loaded.model->named_parameters())
    if (!item.key().ends_with(".weight") || item.key().find("norm") != std::string::npos) n_params += item.value().numel();
  if (args.json) {
    nlohmann::json out = {{"path", loaded.path},
                          {"name", loaded.name},
                          {"format", loaded.format == ModelFormat::Gguf ? "gguf" : "huggingface"},
                          {"architecture", architecture_name(c.architecture)},
                          {"n_params", n_params},
                          {"n_vocab", c.n_vocab},
                          {"n_embd", c.n_embd},
                          {"n_layer", c.n_layer},
                          {"n_head", c.n_head},
                          {"n_head_kv", c.n_head_kv},
                          {"head_dim", c.head_dim},
                          {"n_ff", c.n_ff},
                          {"n_ctx_train", c.n_ctx_train},
                          {"rope_theta", c.rope_theta},
                          {"rope_scaling", rope_scaling_name(c.rope_scaling.type)},
                          {"attention_bias", c.attention_bias},
                          {"qk_norm", c.qk_norm},
                          {"rms_norm_eps", c.rms_norm_eps},
                          {"tied_embeddings", c.tied_embeddings},
                          {"tensor_types", loaded.tensor_types},
                          {"engine", engine_fields(loaded)},
                          {"resident_weight_bytes", resident_weight_bytes(loaded)},
                          {"tokenizer", loaded.tokenizer->summary()},
                          {"cuda", cuda_runtime_status()}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("path:        %s\n", loaded.path.c_str());
  std::printf("name:        %s\n", loaded.name.c_str());
  std::printf("format:      %s\n", loaded.format == ModelFormat::Gguf ? "GGUF" : "Hugging Face safetensors");
  std::printf("model:       %s\n", c.summary().c_str());
  std::printf("parameters:  %.1fM\n", n_params / 1e6);
  std::printf("tensors:     %s\n", loaded.tensor_types.c_str());
  std::printf("backend:     %s, KV %s\n", loaded.model->backend_description().c_str(),
              engine_fields(loaded)["kv_dtype"].get<std::string>().c_str());
  std::printf("weights:     %.1f MB %s\n", resident_weight_bytes(loaded) / 1e6,
              loaded.model->is_quantized() ? "read in place from the file's mapping" : "in memory");
  std::printf("tokenizer:   %s\n", loaded.tokenizer->summary().c_str());
  std::printf("cuda:        %s\n", cuda_runtime_status().c_str());
  std::printf("KV per token: %lld bytes (float32), %lld bytes (bfloat16)\n",
              static_cast<long long>(2 * c.n_layer * c.kv_dim() * 4), static_cast<long long>(2 * c.n_layer * c.kv_dim() * 2));
  return 0;
}

}  // namespace

Runner register_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model: architecture, sizes, tensor types, tokenizer");
  add_model_options(*cmd, args->model);
  cmd->add_flag("--json", args->json, "Print a JSON object");
  return [args] { return run_info(*args); };
}

}  // namespace sentinel::cli
