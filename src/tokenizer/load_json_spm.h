// Internal: the SentencePiece shapes of a tokenizer.json (a BPE model with byte_fallback), as
// transformers writes them for Llama 2, Mistral, TinyLlama and Gemma. load_json.cpp reads the rest
// of the file the same way for both kinds of BPE.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

#include "sentinel/tokenizer/bpe.h"

namespace sentinel::detail {

struct SentencePieceJsonShape {
  SpaceMarker space_marker;
  PrefixDecoding prefix_decoding;
  bool byte_fallback_decoder;  // the decoder turns <0xXX> tokens into their bytes
};

// Recognises normalizer + pre_tokenizer + decoder, or throws Error quoting the one that is not a
// supported shape.
SentencePieceJsonShape sentencepiece_shape(const nlohmann::json& root, const std::string& path);

// id -> the bytes the decoder gives it mid-text: "▁" as a space, and <0xXX> as the byte when the
// decoder has ByteFallback. `normalized_added_ids` are decoded from their normalized text, which is
// what tokenizers keeps for them.
std::vector<std::string> sentencepiece_pieces(const std::vector<std::string>& tokens, const SentencePieceJsonShape& shape,
                                              const std::vector<int32_t>& normalized_added_ids);

// The text of an added token with "normalized": true as tokenizers matches it: through the
// normalizer if the model has one (' ' -> "▁", and "▁" in front with Prepend), else as written.
std::string normalized_added_token(const std::string& content, SpaceMarker marker);

}  // namespace sentinel::detail
