// The decoder-model tokenizer: text -> ids -> bytes, loaded from GGUF metadata or a Hugging Face
// tokenizer.json. Byte-level BPE (GPT-2, SmolLM2, Llama-3, Qwen2) with the ids of the `tokenizers`
// library; SentencePiece (Llama 2, Mistral, TinyLlama, Gemma) with the ids of llama.cpp for a GGUF
// and of `tokenizers` for a tokenizer.json (docs/tokenizer.md says how both are checked). Not
// WordPiece (wordpiece.h) or Unigram.
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

// How text becomes ids. The SentencePiece models take no regex pre-tokenizer: each text segment
// between added tokens is one piece, with spaces written as U+2581 ("▁").
enum class TokenizerModel : uint8_t {
  ByteLevelBpe,      // GPT-2 byte alphabet, regex pre-tokenizer, merges by rank (tokenizers' BPE)
  SentencePiece,     // llama.cpp's llm_tokenizer_spm (GGUF "llama"): characters merged by the score of
                     // the merged token, leftovers as <0xXX> byte tokens; added tokens found longest first
  SentencePieceBpe,  // tokenizers' BPE with byte_fallback (tokenizer.json of Llama 2, Mistral, Gemma):
                     // characters, or the <0xXX> tokens of their bytes, merged by rank
};

// SentencePiece: where spaces become "▁" and where a prefix "▁" is added to a text segment (the text
// between two added tokens, or the whole text if there are none).
enum class SpaceMarker : uint8_t {
  Replace,             // ' ' -> '▁', nothing prepended (Gemma: GGUF add_space_prefix=false; normalizer
                       // Replace(" ", "▁"))
  PrefixEverySegment,  // also '▁' before every non-empty segment (GGUF add_space_prefix=true, as
                       // llama.cpp; normalizer Sequence[Prepend("▁"), Replace(" ", "▁")])
  MetaspaceNever,      // pre-tokenizer Metaspace(prepend_scheme="never", split=false)
  MetaspaceFirst,      // Metaspace "first": '▁' before a segment that starts the input, unless it
                       // already starts with one
  MetaspaceAlways,     // Metaspace "always": before every segment that does not start with '▁'
};

// SentencePiece: which space decode() drops at the start, as the reference decoder does.
enum class PrefixDecoding : uint8_t {
  Keep,        // none (decoder without Strip; add_space_prefix=false)
  FirstToken,  // llama.cpp's detokenize: one leading space of the first id's text; none when a
               // skipped BOS comes first
  WholeText,   // tokenizers' Strip(" ", 1, 0) after Fuse: one leading space of the decoded text
  Metaspace,   // tokenizers' Metaspace decoder: every '▁' of the first decoded token is dropped
};

enum class TokenKind : uint8_t {
  Normal,   // a vocabulary token (byte-level BPE: spelled in the GPT-2 byte alphabet)
  Special,  // control token (GGUF type 3/2, tokenizer.json special added token): matched whole only
            // under SpecialTokens::Parse, dropped by decode(skip_special=true)
  Added,    // non-special added token (GGUF type 4 user-defined): always matched whole
};

// What a loader reads from a file. Tokenizer::from_parts checks it and builds the lookup tables.
struct TokenizerParts {
  TokenizerModel model = TokenizerModel::ByteLevelBpe;
  std::vector<std::string> tokens;  // id -> spelling: byte alphabet or "▁" spelling for Normal, raw text otherwise
  std::vector<TokenKind> kinds;     // id -> kind, same size as tokens
  // Added/Special ids that tokenizers matches in its second pass, on the normalized text
  // ("normalized": true in tokenizer.json; GGUF user-defined tokens). The others match first,
  // on the raw text; the order only matters when two added tokens overlap.
  std::vector<int32_t> normalized_added_ids;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order (rank 0 merges first)
  PreTokenizerKind pre_tokenizer = PreTokenizerKind::Gpt2;  // ByteLevelBpe only; the others use None
  bool ignore_merges = false;  // a piece that is itself a token is not merged (Llama-3)
  // Text between raw added tokens is put in Unicode NFC before anything else (Qwen's tokenizer.json
  // normalizer; Qwen GGUF files, whose vocabulary expects it, too).
  bool nfc = false;
  std::optional<int32_t> bos_id, eos_id;
  // Stands for a byte with no token (SentencePieceBpe: a character with neither a token nor byte
  // tokens); without it such bytes are dropped.
  std::optional<int32_t> unk_id;
  std::vector<int32_t> extra_stop_ids;  // e.g. GGUF tokenizer.ggml.eot_id
  bool add_bos = false;
  std::string chat_template;
  std::string source;  // the file, for error messages

  // SentencePiece models only (ignored for ByteLevelBpe).
  std::vector<float> scores;                   // id -> merge score, higher first (SentencePiece; same size as tokens)
  std::vector<std::string> pieces;             // id -> the bytes the id decodes to ("▁" as a space, "<0x0A>" as
                                               // byte 0x0A); same size as tokens
  SpaceMarker space_marker = SpaceMarker::Replace;
  PrefixDecoding prefix_decoding = PrefixDecoding::Keep;
  bool fuse_unk = false;                       // SentencePieceBpe: consecutive unknown characters make one unk
  std::vector<int32_t> rstrip_ids, lstrip_ids;  // SentencePiece: added tokens that drop the ASCII whitespace
                                               // after / before them (llama.cpp's attributes; Phi-3)
};

class Tokenizer {
 public:
  // GGUF with tokenizer.ggml.model "gpt2" or "llama". Throws Error naming the key for anything unsupported.
  static Tokenizer from_gguf(const GgufFile& gguf);
  // HF tokenizer.json (+ tokenizer_config.json beside it, if present, for bos/eos/add_bos/chat_template).
  static Tokenizer from_json_file(const std::string& tokenizer_json_path);
  static Tokenizer from_parts(TokenizerParts parts);

  // Text -> ids. Any bytes: invalid UTF-8 is first replaced by U+FFFD (see unicode.h), except for
  // TokenizerModel::SentencePiece, which takes the bytes as llama.cpp does (they become byte tokens).
  // add_bos only adds BOS when the model's add_bos flag is set. Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_bos = true,
                              SpecialTokens special = SpecialTokens::Parse) const;
  // The tokens' bytes concatenated: may be invalid UTF-8 if the ids cut a character. SentencePiece
  // drops the prefix space at the start as its reference decoder does (PrefixDecoding). Throws Error
  // naming an id outside [0, n_vocab).
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::string token_bytes(int32_t id) const;        // the raw bytes one token stands for, mid-text
  const std::string& token_text(int32_t id) const;  // the vocabulary spelling (byte-level alphabet, "▁")
  std::optional<int32_t> find_token(std::string_view spelling) const;
  int32_t n_vocab() const;
  int32_t n_merges() const;
  TokenKind token_kind(int32_t id) const;
  TokenizerModel model() const;

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // Ids that end generation: eos, plus <|im_end|>, <|endoftext|>, <|eot_id|>, <end_of_turn> when
  // present (and, for a SentencePiece GGUF, every token llama.cpp treats as end of generation).
  std::vector<int32_t> stop_ids() const;
  bool add_bos() const;
  bool is_special(int32_t id) const;
  PreTokenizerKind pre_tokenizer() const;  // None for the SentencePiece models
  const std::string& chat_template() const;  // empty if none
  void set_chat_template(std::string chat_template);  // replaces the model's own (--chat-template-file)
  // "byte-level BPE, 49152 tokens, 48900 merges, pre-tokenizer smollm, 17 special, bos=1 eos=2", or
  // "SentencePiece (llama.cpp scores), 32000 tokens, 256 byte tokens, space prefix every segment, 3 special, bos=1 eos=2"
  std::string summary() const;

 private:
  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable after construction; copies share it
  std::optional<std::string> chat_template_;  // set_chat_template's, replacing the model's
};

// Incremental detokenization for streaming output: push() returns only whole UTF-8 characters and
// holds back a tail that later bytes may complete (a character split over <0xXX> byte tokens too).
// Bytes that can never become valid are emitted as U+FFFD right away, so the concatenated output
// equals replace_invalid_utf8 of the tokens' bytes (token_bytes) concatenated. That is decode(ids),
// except that a SentencePiece stream keeps the space decode() drops at the start: streamed ids
// continue a prompt, as in llama.cpp, which streams token_to_piece without stripping.
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
