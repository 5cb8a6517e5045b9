// Model loading: detect the format, read config, weights and tokenizer, build the module.
#include "sentinel/engine/model_loader.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"
#include "sentinel/model/quantized_weights.h"
#include "sentinel/model/weights.h"

namespace sentinel {
namespace {

LoadedModel finish(LoadedModel loaded, const WeightMap& weights, const LoadOptions& options) {
  loaded.model = DecoderModel(loaded.config);
  loaded.model->load_weights(weights);
  loaded.model->to(options.device, options.dtype);
  loaded.model->eval();
  for (auto& p : loaded.model->parameters()) p.set_requires_grad(false);
  return loaded;
}

LoadedModel load_gguf(const std::string& path, const LoadOptions& options) {
  const GgufFile gguf = GgufFile::open(path);
  LoadedModel loaded;
  loaded.path = path;
  loaded.format = ModelFormat::Gguf;
  loaded.config = ModelConfig::from_gguf(gguf);
  const GgufValue* name = gguf.find("general.name");
  loaded.name = name != nullptr ? name->as_string() : std::filesystem::path(path).stem().string();
  std::map<std::string, int> counts;
  for (const auto& t : gguf.tensors()) counts[ggml_type_name(t.type)]++;
  for (const auto& [type, n] : counts) loaded.tensor_types += (loaded.tensor_types.empty() ? "" : ", ") + type + " x" + std::to_string(n);
  loaded.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(gguf));
  bool quantized = options.backend == Backend::Quantized;
  if (options.backend == Backend::Auto) {
    quantized = options.dtype == at::kFloat && options.device.is_cpu() &&
                !QuantizedWeights::unsupported_reason(gguf, loaded.config).has_value();
  }
  if (!quantized) return finish(std::move(loaded), load_gguf_weights(gguf, loaded.config), options);
  check(options.dtype == at::kFloat && options.device.is_cpu(), "--backend quantized computes in float32 on the CPU; ",
        "use --backend dense for ", dtype_name(options.dtype), " or another device");
  loaded.model = DecoderModel(loaded.config);
  loaded.model->use_quantized(QuantizedWeights::from_gguf(gguf, loaded.config));
  loaded.model->load_weights(load_gguf_weights(gguf, loaded.config, /*matrices=*/false));
  loaded.model->eval();
  for (auto& p : loaded.model->parameters()) p.set_requires_grad(false);
  return loaded;
}

LoadedModel load_hf_folder(const std::string& folder, const LoadOptions& options) {
  namespace fs = std::filesystem;
  check(options.backend != Backend::Quantized, "'", folder, "' is a Hugging Face folder: its weights are dense; ",
        "the quantized path reads GGUF files (use --backend auto or dense)");
  const fs::path config_path = fs::path(folder) / "config.json";
  check(fs::exists(config_path), "'", folder, "' is a folder without config.json; pass a .gguf file or a Hugging Face model folder");
  nlohmann::json config;
  try {
    std::ifstream(config_path) >> config;
  } catch (const std::exception& e) {
    fail("'", config_path.string(), "' is not valid JSON: ", e.what());
  }
  const fs::path tokenizer_path = fs::path(folder) / "tokenizer.json";
  check(fs::exists(tokenizer_path), "'", folder, "' has no tokenizer.json; Sentinel needs the fast-tokenizer file");
  LoadedModel loaded;
  loaded.path = folder;
  loaded.format = ModelFormat::HuggingFace;
  loaded.config = ModelConfig::from_hf_config(config, config_path.string());
  loaded.name = fs::path(folder).filename().string();
  loaded.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_json_file(tokenizer_path.string()));
  WeightMap weights = load_safetensors_weights(folder, loaded.config);
  loaded.tensor_types = "safetensors, " + std::to_string(weights.size()) + " tensors";
  if (loaded.config.tied_embeddings) weights.erase("lm_head.weight");
  return finish(std::move(loaded), weights, options);
}

}  // namespace

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  check(options.dtype == at::kFloat || options.dtype == at::kBFloat16, "unsupported compute dtype ",
        dtype_name(options.dtype), "; use float32 or bfloat16");
  check(fs::exists(path), "model path '", path, "' does not exist");
  if (fs::is_directory(path)) return load_hf_folder(path, options);
  return load_gguf(path, options);
}

Backend parse_backend(const std::string& name) {
  if (name == "auto") return Backend::Auto;
  if (name == "dense") return Backend::Dense;
  if (name == "quantized") return Backend::Quantized;
  fail("unknown backend '", name, "'; use auto, dense or quantized");
}

std::string backend_name(Backend backend) {
  switch (backend) {
    case Backend::Auto: return "auto";
    case Backend::Dense: return "dense";
    case Backend::Quantized: return "quantized";
  }
  return "?";
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "f32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  fail("unknown dtype '", name, "'; use float32 or bfloat16");
}

std::string dtype_name(at::ScalarType dtype) {
  if (dtype == at::kFloat) return "float32";
  if (dtype == at::kBFloat16) return "bfloat16";
  return c10::toString(dtype);
}

}  // namespace sentinel
