// Hand-written matchers for the pre-tokenizer regexes, applied like tokenizers' Split(Isolated):
// at each position the alternatives are tried in pattern order and the first that matches wins.
// Each matcher's comment shows how the regex backtracking reduces to the loop below it.
#include "sentinel/tokenizer/pretokenizer.h"

#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel {
namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kWhitespace;

// The text as code points with their classes; cp[n] and cls[n] are a sentinel 0.
struct Chars {
  std::vector<char32_t> cp;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> offset;  // byte offset of each code point; offset[n] = text size
  size_t n = 0;

  explicit Chars(std::string_view text) {
    cp.reserve(text.size() + 1);
    cls.reserve(text.size() + 1);
    offset.reserve(text.size() + 1);
    for (size_t i = 0; i < text.size();) {
      const auto b = static_cast<uint8_t>(text[i]);
      const unicode::Utf8Step step = b < 0x80 ? unicode::Utf8Step{b, 1, true} : unicode::decode_utf8_step(text, i);
      cp.push_back(step.code_point);
      cls.push_back(unicode::char_class(step.code_point));
      offset.push_back(static_cast<uint32_t>(i));
      i += step.length;
    }
    n = cp.size();
    cp.push_back(0);
    cls.push_back(0);
    offset.push_back(static_cast<uint32_t>(text.size()));
  }

  bool letter(size_t i) const { return (cls[i] & kLetter) != 0; }
  bool number(size_t i) const { return (cls[i] & kNumber) != 0; }
  bool numeric(size_t i) const { return (cls[i] & unicode::kNumeric) != 0; }
  bool space(size_t i) const { return (cls[i] & kWhitespace) != 0; }
  // [^\s\p{L}\p{N}]: punctuation, symbols, marks, controls that are not White_Space.
  bool other(size_t i) const { return (cls[i] & (kLetter | kNumber | kWhitespace)) == 0; }
  bool newline(size_t i) const { return cp[i] == '\r' || cp[i] == '\n'; }
};

// The end of the run of characters from `i` (before `end`) that satisfy `pred`.
template <typename Pred>
size_t run_end(size_t i, size_t end, Pred pred) {
  while (i < end && pred(i)) ++i;
  return i;
}

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitive (GPT-2) or under (?i) (Llama-3, where U+017F LATIN
// SMALL LETTER LONG S folds to 's'). Returns the match length, 0 if none.
size_t contraction_length(const Chars& s, size_t i, size_t end, bool ignore_case) {
  if (s.cp[i] != '\'' || i + 1 >= end) return 0;
  auto fold = [&](size_t k) -> char32_t {
    const char32_t c = s.cp[k];
    if (!ignore_case) return c;
    if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
    if (c == 0x017F) return 's';
    return c;
  };
  const char32_t a = fold(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= end) return 0;
  const char32_t b = fold(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S)|\s+ at a whitespace character: the run up to the next non-space. If the run is
// followed by a non-space, the lookahead makes the first branch give back the last whitespace
// character (which then prefixes the next word); a run of one falls through to the plain \s+.
size_t whitespace_match_end(const Chars& s, size_t i, size_t end) {
  const size_t run = run_end(i, end, [&](size_t k) { return s.space(k); });
  if (run == end || run - i == 1) return run;
  return run - 1;
}

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t gpt2_match_end(const Chars& s, size_t i, size_t end) {
  if (const size_t n = contraction_length(s, i, end, false)) return i + n;
  // " ?X+": the optional space is taken only if a class character follows it; a bare space is
  // never a letter, digit or "other", so without it the branch fails at a space.
  const size_t j = (s.cp[i] == ' ' && i + 1 < end) ? i + 1 : i;
  if (s.letter(j)) return run_end(j, end, [&](size_t k) { return s.letter(k); });
  if (s.number(j)) return run_end(j, end, [&](size_t k) { return s.number(k); });
  if (s.other(j) && j < end) return run_end(j, end, [&](size_t k) { return s.other(k); });
  // Here s[i] is whitespace (a space followed by whitespace, or other whitespace).
  return whitespace_match_end(s, i, end);
}

// Llama-3 / Qwen2: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//                  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t llama3_match_end(const Chars& s, size_t i, size_t end, size_t max_digits) {
  if (const size_t n = contraction_length(s, i, end, true)) return i + n;
  auto letters_from = [&](size_t k) { return run_end(k, end, [&](size_t m) { return s.letter(m); }); };
  // [^\r\n\p{L}\p{N}]?\p{L}+: one leading non-letter, non-digit, non-newline character (space,
  // tab, punctuation, mark) joins the letters after it.
  if (s.letter(i)) return letters_from(i);
  if (!s.number(i) && !s.newline(i) && i + 1 < end && s.letter(i + 1)) return letters_from(i + 1);
  if (s.number(i)) {
    size_t k = i;
    while (k < end && k - i < max_digits && s.number(k)) ++k;
    return k;
  }
  // " ?[^\s\p{L}\p{N}]+[\r\n]*": punctuation (with one leading space) and the newlines after it.
  const size_t j = (s.cp[i] == ' ' && i + 1 < end && s.other(i + 1)) ? i + 1 : i;
  if (s.other(j)) {
    const size_t k = run_end(j, end, [&](size_t m) { return s.other(m); });
    return run_end(k, end, [&](size_t m) { return s.newline(m); });
  }
  // \s*[\r\n]+: the greedy \s* backs off to the last newline of the whitespace run, so the match
  // ends just after that newline.
  const size_t run = run_end(i, end, [&](size_t k) { return s.space(k); });
  for (size_t k = run; k > i; --k) {
    if (s.newline(k - 1)) return k;
  }
  return whitespace_match_end(s, i, end);
}

void emit(const Chars& s, size_t from, size_t to, uint32_t base, std::vector<Piece>& pieces) {
  pieces.push_back({base + s.offset[from], base + s.offset[to]});
}

void split_gpt2(const Chars& s, size_t begin, size_t end, uint32_t base, std::vector<Piece>& pieces) {
  for (size_t i = begin; i < end;) {
    const size_t k = gpt2_match_end(s, i, end);
    emit(s, i, k, base, pieces);
    i = k;
  }
}

}  // namespace

std::string_view pre_tokenizer_name(PreTokenizerKind kind) {
  switch (kind) {
    case PreTokenizerKind::Gpt2: return "gpt2";
    case PreTokenizerKind::DigitsThenGpt2: return "smollm";
    case PreTokenizerKind::Llama3: return "llama3";
    case PreTokenizerKind::Qwen2: return "qwen2";
    case PreTokenizerKind::None: return "none";
  }
  return "?";
}

void PreTokenizer::split(std::string_view text, std::vector<Piece>& pieces, uint32_t base) const {
  check(text.size() <= UINT32_MAX, "text of ", text.size(), " bytes is too long to tokenize at once; split it");
  if (kind_ == PreTokenizerKind::None) {
    if (!text.empty()) pieces.push_back({base, base + static_cast<uint32_t>(text.size())});
    return;
  }
  const Chars s(text);
  switch (kind_) {
    case PreTokenizerKind::Gpt2:
      split_gpt2(s, 0, s.n, base, pieces);
      return;
    case PreTokenizerKind::DigitsThenGpt2: {
      // Digits(individual_digits) isolates every numeric character; the GPT-2 pattern then runs on
      // each stretch between them as if it were the whole text (its lookahead stops there).
      size_t stretch = 0;
      for (size_t i = 0; i < s.n; ++i) {
        if (!s.numeric(i)) continue;
        split_gpt2(s, stretch, i, base, pieces);
        emit(s, i, i + 1, base, pieces);
        stretch = i + 1;
      }
      split_gpt2(s, stretch, s.n, base, pieces);
      return;
    }
    case PreTokenizerKind::Llama3:
    case PreTokenizerKind::Qwen2: {
      const size_t max_digits = kind_ == PreTokenizerKind::Llama3 ? 3 : 1;
      for (size_t i = 0; i < s.n;) {
        const size_t k = llama3_match_end(s, i, s.n, max_digits);
        emit(s, i, k, base, pieces);
        i = k;
      }
      return;
    }
    case PreTokenizerKind::None:
      break;  // handled above
  }
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<Piece> pieces;
  split(text, pieces);
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces) out.emplace_back(text.substr(p.begin, p.end - p.begin));
  return out;
}

PreTokenizerKind pre_tokenizer_from_gguf(const std::string& pre) {
  if (pre == "gpt2" || pre == "gpt-2" || pre == "default" || pre == "phi-2") return PreTokenizerKind::Gpt2;
  if (pre == "smollm") return PreTokenizerKind::DigitsThenGpt2;
  if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3") return PreTokenizerKind::Llama3;
  if (pre == "qwen2" || pre == "deepseek-r1-qwen") return PreTokenizerKind::Qwen2;
  fail("GGUF tokenizer.ggml.pre '", pre, "' is not supported; supported: smollm, gpt2, gpt-2, default, phi-2, ",
       "llama3, llama-bpe, llama-v3, qwen2, deepseek-r1-qwen");
}

namespace {

constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

bool flag(const nlohmann::json& node, const char* key, bool default_value) {
  const auto it = node.find(key);
  return (it == node.end() || it->is_null()) ? default_value : it->get<bool>();
}

std::string type_of(const nlohmann::json& node) {
  return node.is_object() && node.contains("type") && node["type"].is_string() ? node["type"].get<std::string>() : "";
}

// ByteLevel must not add a prefix space (no supported model does; tokenizers' default is true,
// so a missing key counts as true); returns its use_regex.
bool byte_level_use_regex(const nlohmann::json& node) {
  check(!flag(node, "add_prefix_space", true), "ByteLevel pre-tokenizer with add_prefix_space=true is ",
        "not supported (it prepends a space to the text): ", node.dump());
  return flag(node, "use_regex", true);
}

PreTokenizerKind kind_from_json(const nlohmann::json& pre) {
  const std::string unsupported = "tokenizer.json pre_tokenizer is not one of the supported structures "
                                  "(ByteLevel; Sequence[Digits, ByteLevel]; Sequence[Split(GPT-2/Llama-3/Qwen2 "
                                  "regex), ByteLevel]): ";
  const std::string type = type_of(pre);
  if (type == "ByteLevel") {
    check(byte_level_use_regex(pre), unsupported, pre.dump());
    return PreTokenizerKind::Gpt2;
  }
  check(type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array() &&
            pre["pretokenizers"].size() == 2,
        unsupported, pre.dump());
  const nlohmann::json& first = pre["pretokenizers"][0];
  const nlohmann::json& second = pre["pretokenizers"][1];
  check(type_of(second) == "ByteLevel", unsupported, pre.dump());
  const bool second_uses_regex = byte_level_use_regex(second);
  if (type_of(first) == "Digits") {
    check(flag(first, "individual_digits", false) && second_uses_regex, unsupported, pre.dump());
    return PreTokenizerKind::DigitsThenGpt2;
  }
  check(type_of(first) == "Split" && !second_uses_regex, unsupported, pre.dump());
  const auto& pattern = first.value("pattern", nlohmann::json::object());
  check(pattern.contains("Regex") && first.value("behavior", "") == "Isolated" && !flag(first, "invert", false),
        unsupported, pre.dump());
  const std::string regex = pattern["Regex"].get<std::string>();
  if (regex == kGpt2Regex) return PreTokenizerKind::Gpt2;
  if (regex == kLlama3Regex) return PreTokenizerKind::Llama3;
  if (regex == kQwen2Regex) return PreTokenizerKind::Qwen2;
  fail("tokenizer.json Split pre-tokenizer regex is not one of the known patterns (GPT-2, Llama-3, Qwen2): ", regex);
}

}  // namespace

PreTokenizerKind pre_tokenizer_from_json(const nlohmann::json& pre) {
  try {
    return kind_from_json(pre);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer.json pre_tokenizer is malformed (", e.what(), "): ", pre.dump());
  }
}

}  // namespace sentinel
