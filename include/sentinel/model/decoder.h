// The Llama decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) as libtorch modules.
// Parameter names follow Hugging Face's LlamaForCausalLM state dict ("model.layers.0.self_attn.
// q_proj.weight"), so weights, LoRA adapters and fixtures line up with the reference by name.
// Forward takes explicit position ids and an explicit visibility mask, so the compression
// layouts of docs/method.md sections 3-4 need no special code here.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <span>
#include <string>
#include <vector>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/model/config.h"

namespace sentinel {

class KvCache;
class NativeDecoder;
class QuantizedWeights;
struct QuantizedMatrix;

// An uncached pass over whole sequences (training, the masked forward of docs/method.md section 3,
// sliding-window perplexity).
struct ForwardInput {
  at::Tensor tokens;     // [B, T] int64; ids >= n_vocab select rows of extra_embeddings (sentinels)
  at::Tensor positions;  // [B, T] int64 rotary position ids
  // Optional [B or 1, T, T] bool, true = may attend. Undefined means causal.
  at::Tensor mask;
};

struct ForwardOutput {
  at::Tensor hidden;                  // [B, T, n_embd] after the final norm
  std::vector<at::Tensor> per_layer;  // if requested: embeddings, then each block's output [B, T, n_embd]
};

// One sequence of an incremental pass: its new tokens and the KV cache they extend. Several
// sequences go through one pass together (LlamaModelImpl::forward_cached): projections and MLPs
// see all their tokens at once, so the weights are read once per step for the whole batch, while
// attention runs per sequence over its own cache (compression makes their lengths differ).
struct CachedInput {
  at::Tensor tokens;     // [T] int64
  at::Tensor positions;  // [T] int64 rotary position ids
  // Optional [1, T, S] bool, true = may attend; S = cache->size() + T (new keys last). Undefined
  // means causal over the cache and the new tokens.
  at::Tensor mask;
  KvCache* cache = nullptr;  // required; the new K/V land after its cells, the caller commits them
  // Also return the attention mass each key received (H2O). Costs an explicit softmax per layer.
  bool want_attention_mass = false;
  // With want_attention_mass: optional [T] bool, the queries whose attention counts (true), so a
  // policy can leave out its sentinels' reading of their spans; undefined = every query.
  at::Tensor mass_queries;
};

struct CachedOutput {
  at::Tensor hidden;          // [T, n_embd] after the final norm
  at::Tensor attention_mass;  // if requested: [S] f32, summed over layers, heads and queries
};

// One sequence's rows [offset, offset + length) of the flattened tokens of a cached pass.
struct CachedSequence {
  int64_t offset = 0, length = 0;
  KvCache* cache = nullptr;
  at::Tensor mask;                       // [1, length, cache->size() + length] bool, or undefined (causal)
  at::Tensor* attention_mass = nullptr;  // [S] f32 accumulator when requested
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
  at::Tensor lora_rows;                  // [B, T, 1] 1 where LoRA acts, 0 elsewhere; undefined: every row
  at::Tensor mask;                       // uncached passes: as in ForwardInput
  std::vector<CachedSequence> sequences;  // cached passes (B = 1, T = all sequences' tokens)
};

// A bias-free linear map holding "weight" [out, in]; the embedding table is one too (its
// forward, used as the tied LM head, maps n_embd -> n_vocab). LoRA attaches here, as in peft's
// lora.Linear: y = x W^T + scaling * (dropout(x) A^T) B^T, dropout only while training.
class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in_features, int64_t out_features);
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
  at::Tensor lora_A;          // [rank, in] when LoRA is attached (undefined otherwise)
  at::Tensor lora_B;          // [out, rank]
  double lora_scaling = 0.0;  // alpha / rank
  double lora_dropout = 0.0;  // probability, applied to x before lora_A while is_training()
  bool lora_enabled = true;   // false: the base projection alone (the distillation teacher)
  // Quantized path: the stored matrix read in place while `weight` is empty (LlamaModelImpl::
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
  AttentionImpl(const LlamaConfig& config, int64_t layer);
  // x [B, T, n_embd] -> [B, T, n_embd]
  at::Tensor forward(const at::Tensor& x, const LayerContext& context);
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  // q [B, n_head, T, hd], keys/values [B, n_head_kv, S, hd], mask [B|1, T, S] or undefined
  // (causal when T > 1: then S == T) -> [B, n_head, T, hd]. Adds the attention mass of the queries
  // mass_queries [T] bool selects (all if undefined) to *mass if given.
  at::Tensor attend(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values, const at::Tensor& mask,
                    at::Tensor* mass, const at::Tensor& mass_queries = {}) const;
  // Softmax attention probabilities summed over batch, heads and the selected queries: [S] f32.
  at::Tensor attention_mass(const at::Tensor& q, const at::Tensor& keys, const std::optional<at::Tensor>& mask,
                            bool causal, const at::Tensor& mass_queries) const;
  LlamaConfig config_;
  int64_t layer_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const LlamaConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& lora_rows = {});  // [B, T, n_embd] -> same
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const LlamaConfig& config, int64_t layer);
  at::Tensor forward(const at::Tensor& x, const LayerContext& context);  // [B, T, n_embd] -> same
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const LlamaConfig& config);

  // Runs the decoder over whole sequences, without a cache.
  ForwardOutput forward(const ForwardInput& input, bool keep_per_layer = false);

  // Runs the decoder incrementally over one or more sequences, each extending its own KV cache
  // (distinct caches). Every sequence's K/V are written after its cached cells and its tokens
  // attend to those cells plus themselves; the caller commits cell metadata via KvCache::commit.
  std::vector<CachedOutput> forward_cached(std::span<const CachedInput> sequences);

  // hidden [..., n_embd] -> logits [..., n_vocab] float32 (base vocabulary only: sentinels are
  // never predicted, docs/method.md section 2).
  at::Tensor logits(const at::Tensor& hidden);

  // Copies weights in by Hugging Face name; every parameter must be given with its exact shape.
  void load_weights(const std::map<std::string, at::Tensor>& weights);
  // Hugging Face's name for one of our parameters: "layers.0.mlp.up_proj.weight" ->
  // "model.layers.0.mlp.up_proj.weight"; "lm_head.weight" stays.
  static std::string hf_name(const std::string& parameter_name);

  // Adds rows for extra input tokens (ids n_vocab, n_vocab+1, ...): the sentinel embeddings.
  // rows: [n_extra, n_embd].
  void set_extra_embeddings(const at::Tensor& rows);
  int64_t n_extra_tokens() const { return extra_embeddings.defined() ? extra_embeddings.size(0) : 0; }

  const LlamaConfig& config() const { return config_; }
  at::ScalarType dtype() const { return embed_tokens->weight.scalar_type(); }

  // --- the quantized CPU path ---
  // Switches to weights read in place from a GGUF mapping: the dense matrices are released,
  // decode steps of up to kFewRows tokens run in the NativeDecoder, larger passes dequantize
  // blocks for a GEMM. Norms and sentinel rows stay dense. Float32 on the CPU only.
  void use_quantized(std::shared_ptr<const QuantizedWeights> weights);
  bool is_quantized() const { return quantized_ != nullptr; }
  const QuantizedWeights* quantized_weights() const { return quantized_.get(); }
  // Materialises the dense float32 matrices from the quantized ones and leaves the quantized path
  // (training, masked forward passes, other devices need them); a no-op on a dense model.
  void ensure_dense();
  // "quantized (q4_1 x210, q8_0 x1), avx2 kernels" or "dense float32": which path runs.
  std::string backend_description() const;
  // How sessions over this model store K/V (--kv-dtype): f16 by default on the quantized path
  // (as llama.cpp), the compute dtype on the dense one.
  KvStorage kv_storage() const { return kv_storage_; }
  void set_kv_storage(KvStorage storage) { kv_storage_ = storage; }
  // Where attached LoRA acts (adapters record it; apply_adapter and training set it).
  LoraPositions lora_positions() const { return lora_positions_; }
  void set_lora_positions(LoraPositions positions) { lora_positions_ = positions; }
  // Cache options for a session over this model: its dtype, device and KV storage.
  KvCacheOptions cache_options(int64_t capacity) const;
  // Rows begin, begin + step, ... < end of the input embedding as [n, n_embd] float32, read from
  // whichever weights the model holds (fingerprints and the sentinels' initial rows use it).
  at::Tensor embedding_rows(int64_t begin, int64_t end, int64_t step = 1) const;

  Projection embed_tokens{nullptr};  // weight [n_vocab, n_embd]
  Projection lm_head{nullptr};       // weight [n_vocab, n_embd]; the same module as embed_tokens when tied
  torch::nn::ModuleList layers{nullptr};
  RmsNorm norm{nullptr};
  at::Tensor extra_embeddings;       // [n_extra, n_embd] sentinel rows (undefined when none)

 private:
  at::Tensor embed(const at::Tensor& tokens);  // [B, T] -> [B, T, n_embd]
  // Embeds, runs every layer with `context` (rotary tables filled in here from positions [B, T])
  // and applies the final norm: [B, T] -> [B, T, n_embd].
  at::Tensor decode(const at::Tensor& tokens, const at::Tensor& positions, LayerContext& context,
                    std::vector<at::Tensor>* per_layer);
  LlamaConfig config_;
  at::Tensor inv_freq_;  // [head_dim / 2] float32 rotary frequencies
  std::shared_ptr<const QuantizedWeights> quantized_;  // set on the quantized path
  std::shared_ptr<NativeDecoder> native_;
  KvStorage kv_storage_ = KvStorage::Compute;
  LoraPositions lora_positions_ = LoraPositions::All;
};
TORCH_MODULE(LlamaModel);

}  // namespace sentinel
