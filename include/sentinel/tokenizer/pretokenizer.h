// Pre-tokenizers: cut text into the pieces that BPE encodes one by one, reproducing exactly the
// regexes of Hugging Face `tokenizers` (GPT-2, SmolLM2's digit split + GPT-2, Llama-3, Qwen2) with
// hand-written matchers instead of a regex engine. Not a regex engine: unknown patterns are refused.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel {

enum class PreTokenizerKind {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  // (tokenizers' ByteLevel(use_regex=true); llama.cpp pre "gpt2", "gpt-2", "default", "phi-2").
  Gpt2,
  // Digits(individual_digits=true) then the GPT-2 pattern on each stretch between digits: every
  // numeric character (Rust char::is_numeric) is its own piece (SmolLM2; llama.cpp "smollm").
  DigitsThenGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+   (Llama-3; llama.cpp "llama3", "llama-bpe", "llama-v3").
  Llama3,
  // The Llama-3 pattern with \p{N} in place of \p{N}{1,3} (llama.cpp "qwen2").
  Qwen2,
  // No split: the whole text is one piece (the SentencePiece models, which mark spaces instead).
  None,
};

// "gpt2", "smollm", "llama3", "qwen2", "none": the names summary() prints.
std::string_view pre_tokenizer_name(PreTokenizerKind kind);

// From GGUF tokenizer.ggml.pre; throws Error naming the value and the supported ones.
PreTokenizerKind pre_tokenizer_from_gguf(const std::string& pre);

// From tokenizer.json's "pre_tokenizer" object. Recognises ByteLevel(use_regex=true) (GPT-2),
// Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)], and Sequence[Split(<one of
// the known regexes>, Isolated), ByteLevel(use_regex=false)]; anything else (including
// add_prefix_space=true) throws Error quoting the structure.
PreTokenizerKind pre_tokenizer_from_json(const nlohmann::json& pre_tokenizer);

// A byte range [begin, end) of the input text.
struct Piece {
  uint32_t begin;
  uint32_t end;
};

class PreTokenizer {
 public:
  explicit PreTokenizer(PreTokenizerKind kind) : kind_(kind) {}
  PreTokenizerKind kind() const { return kind_; }

  // Appends the pieces of `text` (valid UTF-8, at most 4 GiB) to `pieces`, offset by `base`. The
  // pieces cover the text exactly, in order. `text` must already be free of added tokens.
  void split(std::string_view text, std::vector<Piece>& pieces, uint32_t base = 0) const;

  // Convenience for tests: the pieces as strings.
  std::vector<std::string> split(std::string_view text) const;

 private:
  PreTokenizerKind kind_;
};

}  // namespace sentinel
