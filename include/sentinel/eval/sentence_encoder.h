// Sentence embeddings as sentence-transformers computes them with all-MiniLM-L6-v2: WordPiece ids
// cut to max_seq_length, a BERT encoder (post-LN, GELU) in float32, mean pooling over the real
// tokens, L2 normalisation. The evaluation's semantic similarity is the cosine of two embeddings.
// Not a general BERT: token type 0 only, absolute positions, no pooler or prediction heads.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sentinel/tokenizer/wordpiece.h"

namespace sentinel {

// The config.json fields the encoder uses; anything but a BERT with GELU (erf) and absolute
// positions is refused by from_hf_config.
struct BertConfig {
  int64_t n_vocab = 0;        // vocab_size
  int64_t n_embd = 0;         // hidden_size
  int64_t n_layer = 0;        // num_hidden_layers
  int64_t n_head = 0;         // num_attention_heads
  int64_t n_ff = 0;           // intermediate_size
  int64_t n_positions = 0;    // max_position_embeddings
  int64_t n_token_types = 0;  // type_vocab_size
  double layer_norm_eps = 1e-12;

  // Throws Error naming every unsupported or inconsistent field at once.
  static BertConfig from_hf_config(const nlohmann::json& config, const std::string& source);
  int64_t head_dim() const { return n_embd / n_head; }
};

struct SentenceEncoderOptions {
  int64_t batch_size = 32;       // sentences per forward pass (sentence-transformers' default)
  at::Device device = at::kCPU;  // where the weights live and the forward runs
};

class SentenceEncoder {
 public:
  // A sentence-transformers folder: config.json, model.safetensors, tokenizer.json,
  // sentence_bert_config.json (max_seq_length), modules.json (Transformer, Pooling, optional
  // Normalize) and the pooling config (mean pooling only). Throws Error naming what it refuses.
  static SentenceEncoder load(const std::string& folder, SentenceEncoderOptions options = {});

  // [n, dim] f32 on the CPU, row i the embedding of sentences[i] (unit length when the model
  // normalizes). Sentences are batched by token count, longest first, so little is padding.
  at::Tensor encode(std::span<const std::string> sentences) const;
  // The same from token ids, each as the tokenizer gives them ([CLS] ... [SEP], at most
  // max_seq_length ids).
  at::Tensor encode_ids(std::span<const std::vector<int32_t>> ids) const;

  // One padded batch: ids [b, t] i64 and mask [b, t] bool (true = a real token), on device(), ->
  // the last hidden state [b, t, dim] f32. With `hidden`, also every hidden state in order
  // (embeddings, then each layer): [n_layer + 1] x [b, t, dim].
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, std::vector<at::Tensor>* hidden = nullptr) const;
  // Mean over the real tokens, then L2 normalisation when the model normalizes:
  // [b, t, dim] and [b, t] bool -> [b, dim] f32.
  at::Tensor pool(const at::Tensor& last_hidden, const at::Tensor& mask) const;

  const WordPieceTokenizer& tokenizer() const;
  const BertConfig& config() const;
  int64_t dim() const;             // embedding size (hidden_size)
  int64_t max_seq_length() const;  // ids per sentence at most, special tokens included
  bool normalizes() const;         // modules.json ends with Normalize
  at::Device device() const;

  struct Impl;  // opaque, defined in sentence_encoder.cpp

 private:
  explicit SentenceEncoder(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // weights and tokenizer, immutable after loading
};

// cos(a, b) of two embeddings [dim] of any norm, in float64; 0 when either is zero. (Not named
// cosine_similarity: argument-dependent lookup would make calls ambiguous with at::cosine_similarity.)
double embedding_cosine_similarity(const at::Tensor& a, const at::Tensor& b);
// Row by row: a [n, dim], b [n, dim] -> [n] f32 with cos(a_i, b_i).
at::Tensor pairwise_cosine_similarity(const at::Tensor& a, const at::Tensor& b);
// Every pair: a [n, dim], b [m, dim] -> [n, m] f32 with cos(a_i, b_j).
at::Tensor cosine_similarity_matrix(const at::Tensor& a, const at::Tensor& b);

}  // namespace sentinel
