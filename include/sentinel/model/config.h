// The description of a decoder: its sizes and everything that distinguishes one family from
// another, as data read once from GGUF metadata or a Hugging Face config.json and validated once.
// The dense path (decoder.h), the native decode step (native_decoder.h), training, LoRA and the
// masked forward all read this one description; none of them branches on a family's name.
// Metadata that would change the computation but is not implemented here is refused when read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sentinel {

class GgufFile;
struct KvShape;  // cache/kv_cache.h

// The families Sentinel runs (docs/models.md). Llama covers Llama 2/3.x, Mistral, TinyLlama and
// SmolLM2, whose blocks differ only in sizes and RoPE scaling.
enum class Architecture : uint8_t { Llama, Qwen2, Qwen3, Gemma3 };
std::string architecture_name(Architecture architecture);  // "llama", "qwen2", "qwen3", "gemma3"

// The MLP's gate: down(act(gate(x)) * up(x)).
enum class Activation : uint8_t {
  Silu,      // SwiGLU (Llama, Qwen)
  GeluTanh,  // GeGLU with GELU's tanh approximation (Gemma: gelu_pytorch_tanh)
};

// How rotary frequencies are scaled for contexts beyond the trained one.
struct RopeScaling {
  enum class Type : uint8_t {
    None,
    Linear,   // every frequency divided by `factor` (transformers "linear", llama.cpp "linear")
    Llama3,   // transformers' "llama3": low frequencies divided by `factor`, a smooth ramp between
    Factors,  // llama.cpp's form of llama3: frequency i divided by factors[i] (the rope_freqs tensor)
  };
  Type type = Type::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;   // Llama3: wavelengths above original_context / low_freq_factor are scaled
  double high_freq_factor = 4.0;  // Llama3: wavelengths below original_context / high_freq_factor are not
  int64_t original_context = 0;   // Llama3: original_max_position_embeddings
  std::vector<float> factors;     // Factors: [head_dim / 2] divisors
};
std::string rope_scaling_name(RopeScaling::Type type);  // "none", "linear", "llama3", "factors"

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  int64_t n_vocab = 0;      // rows of the token embedding (base vocabulary, no sentinels)
  int64_t n_embd = 0;       // hidden size
  int64_t n_layer = 0;      // decoder blocks
  int64_t n_head = 0;       // query heads
  int64_t n_head_kv = 0;    // key/value heads (grouped-query attention when < n_head)
  int64_t head_dim = 0;     // per-head size; n_embd / n_head unless the file says otherwise
  int64_t n_ff = 0;         // SwiGLU inner size
  int64_t n_ctx_train = 0;  // context length the model was trained with (informational)
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  double rms_norm_eps = 1e-5;
  bool tied_embeddings = false;  // lm_head shares the token embedding
  bool attention_bias = false;   // Q, K and V projections add a bias (Qwen2)
  bool qk_norm = false;          // RMSNorm over each head of Q and of K before RoPE (Qwen3, Gemma 3)
  Activation activation = Activation::Silu;
  // Gemma 3's four norms per layer: the attention's and the MLP's outputs are normed too, before
  // their residual additions (HF: post_attention_layernorm is then the attention output's norm and
  // pre_feedforward_layernorm the MLP input's).
  bool sandwich_norms = false;
  // RMSNorm weights as Hugging Face stores them are w, applied as 1 + w (Gemma); the loaded model
  // holds 1 + w, as GGUF files store them.
  bool norm_weight_plus_one = false;
  double embedding_scale = 1.0;  // token embeddings are multiplied by it (Gemma: sqrt(n_embd))
  double attention_scale = 0.0;  // scale of q.k; 0 means 1 / sqrt(head_dim)
  // Sliding-window attention: a query of a sliding layer sees the keys whose positions are less
  // than sliding_window behind its own (HF: kv_idx > q_idx - sliding_window). Such layers rotate
  // with rope_theta_sliding and no scaling; the others with rope_theta and rope_scaling.
  int64_t sliding_window = 0;
  std::vector<uint8_t> sliding_layers;  // [n_layer] 1 = sliding; empty = none
  double rope_theta_sliding = 10000.0;

  static ModelConfig from_gguf(const GgufFile& gguf);
  static ModelConfig from_hf_config(const nlohmann::json& config, const std::string& source);

  // Throws Error listing every inconsistent field at once.
  void validate() const;
  int64_t n_group() const { return n_head / n_head_kv; }  // query heads per KV head
  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  bool is_sliding(int64_t layer) const {
    return !sliding_layers.empty() && sliding_layers[static_cast<size_t>(layer)] != 0;
  }
  bool has_sliding_layers() const;
  KvShape kv_shape() const;  // what a KV cache stores for this model
  double query_scale() const;  // attention_scale, or 1 / sqrt(head_dim)
  std::string summary() const;
};

}  // namespace sentinel
