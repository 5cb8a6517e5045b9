// LlamaConfig parsing: GGUF keys are "<arch>.<name>" (llama.cpp naming); config.json keys are
// those of transformers' LlamaConfig. Both paths end in validate().
#include "sentinel/model/config.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"

namespace sentinel {
namespace {

// Architectures whose tensors and math are plain Llama (RMSNorm, RoPE, GQA, SwiGLU).
bool is_llama_family(const std::string& arch) {
  return arch == "llama" || arch == "mistral" || arch == "smollm" || arch == "granite-llama";
}

}  // namespace

LlamaConfig LlamaConfig::from_gguf(const GgufFile& gguf) {
  const std::string arch = gguf.get("general.architecture").as_string();
  check(is_llama_family(arch), "GGUF '", gguf.path(), "' holds a '", arch,
        "' model; Sentinel runs Llama-family models (general.architecture = llama)");
  auto key = [&](const char* name) { return arch + "." + name; };
  LlamaConfig c;
  c.n_layer = gguf.get(key("block_count")).as_int();
  c.n_embd = gguf.get(key("embedding_length")).as_int();
  c.n_ff = gguf.get(key("feed_forward_length")).as_int();
  c.n_head = gguf.get(key("attention.head_count")).as_int();
  c.n_head_kv = gguf.find(key("attention.head_count_kv")) ? gguf.get(key("attention.head_count_kv")).as_int() : c.n_head;
  c.n_ctx_train = gguf.find(key("context_length")) ? gguf.get(key("context_length")).as_int() : 0;
  c.rope_theta = gguf.find(key("rope.freq_base")) ? gguf.get(key("rope.freq_base")).as_float() : 10000.0;
  c.rms_norm_eps = gguf.get(key("attention.layer_norm_rms_epsilon")).as_float();
  c.head_dim = gguf.find(key("attention.key_length")) ? gguf.get(key("attention.key_length")).as_int()
                                                         : (c.n_head > 0 ? c.n_embd / c.n_head : 0);
  if (const GgufValue* rope_dim = gguf.find(key("rope.dimension_count"))) {
    check(rope_dim->as_int() == c.head_dim, "GGUF '", gguf.path(), "': rope.dimension_count ", rope_dim->as_int(),
          " != head size ", c.head_dim, "; partial rotary embeddings are not supported");
  }
  if (const GgufValue* scaling = gguf.find(key("rope.scaling.type"))) {
    check(scaling->as_string() == "none", "GGUF '", gguf.path(), "' uses RoPE scaling '", scaling->as_string(),
          "', which Sentinel does not implement yet");
  }
  const GgufTensorInfo& embd = gguf.tensor("token_embd.weight");
  c.n_vocab = embd.dims.size() == 2 ? embd.dims[1] : 0;
  c.tied_embeddings = gguf.find_tensor("output.weight") == nullptr;
  c.validate();
  return c;
}

LlamaConfig LlamaConfig::from_hf_config(const nlohmann::json& j, const std::string& source) {
  auto require = [&](const char* name) -> const nlohmann::json& {
    check(j.contains(name), "'", source, "' has no \"", name, "\"; is it a Llama config.json?");
    return j.at(name);
  };
  const std::string model_type = j.value("model_type", "");
  check(model_type == "llama" || model_type == "mistral", "'", source, "' describes a '", model_type,
        "' model; Sentinel runs Llama-family models (model_type \"llama\")");
  LlamaConfig c;
  c.n_vocab = require("vocab_size").get<int64_t>();
  c.n_embd = require("hidden_size").get<int64_t>();
  c.n_layer = require("num_hidden_layers").get<int64_t>();
  c.n_head = require("num_attention_heads").get<int64_t>();
  c.n_head_kv = j.value("num_key_value_heads", c.n_head);
  c.n_ff = require("intermediate_size").get<int64_t>();
  c.head_dim = j.contains("head_dim") && !j.at("head_dim").is_null() ? j.at("head_dim").get<int64_t>()
                                                                      : (c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_ctx_train = j.value("max_position_embeddings", int64_t{0});
  c.rope_theta = j.value("rope_theta", 10000.0);
  if (j.contains("rope_parameters") && j.at("rope_parameters").is_object()) {
    const auto& rope = j.at("rope_parameters");
    c.rope_theta = rope.value("rope_theta", c.rope_theta);
    check(rope.value("rope_type", std::string("default")) == "default", "'", source,
          "' uses RoPE scaling, which Sentinel does not implement yet");
  }
  check(!j.contains("rope_scaling") || j.at("rope_scaling").is_null(), "'", source,
        "' uses RoPE scaling, which Sentinel does not implement yet");
  c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
  c.tied_embeddings = j.value("tie_word_embeddings", false);
  check(!j.value("attention_bias", false) && !j.value("mlp_bias", false), "'", source,
        "' uses attention or MLP biases, which Sentinel does not implement yet");
  c.validate();
  return c;
}

void LlamaConfig::validate() const {
  std::vector<std::string> problems;
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) problems.push_back(std::string(name) + " = " + std::to_string(v) + " must be > 0");
  };
  positive("n_vocab", n_vocab);
  positive("n_embd", n_embd);
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  positive("n_head_kv", n_head_kv);
  positive("head_dim", head_dim);
  positive("n_ff", n_ff);
  if (n_head > 0 && n_head_kv > 0 && n_head % n_head_kv != 0)
    problems.push_back("n_head " + std::to_string(n_head) + " is not a multiple of n_head_kv " + std::to_string(n_head_kv));
  if (head_dim % 2 != 0) problems.push_back("head_dim " + std::to_string(head_dim) + " must be even for RoPE");
  if (!(rope_theta > 0)) problems.push_back("rope_theta must be > 0");
  if (!(rms_norm_eps > 0)) problems.push_back("rms_norm_eps must be > 0");
  if (problems.empty()) return;
  std::string message = "invalid model config:";
  for (const auto& p : problems) message += " " + p + ";";
  fail(message);
}

std::string LlamaConfig::summary() const {
  std::ostringstream out;
  out << "llama: " << n_layer << " layers, n_embd " << n_embd << ", " << n_head << " heads (" << n_head_kv
      << " kv, head_dim " << head_dim << "), n_ff " << n_ff << ", vocab " << n_vocab << ", rope_theta " << rope_theta
      << ", rms_eps " << rms_norm_eps << ", " << (tied_embeddings ? "tied" : "untied") << " embeddings, trained ctx "
      << n_ctx_train;
  return out.str();
}

}  // namespace sentinel
