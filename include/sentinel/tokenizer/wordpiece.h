// WordPiece tokenizer of BERT models (all-MiniLM-L6-v2), loaded from a Hugging Face tokenizer.json:
// special tokens matched in the raw text, BertNormalizer, BertPreTokenizer, greedy longest-match-first
// WordPiece with "##" continuations, then the post-processor's [CLS] ... [SEP]. Gives the ids of the
// `tokenizers` library. Encoding only (no decoding, offsets or sentence pairs); torch-free.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/tokenizer/bert_normalizer.h"

namespace sentinel {

class WordPieceTokenizer {
 public:
  // Reads a tokenizer.json with model WordPiece, normalizer BertNormalizer, pre_tokenizer
  // BertPreTokenizer and post_processor TemplateProcessing (special tokens around $A) or
  // BertProcessing. Anything else, or a malformed file, throws Error naming the field. The file's
  // own "truncation" and "padding" are not applied: callers choose max_length (sentence-transformers
  // overrides them the same way).
  static WordPieceTokenizer from_json_file(const std::string& path);
  // The same from the text of a tokenizer.json; `source` names it in errors.
  static WordPieceTokenizer from_json_text(std::string_view json_text, const std::string& source);

  // Text (any bytes; invalid UTF-8 becomes U+FFFD first) -> [CLS] ids [SEP]. Added tokens written
  // in the text ("[MASK]") become their ids, as tokenizers does. With max_length > 0 the text's ids
  // are cut at the end so that the whole, special tokens included, has at most max_length ids (the
  // "longest_first" truncation of a single sequence); max_length must leave room for the special
  // tokens. Thread-safe.
  std::vector<int32_t> encode(std::string_view text, size_t max_length = 0) const;

  // One pre-tokenized word (normalized UTF-8, no whitespace) -> appends its pieces' ids: the unk id
  // alone when the word has more than max_input_chars_per_word characters or a part with no piece.
  void encode_word(std::string_view word, std::vector<int32_t>& ids) const;

  int32_t n_vocab() const;
  std::optional<int32_t> find_token(std::string_view text) const;
  const std::string& token_text(int32_t id) const;  // throws Error outside [0, n_vocab)
  int32_t unk_id() const;
  int32_t pad_id() const;  // padding.pad_id of the file, else [PAD], else 0
  size_t n_special_tokens() const;  // ids the post-processor adds around the text (2: [CLS], [SEP])
  const BertNormalizer& normalizer() const;
  // "WordPiece, 30522 tokens, unk [UNK], [CLS] $A [SEP], lowercase, strip accents, chinese chars, clean text"
  std::string summary() const;

  struct Impl;  // opaque, defined in wordpiece.cpp (public only so that its loader helpers can name it)

 private:
  explicit WordPieceTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable after loading; copies share it
};

}  // namespace sentinel
