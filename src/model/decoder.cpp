// The decoder model: embeddings (sentinel rows included), the stack of blocks, the head, and the
// switch between the dense path and the quantized one (native steps for a few rows).
#include "sentinel/model/decoder.h"

#include <ATen/ATen.h>

#include <cmath>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/kernels/kernels.h"
#include "sentinel/model/native_decoder.h"
#include "sentinel/model/quantized_weights.h"
#include "sentinel/model/rope.h"

namespace sentinel {
namespace {

std::string shape_string(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// [1, T, n_past + T] bool: new token t sees every cached cell and new tokens 0..t.
at::Tensor causal_mask(int64_t n_past, int64_t T, const at::Device& device) {
  const at::Tensor key_index = at::arange(n_past + T, at::kLong);
  const at::Tensor query_limit = at::arange(T, at::kLong) + n_past;
  return (key_index.unsqueeze(0) <= query_limit.unsqueeze(1)).unsqueeze(0).to(device);
}

}  // namespace

DecoderModelImpl::DecoderModelImpl(const ModelConfig& config) : config_(config) {
  config.validate();
  embed_tokens = register_module("embed_tokens", Projection(config.n_embd, config.n_vocab));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.n_layer; ++i) layers->push_back(DecoderLayer(config, i));
  norm = register_module("norm", RmsNorm(config.n_embd, config.rms_norm_eps));
  lm_head = config.tied_embeddings ? embed_tokens
                                   : register_module("lm_head", Projection(config.n_embd, config.n_vocab));
  inv_freq_ = rotary_inv_freq(config, /*sliding=*/false);
  if (config.has_sliding_layers()) inv_freq_sliding_ = rotary_inv_freq(config, /*sliding=*/true);
}

std::string DecoderModelImpl::hf_name(const std::string& parameter_name) {
  return parameter_name.rfind("lm_head.", 0) == 0 ? parameter_name : "model." + parameter_name;
}

void DecoderModelImpl::load_weights(const std::map<std::string, at::Tensor>& weights) {
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

void DecoderModelImpl::set_extra_embeddings(const at::Tensor& rows) {
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

at::Tensor DecoderModelImpl::embed(const at::Tensor& tokens) {
  at::Tensor rows = embed_unscaled(tokens);  // [..., n_embd]
  // Gemma scales every input row (sentinel rows too: they start as copies of embedding rows).
  if (config_.embedding_scale != 1.0) rows = rows * at::scalar_tensor(config_.embedding_scale, at::kFloat).to(rows.dtype());
  return rows;
}

at::Tensor DecoderModelImpl::embed_unscaled(const at::Tensor& tokens) {
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

at::Tensor DecoderModelImpl::decode(const at::Tensor& tokens, const at::Tensor& positions, LayerContext& context,
                                  std::vector<at::Tensor>* per_layer) {
  // Rotary tables from explicit position ids: [B, T, head_dim / 2] -> [B, 1, T, head_dim].
  auto tables = [&](const at::Tensor& inv_freq, at::Tensor& cos, at::Tensor& sin) {
    const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq.to(tokens.device());
    const at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(1);
    cos = angles.cos().to(dtype());
    sin = angles.sin().to(dtype());
  };
  tables(inv_freq_, context.cos, context.sin);
  if (inv_freq_sliding_.defined()) tables(inv_freq_sliding_, context.cos_sliding, context.sin_sliding);
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

ForwardOutput DecoderModelImpl::forward(const ForwardInput& input, bool keep_per_layer) {
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
  if (config_.has_sliding_layers()) {
    const at::Tensor base = input.mask.defined() ? input.mask : causal_mask(0, T, tokens.device());
    context.sliding_mask = base.logical_and(within_window(input.positions, input.positions));  // [B, T, T]
  }
  ForwardOutput out;
  out.hidden = decode(tokens, input.positions, context, keep_per_layer ? &out.per_layer : nullptr);
  return out;
}

std::vector<CachedOutput> DecoderModelImpl::forward_cached(std::span<const CachedInput> sequences) {
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
      mask = causal_mask(n_past, T, in.tokens.device());
    }
    in.cache->reserve_for(T, in.cache->has_window_layers() && T > 0 ? in.positions.min().item<int64_t>() : 0);
    if (in.want_attention_mass)
      out[i].attention_mass = at::zeros({n_keys}, at::TensorOptions().dtype(at::kFloat).device(in.tokens.device()));
    at::Tensor mass_queries;
    if (in.want_attention_mass && in.mass_queries.defined()) {
      check(in.mass_queries.dim() == 1 && in.mass_queries.size(0) == T && in.mass_queries.scalar_type() == at::kBool,
            "sequence ", i, ": mass_queries must be bool [", T, "], got ", shape_string(in.mass_queries));
      mass_queries = in.mass_queries.to(in.tokens.device());
    }
    at::Tensor sliding_mask;
    if (config_.has_sliding_layers()) {
      // Over the keys the sliding-window layers hold, [1, T, S - first]: the cells from the window's
      // first, then the new tokens.
      const int64_t first = in.cache->window_begin();
      std::vector<int64_t> cell_positions;
      cell_positions.reserve(static_cast<size_t>(n_past - first));
      for (int64_t c = first; c < n_past; ++c) cell_positions.push_back(in.cache->cells()[c].position);
      const at::Tensor key_positions =
          at::cat({at::tensor(cell_positions, at::kLong).to(in.positions.device()), in.positions});  // [S - first]
      const at::Tensor base =
          mask.defined() ? mask.narrow(2, first, n_keys - first) : causal_mask(n_past - first, T, in.tokens.device());
      sliding_mask = base.logical_and(within_window(in.positions.unsqueeze(0), key_positions.unsqueeze(0)));
    }
    context.sequences.push_back({offset, T, in.cache, mask, sliding_mask,
                                 in.want_attention_mass ? &out[i].attention_mass : nullptr, mass_queries});
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

at::Tensor DecoderModelImpl::within_window(const at::Tensor& query_positions, const at::Tensor& key_positions) const {
  // HF's sliding_window_overlay: kv_idx > q_idx - sliding_window, over positions.
  return (query_positions.unsqueeze(-1) - key_positions.unsqueeze(-2)) < config_.sliding_window;
}

at::Tensor DecoderModelImpl::logits(const at::Tensor& hidden) {
  // A few rows (batched decode) as W h^T rather than h W^T: MKL's sgemm handles the [n_vocab,
  // n_embd] x [n_embd, rows] shape several times faster on CPU for 2-64 rows (one row is a GEMV
  // either way). LoRA never touches the head.
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

void DecoderModelImpl::use_quantized(std::shared_ptr<const QuantizedWeights> weights) {
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

KvCacheOptions DecoderModelImpl::cache_options(int64_t capacity) const {
  return KvCacheOptions{capacity, dtype(), embed_tokens->weight.device(), kv_storage_};
}

void DecoderModelImpl::ensure_dense() {
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

std::string DecoderModelImpl::backend_description() const {
  if (!is_quantized()) return "dense " + std::string(dtype() == at::kBFloat16 ? "bfloat16" : "float32");
  return "quantized (" + quantized_->describe() + "), " + kernels::isa_name(kernels::active_isa()) + " kernels";
}

at::Tensor DecoderModelImpl::embedding_rows(int64_t begin, int64_t end, int64_t step) const {
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
