// UTF-8 decoding (maximal-subpart replacement), ICU-backed character classes with a flat table for
// the Basic Multilingual Plane, and the GPT-2 byte alphabet. See unicode.h for the contracts.
#include "sentinel/tokenizer/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <array>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel::unicode {
namespace {

// Allowed range of the second byte for each lead byte (Unicode Table 3-7, "well-formed UTF-8");
// the remaining continuation bytes are always 0x80..0xBF. A zero-length entry marks an invalid lead.
struct LeadInfo {
  uint8_t length;       // total sequence length, 0 if the byte cannot start a character
  uint8_t second_low;   // allowed range of the second byte
  uint8_t second_high;
};

constexpr LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};  // continuation byte, or an overlong 2-byte lead
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};  // no overlongs
  if (b == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};  // no overlongs
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

bool is_continuation(uint8_t b) { return (b & 0xC0) == 0x80; }

// Letters and numbers assigned after Unicode 15.0, which ICU 72 does not know but tokenizers
// 0.23.3 does: Unicode 15.1 (CJK Extension I), 16.0 (Garay, Gurung Khema, Kirat Rai, Ol Onal,
// Sunuwar, Todhri, Tulu-Tigalari, ...) for its regex engine, and 17.0 (Tolong Siki digits and
// three ideographic numbers) for Rust's is_numeric only. Found by comparing every code point with
// tests/data/tokenizer/unicode_classes.json; nothing ICU classifies needed changing.
struct ClassRange {
  char32_t first, last;
  uint8_t classes;
};
constexpr uint8_t kDigit = kNumber | kNumeric;
constexpr ClassRange kNewerThanIcu[] = {
    {0x01C89, 0x01C8A, kLetter}, {0x0A7CB, 0x0A7CD, kLetter}, {0x0A7DA, 0x0A7DC, kLetter},
    {0x105C0, 0x105F3, kLetter}, {0x10D40, 0x10D49, kDigit},  {0x10D4A, 0x10D65, kLetter},
    {0x10D6F, 0x10D85, kLetter}, {0x10EC2, 0x10EC4, kLetter}, {0x11380, 0x11389, kLetter},
    {0x1138B, 0x1138B, kLetter}, {0x1138E, 0x1138E, kLetter}, {0x11390, 0x113B5, kLetter},
    {0x113B7, 0x113B7, kLetter}, {0x113D1, 0x113D1, kLetter}, {0x113D3, 0x113D3, kLetter},
    {0x116D0, 0x116E3, kDigit},  {0x11BC0, 0x11BE0, kLetter}, {0x11BF0, 0x11BF9, kDigit},
    {0x11DE0, 0x11DE9, kNumeric}, {0x13460, 0x143FA, kLetter}, {0x16100, 0x1611D, kLetter},
    {0x16130, 0x16139, kDigit},  {0x16D40, 0x16D6C, kLetter}, {0x16D70, 0x16D79, kDigit},
    {0x16FF4, 0x16FF6, kNumeric}, {0x18CFF, 0x18CFF, kLetter}, {0x1CCF0, 0x1CCF9, kDigit},
    {0x1E5D0, 0x1E5ED, kLetter}, {0x1E5F0, 0x1E5F0, kLetter}, {0x1E5F1, 0x1E5FA, kDigit},
    {0x2EBF0, 0x2EE5D, kLetter},
};

uint8_t icu_class(char32_t c) {
  const int8_t category = u_charType(static_cast<UChar32>(c));
  uint8_t result = 0;
  if (category >= U_UPPERCASE_LETTER && category <= U_OTHER_LETTER) result |= kLetter;
  if (category >= U_DECIMAL_DIGIT_NUMBER && category <= U_OTHER_NUMBER) result |= kNumber | kNumeric;
  if (u_isUWhiteSpace(static_cast<UChar32>(c))) result |= kWhitespace;
  if (c >= kNewerThanIcu[0].first) {
    for (const ClassRange& r : kNewerThanIcu) {
      if (c >= r.first && c <= r.last) result |= r.classes;
    }
  }
  return result;
}

// The BMP holds nearly every character a tokenizer meets; one byte per code point keeps the hot
// loop free of ICU calls.
const std::vector<uint8_t>& bmp_classes() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> classes(0x10000);
    for (char32_t c = 0; c < 0x10000; ++c) classes[c] = icu_class(c);
    return classes;
  }();
  return table;
}

struct ByteAlphabet {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 324> to_byte{};  // every mapped character is below U+0144
};

// GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100 + n in byte order.
const ByteAlphabet& alphabet() {
  static const ByteAlphabet table = [] {
    ByteAlphabet a;
    a.to_byte.fill(-1);
    int next_extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next_extra++);
      a.to_unicode[b] = c;
      a.to_byte[c] = static_cast<int16_t>(b);
    }
    return a;
  }();
  return table;
}

}  // namespace

Utf8Step decode_utf8_step(std::string_view bytes, size_t position) {
  const auto* s = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  const uint8_t lead = s[position];
  if (lead < 0x80) return {lead, 1, true};
  const LeadInfo info = lead_info(lead);
  if (info.length == 0) return {kReplacementCharacter, 1, false};
  // Walk the expected continuation bytes; the first one out of range ends the maximal subpart.
  char32_t code_point = lead & (0x7F >> info.length);
  for (uint32_t k = 1; k < info.length; ++k) {
    if (position + k >= n) return {kReplacementCharacter, k, false};
    const uint8_t b = s[position + k];
    const bool in_range = (k == 1) ? (b >= info.second_low && b <= info.second_high) : is_continuation(b);
    if (!in_range) return {kReplacementCharacter, k, false};
    code_point = (code_point << 6) | (b & 0x3F);
  }
  return {code_point, info.length, true};
}

bool is_valid_utf8(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<uint8_t>(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = decode_utf8_step(bytes, i);
    if (!step.valid) return false;
    i += step.length;
  }
  return true;
}

std::string replace_invalid_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 16);
  size_t i = 0;
  while (i < bytes.size()) {
    const Utf8Step step = decode_utf8_step(bytes, i);
    if (step.valid) {
      out.append(bytes.substr(i, step.length));
    } else {
      append_utf8(out, kReplacementCharacter);
    }
    i += step.length;
  }
  return out;
}

std::u32string decode_utf8(std::string_view bytes) {
  std::u32string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const Utf8Step step = decode_utf8_step(bytes, i);
    out.push_back(step.code_point);
    i += step.length;
  }
  return out;
}

size_t incomplete_utf8_tail(std::string_view bytes) {
  // A lead byte in the last three positions whose sequence runs past the end, with every byte
  // present so far in range, could still be completed by the next bytes.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const size_t start = n - back;
    const auto lead = static_cast<uint8_t>(bytes[start]);
    if (is_continuation(lead)) continue;
    const LeadInfo info = lead_info(lead);
    if (info.length <= back) return 0;  // complete (or invalid): nothing to wait for
    const Utf8Step step = decode_utf8_step(bytes, start);
    return (!step.valid && step.length == back) ? back : 0;
  }
  return 0;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

uint8_t char_class(char32_t c) {
  if (c < 0x10000) return bmp_classes()[c];
  if (c > 0x10FFFF) return 0;
  return icu_class(c);
}

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

char32_t byte_to_unicode(uint8_t byte) { return alphabet().to_unicode[byte]; }

std::optional<uint8_t> unicode_to_byte(char32_t c) {
  if (c >= alphabet().to_byte.size()) return std::nullopt;
  const int16_t b = alphabet().to_byte[c];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) append_utf8(out, byte_to_unicode(static_cast<uint8_t>(b)));
  return out;
}

std::optional<std::string> byte_level_to_bytes(std::string_view spelling) {
  std::string out;
  out.reserve(spelling.size());
  for (size_t i = 0; i < spelling.size();) {
    const Utf8Step step = decode_utf8_step(spelling, i);
    if (!step.valid) return std::nullopt;
    const auto b = unicode_to_byte(step.code_point);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    i += step.length;
  }
  return out;
}

std::string nfc(std::string_view utf8) {
  if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(utf8);
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFCInstance(status);
  check(U_SUCCESS(status), "ICU's NFC normalizer is unavailable: ", u_errorName(status));
  const icu::UnicodeString text = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  const icu::UnicodeString normalized = normalizer->normalize(text, status);
  check(U_SUCCESS(status), "NFC normalization failed: ", u_errorName(status));
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

}  // namespace sentinel::unicode
