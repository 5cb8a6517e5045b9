// A decoder-only transformer as libtorch modules: embeddings, the stack of blocks (blocks.h) and
// the head, with whole-sequence passes (training, the masked forward of docs/method.md section 3)
// and cached incremental passes over one or more sequences. Forward takes explicit position ids and
// an explicit visibility mask, so the compression layouts of docs/method.md sections 3-4 need no
// special code here. On the quantized path small passes go to the NativeDecoder (native_decoder.h).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <span>
#include <string>
#include <vector>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/model/blocks.h"
#include "sentinel/model/config.h"

namespace sentinel {

class KvCache;
class NativeDecoder;
class QuantizedWeights;

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
// sequences go through one pass together (DecoderModelImpl::forward_cached): projections and MLPs
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


class DecoderModelImpl : public torch::nn::Module {
 public:
  explicit DecoderModelImpl(const ModelConfig& config);

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

  const ModelConfig& config() const { return config_; }
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
  at::Tensor embed(const at::Tensor& tokens);           // [B, T] -> [B, T, n_embd], scaled as the family does
  at::Tensor embed_unscaled(const at::Tensor& tokens);  // the table's rows (and sentinel rows) as stored
  // [B, Tq] and [B, Tk] positions -> [B, Tq, Tk] bool: the key is inside the query's sliding window.
  at::Tensor within_window(const at::Tensor& query_positions, const at::Tensor& key_positions) const;
  // Embeds, runs every layer with `context` (rotary tables filled in here from positions [B, T])
  // and applies the final norm: [B, T] -> [B, T, n_embd].
  at::Tensor decode(const at::Tensor& tokens, const at::Tensor& positions, LayerContext& context,
                    std::vector<at::Tensor>* per_layer);
  ModelConfig config_;
  at::Tensor inv_freq_;          // [head_dim / 2] float32 rotary frequencies
  at::Tensor inv_freq_sliding_;  // the sliding-window layers' ones (undefined without such layers)
  std::shared_ptr<const QuantizedWeights> quantized_;  // set on the quantized path
  std::shared_ptr<NativeDecoder> native_;
  KvStorage kv_storage_ = KvStorage::Compute;
  LoraPositions lora_positions_ = LoraPositions::All;
};
TORCH_MODULE(DecoderModel);

}  // namespace sentinel
