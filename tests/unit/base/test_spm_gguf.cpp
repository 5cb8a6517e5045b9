// The SentencePiece GGUF path (TokenizerModel::SentencePiece) against a plain twin: a line-by-line
// port of llama.cpp's llm_tokenizer_spm_session, tokenizer_st_partition and the SPM branch of
// llama_vocab::impl::tokenize, on random vocabularies full of ties, overlapping added tokens and
// strip attributes, and random strings (invalid UTF-8 included). Then the GGUF loader on small files
// written here: defaults, llama.cpp's token-type rules, decoding, streaming, and what it refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

const std::string kMark = "\xE2\x96\x81";  // "▁"

// ---- The twin: llama.cpp's code, kept as close to the original as C++ allows ----

struct TwinToken {
  std::string text;
  float score;
  TokenKind kind;
  bool byte = false, unused = false, lstrip = false, rstrip = false;
};

class LlamaCppTwin {
 public:
  LlamaCppTwin(std::vector<TwinToken> vocab, bool add_space_prefix) : vocab_(std::move(vocab)), prefix_(add_space_prefix) {
    for (size_t id = 0; id < vocab_.size(); ++id) token_to_id_[vocab_[id].text] = static_cast<int>(id);
    for (size_t id = 0; id < vocab_.size(); ++id) {
      if (vocab_[id].kind != TokenKind::Normal) special_cache_.push_back(static_cast<int>(id));
    }
    std::sort(special_cache_.begin(), special_cache_.end(),
              [&](int a, int b) { return vocab_[a].text.size() > vocab_[b].text.size(); });
  }

  std::vector<int> tokenize(const std::string& raw, bool parse_special) const {
    struct Fragment {
      bool text;
      size_t offset, length;
      int token;
    };
    std::list<Fragment> buffer;
    if (!raw.empty()) buffer.push_back({true, 0, raw.size(), -1});
    for (int id : special_cache_) {
      const TwinToken& t = vocab_[id];
      if (!parse_special && t.kind == TokenKind::Special) continue;
      for (auto it = buffer.begin(); it != buffer.end(); ++it) {
        if (!it->text) continue;
        size_t base = it->offset, length = it->length;
        const auto source = it;
        std::vector<Fragment> made;
        bool matched = false;
        while (true) {
          const size_t match = std::string_view(raw.data(), base + length).find(t.text, base);
          if (match == std::string::npos) break;
          matched = true;
          if (match > base) {
            size_t left = match - base;
            if (t.lstrip) {
              while (left > 0 && isspace(static_cast<unsigned char>(raw[base + left - 1]))) --left;
            }
            if (left > 0) made.push_back({true, base, left, -1});
          }
          made.push_back({false, 0, 0, id});
          if (match + t.text.size() < base + length) {
            size_t right = match + t.text.size();
            size_t right_length = base + length - right;
            if (t.rstrip) {
              while (right_length > 0 && isspace(static_cast<unsigned char>(raw[right]))) ++right, --right_length;
            }
            base = right;
            length = right_length;
          } else {
            length = 0;
            break;
          }
        }
        if (!matched) continue;
        if (length > 0) made.push_back({true, base, length, -1});
        auto next = buffer.erase(source);
        buffer.insert(next, made.begin(), made.end());
        it = std::prev(next);
      }
    }
    std::vector<int> out;
    bool is_prev_special = true;
    for (const Fragment& f : buffer) {
      if (!f.text) {
        out.push_back(f.token);
        is_prev_special = true;
        continue;
      }
      std::string text = prefix_ && is_prev_special ? " " : "";
      text += raw.substr(f.offset, f.length);
      std::string escaped;
      for (char c : text) escaped += c == ' ' ? kMark : std::string(1, c);
      session(escaped, out);
      is_prev_special = false;
    }
    return out;
  }

 private:
  struct Symbol {
    int prev, next;
    const char* text;
    size_t n;
  };
  struct Bigram {
    int left, right;
    float score;
    size_t size;
  };
  struct Comparator {
    bool operator()(const Bigram& l, const Bigram& r) const {
      return (l.score < r.score) || (l.score == r.score && l.left > r.left);
    }
  };

  int text_to_token(const std::string& text) const {
    const auto it = token_to_id_.find(text);
    return it == token_to_id_.end() ? -1 : it->second;
  }
  int byte_to_token(uint8_t ch) const {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", ch);
    if (int id = text_to_token(buf); id >= 0) return id;
    return text_to_token(std::string(1, static_cast<char>(ch)));
  }

  void session(const std::string& text, std::vector<int>& output) const {
    static const size_t lookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    std::vector<Symbol> symbols;
    std::priority_queue<Bigram, std::vector<Bigram>, Comparator> work_queue;
    std::map<std::string, std::pair<int, int>> rev_merge;
    int index = 0;
    size_t offs = 0;
    while (offs < text.size()) {
      Symbol sym;
      const size_t len = lookup[static_cast<uint8_t>(text[offs]) >> 4];
      sym.text = text.c_str() + offs;
      sym.n = std::min(len, text.size() - offs);
      offs += sym.n;
      sym.prev = index - 1;
      sym.next = offs == text.size() ? -1 : index + 1;
      index++;
      symbols.push_back(sym);
    }
    auto try_add_bigram = [&](int left, int right) {
      if (left == -1 || right == -1) return;
      const std::string s(symbols[left].text, symbols[left].n + symbols[right].n);
      const int token = text_to_token(s);
      if (token < 0) return;
      work_queue.push({left, right, vocab_[token].score, s.size()});
      rev_merge[s] = {left, right};
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add_bigram(i - 1, i);
    while (!work_queue.empty()) {
      const Bigram bigram = work_queue.top();
      work_queue.pop();
      Symbol& left_sym = symbols[bigram.left];
      Symbol& right_sym = symbols[bigram.right];
      if (left_sym.n == 0 || right_sym.n == 0 || left_sym.n + right_sym.n != bigram.size) continue;
      left_sym.n += right_sym.n;
      right_sym.n = 0;
      left_sym.next = right_sym.next;
      if (right_sym.next >= 0) symbols[right_sym.next].prev = bigram.left;
      try_add_bigram(left_sym.prev, bigram.left);
      try_add_bigram(bigram.left, left_sym.next);
    }
    std::function<void(const Symbol&)> resegment = [&](const Symbol& symbol) {
      const std::string s(symbol.text, symbol.n);
      if (const int token = text_to_token(s); token >= 0) {
        output.push_back(token);
        return;
      }
      const auto p = rev_merge.find(s);
      if (p == rev_merge.end()) {
        for (size_t j = 0; j < symbol.n; ++j) output.push_back(byte_to_token(static_cast<uint8_t>(symbol.text[j])));
        return;
      }
      resegment(symbols[p->second.first]);
      resegment(symbols[p->second.second]);
    };
    for (int i = 0; i != -1 && !symbols.empty(); i = symbols[i].next) resegment(symbols[i]);
  }

  std::vector<TwinToken> vocab_;
  bool prefix_;
  std::map<std::string, int> token_to_id_;
  std::vector<int> special_cache_;
};

// A random vocabulary over a small alphabet, so that merges, ties and overlaps are everywhere.
std::vector<TwinToken> random_vocab(std::mt19937& rng) {
  const std::vector<std::string> alphabet = {"a", "b", "c", kMark, "\xC3\xA9", "\n", "<", ">"};
  std::vector<TwinToken> vocab = {{"<unk>", 0, TokenKind::Special}, {"<s>", 0, TokenKind::Special},
                                  {"</s>", 0, TokenKind::Special}};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    vocab.push_back({buf, 0, TokenKind::Normal, true});
  }
  for (const char* added : {"<a", "a>", "<a>", "ab", "\n\n", "b" "\xE2\x96\x81"}) {
    TwinToken t{added, -1000, std::uniform_int_distribution<int>(0, 2)(rng) == 0 ? TokenKind::Special : TokenKind::Added};
    t.lstrip = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
    t.rstrip = std::uniform_int_distribution<int>(0, 3)(rng) == 0;
    vocab.push_back(t);
  }
  std::map<std::string, bool> seen;
  for (const auto& t : vocab) seen[t.text] = true;
  for (const auto& c : alphabet) {
    if (c != "\n" && !seen[c]) vocab.push_back({c, -1.0f * static_cast<float>(vocab.size() % 5), TokenKind::Normal});
    seen[c] = true;
  }
  for (int i = 0; i < 120; ++i) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(2, 5)(rng);
    for (int k = 0; k < n; ++k) text += alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    if (seen[text]) continue;
    seen[text] = true;
    // Few distinct scores: ties between pairs are the rule, not the exception.
    vocab.push_back({text, -static_cast<float>(std::uniform_int_distribution<int>(0, 6)(rng)), TokenKind::Normal});
  }
  return vocab;
}

Tokenizer tokenizer_of(const std::vector<TwinToken>& vocab, bool prefix) {
  TokenizerParts parts;
  parts.model = TokenizerModel::SentencePiece;
  parts.pre_tokenizer = PreTokenizerKind::None;
  parts.source = "random vocabulary";
  for (size_t id = 0; id < vocab.size(); ++id) {
    const TwinToken& t = vocab[id];
    parts.tokens.push_back(t.text);
    parts.kinds.push_back(t.kind);
    parts.scores.push_back(t.score);
    parts.pieces.push_back(t.text);
    if (t.lstrip) parts.lstrip_ids.push_back(static_cast<int32_t>(id));
    if (t.rstrip) parts.rstrip_ids.push_back(static_cast<int32_t>(id));
  }
  parts.unk_id = 0;
  parts.bos_id = 1;
  parts.space_marker = prefix ? SpaceMarker::PrefixEverySegment : SpaceMarker::Replace;
  parts.prefix_decoding = prefix ? PrefixDecoding::FirstToken : PrefixDecoding::Keep;
  return Tokenizer::from_parts(std::move(parts));
}

std::string random_text(std::mt19937& rng) {
  const std::vector<std::string> pieces = {"a", "b", "c", " ", "  ", kMark, "\xC3\xA9", "\n", "<", ">", "<a>", "<s>",
                                           "</s>", "ab", "\t", "\xC3", "\x80", "\xE2\x96", "\xF0\x9F\x98\x80", "x"};
  std::string text;
  const int n = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int k = 0; k < n; ++k) text += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
  return text;
}

TEST(SpmGguf, MatchesLlamaCppTwinOnRandomVocabularies) {
  std::mt19937 rng(1234);
  size_t n_checked = 0;
  for (int v = 0; v < 40; ++v) {
    const std::vector<TwinToken> vocab = random_vocab(rng);
    const bool prefix = v % 2 == 0;
    const LlamaCppTwin twin(vocab, prefix);
    const Tokenizer tok = tokenizer_of(vocab, prefix);
    for (int s = 0; s < 300; ++s) {
      const std::string text = random_text(rng);
      for (bool parse : {false, true}) {
        const std::vector<int> want = twin.tokenize(text, parse);
        const std::vector<int32_t> ours = tok.encode(text, false, parse ? SpecialTokens::Parse : SpecialTokens::Ignore);
        ASSERT_EQ(std::vector<int>(ours.begin(), ours.end()), want)
            << "vocabulary " << v << ", parse " << parse << ": \"" << printable(text) << "\"";
        ++n_checked;
      }
    }
  }
  EXPECT_EQ(n_checked, 40u * 300u * 2u);
}

// ---- GGUF files written here ----

// Metadata-only GGUF v3 (no tensors), with the array types the tokenizer keys use.
class VocabGguf {
 public:
  using Value = std::variant<std::string, uint32_t, bool, std::vector<std::string>, std::vector<float>,
                             std::vector<int32_t>>;
  VocabGguf& set(const std::string& key, Value value) {
    entries_[key] = std::move(value);
    return *this;
  }
  VocabGguf& erase(const std::string& key) {
    entries_.erase(key);
    return *this;
  }
  GgufFile parse() {
    bytes_.clear();
    raw("GGUF", 4);
    u32(3);
    u64(0);
    u64(entries_.size());
    for (const auto& [key, value] : entries_) {
      str(key);
      if (const auto* s = std::get_if<std::string>(&value)) {
        u32(8), str(*s);
      } else if (const auto* u = std::get_if<uint32_t>(&value)) {
        u32(4), u32(*u);
      } else if (const auto* b = std::get_if<bool>(&value)) {
        u32(7), bytes_.push_back(*b ? 1 : 0);
      } else if (const auto* strings = std::get_if<std::vector<std::string>>(&value)) {
        u32(9), u32(8), u64(strings->size());
        for (const auto& s : *strings) str(s);
      } else if (const auto* floats = std::get_if<std::vector<float>>(&value)) {
        u32(9), u32(6), u64(floats->size());
        for (float f : *floats) raw(&f, 4);
      } else if (const auto* ints = std::get_if<std::vector<int32_t>>(&value)) {
        u32(9), u32(5), u64(ints->size());
        for (int32_t i : *ints) raw(&i, 4);
      }
    }
    return GgufFile::parse(bytes_, "vocab.gguf");
  }

 private:
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  std::map<std::string, Value> entries_;
  std::vector<uint8_t> bytes_;
};

// A Llama-like vocabulary: <unk> <s> </s>, byte tokens for '\n' and 0xC3 0xA9 ('é'), then words.
VocabGguf tiny_llama_gguf() {
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<0x0A>", "<0xC3>", "<0xA9>", kMark, "h", "i",
                                           kMark + "h", kMark + "hi", "</tool>", "<end_of_turn>", "<unused0>"};
  const std::vector<int32_t> types = {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 4, 4, 5};
  const std::vector<float> scores = {0, 0, 0, 0, 0, 0, -1, -2, -3, -4, -5, 0, 0, 0};
  VocabGguf g;
  g.set("general.architecture", std::string("llama"))
      .set("tokenizer.ggml.model", std::string("llama"))
      .set("tokenizer.ggml.tokens", tokens)
      .set("tokenizer.ggml.token_type", types)
      .set("tokenizer.ggml.scores", scores);
  return g;
}

TEST(SpmGguf, ReadsLlamaCppDefaults) {
  VocabGguf g = tiny_llama_gguf();
  const Tokenizer tok = Tokenizer::from_gguf(g.parse());
  // No bos/eos/unk keys: llama.cpp's SentencePiece defaults 1, 2, 0; add_bos and the space prefix on.
  EXPECT_EQ(tok.summary(), "SentencePiece (llama.cpp scores), 14 tokens, 3 byte tokens, space prefix, 4 special, "
                           "bos=1 eos=2");
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("hi"), (std::vector<int32_t>{1, 10}));
  EXPECT_EQ(tok.encode("hi\n\xC3\xA9"), (std::vector<int32_t>{1, 10, 3, 4, 5}));  // unknown characters as bytes
  // <end_of_turn> is user-defined in the file but llama.cpp makes it a control token that ends generation.
  EXPECT_EQ(tok.token_kind(12), TokenKind::Special);
  EXPECT_EQ(tok.stop_ids(), (std::vector<int32_t>{2, 12}));
  // Not parsed, its text is plain text; bytes without a token (this vocabulary has three) become <unk>
  // where llama.cpp would abort.
  const std::vector<int32_t> ignored = tok.encode("hi<end_of_turn>hi", false, SpecialTokens::Ignore);
  EXPECT_EQ(std::count(ignored.begin(), ignored.end(), 12), 0) << testing::format_ids(ignored);
  EXPECT_EQ(std::count(ignored.begin(), ignored.end(), 0), 13) << testing::format_ids(ignored);
  EXPECT_EQ(tok.encode("hi<end_of_turn>hi", false), (std::vector<int32_t>{10, 12, 10}));
  // A user-defined token is matched even when special tokens are not, and a space prefix follows it.
  EXPECT_EQ(tok.encode("hi</tool>hi", false, SpecialTokens::Ignore), (std::vector<int32_t>{10, 11, 10}));

  // Decoding: "▁" as a space, bytes reassembled, the first prefix space dropped; unused tokens write nothing.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{10, 3, 4, 5, 10}), "hi\n\xC3\xA9 hi");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 10, 13}), "<s> hi");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 10, 13}, true), " hi");  // no strip after a skipped BOS
  EXPECT_EQ(tok.decode(std::vector<int32_t>{12, 10}, true), " hi");      // a skipped first token takes the strip
  EXPECT_EQ(tok.decode(std::vector<int32_t>{6, 6, 9}), "  h");
  EXPECT_THROW(tok.decode(std::vector<int32_t>{14}), Error);

  // The stream keeps the prefix space (the ids continue a prompt) and holds split characters back.
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(1), "");
  EXPECT_EQ(stream.push(10), " hi");
  EXPECT_EQ(stream.push(4), "");
  EXPECT_EQ(stream.push(5), "\xC3\xA9");
  EXPECT_EQ(stream.push(4), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
}

TEST(SpmGguf, FollowsTheFilesFlags) {
  VocabGguf g = tiny_llama_gguf();
  g.set("tokenizer.ggml.add_space_prefix", false).set("tokenizer.ggml.add_bos_token", false);
  g.set("tokenizer.ggml.bos_token_id", uint32_t{2}).set("tokenizer.ggml.eos_token_id", uint32_t{12});
  const Tokenizer tok = Tokenizer::from_gguf(g.parse());
  EXPECT_EQ(tok.summary(), "SentencePiece (llama.cpp scores), 14 tokens, 3 byte tokens, no space prefix, 4 special, "
                           "bos=2 eos=12");
  EXPECT_EQ(tok.encode("hi"), (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(tok.encode(" hi"), (std::vector<int32_t>{10}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{10}), " hi");
}

TEST(SpmGguf, RefusesWhatItCannotReproduce) {
  struct Variant {
    const char* what;
    std::function<void(VocabGguf&)> edit;
  };
  const Variant variants[] = {
      {"add_eos_token", [](VocabGguf& g) { g.set("tokenizer.ggml.add_eos_token", true); }},
      {"spelled <0xXX>",
       [](VocabGguf& g) {
         g.set("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 6, 6, 6, 1, 6, 1, 1, 1, 4, 4, 5});
       }},
      {"unknown tokenizer.ggml.token_type",
       [](VocabGguf& g) {
         g.set("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 6, 6, 6, 1, 1, 9, 1, 1, 4, 4, 5});
       }},
      {"scores has 2 entries", [](VocabGguf& g) { g.set("tokenizer.ggml.scores", std::vector<float>{0, 1}); }},
      {"'t5'", [](VocabGguf& g) { g.set("tokenizer.ggml.model", std::string("t5")); }},
      {"tokenizer.ggml.tokens", [](VocabGguf& g) { g.erase("tokenizer.ggml.tokens"); }},
  };
  for (const Variant& v : variants) {
    VocabGguf g = tiny_llama_gguf();
    v.edit(g);
    try {
      Tokenizer::from_gguf(g.parse());
      ADD_FAILURE() << "expected Error for " << v.what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(v.what), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace sentinel
