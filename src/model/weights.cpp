// Weight loading. GGUF stores [out, in] matrices with dims reversed (dims[0] = in) and, for
// llama, the rows of Q and K interleaved per head for ggml's rotary layout; both are undone
// here so the model sees exactly the tensors transformers would. A GGUF tensor that no parameter
// of the described model reads is refused: it would mean the file computes something else.
#include "sentinel/model/weights.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "sentinel/core/error.h"
#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"
#include "sentinel/io/safetensors.h"

namespace sentinel {
namespace {

// llama.cpp's convert script permutes Q/K rows per head: HF row (h, half, i) goes to GGUF row
// (h, i, half). This is its inverse: [n_head * hd, in] -> same shape, HF order.
at::Tensor unpermute_rotary_rows(const at::Tensor& w, int64_t n_head) {
  const int64_t rows = w.size(0), cols = w.size(1), hd = rows / n_head;
  return w.reshape({n_head, hd / 2, 2, cols}).transpose(1, 2).reshape({rows, cols}).contiguous();
}

}  // namespace

at::Tensor tensor_from_safetensors(const SafetensorsTensor& t) {
  at::ScalarType type;
  switch (t.dtype) {
    case DType::F32: type = at::kFloat; break;
    case DType::F16: type = at::kHalf; break;
    case DType::BF16: type = at::kBFloat16; break;
    case DType::F64: type = at::kDouble; break;
    default: fail("tensor '", t.name, "' has dtype ", dtype_name(t.dtype), "; model weights must be floating point");
  }
  std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
  // from_blob over the mapping, then a float32 copy that owns its memory.
  return at::from_blob(const_cast<uint8_t*>(t.data.data()), shape, at::TensorOptions().dtype(type)).to(at::kFloat).clone();
}

std::string gguf_tensor_name(const std::string& hf_name, const ModelConfig& config) {
  static const std::map<std::string, std::string> top = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string> per_layer = {
      {"self_attn.q_proj.weight", "attn_q.weight"},   {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},   {"self_attn.o_proj.weight", "attn_output.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},    {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},    {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},  // without sandwich norms: the MLP's input norm
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},       {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},       {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
  };
  if (auto it = top.find(hf_name); it != top.end()) return it->second;
  static const std::regex layer_re(R"(model\.layers\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(hf_name, m, layer_re)) {
    // With sandwich norms (Gemma 3) the name means the attention output's norm.
    if (config.sandwich_norms && m[2].str() == "post_attention_layernorm.weight")
      return "blk." + m[1].str() + ".post_attention_norm.weight";
    if (auto it = per_layer.find(m[2].str()); it != per_layer.end()) return "blk." + m[1].str() + "." + it->second;
  }
  return {};
}

std::vector<std::string> hf_parameter_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight", "model.norm.weight"};
  if (!config.tied_embeddings) names.push_back("lm_head.weight");
  std::vector<std::string> per_layer = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                        "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
                                        "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight"};
  if (config.attention_bias)
    per_layer.insert(per_layer.end(), {"self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"});
  if (config.qk_norm) per_layer.insert(per_layer.end(), {"self_attn.q_norm.weight", "self_attn.k_norm.weight"});
  if (config.sandwich_norms)
    per_layer.insert(per_layer.end(), {"pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight"});
  for (int64_t i = 0; i < config.n_layer; ++i)
    for (const std::string& suffix : per_layer) names.push_back("model.layers." + std::to_string(i) + "." + suffix);
  return names;
}

bool gguf_permutes_rotary_rows(Architecture architecture) {
  // convert_hf_to_gguf.py's LlamaModel permutes Q/K for ggml's interleaved ("normal") RoPE; the
  // Qwen models use ggml's NEOX RoPE, which is Hugging Face's rotate_half, and keep HF's rows.
  return architecture == Architecture::Llama;
}

WeightMap load_gguf_weights(const GgufFile& gguf, const ModelConfig& config, bool matrices) {
  const std::vector<std::string> names = hf_parameter_names(config);
  std::set<std::string> read = {"rope_freqs.weight"};  // read by ModelConfig::from_gguf
  for (const std::string& name : names) read.insert(gguf_tensor_name(name, config));
  for (const auto& t : gguf.tensors())
    check(read.count(t.name) > 0, "GGUF '", gguf.path(), "' has a tensor '", t.name, "' that a ",
          architecture_name(config.architecture), " model as Sentinel implements it does not use; refusing to run ",
          "the file without it");
  const bool permuted = gguf_permutes_rotary_rows(config.architecture);
  WeightMap weights;
  for (const std::string& name : names) {
    const bool dense_on_every_path = name.ends_with("norm.weight") || name.ends_with(".bias");
    if (!matrices && !dense_on_every_path) continue;
    const GgufTensorInfo& info = gguf.tensor(gguf_tensor_name(name, config));
    std::vector<int64_t> shape(info.dims.rbegin(), info.dims.rend());  // ggml dims are reversed
    at::Tensor t = at::empty(shape, at::kFloat);
    dequantize(info.type, info.data, std::span<float>(t.data_ptr<float>(), static_cast<size_t>(t.numel())));
    if (permuted && name.ends_with("q_proj.weight")) t = unpermute_rotary_rows(t, config.n_head);
    if (permuted && name.ends_with("k_proj.weight")) t = unpermute_rotary_rows(t, config.n_head_kv);
    weights.emplace(name, std::move(t));
  }
  return weights;
}

WeightMap load_safetensors_weights(const std::string& folder, const ModelConfig& config) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  const fs::path index_path = fs::path(folder) / "model.safetensors.index.json";
  if (fs::exists(index_path)) {
    std::ifstream in(index_path);
    nlohmann::json index;
    try {
      in >> index;
    } catch (const std::exception& e) {
      fail("'", index_path.string(), "' is not valid JSON: ", e.what());
    }
    std::set<std::string> shards;
    for (const auto& item : index.at("weight_map").items()) shards.insert(item.value().get<std::string>());
    for (const auto& shard : shards) files.push_back((fs::path(folder) / shard).string());
  } else {
    const fs::path single = fs::path(folder) / "model.safetensors";
    check(fs::exists(single), "'", folder, "' has neither model.safetensors nor model.safetensors.index.json");
    files.push_back(single.string());
  }
  WeightMap weights;
  for (const auto& file : files) {
    const SafetensorsFile st = SafetensorsFile::open(file);
    for (const auto& t : st.tensors()) weights[t.name] = tensor_from_safetensors(t);
  }
  // The engine holds norm weights as applied; Gemma's checkpoints store w for a norm of 1 + w
  // (added in float32, as Gemma3RMSNorm does; GGUF files hold the sum already).
  if (config.norm_weight_plus_one)
    for (auto& [name, t] : weights)
      if (name.ends_with("norm.weight")) t = t + 1.0;
  return weights;
}

}  // namespace sentinel
