// The Unicode the tokenizer needs: UTF-8 decoding with a defined answer for invalid bytes, the
// three character classes of the pre-tokenizer regexes (\p{L}, \p{N}, \s) from ICU, and GPT-2's
// byte <-> character alphabet. Not a general Unicode library (no normalization, no case mapping).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sentinel::unicode {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// One step of UTF-8 decoding at a byte position. Invalid input follows the WHATWG / Unicode
// "maximal subpart" rule, which is exactly Python's bytes.decode('utf-8', errors='replace'):
// the longest prefix of a well-formed sequence that the bytes start (at least one byte) becomes
// one U+FFFD. So "\xF0\x9F\x98" (a cut emoji) is one U+FFFD, "\xED\xA0\x80" (a UTF-8 surrogate)
// is three, and "\xC0\xAF" (overlong) is two.
struct Utf8Step {
  char32_t code_point;  // kReplacementCharacter for an invalid subpart
  uint32_t length;      // bytes consumed, 1..4
  bool valid;
};
Utf8Step decode_utf8_step(std::string_view bytes, size_t position);  // position < bytes.size()

bool is_valid_utf8(std::string_view bytes);

// The bytes with every maximal invalid subpart replaced by U+FFFD (EF BF BD); valid input is
// returned unchanged.
std::string replace_invalid_utf8(std::string_view bytes);

// Unicode Normalization Form C of valid UTF-8 (tokenizers' NFC normalizer; ICU's tables). ASCII
// text is returned unchanged without a table look-up.
std::string nfc(std::string_view utf8);

// Decodes to code points with the replacement rule above.
std::u32string decode_utf8(std::string_view bytes);

// Length of a trailing sequence that is a valid but incomplete start of a character (0..3):
// more bytes could still complete it. Used to hold back the tail while streaming.
size_t incomplete_utf8_tail(std::string_view bytes);

void append_utf8(std::string& out, char32_t code_point);

// Character classes of the pre-tokenizer patterns, looked up with ICU: letter = general category
// L* (regex \p{L}), number = N* (regex \p{N}), whitespace = the White_Space property (regex \s),
// numeric = Rust's char::is_numeric (also N*), which tokenizers' Digits pre-tokenizer uses.
// tokenizers 0.23 compiles in newer Unicode than ICU 72 (15.0): its regex engine knows 16.0 and
// Rust knows 17.0, so numeric and number differ by 13 code points there. A small table adds the
// characters assigned since 15.0; tests/data/tokenizer/unicode_classes.json checks every code point.
enum CharClass : uint8_t { kLetter = 1, kNumber = 2, kWhitespace = 4, kNumeric = 8 };
uint8_t char_class(char32_t code_point);  // a mix of CharClass bits; 0 for everything else
inline bool is_letter(char32_t c) { return (char_class(c) & kLetter) != 0; }
inline bool is_number(char32_t c) { return (char_class(c) & kNumber) != 0; }
inline bool is_whitespace(char32_t c) { return (char_class(c) & kWhitespace) != 0; }
inline bool is_numeric(char32_t c) { return (char_class(c) & kNumeric) != 0; }

// Python's str.isspace(): what str.split() and str.strip() without arguments split on and strip
// (Jinja's |trim, sacrebleu's tokenizer). Not regex \s: it includes U+001C..U+001F.
bool is_python_space(char32_t code_point);

// GPT-2's bytes_to_unicode(): each byte maps to one printable character ('A' -> 'A',
// ' ' -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A), so that byte-level vocabularies are printable strings.
char32_t byte_to_unicode(uint8_t byte);
std::optional<uint8_t> unicode_to_byte(char32_t code_point);  // nullopt outside the 256 characters

std::string bytes_to_byte_level(std::string_view bytes);  // raw bytes -> vocabulary spelling
// Vocabulary spelling -> raw bytes; nullopt if any character is outside the alphabet (or the
// spelling is not valid UTF-8).
std::optional<std::string> byte_level_to_bytes(std::string_view spelling);

}  // namespace sentinel::unicode
