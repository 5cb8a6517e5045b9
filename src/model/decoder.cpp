// Llama forward pass. The math mirrors transformers' modeling_llama (RMSNorm in float32, rotary
// "rotate_half" layout, SwiGLU) so that float32 outputs match the reference to rounding.
#include "sentinel/model/llama.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>
#include <limits>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/kernels/kernels.h"
#include "sentinel/model/native_decoder.h"
#include "sentinel/model/quantized_weights.h"

namespace sentinel {
namespace {

// HF rotate_half: [x1, x2] -> [-x2, x1] over the last axis.
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

std::string shape_string(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

ProjectionImpl::ProjectionImpl(int64_t in_features, int64_t out_features)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
}

std::string lora_positions_name(LoraPositions positions) {
  return positions == LoraPositions::Sentinels ? "sentinels" : "all";
}

LoraPositions parse_lora_positions(const std::string& name) {
  if (name == "all") return LoraPositions::All;
  if (name == "sentinels") return LoraPositions::Sentinels;
  fail("unknown LoRA positions '", name, "'; use all (every token) or sentinels (<CL>/<CR> only)");
}

at::Tensor ProjectionImpl::forward(const at::Tensor& x, const at::Tensor& lora_rows) {
  at::Tensor y = quantized != nullptr && weight.numel() == 0 ? quantized_linear(*quantized, x) : at::linear(x, weight);
  if (!lora_A.defined() || !lora_enabled) return y;
  const at::Tensor in = lora_dropout > 0 && is_training() ? at::dropout(x, lora_dropout, /*train=*/true) : x;
  const at::Tensor delta = at::linear(at::linear(in, lora_A), lora_B) * lora_scaling;  // [..., out]
  return lora_rows.defined() ? y + delta * lora_rows : y + delta;
}

void ProjectionImpl::add_lora(int64_t rank, double alpha, double dropout) {
  check(!lora_A.defined(), "LoRA is already attached to this projection");
  check(rank >= 1, "LoRA rank must be >= 1, got ", rank);
  check(dropout >= 0.0 && dropout < 1.0, "LoRA dropout must be in [0, 1), got ", dropout);
  const auto options = weight.options().requires_grad(false);
  at::Tensor a = at::empty({rank, in_features_}, options);
  {
    at::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));  // peft's reset_lora_parameters
  }
  lora_A = register_parameter("lora_A", a);
  lora_B = register_parameter("lora_B", at::zeros({out_features_, rank}, options));
  lora_scaling = alpha / static_cast<double>(rank);
  lora_dropout = dropout;
}

RmsNormImpl::RmsNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RmsNormImpl::forward(const at::Tensor& x) {
  // As in HF: normalise in float32, cast back, then scale.
  at::Tensor x32 = x.to(at::kFloat);
  at::Tensor normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normed.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const LlamaConfig& config, int64_t layer) : config_(config), layer_(layer) {
  q_proj = register_module("q_proj", Projection(config.n_embd, config.n_head * config.head_dim));
  k_proj = register_module("k_proj", Projection(config.n_embd, config.kv_dim()));
  v_proj = register_module("v_proj", Projection(config.n_embd, config.kv_dim()));
  o_proj = register_module("o_proj", Projection(config.n_head * config.head_dim, config.n_embd));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const LayerContext& context) {
  const int64_t B = x.size(0), T = x.size(1), hd = config_.head_dim;
  // [B, T, n_head * hd] -> [B, n_head, T, hd]
  at::Tensor q = q_proj->forward(x, context.lora_rows).view({B, T, config_.n_head, hd}).transpose(1, 2);
  at::Tensor k = k_proj->forward(x, context.lora_rows).view({B, T, config_.n_head_kv, hd}).transpose(1, 2);
  at::Tensor v = v_proj->forward(x, context.lora_rows).view({B, T, config_.n_head_kv, hd}).transpose(1, 2);
  q = apply_rotary(q, context.cos, context.sin);
  k = apply_rotary(k, context.cos, context.sin);

  at::Tensor out;  // [B, n_head, T, hd]
  if (context.sequences.empty()) {
    out = attend(q, k, v, context.mask, nullptr);
  } else {
    // One sequence after another over the flattened tokens: each attends to its own cache.
    std::vector<at::Tensor> parts;
    parts.reserve(context.sequences.size());
    for (const CachedSequence& s : context.sequences) {
      const int64_t n_keys = s.cache->size() + s.length;
      s.cache->write(layer_, k.narrow(2, s.offset, s.length), v.narrow(2, s.offset, s.length));
      parts.push_back(attend(q.narrow(2, s.offset, s.length), s.cache->keys(layer_, n_keys),
                             s.cache->values(layer_, n_keys), s.mask, s.attention_mass, s.mass_queries));
    }
    out = parts.size() == 1 ? parts[0] : at::cat(parts, 2);
  }
  // [B, n_head, T, hd] -> [B, T, n_head * hd]
  out = out.transpose(1, 2).reshape({B, T, config_.n_head * hd});
  return o_proj->forward(out, context.lora_rows);
}

at::Tensor AttentionImpl::attend(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                                 const at::Tensor& mask, at::Tensor* mass, const at::Tensor& mass_queries) const {
  const bool causal = !mask.defined() && q.size(2) > 1;  // without a mask there is no past: S == T
  std::optional<at::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask.unsqueeze(1);  // [B|1, 1, T, S]: same for every head
  if (mass != nullptr) *mass += attention_mass(q, keys, attn_mask, causal, mass_queries);
  // GQA without materialising repeated K/V: SDPA groups query heads over KV heads.
  return at::scaled_dot_product_attention(q, keys, values, attn_mask, /*dropout_p=*/0.0, causal,
                                          /*scale=*/std::nullopt, /*enable_gqa=*/true);
}

at::Tensor AttentionImpl::attention_mass(const at::Tensor& q, const at::Tensor& keys,
                                         const std::optional<at::Tensor>& mask, bool causal,
                                         const at::Tensor& mass_queries) const {
  const int64_t T = q.size(2), S = keys.size(2);
  // [B, n_head_kv, S, hd] -> [B, n_head, S, hd]: query head h reads KV head h / group.
  const at::Tensor k = keys.repeat_interleave(config_.n_head / config_.n_head_kv, 1);
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).to(at::kFloat) / std::sqrt(static_cast<double>(config_.head_dim));
  if (mask) scores.masked_fill_(mask->logical_not(), -std::numeric_limits<float>::infinity());
  if (causal) {
    const at::Tensor future = at::ones({T, S}, at::TensorOptions().dtype(at::kBool).device(q.device())).triu(1);
    scores.masked_fill_(future, -std::numeric_limits<float>::infinity());
  }
  at::Tensor probabilities = scores.softmax(-1);  // [B, n_head, T, S]
  if (mass_queries.defined()) probabilities = probabilities * mass_queries.to(probabilities.dtype()).view({1, 1, T, 1});
  return probabilities.sum({0, 1, 2});  // [S]
}

MlpImpl::MlpImpl(const LlamaConfig& config) {
  gate_proj = register_module("gate_proj", Projection(config.n_embd, config.n_ff));
  up_proj = register_module("up_proj", Projection(config.n_embd, config.n_ff));
  down_proj = register_module("down_proj", Projection(config.n_ff, config.n_embd));
}

at::Tensor MlpImpl::forward(const at::Tensor& x, const at::Tensor& lora_rows) {
  return down_proj->forward(at::silu(gate_proj->forward(x, lora_rows)) * up_proj->forward(x, lora_rows), lora_rows);
}

DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& config, int64_t layer) {
  self_attn = register_module("self_attn", Attention(config, layer));
  mlp = register_module("mlp", Mlp(config));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const LayerContext& context) {
  at::Tensor h = x + self_attn(input_layernorm(x), context);
  return h + mlp->forward(post_attention_layernorm(h), context.lora_rows);
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& config) : config_(config) {
  config.validate();
  embed_tokens = register_module("embed_tokens", Projection(config.n_embd, config.n_vocab));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layer; ++i) layers->push_back(DecoderLayer(config, i));
  norm = register_module("norm", RmsNorm(config.n_embd, config.rms_norm_eps));
  lm_head = config.tied_embeddings ? embed_tokens
                                   : register_module("lm_head", Projection(config.n_embd, config.n_vocab));
  // inv_freq[i] = 1 / theta^(2i / head_dim), computed in float32 like the reference.
  inv_freq_ = 1.0 / at::pow(config.rope_theta, at::arange(0, config.head_dim, 2, at::kLong).to(at::kFloat) /
                                                   static_cast<double>(config.head_dim));
  inv_freq_ = inv_freq_.to(at::kFloat);
}

std::string LlamaModelImpl::hf_name(const std::string& parameter_name) {
  return parameter_name.rfind("lm_head.", 0) == 0 ? parameter_name : "model." + parameter_name;
}

void LlamaModelImpl::load_weights(const std::map<std::string, at::Tensor>& weights) {
  at::NoGradGuard no_grad;
  std::vector<std::string> missing;
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string name = hf_name(item.key());
    if (item.value().numel() == 0 && is_quantized()) continue;  // read in place from the stored matrix
    auto it = weights.find(name);
    if (it == weights.end()) {
      missing.push_back(name);
      continue;
    }
    at::Tensor& param = item.value();
    check(it->second.sizes() == param.sizes(), "weight '", name, "' has shape ", shape_string(it->second),
          ", the model config expects ", shape_string(param));
    param.copy_(it->second);
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 5; ++i) list += (i ? ", " : "") + missing[i];
    fail("the model file lacks ", missing.size(), " weights the config needs (", list,
         missing.size() > 5 ? ", ..." : "", ")");
  }
}

void LlamaModelImpl::set_extra_embeddings(const at::Tensor& rows) {
  check(rows.dim() == 2 && rows.size(1) == config_.n_embd, "extra embeddings must be [n, ", config_.n_embd,
        "], got ", shape_string(rows));
  if (extra_embeddings.defined()) {
    at::NoGradGuard no_grad;
    check(extra_embeddings.sizes() == rows.sizes(), "extra embeddings were ", shape_string(extra_embeddings),
          ", cannot replace them with ", shape_string(rows));
    extra_embeddings.copy_(rows);
    return;
  }
  extra_embeddings = register_parameter("sentinel_embeddings", rows.to(dtype()).clone(), /*requires_grad=*/false);
}

at::Tensor LlamaModelImpl::embed(const at::Tensor& tokens) {
  if (is_quantized()) {  // rows dequantized one by one from the stored table
    const at::Tensor ids = tokens.reshape({-1}).contiguous();
    const int64_t n_total = config_.n_vocab + n_extra_tokens();
    check(ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < n_total),
          "token id out of range [0, ", n_total, ")");
    std::vector<at::Tensor> rows;
    for (int64_t t = 0; t < ids.numel(); ++t) {
      const int64_t id = ids.data_ptr<int64_t>()[t];
      rows.push_back(id < config_.n_vocab ? embedding_rows(id, id + 1)[0] : extra_embeddings[id - config_.n_vocab]);
    }
    std::vector<int64_t> shape(tokens.sizes().begin(), tokens.sizes().end());
    shape.push_back(config_.n_embd);
    return (rows.empty() ? at::empty({0, config_.n_embd}) : at::stack(rows)).reshape(shape);
  }
  const at::Tensor& table = embed_tokens->weight;  // [n_vocab, n_embd]
  const int64_t n_vocab = config_.n_vocab;
  if (!extra_embeddings.defined()) {
    // check before lookup: an out-of-range id would read out of bounds in index_select
    check(tokens.numel() == 0 || (tokens.min().item<int64_t>() >= 0 && tokens.max().item<int64_t>() < n_vocab),
          "token id out of range [0, ", n_vocab, ")");
    return at::embedding(table, tokens);
  }
  // Ids >= n_vocab select sentinel rows. Two lookups and a select, not one lookup in a
  // concatenated table: that would copy the whole [n_vocab, n_embd] table on every call.
  const int64_t n_total = n_vocab + extra_embeddings.size(0);
  check(tokens.numel() == 0 || (tokens.min().item<int64_t>() >= 0 && tokens.max().item<int64_t>() < n_total),
        "token id out of range [0, ", n_total, ")");
  const at::Tensor is_extra = tokens >= n_vocab;  // [B, T]
  at::Tensor embedded = at::embedding(table, tokens.clamp_max(n_vocab - 1));  // [B, T, n_embd]
  if (!is_extra.any().item<bool>()) return embedded;
  const at::Tensor extra = at::embedding(extra_embeddings, (tokens - n_vocab).clamp_min(0));  // [B, T, n_embd]
  return at::where(is_extra.unsqueeze(-1), extra, embedded);
}

at::Tensor LlamaModelImpl::decode(const at::Tensor& tokens, const at::Tensor& positions, LayerContext& context,
                                  std::vector<at::Tensor>* per_layer) {
  // Rotary tables from explicit position ids: [B, T, head_dim / 2] -> [B, 1, T, head_dim].
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_.to(tokens.device());
  at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(1);
  context.cos = angles.cos().to(dtype());
  context.sin = angles.sin().to(dtype());
  if (lora_positions_ == LoraPositions::Sentinels)
    context.lora_rows = (tokens >= config_.n_vocab).unsqueeze(-1).to(dtype());  // [B, T, 1]
  at::Tensor h = embed(tokens);  // [B, T, n_embd]
  if (per_layer != nullptr) per_layer->push_back(h);
  for (const auto& layer : *layers) {
    h = layer->as<DecoderLayer>()->forward(h, context);
    if (per_layer != nullptr) per_layer->push_back(h);
  }
  return norm(h);
}

ForwardOutput LlamaModelImpl::forward(const ForwardInput& input, bool keep_per_layer) {
  ensure_dense();  // whole-sequence passes (training, masked forward) use the dense matrices
  const at::Tensor& tokens = input.tokens;
  check(tokens.dim() == 2, "tokens must be [B, T], got ", shape_string(tokens));
  check(input.positions.sizes() == tokens.sizes(), "positions ", shape_string(input.positions),
        " must match tokens ", shape_string(tokens));
  const int64_t B = tokens.size(0), T = tokens.size(1);
  if (input.mask.defined()) {
    check(input.mask.dim() == 3 && (input.mask.size(0) == B || input.mask.size(0) == 1) && input.mask.size(1) == T &&
              input.mask.size(2) == T && input.mask.scalar_type() == at::kBool,
          "mask must be bool [", B, " or 1, ", T, ", ", T, "], got ", shape_string(input.mask));
  }
  LayerContext context;
  context.mask = input.mask;
  ForwardOutput out;
  out.hidden = decode(tokens, input.positions, context, keep_per_layer ? &out.per_layer : nullptr);
  return out;
}

std::vector<CachedOutput> LlamaModelImpl::forward_cached(std::span<const CachedInput> sequences) {
  check(!sequences.empty(), "forward_cached needs at least one sequence");
  std::vector<CachedOutput> out(sequences.size());  // sized once: the context points into it
  LayerContext context;
  std::vector<at::Tensor> all_tokens, all_positions;
  int64_t offset = 0;
  for (size_t i = 0; i < sequences.size(); ++i) {
    const CachedInput& in = sequences[i];
    check(in.cache != nullptr, "sequence ", i, " of a cached forward pass has no KV cache");
    for (size_t j = 0; j < i; ++j)
      check(sequences[j].cache != in.cache, "sequences ", j, " and ", i, " of one forward pass share a KV cache");
    check(in.tokens.dim() == 1, "sequence ", i, ": tokens must be [T], got ", shape_string(in.tokens));
    check(in.positions.sizes() == in.tokens.sizes(), "sequence ", i, ": positions ", shape_string(in.positions),
          " must match tokens ", shape_string(in.tokens));
    const int64_t T = in.tokens.size(0), n_past = in.cache->size(), n_keys = n_past + T;
    at::Tensor mask = in.mask;
    if (mask.defined()) {
      check(mask.dim() == 3 && mask.size(0) == 1 && mask.size(1) == T && mask.size(2) == n_keys &&
                mask.scalar_type() == at::kBool,
            "sequence ", i, ": mask must be bool [1, ", T, ", ", n_keys, "], got ", shape_string(mask));
    } else if (n_past > 0 && T > 1) {
      // Causal with a past: new token t sees every cached cell and new tokens 0..t.
      const at::Tensor key_index = at::arange(n_keys, at::kLong);
      const at::Tensor query_limit = at::arange(T, at::kLong) + n_past;
      mask = (key_index.unsqueeze(0) <= query_limit.unsqueeze(1)).unsqueeze(0).to(in.tokens.device());
    }
    in.cache->reserve_for(T);
    if (in.want_attention_mass)
      out[i].attention_mass = at::zeros({n_keys}, at::TensorOptions().dtype(at::kFloat).device(in.tokens.device()));
    at::Tensor mass_queries;
    if (in.want_attention_mass && in.mass_queries.defined()) {
      check(in.mass_queries.dim() == 1 && in.mass_queries.size(0) == T && in.mass_queries.scalar_type() == at::kBool,
            "sequence ", i, ": mass_queries must be bool [", T, "], got ", shape_string(in.mass_queries));
      mass_queries = in.mass_queries.to(in.tokens.device());
    }
    context.sequences.push_back(
        {offset, T, in.cache, mask, in.want_attention_mass ? &out[i].attention_mass : nullptr, mass_queries});
    all_tokens.push_back(in.tokens);
    all_positions.push_back(in.positions);
    offset += T;
  }
  const at::Tensor tokens = (all_tokens.size() == 1 ? all_tokens[0] : at::cat(all_tokens)).unsqueeze(0);  // [1, N]
  const at::Tensor positions = (all_positions.size() == 1 ? all_positions[0] : at::cat(all_positions)).unsqueeze(0);
  // A few tokens (decode, batched decode, sentinel steps) go through the native step; larger
  // passes through libtorch, whose GEMMs pay for dequantizing each matrix once per pass.
  const bool native = native_ && offset <= kFewRows && !is_training();
  const at::Tensor hidden = native ? native_->forward(tokens, positions, context.sequences)
                                   : decode(tokens, positions, context, nullptr)[0];  // [N, n_embd]
#ifdef __GLIBC__
  // A prefill pass frees hundreds of MB of 1-4 MB activations that glibc keeps in its arenas,
  // fragmented, so resident memory crept up pass after pass (8,192-token prefill on the quantized
  // path: peak RSS 1,078 MB, 715 MB with small mmap thresholds at a 30% prefill cost). Returning
  // free pages after each large pass costs well under a millisecond.
  if (is_quantized() && !native && offset > kFewRows) malloc_trim(0);
#endif
  for (size_t i = 0; i < sequences.size(); ++i)
    out[i].hidden = hidden.narrow(0, context.sequences[i].offset, context.sequences[i].length);
  return out;
}

at::Tensor LlamaModelImpl::logits(const at::Tensor& hidden) {
  // A few rows (batched decode) as W h^T rather than h W^T: MKL's sgemm handles the [n_vocab,
  // n_embd] x [n_embd, rows] shape ~3x faster on CPU (SmolLM2 head, 2 cores: 4 rows 12.9 vs
  // 47.9 ms, 16 rows 25.4 vs 66.5 ms; one row is a GEMV either way). LoRA never touches the head.
  const int64_t rows = hidden.numel() / hidden.size(-1);
  if (native_ && rows <= kFewRows && !lm_head->has_lora()) return native_->logits(hidden);
  if (rows >= 2 && rows <= 64 && !lm_head->has_lora() && hidden.device().is_cpu() && !is_quantized()) {
    const at::Tensor flat = hidden.reshape({rows, hidden.size(-1)});                        // [rows, n_embd]
    at::Tensor out = at::matmul(lm_head->weight, flat.t()).t().to(at::kFloat);             // [rows, n_vocab]
    std::vector<int64_t> shape(hidden.sizes().begin(), hidden.sizes().end() - 1);
    shape.push_back(out.size(-1));
    return out.reshape(shape);
  }
  return lm_head(hidden).to(at::kFloat);
}

void LlamaModelImpl::use_quantized(std::shared_ptr<const QuantizedWeights> weights) {
  check(weights != nullptr, "use_quantized needs weights");
  check(dtype() == at::kFloat && embed_tokens->weight.device().is_cpu(),
        "the quantized path computes in float32 on the CPU; load with --dtype float32 on the CPU or --backend dense");
  at::NoGradGuard no_grad;
  auto attach = [](Projection& p, const QuantizedMatrix& m) {
    check(p->in_features() == m.cols && p->out_features() == m.rows, "stored matrix ", m.name, " is [", m.rows, ", ",
          m.cols, "], the model expects [", p->out_features(), ", ", p->in_features(), "]");
    p->quantized = &m;
    p->weight.set_();  // releases the dense matrix; forward() reads the stored one
  };
  attach(embed_tokens, weights->embed());
  if (!config_.tied_embeddings) attach(lm_head, weights->lm_head());
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    DecoderLayerImpl& layer = *layers[i]->as<DecoderLayerImpl>();
    const QuantizedLayer& w = weights->layer(i);
    attach(layer.self_attn->q_proj, w.q);
    attach(layer.self_attn->k_proj, w.k);
    attach(layer.self_attn->v_proj, w.v);
    attach(layer.self_attn->o_proj, w.o);
    attach(layer.mlp->gate_proj, w.gate);
    attach(layer.mlp->up_proj, w.up);
    attach(layer.mlp->down_proj, w.down);
  }
  quantized_ = std::move(weights);
  native_ = std::make_shared<NativeDecoder>(*this, quantized_);
  if (kv_storage_ == KvStorage::Compute) kv_storage_ = KvStorage::F16;
}

KvCacheOptions LlamaModelImpl::cache_options(int64_t capacity) const {
  return KvCacheOptions{capacity, dtype(), embed_tokens->weight.device(), kv_storage_};
}

void LlamaModelImpl::ensure_dense() {
  if (!is_quantized()) return;
  at::NoGradGuard no_grad;
  for (auto& item : named_modules()) {
    auto* p = dynamic_cast<ProjectionImpl*>(item.value().get());
    if (p == nullptr || p->quantized == nullptr) continue;
    if (p->weight.numel() == 0) p->weight.set_(p->quantized->dense());
    p->quantized = nullptr;
  }
  native_.reset();
  quantized_.reset();
}

std::string LlamaModelImpl::backend_description() const {
  if (!is_quantized()) return "dense " + std::string(dtype() == at::kBFloat16 ? "bfloat16" : "float32");
  return "quantized (" + quantized_->describe() + "), " + kernels::isa_name(kernels::active_isa()) + " kernels";
}

at::Tensor LlamaModelImpl::embedding_rows(int64_t begin, int64_t end, int64_t step) const {
  check(0 <= begin && begin <= end && end <= config_.n_vocab && step >= 1, "embedding rows [", begin, ", ", end,
        ") step ", step, " outside the vocabulary of ", config_.n_vocab);
  if (!is_quantized()) return embed_tokens->weight.slice(0, begin, end, step).to(at::kFloat);
  const QuantizedMatrix& table = quantized_->embed();
  const int64_t n = (end - begin + step - 1) / step;
  at::Tensor out = at::empty({n, config_.n_embd}, at::kFloat);
  const kernels::KernelTable& k = kernels::kernels();
  for (int64_t i = 0; i < n; ++i)
    k.row_to_f32(table.type, table.row(begin + i * step), out.data_ptr<float>() + i * config_.n_embd, config_.n_embd);
  return out;
}

}  // namespace sentinel
