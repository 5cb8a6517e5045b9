// Tokenizer: builds the lookup tables from TokenizerParts, then encodes byte-level BPE as tokenizers
// does (added tokens first, then pre-tokenizer pieces through BPE) and decodes by concatenating bytes.
// The SentencePiece models live in spm_tokenizer.cpp, file loading in load_gguf.cpp and
// load_json*.cpp, the merge loops in bpe_model.cpp and spm_model.cpp.
#include "sentinel/tokenizer/bpe.h"

#include <algorithm>
#include <limits>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"
#include "tokenizer_impl.h"

namespace sentinel {

void Tokenizer::Impl::check_id(int32_t id) const {
  check(id >= 0 && id < static_cast<int32_t>(spellings.size()), "token id ", id, " is out of range: the ",
        "vocabulary has n_vocab=", spellings.size(), " tokens (ids 0..", spellings.size() - 1, ")");
}

// Pre-tokenizes and BPE-encodes text that holds no added token.
void Tokenizer::Impl::encode_ordinary(std::string_view text, std::vector<Piece>& pieces,
                                      std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  pieces.clear();
  pre_tokenizer.split(text, pieces);
  for (const Piece& p : pieces) bpe->encode_piece(text.substr(p.begin, p.end - p.begin), ids);
}

// Second pass, on the normalized text as tokenizers does: normalized added tokens (always
// honoured), then ordinary text between them.
void Tokenizer::Impl::encode_without_raw_added(std::string_view raw, std::vector<Piece>& pieces,
                                               std::vector<int32_t>& ids) const {
  const std::string normalized = nfc ? unicode::nfc(raw) : std::string();
  const std::string_view text = nfc ? std::string_view(normalized) : raw;
  std::vector<detail::AddedTokenMatch> matches;
  normalized_added.find_all(text, matches);
  size_t done = 0;
  for (const auto& m : matches) {
    encode_ordinary(text.substr(done, m.begin - done), pieces, ids);
    ids.push_back(m.id);
    done = m.end;
  }
  encode_ordinary(text.substr(done), pieces, ids);
}

namespace {

// Raw bytes of a vocabulary spelling. Normal tokens are in the byte alphabet; one that is not
// (a character outside the 256) stands for its own UTF-8, as tokenizers' ByteLevel decoder does.
// Added and special tokens are raw text, matched in the input as is, so they decode to themselves.
std::string raw_bytes_of(const std::string& spelling, TokenKind kind) {
  if (kind != TokenKind::Normal) return spelling;
  if (auto raw = unicode::byte_level_to_bytes(spelling)) return std::move(*raw);
  return spelling;
}

int32_t lookup_merge_part(const std::unordered_map<std::string, int32_t>& by_spelling, const std::string& spelling,
                          size_t rank, const std::string& source) {
  const auto it = by_spelling.find(spelling);
  check(it != by_spelling.end(), source, ": merge #", rank, " uses '", spelling,
        "', which is not in the vocabulary; the tokenizer file is corrupt or truncated");
  return it->second;
}

void check_optional_id(const std::optional<int32_t>& id, const char* what, size_t n_vocab, const std::string& source) {
  check(!id || (*id >= 0 && static_cast<size_t>(*id) < n_vocab), source, ": ", what, " id ", id.value_or(-1),
        " is outside the vocabulary of ", n_vocab, " tokens");
}

}  // namespace

Tokenizer Tokenizer::from_parts(TokenizerParts parts) {
  const std::string& source = parts.source;
  const size_t n_vocab = parts.tokens.size();
  check(n_vocab > 0 && n_vocab < static_cast<size_t>(std::numeric_limits<int32_t>::max()), source,
        ": a tokenizer needs 1..2^31-2 tokens, got ", n_vocab);
  check(parts.kinds.size() == n_vocab, source, ": ", n_vocab, " tokens but ", parts.kinds.size(), " token kinds");
  check_optional_id(parts.bos_id, "BOS", n_vocab, source);
  check_optional_id(parts.eos_id, "EOS", n_vocab, source);
  check_optional_id(parts.unk_id, "UNK", n_vocab, source);
  check(!parts.add_bos || parts.bos_id, source, ": add_bos is set but the tokenizer has no BOS token");
  const bool byte_level = parts.model == TokenizerModel::ByteLevelBpe;
  check(byte_level == (parts.pre_tokenizer != PreTokenizerKind::None), source, ": pre-tokenizer ",
        pre_tokenizer_name(parts.pre_tokenizer), " does not go with this model (byte-level BPE needs a regex ",
        "pre-tokenizer, SentencePiece none)");
  check(byte_level || parts.pieces.size() == n_vocab, source, ": ", n_vocab, " tokens but ", parts.pieces.size(),
        " decoded pieces");

  auto impl = std::make_shared<Impl>(parts.pre_tokenizer);
  impl->model = parts.model;
  impl->source = source;
  impl->kinds = std::move(parts.kinds);
  impl->by_spelling.reserve(n_vocab);
  for (size_t id = 0; id < n_vocab; ++id) {
    impl->by_spelling.emplace(parts.tokens[id], static_cast<int32_t>(id));  // first id of a spelling wins
    impl->n_special += impl->kinds[id] == TokenKind::Special ? 1 : 0;
  }
  if (byte_level) {
    impl->bytes.reserve(n_vocab);
    for (size_t id = 0; id < n_vocab; ++id) impl->bytes.push_back(raw_bytes_of(parts.tokens[id], impl->kinds[id]));
  } else {
    impl->bytes = std::move(parts.pieces);
  }
  impl->spellings = std::move(parts.tokens);

  if (byte_level) {
    detail::BpeModel::Options bpe;
    bpe.byte_ids.fill(-1);
    for (int b = 0; b < 256; ++b) {
      const std::string spelling = unicode::bytes_to_byte_level(std::string(1, static_cast<char>(b)));
      if (const auto it = impl->by_spelling.find(spelling); it != impl->by_spelling.end()) bpe.byte_ids[b] = it->second;
    }
    bpe.merges.reserve(parts.merges.size());
    for (size_t rank = 0; rank < parts.merges.size(); ++rank) {
      const auto& [left, right] = parts.merges[rank];
      bpe.merges.push_back({lookup_merge_part(impl->by_spelling, left, rank, source),
                            lookup_merge_part(impl->by_spelling, right, rank, source),
                            lookup_merge_part(impl->by_spelling, left + right, rank, source)});
    }
    bpe.ignore_merges = parts.ignore_merges;
    if (parts.ignore_merges) {
      for (size_t id = 0; id < n_vocab; ++id) {
        if (impl->kinds[id] == TokenKind::Normal) bpe.whole_pieces.emplace(impl->bytes[id], static_cast<int32_t>(id));
      }
    }
    bpe.unk_id = parts.unk_id;
    impl->nfc = parts.nfc;
    impl->n_merges = static_cast<int32_t>(parts.merges.size());
    impl->bpe = std::make_unique<detail::BpeModel>(std::move(bpe));

    const std::unordered_set<int32_t> normalized(parts.normalized_added_ids.begin(), parts.normalized_added_ids.end());
    for (size_t id = 0; id < n_vocab; ++id) {
      const TokenKind kind = impl->kinds[id];
      if (kind == TokenKind::Normal) continue;
      auto& matcher = normalized.count(static_cast<int32_t>(id)) ? impl->normalized_added : impl->raw_added;
      matcher.add(impl->spellings[id], static_cast<int32_t>(id), kind == TokenKind::Special);
    }
  } else {
    impl->build_sentencepiece(parts);
  }

  impl->bos_id = parts.bos_id;
  impl->eos_id = parts.eos_id;
  impl->add_bos = parts.add_bos;
  impl->chat_template = std::move(parts.chat_template);
  std::vector<int32_t> stops;
  if (parts.eos_id) stops.push_back(*parts.eos_id);
  for (int32_t id : parts.extra_stop_ids) {
    if (id >= 0 && static_cast<size_t>(id) < n_vocab) stops.push_back(id);
  }
  for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"}) {
    if (const auto it = impl->by_spelling.find(name); it != impl->by_spelling.end()) stops.push_back(it->second);
  }
  for (int32_t id : stops) {
    if (std::find(impl->stop_ids.begin(), impl->stop_ids.end(), id) == impl->stop_ids.end()) {
      impl->stop_ids.push_back(id);
    }
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view input, bool add_bos, SpecialTokens special) const {
  const Impl& t = *impl_;
  std::vector<int32_t> ids;
  if (t.model == TokenizerModel::SentencePiece) {  // llama.cpp takes the bytes as they are
    ids.reserve(input.size() / 3 + 2);
    if (add_bos && t.add_bos) ids.push_back(*t.bos_id);
    t.encode_sentencepiece(input, special, ids);
    return ids;
  }
  std::string replaced;
  std::string_view text = input;
  if (!unicode::is_valid_utf8(input)) {
    replaced = unicode::replace_invalid_utf8(input);
    text = replaced;
  }
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && t.add_bos) ids.push_back(*t.bos_id);
  if (t.model == TokenizerModel::SentencePieceBpe) {
    t.encode_sentencepiece_bpe(text, special, ids);
    return ids;
  }

  // First pass: raw added tokens. Under Ignore, a special match is dropped but its text is not
  // searched again for shorter tokens, exactly as tokenizers skips it inside its match loop.
  std::vector<detail::AddedTokenMatch> matches;
  t.raw_added.find_all(text, matches);
  std::vector<Piece> pieces;
  size_t done = 0;
  for (const auto& m : matches) {
    if (m.special && special == SpecialTokens::Ignore) continue;
    t.encode_without_raw_added(text.substr(done, m.begin - done), pieces, ids);
    ids.push_back(m.id);
    done = m.end;
  }
  t.encode_without_raw_added(text.substr(done), pieces, ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& t = *impl_;
  if (t.model != TokenizerModel::ByteLevelBpe) return t.decode_sentencepiece(ids, skip_special);
  std::string out;
  for (int32_t id : ids) {
    t.check_id(id);
    if (skip_special && t.kinds[id] == TokenKind::Special) continue;
    out += t.bytes[id];
  }
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  impl_->check_id(id);
  return impl_->bytes[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  impl_->check_id(id);
  return impl_->spellings[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view spelling) const {
  const auto it = impl_->by_spelling.find(std::string(spelling));
  if (it == impl_->by_spelling.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->spellings.size()); }
int32_t Tokenizer::n_merges() const { return impl_->n_merges; }
TokenizerModel Tokenizer::model() const { return impl_->model; }

TokenKind Tokenizer::token_kind(int32_t id) const {
  impl_->check_id(id);
  return impl_->kinds[id];
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }
std::vector<int32_t> Tokenizer::stop_ids() const { return impl_->stop_ids; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::is_special(int32_t id) const { return token_kind(id) == TokenKind::Special; }
PreTokenizerKind Tokenizer::pre_tokenizer() const { return impl_->pre_tokenizer.kind(); }
const std::string& Tokenizer::chat_template() const { return chat_template_ ? *chat_template_ : impl_->chat_template; }
void Tokenizer::set_chat_template(std::string chat_template) { chat_template_ = std::move(chat_template); }

std::string Tokenizer::summary() const {
  const Impl& t = *impl_;
  if (t.model != TokenizerModel::ByteLevelBpe) return t.describe_sentencepiece();
  auto id_or_none = [](const std::optional<int32_t>& id) { return id ? std::to_string(*id) : std::string("none"); };
  std::ostringstream out;
  out << "byte-level BPE, " << t.spellings.size() << " tokens, " << t.n_merges << " merges, pre-tokenizer "
      << pre_tokenizer_name(t.pre_tokenizer.kind()) << ", " << t.n_special << " special, bos=" << id_or_none(t.bos_id)
      << " eos=" << id_or_none(t.eos_id);
  return out.str();
}

}  // namespace sentinel
