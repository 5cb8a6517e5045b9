// Tokenizer::from_json_file: reads a Hugging Face tokenizer.json (BPE model only: byte-level, or
// SentencePiece-style with byte_fallback, whose shapes load_json_spm.cpp recognises) and, when it
// sits beside it, tokenizer_config.json for bos/eos/add_bos/chat_template. Every option that would
// change ids and is not implemented (other normalizers, dropout, EOS appending, ...) throws Error
// naming it, so a tokenizer is either loaded exactly or not at all.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "load_json_spm.h"
#include "sentinel/core/error.h"
#include "sentinel/core/json_file.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {
namespace {

using nlohmann::json;

bool is_null_or_missing(const json& node, const char* key) { return !node.contains(key) || node[key].is_null(); }

std::string type_of(const json& node) { return node.is_object() ? node.value("type", std::string()) : ""; }

// tokenizer_config.json writes a token as "text" or {"content": "text", ...}.
std::optional<std::string> token_content(const json& config, const char* key) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content")) return value["content"].get<std::string>();
  return std::nullopt;
}

void check_model_options(const json& model, const std::string& path) {
  check(type_of(model) == "BPE", path, ": model.type is '", type_of(model), "'; only BPE is supported ",
        "(byte-level, or SentencePiece-style with byte_fallback)");
  check(is_null_or_missing(model, "dropout") || model["dropout"].get<double>() == 0.0, path,
        ": model.dropout is set; BPE dropout is for training and is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    check(is_null_or_missing(model, key) || model[key].get<std::string>().empty(), path, ": model.", key,
          " is set; only byte-level BPE without subword markers is supported");
  }
}

// Merges come as "left right" strings (older files) or ["left", "right"] arrays (tokenizers >= 0.20).
std::pair<std::string, std::string> parse_merge(const json& merge, size_t rank, const std::string& path) {
  if (merge.is_array() && merge.size() == 2) return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  check(merge.is_string(), path, ": model.merges[", rank, "] is neither \"a b\" nor [\"a\", \"b\"]: ", merge.dump());
  const std::string text = merge.get<std::string>();
  const size_t cut = text.find(' ');
  check(cut != std::string::npos && text.find(' ', cut + 1) == std::string::npos, path, ": model.merges[", rank,
        "] = '", text, "' must hold exactly one space");
  return {text.substr(0, cut), text.substr(cut + 1)};
}

// The BOS a post-processor prepends: TemplateProcessing "single" = [SpecialToken X]? $A, possibly
// inside a Sequence with ByteLevel (which changes offsets only). Appending tokens is refused.
std::optional<int32_t> bos_from_post_processor(const json& post, const std::string& path) {
  const std::string type = type_of(post);
  if (post.is_null() || type == "ByteLevel") return std::nullopt;
  if (type == "Sequence") {
    std::optional<int32_t> bos;
    for (const json& step : post.value("processors", json::array())) {
      if (auto id = bos_from_post_processor(step, path)) bos = id;
    }
    return bos;
  }
  check(type == "TemplateProcessing", path, ": post_processor type '", type, "' is not supported");
  const json& single = post["single"];
  std::optional<int32_t> bos;
  bool seen_sequence = false;
  for (const json& item : single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string name = item["SpecialToken"]["id"].get<std::string>();
    check(!seen_sequence, path, ": post_processor appends '", name, "' after the text; only a prepended BOS is ",
          "supported");
    check(!bos, path, ": post_processor prepends more than one token; only a single BOS is supported");
    const json& ids = post["special_tokens"][name]["ids"];
    check(ids.size() == 1, path, ": post_processor special token '", name, "' must stand for exactly one id");
    bos = ids[0].get<int32_t>();
  }
  return bos;
}

std::string chat_template_of(const json& config) {
  if (!config.contains("chat_template") || config["chat_template"].is_null()) return "";
  const json& value = config["chat_template"];
  if (value.is_string()) return value.get<std::string>();
  // A list of named templates: the one named "default" is the chat template.
  for (const json& entry : value) {
    if (entry.value("name", "") == "default") return entry.value("template", "");
  }
  return "";
}

TokenizerParts parts_from_json(const std::string& path) {
  const json root = read_json_file(path);
  check(root.is_object() && root.contains("model"), path, ": not a tokenizer.json (no \"model\")");
  const json& model = root["model"];
  check_model_options(model, path);
  TokenizerParts parts;
  parts.source = path;
  const bool byte_fallback = model.value("byte_fallback", false);
  std::optional<detail::SentencePieceJsonShape> sentencepiece;
  if (byte_fallback) {
    try {
      sentencepiece = detail::sentencepiece_shape(root, path);
    } catch (const Error& e) {
      fail(e.what(), " (model.byte_fallback=true makes this a SentencePiece-style BPE)");
    }
    parts.model = TokenizerModel::SentencePieceBpe;
    parts.pre_tokenizer = PreTokenizerKind::None;
    parts.space_marker = sentencepiece->space_marker;
    parts.prefix_decoding = sentencepiece->prefix_decoding;
    parts.fuse_unk = model.value("fuse_unk", false);
  } else {
    const json normalizer = root.value("normalizer", json());
    parts.nfc = !normalizer.is_null() && type_of(normalizer) == "NFC";  // Qwen 2/2.5/3
    check(normalizer.is_null() || parts.nfc, path, ": normalizer ", normalizer.dump(),
          " is not supported (byte-level BPE models have none or NFC; SentencePiece-style BPE needs byte_fallback=true)");
    const json decoder = root.value("decoder", json());
    check(decoder.is_null() || type_of(decoder) == "ByteLevel", path, ": decoder '", type_of(decoder),
          "' is not supported; byte-level BPE decodes with ByteLevel");
    check(root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null(), path,
          ": pre_tokenizer is null; byte-level BPE needs ByteLevel");
    parts.pre_tokenizer = pre_tokenizer_from_json(root["pre_tokenizer"]);
  }
  parts.ignore_merges = model.value("ignore_merges", false);

  // The vocabulary is the model's spelling -> id map plus the added tokens, which may have ids
  // beyond it. Every id up to the largest must be present.
  int64_t max_id = -1;
  for (const auto& [spelling, id] : model.at("vocab").items()) max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  const json added = root.value("added_tokens", json::array());
  for (const json& token : added) max_id = std::max<int64_t>(max_id, token.at("id").get<int64_t>());
  check(max_id >= 0 && max_id < INT32_MAX, path, ": vocabulary ids must be in 0..2^31-2, largest is ", max_id);
  parts.tokens.assign(static_cast<size_t>(max_id + 1), std::string());
  parts.kinds.assign(parts.tokens.size(), TokenKind::Normal);
  std::vector<bool> present(parts.tokens.size(), false);
  for (const auto& [spelling, id] : model["vocab"].items()) {
    const auto index = id.get<size_t>();
    parts.tokens[index] = spelling;
    present[index] = true;
  }
  for (const json& token : added) {
    const auto id = token["id"].get<int32_t>();
    const std::string content = token.at("content").get<std::string>();
    for (const char* option : {"single_word", "lstrip", "rstrip"}) {
      check(!token.value(option, false), path, ": added token '", content, "' has ", option,
            "=true, which is not supported");
    }
    const bool special = token.value("special", false);
    parts.tokens[id] = content;
    parts.kinds[id] = special ? TokenKind::Special : TokenKind::Added;
    if (token.value("normalized", !special)) parts.normalized_added_ids.push_back(id);
    present[id] = true;
  }
  for (size_t id = 0; id < present.size(); ++id) {
    check(present[id], path, ": token id ", id, " is missing from both model.vocab and added_tokens");
  }

  const json& merges = model.at("merges");
  parts.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) parts.merges.push_back(parse_merge(merges[rank], rank, path));

  auto id_of = [&](const std::string& content) -> std::optional<int32_t> {
    for (size_t id = 0; id < parts.tokens.size(); ++id) {
      if (parts.tokens[id] == content) return static_cast<int32_t>(id);
    }
    return std::nullopt;
  };
  if (!is_null_or_missing(model, "unk_token")) {
    parts.unk_id = id_of(model["unk_token"].get<std::string>());
    check(parts.unk_id.has_value(), path, ": model.unk_token '", model["unk_token"].get<std::string>(),
          "' is not in the vocabulary");
  }

  const std::optional<int32_t> prepended = bos_from_post_processor(root.value("post_processor", json()), path);
  parts.bos_id = prepended;
  parts.add_bos = prepended.has_value();

  const std::filesystem::path config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const json config = read_json_file(config_path.string());
    auto config_id = [&](const char* key) -> std::optional<int32_t> {
      const auto content = token_content(config, key);
      if (!content) return std::nullopt;
      const auto id = id_of(*content);
      check(id.has_value(), config_path.string(), ": ", key, " '", *content, "' is not in the vocabulary");
      return id;
    };
    if (!parts.bos_id) parts.bos_id = config_id("bos_token");
    parts.eos_id = config_id("eos_token");
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      parts.add_bos = config["add_bos_token"].get<bool>();
    }
    check(!(config.contains("add_eos_token") && config["add_eos_token"].is_boolean() &&
            config["add_eos_token"].get<bool>()),
          config_path.string(), ": add_eos_token=true is not supported (appending EOS to every encoding)");
    parts.chat_template = chat_template_of(config);
  }
  if (sentencepiece) parts.pieces = detail::sentencepiece_pieces(parts.tokens, *sentencepiece, parts.normalized_added_ids);
  return parts;
}

}  // namespace

Tokenizer Tokenizer::from_json_file(const std::string& path) {
  TokenizerParts parts;
  try {
    parts = parts_from_json(path);
  } catch (const json::exception& e) {
    // A field of the wrong type or shape: name the file rather than leak nlohmann's exception.
    fail(path, ": malformed tokenizer file: ", e.what());
  }
  return from_parts(std::move(parts));
}

}  // namespace sentinel
