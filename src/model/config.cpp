// ModelConfig parsing. GGUF keys are "<arch>.<name>" (llama.cpp naming); config.json keys are those
// of transformers' LlamaConfig, Qwen2Config and Qwen3Config. Both paths end in validate(). What
// a family adds to the plain Llama block is set here from the architecture; everything a file may
// say that would change the computation is either read or refused, never ignored.
#include "sentinel/model/config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"

namespace sentinel {
namespace {

constexpr const char* kSupported =
    "llama (Llama 2/3.x, Mistral, TinyLlama, SmolLM2), qwen2 (Qwen 2/2.5), qwen3 and gemma3 (text)";

// What a family changes in the Llama block: one place, read by both parsers. The sizes that go
// with it (sliding window, scales) are read per format below.
void set_family_traits(ModelConfig& c) {
  const bool gemma = c.architecture == Architecture::Gemma3;
  c.attention_bias = c.architecture == Architecture::Qwen2;
  c.qk_norm = c.architecture == Architecture::Qwen3 || gemma;
  c.activation = gemma ? Activation::GeluTanh : Activation::Silu;
  c.sandwich_norms = gemma;
  c.norm_weight_plus_one = gemma;
}

// Gemma's input scale, sqrt(hidden size), rounded to float32 as both references compute it.
double gemma_embedding_scale(int64_t n_embd) { return static_cast<float>(std::sqrt(static_cast<double>(n_embd))); }

// The "<arch>." GGUF keys this engine reads or knows to be informational. Any other key of the
// architecture (a sliding window, soft-capping, ALiBi, experts, ...) may change the computation,
// so a file carrying one is refused rather than run as if the key were absent.
const std::set<std::string>& known_gguf_keys() {
  static const std::set<std::string> keys = {
      "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
      "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
      "attention.key_length", "attention.value_length", "rope.freq_base", "rope.dimension_count",
      "rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length", "expert_count",
      "expert_used_count", "attention.sliding_window", "attention.sliding_window_pattern", "rope.freq_base_swa"};
  return keys;
}

Architecture architecture_from_gguf(const std::string& arch, const std::string& path) {
  if (arch == "llama") return Architecture::Llama;
  if (arch == "qwen2") return Architecture::Qwen2;
  if (arch == "qwen3") return Architecture::Qwen3;
  if (arch == "gemma3") return Architecture::Gemma3;
  fail("GGUF '", path, "' holds a '", arch, "' model; Sentinel runs ", kSupported, " (general.architecture)");
}

Architecture architecture_from_hf(const std::string& model_type, const std::string& source) {
  if (model_type == "llama" || model_type == "mistral") return Architecture::Llama;
  if (model_type == "qwen2") return Architecture::Qwen2;
  if (model_type == "qwen3") return Architecture::Qwen3;
  if (model_type == "gemma3_text") return Architecture::Gemma3;
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

// Which layers of a GGUF model slide: an array of booleans per layer, or llama.cpp's pattern n
// (every n-th layer global, the last of each group: layer i slides when i % n < n - 1), 6 when
// absent as llama.cpp assumes for Gemma 3.
std::vector<uint8_t> sliding_layers_from_gguf(const GgufFile& gguf, const std::string& key, int64_t n_layer) {
  std::vector<uint8_t> layers(static_cast<size_t>(std::max<int64_t>(n_layer, 0)), 0);
  const GgufValue* pattern = gguf.find(key);
  if (pattern != nullptr && pattern->type() == GgufValueType::ARRAY) {
    const std::vector<GgufValue>& flags = pattern->as_array();
    check(static_cast<int64_t>(flags.size()) == n_layer, "GGUF '", gguf.path(), "': ", key, " has ", flags.size(),
          " entries for ", n_layer, " layers");
    for (size_t i = 0; i < flags.size(); ++i) layers[i] = flags[i].as_bool() ? 1 : 0;
    return layers;
  }
  const int64_t n = pattern != nullptr ? pattern->as_int() : 6;
  for (int64_t i = 0; i < n_layer; ++i) layers[static_cast<size_t>(i)] = n == 0 || i % n < n - 1;
  return layers;
}

}  // namespace

std::string architecture_name(Architecture architecture) {
  switch (architecture) {
    case Architecture::Llama: return "llama";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::Qwen3: return "qwen3";
    case Architecture::Gemma3: return "gemma3";
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
  if (const GgufValue* window = gguf.find(key("attention.sliding_window")); window != nullptr && window->as_int() > 0) {
    check(c.architecture == Architecture::Gemma3, "GGUF '", gguf.path(), "' sets ", key("attention.sliding_window"),
          ", which Sentinel implements for gemma3 only");
    c.sliding_window = window->as_int();
    c.sliding_layers = sliding_layers_from_gguf(gguf, key("attention.sliding_window_pattern"), c.n_layer);
    if (const GgufValue* base = gguf.find(key("rope.freq_base_swa"))) c.rope_theta_sliding = base->as_float();
  }
  if (c.architecture == Architecture::Gemma3) {
    c.embedding_scale = gemma_embedding_scale(c.n_embd);
    // The file does not carry query_pre_attn_scalar; llama.cpp (src/models/gemma3.cpp) takes
    // head_dim, except for the 62-layer 27B model, whose scalar is n_embd / n_head.
    const double scalar = c.n_layer == 62 ? static_cast<double>(c.n_embd / c.n_head) : static_cast<double>(c.head_dim);
    c.attention_scale = 1.0 / std::sqrt(scalar);
  }
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
  const bool gemma = c.architecture == Architecture::Gemma3;
  c.tied_embeddings = j.value("tie_word_embeddings", gemma);  // Gemma3TextConfig ties by default

  // RoPE: transformers 5 writes rope_parameters (theta included; per layer type for Gemma 3),
  // earlier versions rope_theta and rope_scaling (and Gemma's rope_local_base_freq); a file may
  // carry both forms.
  c.rope_theta = j.value("rope_theta", gemma ? 1000000.0 : 10000.0);
  c.rope_theta_sliding = j.value("rope_local_base_freq", 10000.0);
  if (is_set("rope_parameters")) {
    const nlohmann::json& rope = j.at("rope_parameters");
    const bool per_layer_type = rope.contains("full_attention");
    const nlohmann::json& global = per_layer_type ? rope.at("full_attention") : rope;
    c.rope_theta = global.value("rope_theta", c.rope_theta);
    c.rope_scaling = rope_scaling_from_json(global, source);
    if (per_layer_type && rope.contains("sliding_attention")) {
      const nlohmann::json& local = rope.at("sliding_attention");
      c.rope_theta_sliding = local.value("rope_theta", c.rope_theta_sliding);
      check(rope_scaling_from_json(local, source).type == RopeScaling::Type::None, "'", source,
            "' scales the RoPE of sliding-window layers, which Sentinel does not implement");
    }
  }
  if (is_set("rope_scaling")) c.rope_scaling = rope_scaling_from_json(j.at("rope_scaling"), source);

  if (gemma) {
    c.embedding_scale = gemma_embedding_scale(c.n_embd);
    c.attention_scale = 1.0 / std::sqrt(j.value("query_pre_attn_scalar", 256.0));
    c.sliding_window = is_set("sliding_window") ? j.at("sliding_window").get<int64_t>() : 0;
    c.sliding_layers.assign(static_cast<size_t>(c.n_layer), 0);
    if (is_set("layer_types")) {
      const nlohmann::json& types = j.at("layer_types");
      check(types.is_array() && static_cast<int64_t>(types.size()) == c.n_layer, "'", source, "': layer_types must list ",
            c.n_layer, " layers");
      for (size_t i = 0; i < types.size(); ++i) {
        check(types[i] == "full_attention" || types[i] == "sliding_attention", "'", source, "' has a layer of type ",
              types[i].dump(), "; Sentinel implements full_attention and sliding_attention");
        c.sliding_layers[i] = types[i] == "sliding_attention";
      }
    } else {  // transformers' older sliding_window_pattern: every n-th layer global
      const int64_t n = j.value("sliding_window_pattern", int64_t{6});
      for (int64_t i = 0; i < c.n_layer; ++i) c.sliding_layers[static_cast<size_t>(i)] = n == 0 || (i + 1) % n != 0;
    }
    if (c.sliding_window <= 0) c.sliding_layers.clear();
    for (const char* cap : {"final_logit_softcapping", "attn_logit_softcapping"})
      check(!is_set(cap), "'", source, "' sets ", cap, ", which Sentinel does not implement");
  }

  // What would change the block and is not implemented: refused by name.
  const char* act_key = gemma ? "hidden_activation" : "hidden_act";
  const std::string act = j.value(act_key, std::string(gemma ? "gelu_pytorch_tanh" : "silu"));
  check(act == (gemma ? "gelu_pytorch_tanh" : "silu"), "'", source, "': ", act_key, " '", act,
        "' is not implemented for ", architecture_name(c.architecture), " (", gemma ? "gelu_pytorch_tanh" : "silu",
        " is)");
  check(!j.value("mlp_bias", false), "'", source, "' uses MLP biases, which Sentinel does not implement");
  // Llama and Qwen3 put attention_bias on all four projections (o_proj too); Qwen2 has fixed
  // Q/K/V biases and no such key.
  check(c.architecture == Architecture::Qwen2 || !j.value("attention_bias", false), "'", source,
        "' uses attention biases on all four projections, which Sentinel does not implement");
  check(!is_set("partial_rotary_factor") || j.at("partial_rotary_factor").get<double>() == 1.0, "'", source,
        "' rotates part of each head (partial_rotary_factor), which Sentinel does not implement");
  const bool qwen = c.architecture == Architecture::Qwen2 || c.architecture == Architecture::Qwen3;
  const bool sliding = qwen ? j.value("use_sliding_window", false) : is_set("sliding_window");
  check(gemma || !sliding, "'", source, "' uses sliding-window attention, which Sentinel implements for gemma3 only, ",
        "not for ", architecture_name(c.architecture), " models");
  if (!gemma && is_set("layer_types")) {
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
  if (!sliding_layers.empty() && static_cast<int64_t>(sliding_layers.size()) != n_layer)
    problems.push_back("sliding_layers must list n_layer layers");
  if (!sliding_layers.empty() && sliding_window <= 0) problems.push_back("sliding layers need sliding_window > 0");
  if (!(attention_scale >= 0)) problems.push_back("attention_scale must be >= 0");
  if (!(rope_theta_sliding > 0)) problems.push_back("rope_theta_sliding must be > 0");
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

bool ModelConfig::has_sliding_layers() const {
  return std::find(sliding_layers.begin(), sliding_layers.end(), uint8_t{1}) != sliding_layers.end();
}

KvShape ModelConfig::kv_shape() const {
  return KvShape{n_layer, n_head_kv, head_dim, has_sliding_layers() ? sliding_window : 0,
                 has_sliding_layers() ? sliding_layers : std::vector<uint8_t>{}};
}

double ModelConfig::query_scale() const {
  return attention_scale > 0 ? attention_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
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
  if (sandwich_norms) out << ", sandwich norms";
  if (activation == Activation::GeluTanh) out << ", GELU-tanh MLP";
  if (has_sliding_layers()) {
    out << ", sliding window " << sliding_window << " in "
        << std::count(sliding_layers.begin(), sliding_layers.end(), uint8_t{1}) << " of " << n_layer
        << " layers (rope_theta " << rope_theta_sliding << ")";
  }
  out << ", trained ctx " << n_ctx_train;
  return out.str();
}

}  // namespace sentinel
