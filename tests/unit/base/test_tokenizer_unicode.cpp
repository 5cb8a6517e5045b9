// Unicode layer of the tokenizer: UTF-8 replacement against Python's errors='replace' (fixture),
// the incomplete-tail rule used by streaming, character classes and the GPT-2 byte alphabet.
#include <gtest/gtest.h>

#include "sentinel/tokenizer/unicode.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

TEST(TokenizerUnicode, ReplacesInvalidUtf8ExactlyAsPython) {
  const auto fixture = testing::read_tokenizer_fixture("utf8_replace.json");
  ASSERT_GT(fixture["cases"].size(), 300u) << testing::kRegenerateTokenizerFixtures;
  for (const auto& entry : fixture["cases"]) {
    const std::string raw = testing::base64_decode(entry["bytes_base64"].get<std::string>());
    const std::string expected = entry["replaced"].get<std::string>();
    EXPECT_EQ(unicode::replace_invalid_utf8(raw), expected) << "input bytes " << printable(raw);
    EXPECT_EQ(unicode::is_valid_utf8(raw), raw == expected) << "input bytes " << printable(raw);
    // decode_utf8 gives the same code points as decoding the replaced text.
    EXPECT_EQ(unicode::decode_utf8(raw), unicode::decode_utf8(expected)) << "input bytes " << printable(raw);
  }
}

TEST(TokenizerUnicode, CountsReplacementsPerMaximalSubpart) {
  EXPECT_EQ(unicode::decode_utf8("\xF0\x9F\x98"), std::u32string(1, 0xFFFD));  // a cut emoji is one
  EXPECT_EQ(unicode::decode_utf8("\xED\xA0\x80"), std::u32string(3, 0xFFFD));  // a surrogate is three
  EXPECT_EQ(unicode::decode_utf8("\xC0\xAF"), std::u32string(2, 0xFFFD));      // an overlong is two
  EXPECT_EQ(unicode::decode_utf8("a\xF0\x9F\x98\x80"), U"a\U0001F600");
}

TEST(TokenizerUnicode, HoldsBackOnlyCompletableTails) {
  EXPECT_EQ(unicode::incomplete_utf8_tail(""), 0u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xF0"), 1u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xF0\x9F"), 2u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xF0\x9F\x98\x80"), 0u);  // complete
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xE0\x80"), 0u);          // already invalid: nothing to wait for
  EXPECT_EQ(unicode::incomplete_utf8_tail("a\xED\xA0"), 0u);          // surrogate range: invalid
  EXPECT_EQ(unicode::incomplete_utf8_tail("\x80\x80"), 0u);           // lone continuation bytes
  EXPECT_EQ(unicode::incomplete_utf8_tail("\xC3"), 1u);
  EXPECT_EQ(unicode::incomplete_utf8_tail("\xF5"), 0u);  // can never start a character
}

TEST(TokenizerUnicode, ClassifiesLettersNumbersAndWhitespace) {
  EXPECT_TRUE(unicode::is_letter(U'a'));
  EXPECT_TRUE(unicode::is_letter(U'\u00E9'));
  EXPECT_TRUE(unicode::is_letter(U'\u4E2D'));        // CJK
  EXPECT_TRUE(unicode::is_letter(U'\U0001D400'));    // mathematical bold A, outside the BMP table
  EXPECT_FALSE(unicode::is_letter(U'\u0301'));       // combining mark (Mn) is not a letter
  EXPECT_TRUE(unicode::is_number(U'7'));
  EXPECT_TRUE(unicode::is_number(U'\u0663'));        // Arabic-Indic three (Nd)
  EXPECT_TRUE(unicode::is_number(U'\u00BD'));        // one half (No)
  EXPECT_TRUE(unicode::is_number(U'\u216B'));        // Roman numeral twelve (Nl)
  EXPECT_TRUE(unicode::is_whitespace(U'\u3000'));
  EXPECT_TRUE(unicode::is_whitespace(U'\u00A0'));
  EXPECT_TRUE(unicode::is_whitespace(U'\u0085'));
  EXPECT_FALSE(unicode::is_whitespace(U'\u200B'));   // zero width space is not White_Space
  EXPECT_FALSE(unicode::is_whitespace(U'\x1C'));     // Python isspace() says yes; regex \s says no
  EXPECT_EQ(unicode::char_class(U'\uFFFD'), 0);
  EXPECT_EQ(unicode::char_class(0x110000), 0);
}

// Every code point's classes against tokenizers' own (its regex engine and Rust's is_numeric), so
// that the Unicode versions of ICU and of the reference cannot drift apart unnoticed.
TEST(TokenizerUnicode, ClassesMatchTokenizersOnEveryCodePoint) {
  const auto fixture = testing::read_tokenizer_fixture("unicode_classes.json");
  const std::pair<const char*, uint8_t> classes[] = {
      {"letter", unicode::kLetter}, {"number", unicode::kNumber},
      {"whitespace", unicode::kWhitespace}, {"numeric", unicode::kNumeric}};
  for (const auto& [name, bit] : classes) {
    std::vector<bool> expected(0x110000, false);
    for (const auto& range : fixture[name]) {
      for (uint32_t c = range[0].get<uint32_t>(); c <= range[1].get<uint32_t>(); ++c) expected[c] = true;
    }
    int n_wrong = 0;
    for (char32_t c = 0; c < 0x110000; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      const bool ours = (unicode::char_class(c) & bit) != 0;
      if (ours != expected[c] && n_wrong++ < 10) {
        ADD_FAILURE() << name << ": U+" << std::hex << static_cast<uint32_t>(c) << " is " << (ours ? "" : "not ")
                      << "in the class here but " << (expected[c] ? "is" : "is not") << " for tokenizers";
      }
    }
    EXPECT_EQ(n_wrong, 0) << name << ": code points classified differently from tokenizers";
  }
}

TEST(TokenizerUnicode, ByteAlphabetRoundTripsEveryByte) {
  EXPECT_EQ(unicode::byte_to_unicode(' '), U'\u0120');   // 'Ġ'
  EXPECT_EQ(unicode::byte_to_unicode('\n'), U'\u010A');  // 'Ċ'
  EXPECT_EQ(unicode::byte_to_unicode('A'), U'A');
  std::string all;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = unicode::byte_to_unicode(static_cast<uint8_t>(b));
    ASSERT_EQ(unicode::unicode_to_byte(c), std::optional<uint8_t>(static_cast<uint8_t>(b)));
    all.push_back(static_cast<char>(b));
  }
  EXPECT_EQ(unicode::byte_level_to_bytes(unicode::bytes_to_byte_level(all)), std::optional<std::string>(all));
  EXPECT_EQ(unicode::byte_level_to_bytes("a b"), std::nullopt);  // a real space is outside the alphabet
}

}  // namespace
}  // namespace sentinel
