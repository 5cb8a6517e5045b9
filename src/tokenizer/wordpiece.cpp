// WordPieceTokenizer: loading a BERT tokenizer.json (refusing every option that would change ids
// and is not implemented) and encoding as tokenizers' WordPiece model does (models/wordpiece/mod.rs):
// per word, the longest vocabulary entry from the current position, "##"-prefixed after the first.
#include "sentinel/tokenizer/wordpiece.h"

#include <nlohmann/json.hpp>

#include <sstream>
#include <unordered_map>

#include "added_tokens.h"
#include "sentinel/core/error.h"
#include "sentinel/core/json_file.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel {

namespace {

using nlohmann::json;

// Lets the vocabulary be searched with a string_view, without building a std::string per lookup.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocabulary = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

}  // namespace

struct WordPieceTokenizer::Impl {
  std::vector<std::string> tokens;  // id -> text
  Vocabulary ids;                   // text -> id
  int32_t unk_id = 0;
  int32_t pad_id = 0;
  std::string continuing_prefix;     // "##"
  size_t max_input_chars_per_word = 100;
  BertNormalizer normalizer;
  std::vector<int32_t> prefix_ids, suffix_ids;  // the post-processor's ids before and after the text
  std::string template_text;                    // "[CLS] $A [SEP]", for summary()
  detail::AddedTokenMatcher added;
  std::string source;

  std::optional<int32_t> find(std::string_view text) const {
    const auto it = ids.find(text);
    return it == ids.end() ? std::nullopt : std::optional<int32_t>(it->second);
  }
};

namespace {

std::string type_of(const json& node) { return node.is_object() ? node.value("type", std::string()) : ""; }

void load_model(WordPieceTokenizer::Impl& impl, const json& model, const std::string& src) {
  check(type_of(model) == "WordPiece", src, ": model.type is '", type_of(model),
        "'; only WordPiece is supported here (byte-level BPE files load with Tokenizer::from_json_file)");
  const json& vocab = model.at("vocab");
  check(vocab.is_object() && !vocab.empty(), src, ": model.vocab must be a non-empty {token: id} object");
  impl.tokens.assign(vocab.size(), std::string());
  std::vector<bool> present(vocab.size(), false);
  for (const auto& [text, id_json] : vocab.items()) {
    const auto id = id_json.get<int64_t>();
    check(id >= 0 && id < static_cast<int64_t>(vocab.size()), src, ": model.vocab gives '", text, "' the id ", id,
          "; ids must be 0..", vocab.size() - 1);
    check(!present[id], src, ": model.vocab gives the id ", id, " to both '", impl.tokens[id], "' and '", text, "'");
    present[id] = true;
    impl.tokens[id] = text;
    impl.ids.emplace(text, static_cast<int32_t>(id));
  }
  const std::string unk = model.at("unk_token").get<std::string>();
  const auto unk_id = impl.find(unk);
  check(unk_id.has_value(), src, ": model.unk_token '", unk, "' is not in model.vocab");
  impl.unk_id = *unk_id;
  impl.continuing_prefix = model.value("continuing_subword_prefix", std::string("##"));
  const auto max_chars = model.value("max_input_chars_per_word", int64_t{100});
  check(max_chars > 0, src, ": model.max_input_chars_per_word is ", max_chars, "; it must be positive");
  impl.max_input_chars_per_word = static_cast<size_t>(max_chars);
}

BertNormalizerOptions load_normalizer(const json& normalizer, const std::string& src) {
  check(type_of(normalizer) == "BertNormalizer", src, ": normalizer ", normalizer.dump(),
        " is not supported; WordPiece files need a BertNormalizer");
  BertNormalizerOptions options;
  options.clean_text = normalizer.value("clean_text", true);
  options.handle_chinese_chars = normalizer.value("handle_chinese_chars", true);
  options.lowercase = normalizer.value("lowercase", true);
  // tokenizers: strip_accents None means "strip when lowercasing".
  const json strip = normalizer.value("strip_accents", json());
  options.strip_accents = strip.is_null() ? options.lowercase : strip.get<bool>();
  return options;
}

int32_t single_id(const json& special_tokens, const std::string& name, const std::string& src) {
  check(special_tokens.contains(name), src, ": post_processor uses '", name, "' but special_tokens does not define it");
  const json& ids = special_tokens[name].at("ids");
  check(ids.is_array() && ids.size() == 1, src, ": post_processor special token '", name,
        "' must stand for exactly one id, not ", ids.dump());
  return ids[0].get<int32_t>();
}

// TemplateProcessing "single": special tokens, then $A, then special tokens (BERT: [CLS] $A [SEP]);
// or the older BertProcessing {"cls": [text, id], "sep": [text, id]}.
void load_post_processor(WordPieceTokenizer::Impl& impl, const json& post, const std::string& src) {
  const std::string type = type_of(post);
  if (type == "BertProcessing") {
    impl.prefix_ids = {post.at("cls").at(1).get<int32_t>()};
    impl.suffix_ids = {post.at("sep").at(1).get<int32_t>()};
    impl.template_text = post["cls"][0].get<std::string>() + " $A " + post["sep"][0].get<std::string>();
    return;
  }
  check(type == "TemplateProcessing", src, ": post_processor ", post.dump().substr(0, 200),
        " is not supported; expected TemplateProcessing or BertProcessing");
  bool seen_sequence = false;
  for (const json& item : post.at("single")) {
    if (item.contains("Sequence")) {
      const std::string id = item["Sequence"].at("id").get<std::string>();
      check(id == "A" && !seen_sequence, src, ": post_processor.single must hold $A exactly once, found ", item.dump());
      seen_sequence = true;
      impl.template_text += impl.template_text.empty() ? "$A" : " $A";
      continue;
    }
    check(item.contains("SpecialToken"), src, ": post_processor.single item ", item.dump(), " is not supported");
    const std::string name = item["SpecialToken"].at("id").get<std::string>();
    (seen_sequence ? impl.suffix_ids : impl.prefix_ids).push_back(single_id(post.at("special_tokens"), name, src));
    impl.template_text += (impl.template_text.empty() ? "" : " ") + name;
  }
  check(seen_sequence, src, ": post_processor.single has no $A");
}

void load_added_tokens(WordPieceTokenizer::Impl& impl, const json& added, const std::string& src) {
  for (const json& token : added) {
    const std::string content = token.at("content").get<std::string>();
    const auto id = token.at("id").get<int32_t>();
    check(impl.find(content) == std::optional<int32_t>(id), src, ": added token '", content, "' has id ", id,
          " but model.vocab ", impl.find(content) ? "gives it another id" : "does not hold it");
    for (const char* option : {"single_word", "lstrip", "rstrip"}) {
      check(!token.value(option, false), src, ": added token '", content, "' has ", option,
            "=true, which is not supported");
    }
    // Normalized added tokens are matched in the normalized text, a second pass not implemented.
    check(!token.value("normalized", false), src, ": added token '", content,
          "' has normalized=true, which is not supported");
    impl.added.add(content, id, token.value("special", false));
  }
}

std::shared_ptr<WordPieceTokenizer::Impl> load(const json& root, const std::string& src) {
  check(root.is_object() && root.contains("model"), src, ": not a tokenizer.json (no \"model\")");
  auto impl = std::make_shared<WordPieceTokenizer::Impl>();
  impl->source = src;
  load_model(*impl, root["model"], src);
  impl->normalizer = BertNormalizer(load_normalizer(root.value("normalizer", json()), src));
  const json pre = root.value("pre_tokenizer", json());
  check(type_of(pre) == "BertPreTokenizer", src, ": pre_tokenizer ", pre.dump(),
        " is not supported; WordPiece files need a BertPreTokenizer");
  load_post_processor(*impl, root.value("post_processor", json()), src);
  for (const auto& ids : {impl->prefix_ids, impl->suffix_ids}) {
    for (int32_t id : ids) {
      check(id >= 0 && id < static_cast<int32_t>(impl->tokens.size()), src, ": post_processor id ", id,
            " is outside the vocabulary of ", impl->tokens.size());
    }
  }
  load_added_tokens(*impl, root.value("added_tokens", json::array()), src);
  const json padding = root.value("padding", json());
  if (padding.is_object() && padding.contains("pad_id")) {
    impl->pad_id = padding["pad_id"].get<int32_t>();
  } else if (const auto pad = impl->find("[PAD]")) {
    impl->pad_id = *pad;
  }
  return impl;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_json_text(std::string_view json_text, const std::string& source) {
  try {
    return WordPieceTokenizer(load(json::parse(json_text), source));
  } catch (const json::exception& e) {
    // Invalid JSON, or a field of the wrong type or shape: name the file, not nlohmann's internals.
    fail(source, ": malformed tokenizer file: ", e.what());
  }
}

WordPieceTokenizer WordPieceTokenizer::from_json_file(const std::string& path) {
  const json root = read_json_file(path);
  try {
    return WordPieceTokenizer(load(root, path));
  } catch (const json::exception& e) {
    fail(path, ": malformed tokenizer file: ", e.what());
  }
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<int32_t>& ids) const {
  const Impl& m = *impl_;
  // Character boundaries: WordPiece shortens a candidate one character at a time.
  std::vector<uint32_t> bounds;
  for (size_t i = 0; i < word.size();) {
    bounds.push_back(static_cast<uint32_t>(i));
    i += unicode::decode_utf8_step(word, i).length;
  }
  if (bounds.empty()) return;
  if (bounds.size() > m.max_input_chars_per_word) {
    ids.push_back(m.unk_id);
    return;
  }
  bounds.push_back(static_cast<uint32_t>(word.size()));
  const size_t first_new = ids.size();
  std::string candidate;
  size_t start = 0;  // index into bounds
  while (start + 1 < bounds.size()) {
    std::optional<int32_t> found;
    size_t end = bounds.size() - 1;
    for (; end > start; --end) {
      const std::string_view piece = word.substr(bounds[start], bounds[end] - bounds[start]);
      if (start == 0) {
        found = m.find(piece);
      } else {
        candidate.assign(m.continuing_prefix).append(piece);
        found = m.find(candidate);
      }
      if (found) break;
    }
    if (!found) {  // some part has no piece: the whole word is unknown
      ids.resize(first_new);
      ids.push_back(m.unk_id);
      return;
    }
    ids.push_back(*found);
    start = end;
  }
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, size_t max_length) const {
  const Impl& m = *impl_;
  const size_t n_special = n_special_tokens();
  check(max_length == 0 || max_length >= n_special, "max_length ", max_length, " leaves no room for the ", n_special,
        " special tokens of ", m.template_text);
  const std::string valid = unicode::replace_invalid_utf8(text);
  std::vector<detail::AddedTokenMatch> matches;
  m.added.find_all(valid, matches);

  std::vector<int32_t> ids;
  std::vector<std::string> words;
  auto encode_segment = [&](std::string_view segment) {
    if (segment.empty()) return;
    words.clear();
    bert_pre_tokenize(m.normalizer.normalize(segment), words);
    for (const std::string& word : words) encode_word(word, ids);
  };
  size_t position = 0;
  for (const detail::AddedTokenMatch& match : matches) {
    encode_segment(std::string_view(valid).substr(position, match.begin - position));
    ids.push_back(match.id);
    position = match.end;
  }
  encode_segment(std::string_view(valid).substr(position));

  if (max_length > 0 && ids.size() + n_special > max_length) ids.resize(max_length - n_special);
  std::vector<int32_t> out;
  out.reserve(ids.size() + n_special);
  out.insert(out.end(), m.prefix_ids.begin(), m.prefix_ids.end());
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), m.suffix_ids.begin(), m.suffix_ids.end());
  return out;
}

int32_t WordPieceTokenizer::n_vocab() const { return static_cast<int32_t>(impl_->tokens.size()); }

std::optional<int32_t> WordPieceTokenizer::find_token(std::string_view text) const { return impl_->find(text); }

const std::string& WordPieceTokenizer::token_text(int32_t id) const {
  check(id >= 0 && id < n_vocab(), "token id ", id, " is outside the vocabulary [0, ", n_vocab(), ") of ",
        impl_->source);
  return impl_->tokens[static_cast<size_t>(id)];
}

int32_t WordPieceTokenizer::unk_id() const { return impl_->unk_id; }
int32_t WordPieceTokenizer::pad_id() const { return impl_->pad_id; }
size_t WordPieceTokenizer::n_special_tokens() const { return impl_->prefix_ids.size() + impl_->suffix_ids.size(); }
const BertNormalizer& WordPieceTokenizer::normalizer() const { return impl_->normalizer; }

std::string WordPieceTokenizer::summary() const {
  const BertNormalizerOptions& o = impl_->normalizer.options();
  std::ostringstream out;
  out << "WordPiece, " << n_vocab() << " tokens, unk " << impl_->tokens[impl_->unk_id] << ", " << impl_->template_text;
  if (o.lowercase) out << ", lowercase";
  if (o.strip_accents) out << ", strip accents";
  if (o.handle_chinese_chars) out << ", chinese chars";
  if (o.clean_text) out << ", clean text";
  return out.str();
}

}  // namespace sentinel
