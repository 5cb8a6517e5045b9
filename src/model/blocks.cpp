// The decoder's blocks. The math mirrors transformers' modeling_llama / modeling_qwen2 /
// modeling_qwen3 (RMSNorm in float32, rotary "rotate_half" layout, SwiGLU, Qwen3's per-head Q/K
// norms before RoPE) so that float32 outputs match the reference to rounding.
#include "sentinel/model/blocks.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>
#include <limits>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/model/native_decoder.h"

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

}  // namespace

ProjectionImpl::ProjectionImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", at::zeros({out_features}));
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
  at::Tensor y;
  if (quantized != nullptr && weight.numel() == 0) {
    y = quantized_linear(*quantized, x);
    if (bias.defined()) y = y + bias;
  } else {
    y = at::linear(x, weight, bias);
  }
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

AttentionImpl::AttentionImpl(const ModelConfig& config, int64_t layer) : config_(config), layer_(layer) {
  q_proj = register_module("q_proj", Projection(config.n_embd, config.q_dim(), config.attention_bias));
  k_proj = register_module("k_proj", Projection(config.n_embd, config.kv_dim(), config.attention_bias));
  v_proj = register_module("v_proj", Projection(config.n_embd, config.kv_dim(), config.attention_bias));
  o_proj = register_module("o_proj", Projection(config.q_dim(), config.n_embd));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", RmsNorm(config.head_dim, config.rms_norm_eps));
    k_norm = register_module("k_norm", RmsNorm(config.head_dim, config.rms_norm_eps));
  }
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const LayerContext& context) {
  const int64_t B = x.size(0), T = x.size(1), hd = config_.head_dim;
  const bool sliding = config_.is_sliding(layer_);
  // [B, T, n_head * hd] -> [B, T, n_head, hd] (per-head norms here) -> [B, n_head, T, hd]
  at::Tensor q = q_proj->forward(x, context.lora_rows).view({B, T, config_.n_head, hd});
  at::Tensor k = k_proj->forward(x, context.lora_rows).view({B, T, config_.n_head_kv, hd});
  at::Tensor v = v_proj->forward(x, context.lora_rows).view({B, T, config_.n_head_kv, hd}).transpose(1, 2);
  if (config_.qk_norm) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  const at::Tensor& cos = sliding ? context.cos_sliding : context.cos;
  const at::Tensor& sin = sliding ? context.sin_sliding : context.sin;
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);

  at::Tensor out;  // [B, n_head, T, hd]
  if (context.sequences.empty()) {
    out = attend(q, k, v, sliding ? context.sliding_mask : context.mask, nullptr);
  } else {
    // One sequence after another over the flattened tokens: each attends to its own cache.
    std::vector<at::Tensor> parts;
    parts.reserve(context.sequences.size());
    for (const CachedSequence& s : context.sequences) {
      // A sliding-window layer holds the keys from first_cell on; its mask and mass cover those.
      const int64_t n_keys = s.cache->size() + s.length, first = s.cache->first_cell(layer_);
      s.cache->write(layer_, k.narrow(2, s.offset, s.length), v.narrow(2, s.offset, s.length));
      at::Tensor mass;
      if (s.attention_mass != nullptr) mass = s.attention_mass->narrow(0, first, n_keys - first);  // a view: adds in place
      parts.push_back(attend(q.narrow(2, s.offset, s.length), s.cache->keys(layer_, n_keys),
                             s.cache->values(layer_, n_keys), sliding ? s.sliding_mask : s.mask,
                             mass.defined() ? &mass : nullptr, s.mass_queries));
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
                                          config_.query_scale(), /*enable_gqa=*/true);
}

at::Tensor AttentionImpl::attention_mass(const at::Tensor& q, const at::Tensor& keys,
                                         const std::optional<at::Tensor>& mask, bool causal,
                                         const at::Tensor& mass_queries) const {
  const int64_t T = q.size(2), S = keys.size(2);
  // [B, n_head_kv, S, hd] -> [B, n_head, S, hd]: query head h reads KV head h / group.
  const at::Tensor k = keys.repeat_interleave(config_.n_head / config_.n_head_kv, 1);
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).to(at::kFloat) * config_.query_scale();
  if (mask) scores.masked_fill_(mask->logical_not(), -std::numeric_limits<float>::infinity());
  if (causal) {
    const at::Tensor future = at::ones({T, S}, at::TensorOptions().dtype(at::kBool).device(q.device())).triu(1);
    scores.masked_fill_(future, -std::numeric_limits<float>::infinity());
  }
  at::Tensor probabilities = scores.softmax(-1);  // [B, n_head, T, S]
  if (mass_queries.defined()) probabilities = probabilities * mass_queries.to(probabilities.dtype()).view({1, 1, T, 1});
  return probabilities.sum({0, 1, 2});  // [S]
}

MlpImpl::MlpImpl(const ModelConfig& config) : activation_(config.activation) {
  gate_proj = register_module("gate_proj", Projection(config.n_embd, config.n_ff));
  up_proj = register_module("up_proj", Projection(config.n_embd, config.n_ff));
  down_proj = register_module("down_proj", Projection(config.n_ff, config.n_embd));
}

at::Tensor MlpImpl::forward(const at::Tensor& x, const at::Tensor& lora_rows) {
  const at::Tensor gate = gate_proj->forward(x, lora_rows);
  const at::Tensor act = activation_ == Activation::GeluTanh ? at::gelu(gate, "tanh") : at::silu(gate);
  return down_proj->forward(act * up_proj->forward(x, lora_rows), lora_rows);
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& config, int64_t layer) : sandwich_(config.sandwich_norms) {
  self_attn = register_module("self_attn", Attention(config, layer));
  mlp = register_module("mlp", Mlp(config));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
  if (sandwich_) {
    pre_feedforward_layernorm = register_module("pre_feedforward_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
    post_feedforward_layernorm =
        register_module("post_feedforward_layernorm", RmsNorm(config.n_embd, config.rms_norm_eps));
  }
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const LayerContext& context) {
  if (!sandwich_) {
    const at::Tensor h = x + self_attn(input_layernorm(x), context);
    return h + mlp->forward(post_attention_layernorm(h), context.lora_rows);
  }
  const at::Tensor h = x + post_attention_layernorm(self_attn(input_layernorm(x), context));
  return h + post_feedforward_layernorm(mlp->forward(pre_feedforward_layernorm(h), context.lora_rows));
}


}  // namespace sentinel
