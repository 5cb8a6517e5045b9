// SentenceEncoder: the sentence-transformers pipeline of all-MiniLM-L6-v2 (Transformer -> Pooling
// (mean) -> Normalize) over transformers' BertModel: embeddings + LayerNorm, then per layer
// self-attention with the padding mask, residual + LayerNorm, GELU feed-forward, residual +
// LayerNorm (post-LN). float32 throughout, as sentence-transformers runs it on the CPU.
#include "sentinel/eval/sentence_encoder.h"

#include <ATen/core/grad_mode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/json_file.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/weights.h"

namespace sentinel {

namespace {

using nlohmann::json;

struct LayerWeights {
  at::Tensor q_w, q_b, k_w, k_b, v_w, v_b;  // [d, d], [d]
  at::Tensor attn_out_w, attn_out_b;        // [d, d], [d]
  at::Tensor attn_norm_w, attn_norm_b;      // [d]
  at::Tensor ff_in_w, ff_in_b;              // [n_ff, d], [n_ff]
  at::Tensor ff_out_w, ff_out_b;            // [d, n_ff], [d]
  at::Tensor out_norm_w, out_norm_b;        // [d]
};

}  // namespace

struct SentenceEncoder::Impl {
  Impl(BertConfig c, WordPieceTokenizer t, SentenceEncoderOptions o)
      : config(c), tokenizer(std::move(t)), options(o) {}
  BertConfig config;
  WordPieceTokenizer tokenizer;
  SentenceEncoderOptions options;
  int64_t max_seq_length = 0;
  bool normalize = false;
  at::Tensor word_embeddings;      // [n_vocab, d] f32
  at::Tensor position_embeddings;  // [n_positions, d]
  at::Tensor token_type_0;         // [d], row 0 of token_type_embeddings
  at::Tensor embed_norm_w, embed_norm_b;  // [d]
  std::vector<LayerWeights> layers;       // [n_layer]
};

BertConfig BertConfig::from_hf_config(const json& config, const std::string& source) {
  std::vector<std::string> problems;
  auto require = [&](bool ok, const std::string& what) {
    if (!ok) problems.push_back(what);
  };
  auto text = [&](const char* key) { return config.contains(key) && config[key].is_string() ? config[key].get<std::string>() : ""; };
  require(text("model_type") == "bert", "model_type is '" + text("model_type") + "', not 'bert'");
  require(text("hidden_act") == "gelu",
          "hidden_act is '" + text("hidden_act") + "'; only 'gelu' (the exact, erf form) is supported");
  if (config.contains("position_embedding_type")) {
    require(text("position_embedding_type") == "absolute",
            "position_embedding_type is '" + text("position_embedding_type") + "'; only 'absolute' is supported");
  }
  BertConfig c;
  auto count = [&](const char* key, int64_t& field) {
    if (!config.contains(key) || !config[key].is_number_integer() || config[key].get<int64_t>() <= 0) {
      problems.push_back(std::string(key) + " must be a positive integer");
      return;
    }
    field = config[key].get<int64_t>();
  };
  count("vocab_size", c.n_vocab);
  count("hidden_size", c.n_embd);
  count("num_hidden_layers", c.n_layer);
  count("num_attention_heads", c.n_head);
  count("intermediate_size", c.n_ff);
  count("max_position_embeddings", c.n_positions);
  count("type_vocab_size", c.n_token_types);
  if (config.contains("layer_norm_eps") && config["layer_norm_eps"].is_number()) {
    c.layer_norm_eps = config["layer_norm_eps"].get<double>();
  }
  if (c.n_head > 0 && c.n_embd % c.n_head != 0) {
    problems.push_back("hidden_size " + std::to_string(c.n_embd) + " is not a multiple of num_attention_heads " +
                       std::to_string(c.n_head));
  }
  if (!problems.empty()) {
    std::ostringstream out;
    out << "'" << source << "' is not a BERT config the sentence encoder supports:";
    for (const std::string& p : problems) out << "\n  " << p;
    fail(out.str());
  }
  return c;
}

namespace {

// A weight of the safetensors file as float32 on `device`, its shape checked against the config.
at::Tensor weight(const SafetensorsFile& file, const std::string& name, std::vector<int64_t> shape, at::Device device) {
  const at::Tensor t = tensor_from_safetensors(file.tensor(name));
  check(t.sizes().vec() == shape, file.path(), ": tensor '", name, "' has shape ", t.sizes(), ", config.json implies ",
        at::IntArrayRef(shape));
  return t.to(device);
}

LayerWeights load_layer(const SafetensorsFile& file, const BertConfig& c, int64_t i, at::Device device) {
  const std::string p = "encoder.layer." + std::to_string(i) + ".";
  const int64_t d = c.n_embd;
  LayerWeights w;
  w.q_w = weight(file, p + "attention.self.query.weight", {d, d}, device);
  w.q_b = weight(file, p + "attention.self.query.bias", {d}, device);
  w.k_w = weight(file, p + "attention.self.key.weight", {d, d}, device);
  w.k_b = weight(file, p + "attention.self.key.bias", {d}, device);
  w.v_w = weight(file, p + "attention.self.value.weight", {d, d}, device);
  w.v_b = weight(file, p + "attention.self.value.bias", {d}, device);
  w.attn_out_w = weight(file, p + "attention.output.dense.weight", {d, d}, device);
  w.attn_out_b = weight(file, p + "attention.output.dense.bias", {d}, device);
  w.attn_norm_w = weight(file, p + "attention.output.LayerNorm.weight", {d}, device);
  w.attn_norm_b = weight(file, p + "attention.output.LayerNorm.bias", {d}, device);
  w.ff_in_w = weight(file, p + "intermediate.dense.weight", {c.n_ff, d}, device);
  w.ff_in_b = weight(file, p + "intermediate.dense.bias", {c.n_ff}, device);
  w.ff_out_w = weight(file, p + "output.dense.weight", {d, c.n_ff}, device);
  w.ff_out_b = weight(file, p + "output.dense.bias", {d}, device);
  w.out_norm_w = weight(file, p + "output.LayerNorm.weight", {d}, device);
  w.out_norm_b = weight(file, p + "output.LayerNorm.bias", {d}, device);
  return w;
}

// modules.json must be Transformer, Pooling (mean), optionally Normalize: returns whether it normalizes.
bool check_modules(const std::filesystem::path& folder, int64_t n_embd) {
  const std::string path = (folder / "modules.json").string();
  const json modules = read_json_file(path);
  std::vector<std::string> types;
  std::string pooling_path;
  for (const json& m : modules) {
    types.push_back(m.at("type").get<std::string>());
    if (types.back() == "sentence_transformers.models.Pooling") pooling_path = m.value("path", "");
  }
  const std::vector<std::string> base = {"sentence_transformers.models.Transformer",
                                         "sentence_transformers.models.Pooling"};
  const bool normalize = types.size() == 3 && types[2] == "sentence_transformers.models.Normalize";
  check(types.size() >= 2 && std::equal(base.begin(), base.end(), types.begin()) && (types.size() == 2 || normalize),
        path, ": the modules must be Transformer, Pooling and optionally Normalize; found ", modules.dump());

  const std::string pooling_config = (folder / pooling_path / "config.json").string();
  const json pooling = read_json_file(pooling_config);
  check(pooling.value("pooling_mode_mean_tokens", false), pooling_config,
        ": only mean pooling (pooling_mode_mean_tokens) is supported");
  for (const auto& [key, value] : pooling.items()) {
    check(!(key.starts_with("pooling_mode_") && key != "pooling_mode_mean_tokens" && value.is_boolean() &&
            value.get<bool>()),
          pooling_config, ": ", key, "=true is not supported; only mean pooling is");
  }
  check(pooling.value("word_embedding_dimension", n_embd) == n_embd, pooling_config, ": word_embedding_dimension ",
        pooling["word_embedding_dimension"], " is not the model's hidden_size ", n_embd);
  return normalize;
}

}  // namespace

SentenceEncoder SentenceEncoder::load(const std::string& folder, SentenceEncoderOptions options) {
  namespace fs = std::filesystem;
  check(options.batch_size > 0, "batch_size is ", options.batch_size, "; it must be positive");
  const fs::path dir(folder);
  check(fs::is_directory(dir), "'", folder, "' is not a folder; pass a sentence-transformers model folder");
  const std::string config_path = (dir / "config.json").string();
  BertConfig config = BertConfig::from_hf_config(read_json_file(config_path), config_path);  // refused first
  auto impl = std::make_shared<Impl>(config, WordPieceTokenizer::from_json_file((dir / "tokenizer.json").string()),
                                     options);
  const BertConfig& c = impl->config;
  check(impl->tokenizer.n_vocab() == c.n_vocab, folder, ": tokenizer.json has ", impl->tokenizer.n_vocab(),
        " tokens, config.json vocab_size is ", c.n_vocab);

  const std::string st_config_path = (dir / "sentence_bert_config.json").string();
  const json st_config = read_json_file(st_config_path);
  impl->max_seq_length = st_config.value("max_seq_length", c.n_positions);
  check(impl->max_seq_length > static_cast<int64_t>(impl->tokenizer.n_special_tokens()) &&
            impl->max_seq_length <= c.n_positions,
        st_config_path, ": max_seq_length ", impl->max_seq_length, " must be in (",
        impl->tokenizer.n_special_tokens(), ", ", c.n_positions, "]");
  // sentence-transformers would lowercase with Python's str.lower() before tokenizing: not done here.
  check(!st_config.value("do_lower_case", false), st_config_path, ": do_lower_case=true is not supported");
  impl->normalize = check_modules(dir, c.n_embd);

  const SafetensorsFile file = SafetensorsFile::open((dir / "model.safetensors").string());
  const at::Device device = options.device;
  const int64_t d = c.n_embd;
  impl->word_embeddings = weight(file, "embeddings.word_embeddings.weight", {c.n_vocab, d}, device);
  impl->position_embeddings = weight(file, "embeddings.position_embeddings.weight", {c.n_positions, d}, device);
  impl->token_type_0 = weight(file, "embeddings.token_type_embeddings.weight", {c.n_token_types, d}, device)[0];
  impl->embed_norm_w = weight(file, "embeddings.LayerNorm.weight", {d}, device);
  impl->embed_norm_b = weight(file, "embeddings.LayerNorm.bias", {d}, device);
  for (int64_t i = 0; i < c.n_layer; ++i) impl->layers.push_back(load_layer(file, c, i, device));
  return SentenceEncoder(std::move(impl));
}

at::Tensor SentenceEncoder::forward(const at::Tensor& ids, const at::Tensor& mask, std::vector<at::Tensor>* hidden) const {
  const Impl& m = *impl_;
  const BertConfig& c = m.config;
  check(ids.dim() == 2 && ids.scalar_type() == at::kLong, "forward: ids must be [batch, tokens] int64, got ",
        ids.sizes(), " ", ids.scalar_type());
  check(mask.sizes() == ids.sizes() && mask.scalar_type() == at::kBool, "forward: mask must be bool of the ids' shape ",
        ids.sizes(), ", got ", mask.sizes(), " ", mask.scalar_type());
  const int64_t b = ids.size(0), t = ids.size(1), d = c.n_embd, nh = c.n_head, hd = c.head_dim();
  check(t <= c.n_positions, "forward: ", t, " tokens exceed max_position_embeddings ", c.n_positions);
  at::NoGradGuard no_grad;

  // Embeddings: word + position + token type 0, then LayerNorm.  [b, t, d]
  at::Tensor x = m.word_embeddings.index_select(0, ids.reshape(-1)).view({b, t, d}) +
                 m.position_embeddings.slice(0, 0, t).unsqueeze(0) + m.token_type_0;
  x = at::layer_norm(x, {d}, m.embed_norm_w, m.embed_norm_b, c.layer_norm_eps);
  if (hidden != nullptr) hidden->assign(1, x);

  const at::Tensor attend = mask.view({b, 1, 1, t});  // [b, 1, 1, t]: each query sees the real keys
  for (const LayerWeights& w : m.layers) {
    auto heads = [&](const at::Tensor& y) { return y.view({b, t, nh, hd}).transpose(1, 2); };  // [b, nh, t, hd]
    const at::Tensor q = heads(at::linear(x, w.q_w, w.q_b));
    const at::Tensor k = heads(at::linear(x, w.k_w, w.k_b));
    const at::Tensor v = heads(at::linear(x, w.v_w, w.v_b));
    const at::Tensor context = at::scaled_dot_product_attention(q, k, v, attend)  // [b, nh, t, hd]
                                   .transpose(1, 2)
                                   .reshape({b, t, d});
    x = at::layer_norm(at::linear(context, w.attn_out_w, w.attn_out_b) + x, {d}, w.attn_norm_w, w.attn_norm_b,
                       c.layer_norm_eps);
    const at::Tensor inner = at::gelu(at::linear(x, w.ff_in_w, w.ff_in_b));  // [b, t, n_ff], erf GELU
    x = at::layer_norm(at::linear(inner, w.ff_out_w, w.ff_out_b) + x, {d}, w.out_norm_w, w.out_norm_b,
                       c.layer_norm_eps);
    if (hidden != nullptr) hidden->push_back(x);
  }
  return x;
}

at::Tensor SentenceEncoder::pool(const at::Tensor& last_hidden, const at::Tensor& mask) const {
  // sentence-transformers' Pooling: sum over real tokens / max(count, 1e-9); Normalize: x / max(|x|, 1e-12).
  const at::Tensor weights = mask.unsqueeze(-1).to(last_hidden.scalar_type());                    // [b, t, 1]
  at::Tensor pooled = (last_hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9);           // [b, d]
  if (impl_->normalize) pooled = pooled / pooled.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  return pooled;
}

at::Tensor SentenceEncoder::encode_ids(std::span<const std::vector<int32_t>> ids) const {
  const Impl& m = *impl_;
  const auto n = static_cast<int64_t>(ids.size());
  for (int64_t i = 0; i < n; ++i) {
    check(!ids[i].empty() && static_cast<int64_t>(ids[i].size()) <= m.max_seq_length, "encode_ids: sentence ", i,
          " has ", ids[i].size(), " ids; it needs 1 to max_seq_length = ", m.max_seq_length);
  }
  // Longest first, so that each batch pads to nearly its own length.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });

  at::Tensor out = at::empty({n, m.config.n_embd}, at::kFloat);  // [n, d] on the CPU
  for (int64_t start = 0; start < n; start += m.options.batch_size) {
    const int64_t b = std::min(m.options.batch_size, n - start);
    const auto t = static_cast<int64_t>(ids[order[start]].size());
    at::Tensor batch_ids = at::full({b, t}, static_cast<int64_t>(m.tokenizer.pad_id()), at::kLong);  // [b, t]
    at::Tensor batch_mask = at::zeros({b, t}, at::kBool);                                            // [b, t]
    auto ids_a = batch_ids.accessor<int64_t, 2>();
    auto mask_a = batch_mask.accessor<bool, 2>();
    for (int64_t r = 0; r < b; ++r) {
      const std::vector<int32_t>& row = ids[order[start + r]];
      for (size_t j = 0; j < row.size(); ++j) {
        check(row[j] >= 0 && row[j] < m.config.n_vocab, "encode_ids: id ", row[j], " of sentence ", order[start + r],
              " is outside the vocabulary [0, ", m.config.n_vocab, ")");
        ids_a[r][static_cast<int64_t>(j)] = row[j];
        mask_a[r][static_cast<int64_t>(j)] = true;
      }
    }
    batch_ids = batch_ids.to(m.options.device);
    batch_mask = batch_mask.to(m.options.device);
    const at::Tensor pooled = pool(forward(batch_ids, batch_mask), batch_mask).to(at::kCPU);  // [b, d]
    const at::Tensor rows = at::tensor(std::vector<int64_t>(order.begin() + start, order.begin() + start + b), at::kLong);
    out.index_copy_(0, rows, pooled);
  }
  return out;
}

at::Tensor SentenceEncoder::encode(std::span<const std::string> sentences) const {
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(sentences.size());
  const auto max_length = static_cast<size_t>(impl_->max_seq_length);
  for (const std::string& s : sentences) ids.push_back(impl_->tokenizer.encode(s, max_length));
  return encode_ids(ids);
}

const WordPieceTokenizer& SentenceEncoder::tokenizer() const { return impl_->tokenizer; }
const BertConfig& SentenceEncoder::config() const { return impl_->config; }
int64_t SentenceEncoder::dim() const { return impl_->config.n_embd; }
int64_t SentenceEncoder::max_seq_length() const { return impl_->max_seq_length; }
bool SentenceEncoder::normalizes() const { return impl_->normalize; }
at::Device SentenceEncoder::device() const { return impl_->options.device; }

namespace {
void check_rows(const at::Tensor& a, const at::Tensor& b, const char* what) {
  check(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), what, ": embeddings must be [n, dim] and [m, dim], got ",
        a.sizes(), " and ", b.sizes());
}
at::Tensor unit_rows(const at::Tensor& x) {  // [n, dim] f64, zero rows left zero
  const at::Tensor x64 = x.to(at::kDouble);
  return x64 / x64.norm(2, {1}, true).clamp_min(1e-300);
}
}  // namespace

double embedding_cosine_similarity(const at::Tensor& a, const at::Tensor& b) {
  check(a.dim() == 1 && b.dim() == 1 && a.size(0) == b.size(0), "embedding_cosine_similarity: embeddings must be [dim] each, got ",
        a.sizes(), " and ", b.sizes());
  return (unit_rows(a.unsqueeze(0)) * unit_rows(b.unsqueeze(0))).sum().item<double>();
}

at::Tensor pairwise_cosine_similarity(const at::Tensor& a, const at::Tensor& b) {
  check_rows(a, b, "pairwise_cosine_similarity");
  check(a.size(0) == b.size(0), "pairwise_cosine_similarity: ", a.size(0), " rows against ", b.size(0));
  return (unit_rows(a) * unit_rows(b)).sum(1).to(at::kFloat);  // [n]
}

at::Tensor cosine_similarity_matrix(const at::Tensor& a, const at::Tensor& b) {
  check_rows(a, b, "cosine_similarity_matrix");
  return at::matmul(unit_rows(a), unit_rows(b).t()).to(at::kFloat);  // [n, m]
}

}  // namespace sentinel
