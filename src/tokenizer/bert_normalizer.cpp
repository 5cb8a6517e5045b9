// BertNormalizer and BertPreTokenizer (tokenizers/src/normalizers/bert.rs, pre_tokenizers/bert.rs).
// tokenizers takes control, punctuation and mark classes from the unicode_categories crate, whose
// tables are Unicode 8.0, and lowercase/NFD from newer Rust tables; ICU 72 is Unicode 15.0. ICU's
// classes restricted to characters of Unicode 8.0, and the small tables below, are the result of
// comparing every code point with tests/data/minilm/bert_unicode.json (reference/make_minilm_fixtures.py).
#include "sentinel/tokenizer/bert_normalizer.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <span>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel {
namespace bert {
namespace {

struct Range {
  char32_t first, last;
};

bool in_ranges(char32_t c, std::span<const Range> ranges) {
  for (const Range& r : ranges) {
    if (c >= r.first && c <= r.last) return true;
  }
  return false;
}

// tokenizers' control, punctuation and mark classes are Unicode 8.0's: a character assigned later
// (u_charAge) is in none of them, and a few older ones have changed category since.
bool assigned_by_unicode_8(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] <= 8;
}
constexpr Range kPunctuationOnlyInUnicode8[] = {{0x166D, 0x166D}, {0x111C9, 0x111C9}};  // now So, Mn
constexpr Range kMarkOnlyInUnicode8[] = {{0x1734, 0x1734}};  // now Mc
constexpr Range kMarkSinceUnicode8[] = {{0x1885, 0x1886}, {0xA9BD, 0xA9BD}, {0x111C9, 0x111C9}};  // were Lo, Mc, Po

// Lowercase mappings of characters newer than ICU 72 (Unicode 16.0), which Rust knows: upper
// case first..last maps to c + delta.
struct CaseRange {
  char32_t first, last;
  int32_t delta;
};
constexpr CaseRange kLowercaseAfterIcu[] = {
    {0x1C89, 0x1C89, 1},  {0xA7CB, 0xA7CB, -42343}, {0xA7CC, 0xA7CC, 1},      {0xA7CE, 0xA7CE, 1},
    {0xA7D2, 0xA7D2, 1},  {0xA7D4, 0xA7D4, 1},      {0xA7DA, 0xA7DA, 1},      {0xA7DC, 0xA7DC, -42561},
    {0x10D50, 0x10D65, 32}, {0x16EA0, 0x16EB8, 27},
};

bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

bool icu_is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const int8_t category = u_charType(static_cast<UChar32>(c));
  const bool other = category == U_CONTROL_CHAR || category == U_FORMAT_CHAR || category == U_PRIVATE_USE_CHAR ||
                     category == U_SURROGATE;
  return other && assigned_by_unicode_8(c);
}

bool icu_is_punctuation(char32_t c) {
  if (is_ascii_punctuation(c)) return true;
  if (in_ranges(c, kPunctuationOnlyInUnicode8)) return true;
  const int8_t category = u_charType(static_cast<UChar32>(c));
  const bool punctuation = category >= U_DASH_PUNCTUATION && category <= U_OTHER_PUNCTUATION;  // Pd Ps Pe Pc Po
  const bool quote = category == U_INITIAL_PUNCTUATION || category == U_FINAL_PUNCTUATION;     // Pi Pf
  return (punctuation || quote) && assigned_by_unicode_8(c);
}

bool icu_is_nonspacing_mark(char32_t c) {
  if (in_ranges(c, kMarkOnlyInUnicode8)) return true;
  return u_charType(static_cast<UChar32>(c)) == U_NON_SPACING_MARK && assigned_by_unicode_8(c) &&
         !in_ranges(c, kMarkSinceUnicode8);
}

enum Flag : uint8_t { kControl = 1, kPunctuation = 2, kMark = 4 };

// One byte per Basic Multilingual Plane code point keeps the per-character loop free of ICU calls.
const std::vector<uint8_t>& bmp_flags() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> flags(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c) {
      flags[c] = static_cast<uint8_t>((icu_is_control(c) ? kControl : 0) | (icu_is_punctuation(c) ? kPunctuation : 0) |
                                      (icu_is_nonspacing_mark(c) ? kMark : 0));
    }
    return flags;
  }();
  return table;
}

}  // namespace

bool is_control(char32_t c) { return c < 0x10000 ? (bmp_flags()[c] & kControl) != 0 : icu_is_control(c); }
bool is_punctuation(char32_t c) {
  return c < 0x10000 ? (bmp_flags()[c] & kPunctuation) != 0 : icu_is_punctuation(c);
}
bool is_nonspacing_mark(char32_t c) {
  return c < 0x10000 ? (bmp_flags()[c] & kMark) != 0 : icu_is_nonspacing_mark(c);
}

bool is_whitespace(char32_t c) { return unicode::is_whitespace(c); }

bool is_chinese_char(char32_t c) {
  static constexpr Range kChinese[] = {
      {0x4E00, 0x9FFF},   {0x3400, 0x4DBF},   {0x20000, 0x2A6DF}, {0x2A700, 0x2B73F},
      {0x2B740, 0x2B81F}, {0x2B920, 0x2CEAF}, {0xF900, 0xFAFF},   {0x2F800, 0x2FA1F},
  };
  return c >= 0x3400 && in_ranges(c, kChinese);
}

void append_lowercase(std::u32string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  if (c == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  for (const CaseRange& r : kLowercaseAfterIcu) {
    if (c >= r.first && c <= r.last) {
      out.push_back(static_cast<char32_t>(static_cast<int32_t>(c) + r.delta));
      return;
    }
  }
  out.push_back(static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
}

}  // namespace bert

namespace {

bool is_ascii(std::u32string_view text) {
  for (char32_t c : text) {
    if (c >= 0x80) return false;
  }
  return true;
}

// Canonical decompositions that tokenizers' normalization tables (older than Unicode 13) lack.
bool decomposed_by_tokenizers(char32_t c) { return c != 0x11938; }  // DIVES AKURU VOWEL SIGN O

// NFD of text that holds no character outside decomposed_by_tokenizers, through ICU's UTF-16 API.
void append_nfd(std::u32string_view text, std::u32string& out) {
  if (text.empty()) return;
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&status);
  int32_t n16 = 0;
  const auto* utf32 = reinterpret_cast<const UChar32*>(text.data());
  u_strFromUTF32(nullptr, 0, &n16, utf32, static_cast<int32_t>(text.size()), &status);
  status = U_ZERO_ERROR;  // U_BUFFER_OVERFLOW_ERROR from the preflight
  std::u16string utf16(static_cast<size_t>(n16), u'\0');
  u_strFromUTF32(reinterpret_cast<UChar*>(utf16.data()), n16, nullptr, utf32, static_cast<int32_t>(text.size()),
                 &status);
  // NFD grows a string at most 3x in code units (Unicode's stability policy); 4x leaves headroom.
  std::u16string decomposed(utf16.size() * 4 + 4, u'\0');
  const int32_t length =
      unorm2_normalize(nfd, reinterpret_cast<const UChar*>(utf16.data()), static_cast<int32_t>(utf16.size()),
                       reinterpret_cast<UChar*>(decomposed.data()), static_cast<int32_t>(decomposed.size()), &status);
  check(U_SUCCESS(status), "ICU NFD normalization failed: ", u_errorName(status));
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U16_NEXT(decomposed.data(), i, length, c);
    out.push_back(static_cast<char32_t>(c));
  }
}

// NFD, then nonspacing marks dropped. Characters tokenizers does not decompose are starters
// (canonical combining class 0), so the text is decomposed in the stretches between them.
std::u32string strip_accents(const std::u32string& text) {
  if (is_ascii(text)) return text;
  std::u32string decomposed;
  decomposed.reserve(text.size() + 8);
  size_t begin = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && decomposed_by_tokenizers(text[i])) continue;
    append_nfd(std::u32string_view(text).substr(begin, i - begin), decomposed);
    if (i < text.size()) decomposed.push_back(text[i]);
    begin = i + 1;
  }
  std::u32string out;
  out.reserve(decomposed.size());
  for (char32_t c : decomposed) {
    if (!bert::is_nonspacing_mark(c)) out.push_back(c);
  }
  return out;
}

}  // namespace

// The steps in tokenizers' order: clean, Chinese, strip accents, lowercase; each a pass over the
// whole text, since NFD may reorder marks across characters.
std::string BertNormalizer::normalize(std::string_view text) const {
  std::u32string chars;
  chars.reserve(text.size());
  for (char32_t c : unicode::decode_utf8(text)) {
    if (options_.clean_text) {
      if (c == 0 || c == unicode::kReplacementCharacter || bert::is_control(c)) continue;
      if (bert::is_whitespace(c)) c = ' ';
    }
    if (options_.handle_chinese_chars && bert::is_chinese_char(c)) {
      chars.push_back(' ');
      chars.push_back(c);
      chars.push_back(' ');
    } else {
      chars.push_back(c);
    }
  }
  if (options_.strip_accents) chars = strip_accents(chars);
  std::u32string lowered;
  if (options_.lowercase) {
    lowered.reserve(chars.size());
    for (char32_t c : chars) bert::append_lowercase(lowered, c);
  }
  std::string out;
  out.reserve(text.size());
  for (char32_t c : options_.lowercase ? lowered : chars) unicode::append_utf8(out, c);
  return out;
}

void bert_pre_tokenize(std::string_view text, std::vector<std::string>& words) {
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = 0; i < text.size();) {
    const unicode::Utf8Step step = unicode::decode_utf8_step(text, i);
    const std::string_view bytes = text.substr(i, step.length);
    i += step.length;
    if (bert::is_whitespace(step.code_point)) {
      flush();
    } else if (bert::is_punctuation(step.code_point)) {
      flush();
      words.emplace_back(bytes);
    } else {
      word.append(bytes);
    }
  }
  flush();
}

}  // namespace sentinel
