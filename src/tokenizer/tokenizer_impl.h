// Internal: the tables behind a Tokenizer, shared by bpe.cpp (construction, byte-level BPE, the
// accessors) and spm_tokenizer.cpp (the two SentencePiece models). Immutable once built.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "added_tokens.h"
#include "bpe_model.h"
#include "sentinel/tokenizer/bpe.h"
#include "special_partition.h"
#include "spm_model.h"

namespace sentinel {

struct Tokenizer::Impl {
  TokenizerModel model = TokenizerModel::ByteLevelBpe;
  std::vector<std::string> spellings;  // id -> vocabulary spelling
  std::vector<std::string> bytes;      // id -> what it decodes to mid-text
  std::vector<TokenKind> kinds;
  std::unordered_map<std::string, int32_t> by_spelling;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<detail::BpeModel> bpe;                // ByteLevelBpe, SentencePieceBpe
  std::unique_ptr<detail::SpmModel> spm;                // SentencePiece
  std::unique_ptr<detail::SpecialPartition> partition;  // SentencePiece: llama.cpp's added-token search
  detail::AddedTokenMatcher raw_added;         // first pass, on the raw text (the tokenizers models)
  detail::AddedTokenMatcher normalized_added;  // second pass, on what the first left
  SpaceMarker space_marker = SpaceMarker::Replace;
  PrefixDecoding prefix_decoding = PrefixDecoding::Keep;
  int32_t n_merges = 0;
  int32_t n_special = 0;
  int32_t n_byte_tokens = 0;  // SentencePiece models: <0xXX> tokens
  std::optional<int32_t> bos_id, eos_id;
  std::vector<int32_t> stop_ids;
  bool add_bos = false;
  bool nfc = false;  // TokenizerParts::nfc
  std::string chat_template;
  std::string source;

  explicit Impl(PreTokenizerKind kind) : pre_tokenizer(kind) {}

  void check_id(int32_t id) const;

  // Byte-level BPE (bpe.cpp).
  void encode_ordinary(std::string_view text, std::vector<Piece>& pieces, std::vector<int32_t>& ids) const;
  void encode_without_raw_added(std::string_view text, std::vector<Piece>& pieces, std::vector<int32_t>& ids) const;

  // SentencePiece models (spm_tokenizer.cpp): the model's tables from parts, encoding after BOS,
  // and decoding with the prefix space rule.
  void build_sentencepiece(TokenizerParts& parts);
  void encode_sentencepiece(std::string_view text, SpecialTokens special, std::vector<int32_t>& ids) const;
  void encode_sentencepiece_bpe(std::string_view text, SpecialTokens special, std::vector<int32_t>& ids) const;
  std::string decode_sentencepiece(std::span<const int32_t> ids, bool skip_special) const;
  std::string describe_sentencepiece() const;
};

}  // namespace sentinel
