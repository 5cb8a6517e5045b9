// Internal: llama.cpp's way of finding added tokens in text (tokenizer_st_partition in
// src/llama-vocab.cpp), used by the SentencePiece GGUF path. Unlike tokenizers' leftmost-longest scan
// (added_tokens.h), llama.cpp takes the tokens one at a time, longest first, and cuts every
// occurrence of each out of the text that earlier tokens left; a token may drop the whitespace next
// to it (lstrip/rstrip). The same result is computed here without scanning the text once per token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentinel::detail {

struct Fragment {
  uint32_t begin, end;  // byte range of text; empty for a token
  int32_t id;           // the token, or -1 for text
};

class SpecialPartition {
 public:
  struct Token {
    std::string text;
    int32_t id;
    bool special;  // control/unknown: only matched when special tokens are parsed
    bool lstrip, rstrip;
  };

  // `tokens` in id order (the order llama.cpp collects them before sorting); empty texts are ignored.
  explicit SpecialPartition(std::vector<Token> tokens);

  // Cuts text into text and token fragments, in order. With parse_special false, only the
  // non-special (user-defined) tokens are looked for.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 private:
  void mark_present(std::string_view text, std::vector<char>& present) const;

  std::vector<Token> tokens_;  // in llama.cpp's search order: std::sort by length, longest first
  // A trie of the token texts, to learn in one pass which tokens occur in a text at all.
  struct Node {
    std::vector<int32_t> tokens;  // indices into tokens_ of the tokens ending here (equal texts)
    std::unordered_map<uint8_t, int32_t> children;
  };
  std::vector<Node> trie_;
};

}  // namespace sentinel::detail
