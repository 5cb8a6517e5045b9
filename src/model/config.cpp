// ModelConfig parsing. GGUF keys are "<arch>.<name>" (llama.cpp naming); config.json keys are those
// of transformers' LlamaConfig, Qwen2Config and Qwen3Config. Both paths end in validate(). What
// a family adds to the plain Llama block is set here from the architecture; everything a file may
// say that would change the computation is either read or refused, never ignored.
#include "sentinel/model/config.h"

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"

namespace sentinel {
namespace {

constexpr const char* kSupported = "llama (Llama 2/3.x, Mistral, TinyLlama, SmolLM2), qwen2 (Qwen 2/2.5) and qwen3";

// What a family changes in the Llama block: one place, read by both parsers.
void set_family_traits(ModelConfig& c) {
  c.attention_bias = c.architecture == Architecture::Qwen2;
  c.qk_norm = c.architecture == Architecture::Qwen3;
}

// The "<arch>." GGUF keys this engine reads or knows to be informational. Any other key of the
// architecture (a sliding window, soft-capping, ALiBi, experts, ...) may change the computation,
// so a file carrying one is refused rather than run as if the key were absent.
const std::set<std::string>& known_gguf_keys() {
  static const std::set<std::string> keys = {
      "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
      "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
      "attention.key_length", "attention.value_length", "rope.freq_base", "rope.dimension_count",
      "rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length", "expert_count",
      "expert_used_count"};
  return keys;
}

Architecture architecture_from_gguf(const std::string& arch, const std::string& path) {
  if (arch == "llama") return Architecture::Llama;
  if (arch == "qwen2") return Architecture::Qwen2;
  if (arch == "qwen3") return Architecture::Qwen3;
  fail("GGUF '", path, "' holds a '", arch, "' model; Sentinel runs ", kSupported, " (general.architecture)");
}

Architecture architecture_from_hf(const std::string& model_type, const std::string& source) {
  if (model_type == "llama" || model_type == "mistral") return Architecture::Llama;
  if (model_type == "qwen2") return Architecture::Qwen2;
  if (model_type == "qwen3") return Architecture::Qwen3;
  fail("'", source, "' describes a '", model_type, "' model; Sentinel runs ", kSupported, " (model_type)");
}

// transformers' rope_scaling / rope_parameters object: {"rope_type" (or "type"): ..., "factor": ...}.
RopeScaling rope_scaling_from_json(const nlohmann::json& rope, const std::string& source) {
  RopeScaling s;
  const std::string type = rope.value("rope_type", rope.value("type", std::string("default")));
  auto number = [&](const char* name) {
    check(rope.contains(name) && rope.at(name).is_number(), "'", source, "': RoPE scaling '", type, "' needs a number \"",
          name, "\"");
    return rope.at(name).get<double>();
  };
  if (type == "default") return s;
  if (type == "linear") {
    s.type = RopeScaling::Type::Linear;
    s.factor = number("factor");
  } else if (type == "llama3") {
    s.type = RopeScaling::Type::Llama3;
    s.factor = number("factor");
    s.low_freq_factor = number("low_freq_factor");
    s.high_freq_factor = number("high_freq_factor");
    s.original_context = static_cast<int64_t>(number("original_max_position_embeddings"));
  } else {
    fail("'", source, "' uses RoPE scaling '", type, "', which Sentinel does not implement (supported: default, linear, ",
         "llama3)");
  }
  return s;
}

}  // namespace

std::string architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::Llama: return "llama";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::Qwen3: return "qwen3";
  }
  return "?";
}

std::string rope_scaling_name(RopeScaling::Type type) {
  switch (type) {
    case RopeScaling::Type::None: return "none";
    case RopeScaling::Type::Linear: return "linear";
    case RopeScaling::Type::Llama3: return "llama3";
    case RopeScaling::Type::Factors: return "factors";
  }
  return "?";
}

ModelConfig ModelConfig::from_gguf(const GgufFile& gguf) {
  const std::string arch = gguf.get("general.architecture").as_string();
  ModelConfig c;
  c.architecture = architecture_from_gguf(arch, gguf.path());
  set_family_traits(c);
  const std::string prefix = arch + ".";
  for (const auto& [key, value] : gguf.metadata()) {
    if (key.rfind(prefix, 0) != 0) continue;
    check(known_gguf_keys().count(key.substr(prefix.size())) > 0, "GGUF '", gguf.path(), "' sets '", key,
          "', which may change how the model computes and which Sentinel does not implement; refusing to run it ",
          "without it");
  }
  auto key = [&](const char* name) { return prefix + name; };
  auto optional_int = [&](const char* name, int64_t fallback) {
    const GgufValue* v = gguf.find(key(name));
    return v != nullptr ? v->as_int() : fallback;
  };
  c.n_layer = gguf.get(key("block_count")).as_int();
  c.n_embd = gguf.get(key("embedding_length")).as_int();
  c.n_ff = gguf.get(key("feed_forward_length")).as_int();
  c.n_head = gguf.get(key("attention.head_count")).as_int();
  c.n_head_kv = optional_int("attention.head_count_kv", c.n_head);
  c.n_ctx_train = optional_int("context_length", 0);
  c.rope_theta = gguf.find(key("rope.freq_base")) ? gguf.get(key("rope.freq_base")).as_float() : 10000.0;
  c.rms_norm_eps = gguf.get(key("attention.layer_norm_rms_epsilon")).as_float();
  c.head_dim = optional_int("attention.key_length", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  check(optional_int("attention.value_length", c.head_dim) == c.head_dim, "GGUF '", gguf.path(),
        "': attention.value_length differs from attention.key_length, which Sentinel does not implement");
  check(optional_int("rope.dimension_count", c.head_dim) == c.head_dim, "GGUF '", gguf.path(), "': rope.dimension_count ",
        optional_int("rope.dimension_count", c.head_dim), " != head size ", c.head_dim,
        "; partial rotary embeddings are not implemented");
  check(optional_int("expert_count", 0) == 0, "GGUF '", gguf.path(), "' is a mixture-of-experts model (",
        optional_int("expert_count", 0), " experts), which Sentinel does not run");

  const GgufValue* scaling = gguf.find(key("rope.scaling.type"));
  const std::string scaling_type = scaling != nullptr ? scaling->as_string() : "none";
  if (scaling_type == "linear") {
    c.rope_scaling.type = RopeScaling::Type::Linear;
    c.rope_scaling.factor = gguf.get(key("rope.scaling.factor")).as_float();
  } else {
    check(scaling_type == "none", "GGUF '", gguf.path(), "' uses RoPE scaling '", scaling_type,
          "', which Sentinel does not implement (supported: none, linear, and llama3's rope_freqs tensor)");
  }
  // Llama 3.x: llama.cpp's converter stores the llama3 scaling as one divisor per frequency.
  if (const GgufTensorInfo* freqs = gguf.find_tensor("rope_freqs.weight")) {
    check(c.rope_scaling.type == RopeScaling::Type::None, "GGUF '", gguf.path(),
          "' has both rope.scaling.type linear and a rope_freqs tensor, a combination Sentinel does not implement");
    check(freqs->type == GgmlType::F32 && freqs->dims.size() == 1 && freqs->dims[0] == c.head_dim / 2, "GGUF '",
          gguf.path(), "': rope_freqs.weight must be F32 [head_dim / 2 = ", c.head_dim / 2, "]");
    c.rope_scaling.type = RopeScaling::Type::Factors;
    const auto* values = reinterpret_cast<const float*>(freqs->data.data());
    c.rope_scaling.factors.assign(values, values + c.head_dim / 2);
  }
  const GgufTensorInfo& embd = gguf.tensor("token_embd.weight");
  c.n_vocab = embd.dims.size() == 2 ? embd.dims[1] : 0;
  c.tied_embeddings = gguf.find_tensor("output.weight") == nullptr;
  c.validate();
  return c;
}

ModelConfig ModelConfig::from_hf_config(const nlohmann::json& j, const std::string& source) {
  auto require = [&](const char* name) -> const nlohmann::json& {
    check(j.contains(name), "'", source, "' has no \"", name, "\"; is it a transformers config.json?");
    return j.at(name);
  };
  auto is_set = [&](const char* name) { return j.contains(name) && !j.at(name).is_null(); };
  ModelConfig c;
  c.architecture = architecture_from_hf(j.value("model_type", ""), source);
  set_family_traits(c);
  c.n_vocab = require("vocab_size").get<int64_t>();
  c.n_embd = require("hidden_size").get<int64_t>();
  c.n_layer = require("num_hidden_layers").get<int64_t>();
  c.n_head = require("num_attention_heads").get<int64_t>();
  c.n_head_kv = is_set("num_key_value_heads") ? j.at("num_key_value_heads").get<int64_t>() : c.n_head;
  c.n_ff = require("intermediate_size").get<int64_t>();
  c.head_dim = is_set("head_dim") ? j.at("head_dim").get<int64_t>() : (c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_ctx_train = j.value("max_position_embeddings", int64_t{0});
  c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
  c.tied_embeddings = j.value("tie_word_embeddings", false);

  // RoPE: transformers 5 writes rope_parameters (theta included), earlier versions rope_theta and
  // rope_scaling; a file may carry both forms.
  c.rope_theta = j.value("rope_theta", 10000.0);
  if (is_set("rope_parameters")) {
    c.rope_theta = j.at("rope_parameters").value("rope_theta", c.rope_theta);
    c.rope_scaling = rope_scaling_from_json(j.at("rope_parameters"), source);
  }
  if (is_set("rope_scaling")) c.rope_scaling = rope_scaling_from_json(j.at("rope_scaling"), source);

  // What would change the block and is not implemented: refused by name.
  check(j.value("hidden_act", std::string("silu")) == "silu", "'", source, "': hidden_act '", j.value("hidden_act", ""),
        "' is not implemented (the MLP is SwiGLU with silu)");
  check(!j.value("mlp_bias", false), "'", source, "' uses MLP biases, which Sentinel does not implement");
  // Llama and Qwen3 put attention_bias on all four projections (o_proj too); Qwen2 has fixed
  // Q/K/V biases and no such key.
  check(c.architecture == Architecture::Qwen2 || !j.value("attention_bias", false), "'", source,
        "' uses attention biases on all four projections, which Sentinel does not implement");
  check(!is_set("partial_rotary_factor") || j.at("partial_rotary_factor").get<double>() == 1.0, "'", source,
        "' rotates part of each head (partial_rotary_factor), which Sentinel does not implement");
  const bool qwen = c.architecture != Architecture::Llama;
  const bool sliding = qwen ? j.value("use_sliding_window", false) : is_set("sliding_window");
  check(!sliding, "'", source, "' uses sliding-window attention, which Sentinel does not implement for ",
        architecture_name(c.architecture), " models");
  if (is_set("layer_types")) {
    for (const auto& type : j.at("layer_types"))
      check(type == "full_attention", "'", source, "' has a layer of type ", type.dump(),
            "; Sentinel implements full_attention layers for ", architecture_name(c.architecture));
  }
  c.validate();
  return c;
}

void ModelConfig::validate() const {
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
  const RopeScaling& s = rope_scaling;
  if ((s.type == RopeScaling::Type::Linear || s.type == RopeScaling::Type::Llama3) && !(s.factor > 0))
    problems.push_back("RoPE scaling factor must be > 0");
  if (s.type == RopeScaling::Type::Llama3 && !(s.original_context > 0 && s.high_freq_factor > s.low_freq_factor))
    problems.push_back("llama3 RoPE scaling needs original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor");
  if (s.type == RopeScaling::Type::Factors) {
    if (static_cast<int64_t>(s.factors.size()) != head_dim / 2)
      problems.push_back("RoPE frequency factors must number head_dim / 2");
    for (float f : s.factors)
      if (!(f > 0)) {
        problems.push_back("RoPE frequency factors must be > 0");
        break;
      }
  }
  if (problems.empty()) return;
  std::string message = "invalid model config:";
  for (const auto& p : problems) message += " " + p + ";";
  fail(message);
}

std::string ModelConfig::summary() const {
  std::ostringstream out;
  out << architecture_name(architecture) << ": " << n_layer << " layers, n_embd " << n_embd << ", " << n_head
      << " heads (" << n_head_kv << " kv, head_dim " << head_dim << "), n_ff " << n_ff << ", vocab " << n_vocab
      << ", rope_theta " << rope_theta;
  if (rope_scaling.type != RopeScaling::Type::None) out << " (" << rope_scaling_name(rope_scaling.type) << " scaling)";
  out << ", rms_eps " << rms_norm_eps << ", " << (tied_embeddings ? "tied" : "untied") << " embeddings";
  if (attention_bias) out << ", Q/K/V biases";
  if (qk_norm) out << ", Q/K norms";
  out << ", trained ctx " << n_ctx_train;
  return out.str();
}

}  // namespace sentinel
