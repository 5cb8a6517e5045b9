// The blocks of a decoder as libtorch modules: projections (with optional bias and LoRA), RMSNorm,
// attention (grouped-query, optional Q/K norms, rotary), the SwiGLU MLP and the pre-norm layer that
// joins them. What each block holds comes from the ModelConfig (config.h), never from a family's name.
// Parameter names follow Hugging Face's state dicts ("self_attn.q_proj.weight"), so weights, LoRA
// adapters and fixtures line up with the reference by name.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "sentinel/model/config.h"

namespace sentinel {

class KvCache;
struct QuantizedMatrix;

// One sequence's rows [offset, offset + length) of the flattened tokens of a cached pass.
struct CachedSequence {
  int64_t offset = 0, length = 0;
  KvCache* cache = nullptr;
  at::Tensor mask;                       // [1, length, cache->size() + length] bool, or undefined (causal)
  // Sliding-window layers' mask over the keys they hold, cells from cache->window_begin():
  // `mask` (or causal) and within the window, [1, length, S - window_begin] bool; undefined when
  // the model has no sliding layers.
  at::Tensor sliding_mask;
  at::Tensor* attention_mass = nullptr;  // [S] f32 accumulator when requested (S = size + length)
  at::Tensor mass_queries;               // [length] bool, the queries the mass counts, or undefined (all)
};

// What every layer of one forward pass shares besides its input.
// Where attached LoRA acts: at every token (peft's LoRA), or at the sentinel tokens only (ids >=
// n_vocab, <CL> and <CR>). Then ordinary tokens compute exactly as the base model: what is learned
// is only how the <CR> rows summarise their spans into the cache, and the divergence of a
// compressed model from the base measures compression alone, not a fine-tuned language model.
enum class LoraPositions : uint8_t { All, Sentinels };
std::string lora_positions_name(LoraPositions positions);     // "all", "sentinels"
LoraPositions parse_lora_positions(const std::string& name);  // throws naming both

struct LayerContext {
  at::Tensor cos, sin;                   // [B, 1, T, head_dim] rotary tables of the new tokens
  at::Tensor cos_sliding, sin_sliding;   // the same for sliding-window layers (their own RoPE base)
  at::Tensor lora_rows;                  // [B, T, 1] 1 where LoRA acts, 0 elsewhere; undefined: every row
  at::Tensor mask;                       // uncached passes: as in ForwardInput
  at::Tensor sliding_mask;               // uncached passes: [B|1, T, T] bool, mask and within the window
  std::vector<CachedSequence> sequences;  // cached passes (B = 1, T = all sequences' tokens)
};

// A linear map holding "weight" [out, in] and, where the family has one, "bias" [out]; the
// embedding table is one too (its forward, used as the tied LM head, maps n_embd -> n_vocab). LoRA
// attaches here, as in peft's lora.Linear: y = x W^T + b + scaling * (dropout(x) A^T) B^T, dropout
// only while training.
class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in_features, int64_t out_features, bool with_bias = false);
  // x [..., in] -> [..., out]; lora_rows [..., 1] (LayerContext) gates the LoRA term per row.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lora_rows = {});
  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  // Registers trainable "lora_A" [rank, in] (kaiming-uniform, a = sqrt(5), like peft) and
  // "lora_B" [out, rank] (zeros, so the adapted map starts equal to the base one), in the
  // weight's dtype and device; scaling = alpha / rank. Throws if LoRA is already attached.
  void add_lora(int64_t rank, double alpha, double dropout);
  bool has_lora() const { return lora_A.defined(); }

  at::Tensor weight;          // [out, in]
  at::Tensor bias;            // [out], or undefined: bias-free
  at::Tensor lora_A;          // [rank, in] when LoRA is attached (undefined otherwise)
  at::Tensor lora_B;          // [out, rank]
  double lora_scaling = 0.0;  // alpha / rank
  double lora_dropout = 0.0;  // probability, applied to x before lora_A while is_training()
  bool lora_enabled = true;   // false: the base projection alone (the distillation teacher)
  // Quantized path: the stored matrix read in place while `weight` is empty (DecoderModelImpl::
  // use_quantized); LoRA then stays unmerged, a small low-rank term beside it.
  const QuantizedMatrix* quantized = nullptr;

 private:
  int64_t in_features_, out_features_;
};
TORCH_MODULE(Projection);

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);  // [..., dim] -> same
  at::Tensor weight;                        // [dim]
 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, int64_t layer);
  // x [B, T, n_embd] -> [B, T, n_embd]
  at::Tensor forward(const at::Tensor& x, const LayerContext& context);
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  // With config.qk_norm: RMSNorm over each head's head_dim values of Q and of K, before RoPE.
  RmsNorm q_norm{nullptr}, k_norm{nullptr};

 private:
  // q [B, n_head, T, hd], keys/values [B, n_head_kv, S, hd], mask [B|1, T, S] or undefined
  // (causal when T > 1: then S == T) -> [B, n_head, T, hd]. Adds the attention mass of the queries
  // mass_queries [T] bool selects (all if undefined) to *mass if given.
  at::Tensor attend(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                    at::Tensor* mass, const at::Tensor& mass_queries = {}) const;
  // Softmax attention probabilities summed over batch, heads and the selected queries: [S] f32.
  at::Tensor attention_mass(const at::Tensor& q, const at::Tensor& keys, const std::optional<at::Tensor>& mask,
                            bool causal, const at::Tensor& mass_queries) const;
  ModelConfig config_;
  int64_t layer_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lora_rows = {});  // [B, T, n_embd] -> same
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  Activation activation_;
};
TORCH_MODULE(Mlp);

// Pre-norm block: h = x + attn(norm(x)); out = h + mlp(norm(h)). With config.sandwich_norms
// (Gemma 3) each branch's output is normed too: h = x + norm(attn(norm(x))), and so on. The
// norms keep Hugging Face's names, whose meaning the family sets: without sandwich norms
// post_attention_layernorm is the MLP's input norm, with them the attention output's.
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, int64_t layer);
  at::Tensor forward(const at::Tensor& x, const LayerContext& context);  // [B, T, n_embd] -> same
  // The MLP's input norm and, with sandwich norms, its output norm (undefined otherwise).
  RmsNorm& mlp_input_norm() { return sandwich_ ? pre_feedforward_layernorm : post_attention_layernorm; }
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  RmsNorm pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};  // sandwich norms only
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};

 private:
  bool sandwich_;
};
TORCH_MODULE(DecoderLayer);

}  // namespace sentinel
