// Tokenizer::from_gguf: reads llama.cpp's tokenizer.ggml.* metadata into TokenizerParts. Only
// byte-level BPE ("gpt2"); SentencePiece ("llama") and WordPiece ("bert") GGUFs are refused.
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

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  const std::string model = gguf.get("tokenizer.ggml.model").as_string();
  check(model == "gpt2", path, ": tokenizer.ggml.model is '", model, "'; only byte-level BPE ('gpt2') is ",
        "supported (SentencePiece 'llama' and WordPiece 'bert' vocabularies are not)");

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
