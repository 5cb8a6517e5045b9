// The two SentencePiece models of Tokenizer (docs/tokenizer.md, "SentencePiece"):
// - SentencePiece (a GGUF "llama" vocabulary) as llama.cpp's llama_vocab::impl::tokenize: added
//   tokens cut out longest first, each text fragment given a "▁" prefix when the model says so, its
//   spaces escaped to "▁", then the score merge of spm_model.cpp;
// - SentencePieceBpe (a tokenizer.json with byte_fallback) as tokenizers: added tokens in two
//   passes, the "▁" normalizer or Metaspace pre-tokenizer, then the BPE merge over characters.
// Decoding concatenates the pieces the loader gave each id and drops the prefix space at the start
// as each reference decoder does.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <unordered_set>

#include "load_json_spm.h"
#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"
#include "tokenizer_impl.h"

namespace sentinel {
namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, "▁"

// ' ' -> "▁", appended to `out`.
void append_escaped(std::string_view text, std::string& out) {
  for (char c : text) {
    if (c == ' ') {
      out += kSpaceMark;
    } else {
      out.push_back(c);
    }
  }
}

bool is_normalizer_marker(SpaceMarker marker) {
  return marker == SpaceMarker::Replace || marker == SpaceMarker::PrefixEverySegment;
}

std::string_view marker_name(SpaceMarker marker) {
  switch (marker) {
    case SpaceMarker::Replace: return "no space prefix";
    case SpaceMarker::PrefixEverySegment: return "space prefix";
    case SpaceMarker::MetaspaceNever: return "metaspace never";
    case SpaceMarker::MetaspaceFirst: return "metaspace first";
    case SpaceMarker::MetaspaceAlways: return "metaspace always";
  }
  return "?";
}

}  // namespace

void Tokenizer::Impl::build_sentencepiece(TokenizerParts& parts) {
  const size_t n_vocab = spellings.size();
  const bool llama_cpp = model == TokenizerModel::SentencePiece;
  space_marker = parts.space_marker;
  prefix_decoding = parts.prefix_decoding;
  check(!llama_cpp || is_normalizer_marker(space_marker), source,
        ": a SentencePiece GGUF marks spaces as llama.cpp does (with or without a prefix), not with Metaspace");
  check(!llama_cpp || prefix_decoding == PrefixDecoding::Keep || prefix_decoding == PrefixDecoding::FirstToken,
        source, ": a SentencePiece GGUF decodes as llama.cpp does (PrefixDecoding Keep or FirstToken)");

  // Byte tokens are spelled <0xXX> in upper case (llama.cpp's byte_to_token, tokenizers' format
  // "<{b:#04X}>"); llama.cpp falls back to a token spelled as the byte itself.
  std::array<int32_t, 256> byte_ids;
  byte_ids.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char spelling[8];
    std::snprintf(spelling, sizeof spelling, "<0x%02X>", b);
    if (const auto it = by_spelling.find(spelling); it != by_spelling.end()) {
      byte_ids[b] = it->second;
      ++n_byte_tokens;
    } else if (llama_cpp) {
      if (const auto one = by_spelling.find(std::string(1, static_cast<char>(b))); one != by_spelling.end()) {
        byte_ids[b] = one->second;
      }
    }
  }

  if (llama_cpp) {
    check(parts.scores.size() == n_vocab, source, ": ", n_vocab, " tokens but ", parts.scores.size(), " scores");
    detail::SpmModel::Options options;
    options.tokens.reserve(n_vocab);
    for (size_t id = 0; id < n_vocab; ++id) options.tokens.emplace_back(spellings[id], static_cast<int32_t>(id));
    options.scores = std::move(parts.scores);
    options.byte_ids = byte_ids;
    options.unk_id = parts.unk_id;
    spm = std::make_unique<detail::SpmModel>(std::move(options));

    const std::unordered_set<int32_t> lstrip(parts.lstrip_ids.begin(), parts.lstrip_ids.end());
    const std::unordered_set<int32_t> rstrip(parts.rstrip_ids.begin(), parts.rstrip_ids.end());
    std::vector<detail::SpecialPartition::Token> added;
    for (size_t id = 0; id < n_vocab; ++id) {
      if (kinds[id] == TokenKind::Normal) continue;
      const auto i = static_cast<int32_t>(id);
      added.push_back({spellings[id], i, kinds[id] == TokenKind::Special, lstrip.count(i) > 0, rstrip.count(i) > 0});
    }
    partition = std::make_unique<detail::SpecialPartition>(std::move(added));
    return;
  }

  detail::BpeModel::Options options;
  options.symbols = detail::BpeModel::Symbols::Characters;
  options.byte_ids = byte_ids;
  options.fuse_unk = parts.fuse_unk;
  options.unk_id = parts.unk_id;
  for (size_t id = 0; id < n_vocab; ++id) {
    if (spellings[id].size() <= 4) options.character_ids.emplace(spellings[id], static_cast<int32_t>(id));
  }
  options.merges.reserve(parts.merges.size());
  auto lookup = [&](const std::string& spelling, size_t rank) {
    const auto it = by_spelling.find(spelling);
    check(it != by_spelling.end(), source, ": merge #", rank, " uses '", spelling,
          "', which is not in the vocabulary; the tokenizer file is corrupt or truncated");
    return it->second;
  };
  for (size_t rank = 0; rank < parts.merges.size(); ++rank) {
    const auto& [left, right] = parts.merges[rank];
    options.merges.push_back({lookup(left, rank), lookup(right, rank), lookup(left + right, rank)});
  }
  options.ignore_merges = parts.ignore_merges;
  if (parts.ignore_merges) {
    for (size_t id = 0; id < n_vocab; ++id) {
      if (kinds[id] == TokenKind::Normal) options.whole_pieces.emplace(spellings[id], static_cast<int32_t>(id));
    }
  }
  // A whole segment is one BPE word; where no merge joins two characters it can be cut, which is
  // much faster on long text (see BpeModel::Options::joinable_pairs for when that is exact).
  const bool all_bytes = std::all_of(byte_ids.begin(), byte_ids.end(), [](int32_t id) { return id >= 0; });
  if (all_bytes && !parts.ignore_merges) {
    const std::unordered_set<int32_t> byte_tokens(byte_ids.begin(), byte_ids.end());
    std::unordered_set<uint64_t> joinable;
    bool exact = true;
    for (const auto& [left, right] : parts.merges) {
      const int32_t l = by_spelling.at(left), r = by_spelling.at(right);
      exact = exact && !byte_tokens.count(l) && !byte_tokens.count(r) && unicode::is_valid_utf8(left) &&
              unicode::is_valid_utf8(right);
      if (!exact) break;
      size_t last = left.size() - 1;
      while (last > 0 && (static_cast<uint8_t>(left[last]) & 0xC0) == 0x80) --last;
      const std::string_view first_of_right(right.data(), unicode::decode_utf8_step(right, 0).length);
      joinable.insert(detail::BpeModel::character_pair_key(std::string_view(left).substr(last), first_of_right));
    }
    if (exact) options.joinable_pairs = std::move(joinable);
  }
  n_merges = static_cast<int32_t>(parts.merges.size());
  bpe = std::make_unique<detail::BpeModel>(std::move(options));

  // tokenizers matches a normalized added token in the normalized text, so its text goes through the
  // same normalizer when the model has one: "a b" -> "a▁b", or "▁a▁b" with Prepend.
  const std::unordered_set<int32_t> normalized(parts.normalized_added_ids.begin(), parts.normalized_added_ids.end());
  for (size_t id = 0; id < n_vocab; ++id) {
    const TokenKind kind = kinds[id];
    if (kind == TokenKind::Normal) continue;
    const auto i = static_cast<int32_t>(id);
    if (!normalized.count(i)) {
      raw_added.add(spellings[id], i, kind == TokenKind::Special);
      continue;
    }
    normalized_added.add(detail::normalized_added_token(spellings[id], space_marker), i, kind == TokenKind::Special);
  }
}

void Tokenizer::Impl::encode_sentencepiece(std::string_view text, SpecialTokens special,
                                           std::vector<int32_t>& ids) const {
  check(text.size() <= UINT32_MAX, "text of ", text.size(), " bytes is too long to tokenize at once; split it");
  std::vector<detail::Fragment> fragments;
  partition->split(text, special == SpecialTokens::Parse, fragments);
  std::string segment;
  for (const detail::Fragment& f : fragments) {
    if (f.id >= 0) {
      ids.push_back(f.id);
      continue;
    }
    // llama.cpp prefixes a space to every text fragment: each follows the start or a token.
    segment.clear();
    if (space_marker == SpaceMarker::PrefixEverySegment) segment += kSpaceMark;
    append_escaped(text.substr(f.begin, f.end - f.begin), segment);
    spm->encode(segment, ids);
  }
}

void Tokenizer::Impl::encode_sentencepiece_bpe(std::string_view text, SpecialTokens special,
                                               std::vector<int32_t>& ids) const {
  // One split of the text as tokenizers sees it after both added-token passes: the normalizer (if
  // the model has one) already applied; Metaspace (if it has that) applied here. `offset` is where
  // the split starts in the input, which Metaspace "first" looks at.
  std::string piece;
  auto encode_split = [&](std::string_view split, size_t offset) {
    if (split.empty()) return;
    piece.clear();
    if (is_normalizer_marker(space_marker)) {
      piece.assign(split);
    } else {
      append_escaped(split, piece);
      const bool starts_marked = piece.compare(0, kSpaceMark.size(), kSpaceMark) == 0;
      if (!starts_marked && (space_marker == SpaceMarker::MetaspaceAlways ||
                             (space_marker == SpaceMarker::MetaspaceFirst && offset == 0))) {
        piece.insert(0, kSpaceMark);
      }
    }
    bpe->encode_piece(piece, ids);
  };
  // The second pass runs on a segment (the text between raw added tokens) once normalized.
  std::string normalized_text;
  std::vector<detail::AddedTokenMatch> inner;
  auto encode_segment = [&](std::string_view segment, size_t offset) {
    if (segment.empty()) return;
    std::string_view view = segment;
    if (is_normalizer_marker(space_marker)) {
      normalized_text.clear();
      if (space_marker == SpaceMarker::PrefixEverySegment) normalized_text += kSpaceMark;
      append_escaped(segment, normalized_text);
      view = normalized_text;
    }
    inner.clear();
    normalized_added.find_all(view, inner);
    size_t done = 0;
    for (const auto& m : inner) {
      encode_split(view.substr(done, m.begin - done), offset + done);
      ids.push_back(m.id);
      done = m.end;
    }
    encode_split(view.substr(done), offset + done);
  };

  std::vector<detail::AddedTokenMatch> matches;
  raw_added.find_all(text, matches);
  size_t done = 0;
  for (const auto& m : matches) {
    if (m.special && special == SpecialTokens::Ignore) continue;
    encode_segment(text.substr(done, m.begin - done), done);
    ids.push_back(m.id);
    done = m.end;
  }
  encode_segment(text.substr(done), done);
}

std::string Tokenizer::Impl::decode_sentencepiece(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  size_t start = 0;
  bool strip_first = prefix_decoding == PrefixDecoding::FirstToken;
  // llama.cpp's detokenize(remove_special) drops a leading BOS and then keeps the space after it.
  if (strip_first && skip_special && add_bos && !ids.empty() && bos_id && ids[0] == *bos_id) {
    check_id(ids[0]);
    start = 1;
    strip_first = false;
  }
  bool first_decoded = true;
  for (size_t i = start; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    check_id(id);
    const bool skipped = skip_special && kinds[id] == TokenKind::Special;
    if (strip_first) {
      // llama.cpp strips the first id's piece even when it renders as nothing.
      strip_first = false;
      if (skipped) continue;
      const std::string& piece = bytes[id];
      out.append(piece, !piece.empty() && piece[0] == ' ' ? 1 : 0);
      continue;
    }
    if (skipped) continue;
    if (first_decoded && prefix_decoding == PrefixDecoding::Metaspace) {
      // tokenizers' Metaspace decoder drops every "▁" of the first token it is given.
      const std::string& spelling = spellings[id];
      for (size_t k = 0; k < spelling.size();) {
        if (spelling.compare(k, kSpaceMark.size(), kSpaceMark) == 0) {
          k += kSpaceMark.size();
        } else {
          out.push_back(spelling[k++]);
        }
      }
    } else {
      out += bytes[id];
    }
    first_decoded = false;
  }
  if (prefix_decoding == PrefixDecoding::WholeText && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string Tokenizer::Impl::describe_sentencepiece() const {
  auto id_or_none = [](const std::optional<int32_t>& id) { return id ? std::to_string(*id) : std::string("none"); };
  std::ostringstream out;
  if (model == TokenizerModel::SentencePiece) {
    out << "SentencePiece (llama.cpp scores), " << spellings.size() << " tokens, ";
  } else {
    out << "SentencePiece BPE with byte fallback, " << spellings.size() << " tokens, " << n_merges << " merges, ";
  }
  out << n_byte_tokens << " byte tokens, " << marker_name(space_marker) << ", " << n_special
      << " special, bos=" << id_or_none(bos_id) << " eos=" << id_or_none(eos_id);
  return out.str();
}

}  // namespace sentinel
