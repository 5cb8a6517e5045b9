// Hyper-parameters of a Llama-family decoder, read from GGUF metadata or a Hugging Face
// config.json and validated once. Everything downstream takes a validated LlamaConfig.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace sentinel {

class GgufFile;

struct LlamaConfig {
  int64_t n_vocab = 0;      // rows of the token embedding (base vocabulary, no sentinels)
  int64_t n_embd = 0;       // hidden size
  int64_t n_layer = 0;      // decoder blocks
  int64_t n_head = 0;       // query heads
  int64_t n_head_kv = 0;    // key/value heads (grouped-query attention when < n_head)
  int64_t head_dim = 0;     // per-head size; n_embd / n_head unless the file says otherwise
  int64_t n_ff = 0;         // SwiGLU inner size
  int64_t n_ctx_train = 0;  // context length the model was trained with (informational)
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tied_embeddings = false;  // lm_head shares the token embedding

  static LlamaConfig from_gguf(const GgufFile& gguf);
  static LlamaConfig from_hf_config(const nlohmann::json& config, const std::string& source);

  // Throws Error listing every inconsistent field at once.
  void validate() const;
  int64_t n_group() const { return n_head / n_head_kv; }  // query heads per KV head
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  std::string summary() const;
};

}  // namespace sentinel
