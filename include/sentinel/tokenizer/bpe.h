// Byte-level BPE tokenizer (GPT-2, SmolLM2, Llama-3, Qwen2 families): text -> ids -> bytes, loaded
// from GGUF metadata or a Hugging Face tokenizer.json, giving the same ids as the Hugging Face
// `tokenizers` library (docs/tokenizer.md says how that is checked). Not SentencePiece or WordPiece.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentinel/tokenizer/pretokenizer.h"

namespace sentinel {

class GgufFile;

// Parse: an added token's text ("<|im_start|>") in the input becomes its id. Ignore: special
// tokens are split like ordinary text (tokenizers' split_special_tokens=True); non-special added
// tokens are still matched, as in tokenizers and llama.cpp.
enum class SpecialTokens { Parse, Ignore };

enum class TokenKind : uint8_t {
  Normal,   // a BPE token, spelled in the GPT-2 byte alphabet
  Special,  // control token (GGUF type 3/2, tokenizer.json special added token): matched whole only
            // under SpecialTokens::Parse, dropped by decode(skip_special=true)
  Added,    // non-special added token (GGUF type 4 user-defined): always matched whole
};

// What a loader reads from a file. Tokenizer::from_parts checks it and builds the lookup tables.
struct TokenizerParts {
  std::vector<std::string> tokens;  // id -> spelling: byte alphabet for Normal, raw text otherwise
  std::vector<TokenKind> kinds;     // id -> kind, same size as tokens
  // Added/Special ids that tokenizers matches in its second pass, on the normalized text
  // ("normalized": true in tokenizer.json; GGUF user-defined tokens). The others match first,
  // on the raw text; the order only matters when two added tokens overlap.
  std::vector<int32_t> normalized_added_ids;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order (rank 0 merges first)
  PreTokenizerKind pre_tokenizer = PreTokenizerKind::Gpt2;
  bool ignore_merges = false;  // a piece that is itself a token is not merged (Llama-3)
  std::optional<int32_t> bos_id, eos_id;
  std::optional<int32_t> unk_id;  // stands for a byte with no token; without it such bytes are dropped
  std::vector<int32_t> extra_stop_ids;  // e.g. GGUF tokenizer.ggml.eot_id
  bool add_bos = false;
  std::string chat_template;
  std::string source;  // the file, for error messages
};

class Tokenizer {
 public:
  // GGUF with tokenizer.ggml.model "gpt2". Throws Error naming the key for anything unsupported.
  static Tokenizer from_gguf(const GgufFile& gguf);
  // HF tokenizer.json (+ tokenizer_config.json beside it, if present, for bos/eos/add_bos/chat_template).
  static Tokenizer from_json_file(const std::string& tokenizer_json_path);
  static Tokenizer from_parts(TokenizerParts parts);

  // Text (any bytes; invalid UTF-8 is first replaced by U+FFFD, see unicode.h) -> ids. add_bos
  // only adds BOS when the model's add_bos flag is set. Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = true,
                              SpecialTokens special = SpecialTokens::Parse) const;
  // The tokens' bytes concatenated: may be invalid UTF-8 if the ids cut a character. Throws Error
  // naming an id outside [0, n_vocab).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::string token_bytes(int32_t id) const;        // the raw bytes one token stands for
  const std::string& token_text(int32_t id) const;  // the vocabulary spelling (byte-level alphabet)
  std::optional<int32_t> find_token(std::string_view spelling) const;
  int32_t n_vocab() const;
  int32_t n_merges() const;
  TokenKind token_kind(int32_t id) const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // Ids that end generation: eos, plus <|im_end|>, <|endoftext|>, <|eot_id|> when present.
  std::vector<int32_t> stop_ids() const;
  bool add_bos() const;
  bool is_special(int32_t id) const;
  PreTokenizerKind pre_tokenizer() const;
  const std::string& chat_template() const;  // empty if none
  // "byte-level BPE, 49152 tokens, 48900 merges, pre-tokenizer smollm, 17 special, bos=1 eos=2"
  std::string summary() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable after construction; copies share it
};

// Incremental detokenization for streaming output: push() returns only whole UTF-8 characters and
// holds back a tail that later bytes may complete. Bytes that can never become valid are emitted
// as U+FFFD right away, so the concatenated output equals replace_invalid_utf8(decode(ids)).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int32_t id);  // returns the bytes that now form complete UTF-8 characters
  std::string flush();           // whatever is left (an incomplete tail as U+FFFD); then empty

 private:
  Tokenizer tokenizer_;  // shares the vocabulary; no lifetime coupling with the caller's object
  bool skip_special_;
  std::string pending_;  // at most 3 bytes: the start of a character still missing bytes
};

}  // namespace sentinel
