// Tokenizer::from_gguf: reads llama.cpp's tokenizer.ggml.* metadata into TokenizerParts, for
// byte-level BPE ("gpt2") and SentencePiece ("llama", as llama.cpp's llama_vocab::impl::load reads
// it). WordPiece ("bert"), Unigram ("t5") and the other llama.cpp vocabularies are refused.
#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_set>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {
namespace {

// llama.cpp's llama_token_type values (tokenizer.ggml.token_type).
enum GgufTokenType : int64_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6
};

std::optional<int32_t> optional_id(const GgufFile& gguf, const std::string& key) {
  const GgufValue* value = gguf.find(key);
  if (value == nullptr) return std::nullopt;
  const int64_t id = value->as_int();
  // Some converters write -1 (or UINT32_MAX) for "no such token".
  if (id < 0 || id > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(id);
}

bool optional_flag(const GgufFile& gguf, const std::string& key, bool default_value) {
  const GgufValue* value = gguf.find(key);
  return value == nullptr ? default_value : value->as_bool();
}

// Tokens llama.cpp makes control tokens by their text whatever the file says (end of turn, fill in
// the middle), and of those the ones that end generation (llama_vocab::impl::load, "auto-detect
// special tokens by text" and special_eog_ids).
constexpr const char* kEndOfGeneration[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",                           // FIM pad
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};  // FIM repo, sep
constexpr const char* kFillInTheMiddle[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>",
    "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>",
    "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>",
    "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"};

// The byte a llama.cpp byte token (type 6) stands for: its text is "<0xXX>".
char byte_of(const std::string& spelling, size_t id, const std::string& path) {
  const bool well_formed = spelling.size() == 6 && spelling.compare(0, 3, "<0x") == 0 && spelling[5] == '>' &&
                           std::isxdigit(static_cast<unsigned char>(spelling[3])) &&
                           std::isxdigit(static_cast<unsigned char>(spelling[4]));
  check(well_formed, path, ": token ", id, " ('", spelling, "') has tokenizer.ggml.token_type 6 (byte) but is not ",
        "spelled <0xXX>");
  return static_cast<char>(std::stoi(spelling.substr(3, 2), nullptr, 16));
}

// A SentencePiece GGUF (tokenizer.ggml.model "llama"), read as llama.cpp reads it: scores, byte
// tokens, the space prefix (on unless add_space_prefix says otherwise), BOS on by default, BOS 1,
// EOS 2 and UNK 0 when the file names none.
TokenizerParts sentencepiece_parts(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  TokenizerParts parts;
  parts.model = TokenizerModel::SentencePiece;
  parts.pre_tokenizer = PreTokenizerKind::None;
  parts.source = path;
  parts.tokens = gguf.get("tokenizer.ggml.tokens").as_string_array();
  const size_t n_vocab = parts.tokens.size();
  for (size_t id = 0; id < n_vocab; ++id) {
    if (parts.tokens[id].empty()) parts.tokens[id] = "[EMPTY_" + std::to_string(id) + "]";  // as llama.cpp
  }

  std::vector<int64_t> types(n_vocab, kNormal);
  if (const GgufValue* value = gguf.find("tokenizer.ggml.token_type")) types = value->as_int_array();
  check(types.size() >= n_vocab, path, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", n_vocab,
        " tokens");
  parts.scores.assign(n_vocab, 0.0f);
  if (const GgufValue* value = gguf.find("tokenizer.ggml.scores")) {
    const std::vector<double> scores = value->as_float_array();
    check(scores.size() >= n_vocab, path, ": tokenizer.ggml.scores has ", scores.size(), " entries for ", n_vocab,
          " tokens");
    for (size_t id = 0; id < n_vocab; ++id) parts.scores[id] = static_cast<float>(scores[id]);
  }

  parts.kinds.reserve(n_vocab);
  parts.pieces.reserve(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    const std::string& spelling = parts.tokens[id];
    switch (types[id]) {
      case kControl:
      case kUnknown:
        parts.kinds.push_back(TokenKind::Special);
        parts.pieces.push_back(spelling);
        break;
      case kUserDefined:
        parts.kinds.push_back(TokenKind::Added);
        parts.pieces.push_back(spelling);
        break;
      case kNormal: {
        parts.kinds.push_back(TokenKind::Normal);
        std::string piece;
        for (size_t i = 0; i < spelling.size(); ++i) {
          if (spelling.compare(i, 3, "\xE2\x96\x81") == 0) {
            piece.push_back(' ');
            i += 2;
          } else {
            piece.push_back(spelling[i]);
          }
        }
        parts.pieces.push_back(std::move(piece));
        break;
      }
      case kUnused:  // llama.cpp's token_to_piece writes nothing for these
        parts.kinds.push_back(TokenKind::Normal);
        parts.pieces.emplace_back();
        break;
      case kByte:
        parts.kinds.push_back(TokenKind::Normal);
        parts.pieces.emplace_back(1, byte_of(spelling, id, path));
        break;
      default:
        fail(path, ": token ", id, " ('", spelling, "') has unknown tokenizer.ggml.token_type ", types[id]);
    }
  }

  // One pass over the vocabulary; the first token of a listed text counts, as a map lookup would.
  const std::unordered_set<std::string_view> fill_in_the_middle(std::begin(kFillInTheMiddle), std::end(kFillInTheMiddle));
  const std::unordered_set<std::string_view> end_of_generation(std::begin(kEndOfGeneration), std::end(kEndOfGeneration));
  std::unordered_set<std::string_view> seen;
  for (size_t id = 0; id < n_vocab; ++id) {
    const std::string_view text = parts.tokens[id];
    const bool eog = end_of_generation.count(text) > 0;
    if ((!eog && !fill_in_the_middle.count(text)) || !seen.insert(text).second) continue;
    parts.kinds[id] = TokenKind::Special;  // rendered as its text, like every control token
    parts.pieces[id] = parts.tokens[id];
    if (eog) parts.extra_stop_ids.push_back(static_cast<int32_t>(id));
  }
  // llama.cpp gives Phi-3's added tokens rstrip by the model's name (its tokenizer.json has them).
  std::string name = gguf.find("general.name") != nullptr ? gguf.get("general.name").as_string() : "";
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (size_t id = 0; id < n_vocab; ++id) {
      const std::string& text = parts.tokens[id];
      if (parts.kinds[id] != TokenKind::Normal && text != "<unk>" && text != "<s>" && text != "<|endoftext|>") {
        parts.rstrip_ids.push_back(static_cast<int32_t>(id));
      }
    }
  }

  auto id_or_default = [&](const char* key, int32_t fallback) -> std::optional<int32_t> {
    if (gguf.find(key) != nullptr) {
      const int64_t id = gguf.get(key).as_int();
      if (id >= 0 && static_cast<size_t>(id) < n_vocab) return static_cast<int32_t>(id);
    }
    if (static_cast<size_t>(fallback) < n_vocab) return fallback;
    return std::nullopt;
  };
  parts.bos_id = id_or_default("tokenizer.ggml.bos_token_id", 1);
  parts.eos_id = id_or_default("tokenizer.ggml.eos_token_id", 2);
  parts.unk_id = id_or_default("tokenizer.ggml.unknown_token_id", 0);
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (auto id = optional_id(gguf, key)) parts.extra_stop_ids.push_back(*id);
  }
  parts.add_bos = optional_flag(gguf, "tokenizer.ggml.add_bos_token", true);
  check(!optional_flag(gguf, "tokenizer.ggml.add_eos_token", false), path,
        ": tokenizer.ggml.add_eos_token is true; appending EOS to every encoding is not supported");
  const bool prefix = optional_flag(gguf, "tokenizer.ggml.add_space_prefix", true);
  parts.space_marker = prefix ? SpaceMarker::PrefixEverySegment : SpaceMarker::Replace;
  parts.prefix_decoding = prefix ? PrefixDecoding::FirstToken : PrefixDecoding::Keep;
  if (const GgufValue* tmpl = gguf.find("tokenizer.chat_template")) parts.chat_template = tmpl->as_string();
  return parts;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  const std::string model = gguf.get("tokenizer.ggml.model").as_string();
  if (model == "llama") return from_parts(sentencepiece_parts(gguf));
  check(model == "gpt2", path, ": tokenizer.ggml.model is '", model, "'; supported are byte-level BPE ('gpt2') ",
        "and SentencePiece ('llama'), not WordPiece 'bert', Unigram 't5' or others");

  TokenizerParts parts;
  parts.source = path;
  parts.tokens = gguf.get("tokenizer.ggml.tokens").as_string_array();
  const size_t n_vocab = parts.tokens.size();

  std::vector<int64_t> types(n_vocab, kNormal);
  if (const GgufValue* value = gguf.find("tokenizer.ggml.token_type")) types = value->as_int_array();
  check(types.size() == n_vocab, path, ": tokenizer.ggml.token_type has ", types.size(), " entries for ", n_vocab,
        " tokens");
  parts.kinds.reserve(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    switch (types[id]) {
      case kControl:
      case kUnknown:
        parts.kinds.push_back(TokenKind::Special);
        break;
      case kUserDefined:
        // Converted from non-special added tokens, which tokenizers matches after normalization.
        parts.kinds.push_back(TokenKind::Added);
        parts.normalized_added_ids.push_back(static_cast<int32_t>(id));
        break;
      case kNormal:
      case kUnused:
      case kByte:
        parts.kinds.push_back(TokenKind::Normal);
        break;
      default:
        fail(path, ": token ", id, " ('", parts.tokens[id], "') has unknown tokenizer.ggml.token_type ", types[id]);
    }
  }

  // A merge is "left right"; the split is at the first space after the first character, as in
  // llama.cpp, because the left part may itself be a lone space in non-byte-level vocabularies.
  const std::vector<std::string> merges = gguf.get("tokenizer.ggml.merges").as_string_array();
  parts.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    const size_t cut = merge.find(' ', 1);
    check(cut != std::string::npos, path, ": tokenizer.ggml.merges[", rank, "] = '", merge,
          "' is not of the form 'left right'");
    parts.merges.emplace_back(merge.substr(0, cut), merge.substr(cut + 1));
  }

  const GgufValue* pre = gguf.find("tokenizer.ggml.pre");
  parts.pre_tokenizer = pre_tokenizer_from_gguf(pre != nullptr ? pre->as_string() : "default");
  // Llama-3 vocabularies use their whole-word tokens directly, and llama.cpp defaults to adding
  // BOS for them when the file does not say; everything else defaults to no BOS.
  const bool llama3 = parts.pre_tokenizer == PreTokenizerKind::Llama3;
  parts.ignore_merges = llama3;
  // Qwen's tokenizer.json puts text in NFC; its GGUF does not say so, and llama.cpp skips it, but
  // the vocabulary was trained on NFC text and transformers' ids are the reference.
  parts.nfc = parts.pre_tokenizer == PreTokenizerKind::Qwen2;
  parts.add_bos = optional_flag(gguf, "tokenizer.ggml.add_bos_token", llama3);
  check(!optional_flag(gguf, "tokenizer.ggml.add_eos_token", false), path,
        ": tokenizer.ggml.add_eos_token is true; appending EOS to every encoding is not supported");
  check(!optional_flag(gguf, "tokenizer.ggml.add_space_prefix", false), path,
        ": tokenizer.ggml.add_space_prefix is true, which byte-level BPE does not do; the file is inconsistent");

  parts.bos_id = optional_id(gguf, "tokenizer.ggml.bos_token_id");
  parts.eos_id = optional_id(gguf, "tokenizer.ggml.eos_token_id");
  // tokenizer.ggml.unknown_token_id is not used for bytes missing from the vocabulary: llama.cpp
  // drops such bytes, and so does tokenizers with SmolLM2's unk_token=null. SmolLM2 lacks tokens
  // for 21 bytes: six control characters (\x04, \x06, \x13, \x14, \x16, \x1D), 0xF1 and 0xF2
  // (leads of planes 4-11), and 13 bytes that never occur in UTF-8.
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (auto id = optional_id(gguf, key)) parts.extra_stop_ids.push_back(*id);
  }
  if (const GgufValue* tmpl = gguf.find("tokenizer.chat_template")) parts.chat_template = tmpl->as_string();
  return from_parts(std::move(parts));
}

}  // namespace sentinel
