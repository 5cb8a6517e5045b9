// BertNormalizer and BertPreTokenizer against tokenizers, code point by code point
// (tests/data/minilm/bert_unicode.json, from reference/make_minilm_fixtures.py; no model needed):
// every character class, and each step's output for every character. A failure lists the code
// points that differ, as ranges to put into src/tokenizer/bert_normalizer.cpp's tables.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <set>
#include <sstream>

#include "sentinel/core/sha256.h"
#include "sentinel/tokenizer/bert_normalizer.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/test_paths.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

constexpr const char* kRegenerate = "fixtures from: python3 reference/make_minilm_fixtures.py";

const nlohmann::json& fixture() {
  static const nlohmann::json json =
      nlohmann::json::parse(testing::read_file(testing::source_path("tests/data/minilm/bert_unicode.json")));
  return json;
}

bool is_surrogate(char32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

std::string utf8(char32_t c) {
  std::string out;
  unicode::append_utf8(out, c);
  return out;
}

// "[0x61d, 0x61d] [0x2e43, 0x2e4f]": the code points where ours and the reference disagree.
std::string describe_differences(const std::set<char32_t>& expected, const std::function<bool(char32_t)>& ours) {
  std::ostringstream out;
  int n_ranges = 0;
  char32_t first = 0, last = 0;
  bool open = false;
  auto close = [&] {
    if (open && n_ranges++ < 60) out << std::hex << "{0x" << static_cast<uint32_t>(first) << ", 0x" << static_cast<uint32_t>(last) << "}, ";
    open = false;
  };
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (is_surrogate(c)) continue;
    if (ours(c) == (expected.count(c) != 0)) continue;
    if (open && c == last + 1) {
      last = c;
      continue;
    }
    close();
    first = last = c;
    open = true;
  }
  close();
  return out.str();
}

std::set<char32_t> expand(const nlohmann::json& ranges) {
  std::set<char32_t> out;
  for (const auto& r : ranges) {
    for (auto c = r[0].get<char32_t>(); c <= r[1].get<char32_t>(); ++c) out.insert(c);
  }
  return out;
}

BertNormalizer only(bool BertNormalizerOptions::*step) {
  BertNormalizerOptions options{false, false, false, false};
  options.*step = true;
  return BertNormalizer(options);
}

TEST(BertNormalizer, CleanTextRemovesWhatTokenizersRemoves) {
  const BertNormalizer clean = only(&BertNormalizerOptions::clean_text);
  EXPECT_EQ(describe_differences(expand(fixture()["removed"]), [&](char32_t c) { return clean.normalize(utf8(c)).empty(); }),
            "") << kRegenerate;
  EXPECT_EQ(describe_differences(expand(fixture()["whitespace"]),
                                 [&](char32_t c) { return c != ' ' && clean.normalize(utf8(c)) == " "; }),
            "");
}

TEST(BertNormalizer, ChineseCharactersAreTheReferenceBlocks) {
  EXPECT_EQ(describe_differences(expand(fixture()["chinese"]), bert::is_chinese_char), "");
  const BertNormalizer chinese = only(&BertNormalizerOptions::handle_chinese_chars);
  EXPECT_EQ(chinese.normalize("a\u4e2d\u6587b"), "a \u4e2d  \u6587 b");
}

TEST(BertPreTokenizer, PunctuationAndWhitespaceAreTheReferenceClasses) {
  auto pieces = [](char32_t c) {
    std::vector<std::string> words;
    bert_pre_tokenize("a" + utf8(c) + "b", words);
    return words;
  };
  EXPECT_EQ(describe_differences(expand(fixture()["punctuation"]),
                                 [&](char32_t c) { return pieces(c) == std::vector<std::string>{"a", utf8(c), "b"}; }),
            "");
  EXPECT_EQ(describe_differences(expand(fixture()["split"]),
                                 [&](char32_t c) { return pieces(c) == std::vector<std::string>{"a", "b"}; }),
            "");
}

// Every code point's output of one step, hashed as the fixture does; the changed ones compared
// one by one first, so that a failure names them.
void expect_step_matches(const BertNormalizer& step, const char* key) {
  std::map<char32_t, std::string> changed;
  for (const auto& entry : fixture()[std::string(key) + "_changed"]) {
    changed[entry[0].get<char32_t>()] = entry[1].get<std::string>();
  }
  std::string all;
  int n_reported = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (is_surrogate(c)) continue;
    const std::string ours = step.normalize(utf8(c));
    all += ours;
    all.push_back('\xFF');
    const bool hangul = c >= 0xAC00 && c <= 0xD7A3;  // left out of the list, covered by the hash
    const auto it = changed.find(c);
    const std::string expected = it != changed.end() ? it->second : utf8(c);
    if (!hangul && ours != expected && n_reported++ < 40) {
      ADD_FAILURE() << key << " of U+" << std::hex << static_cast<uint32_t>(c) << ": ours \""
                    << testing::printable(ours) << "\", expected \"" << testing::printable(expected) << "\"";
    }
  }
  EXPECT_EQ(sha256_bytes(all), fixture()[std::string(key) + "_sha256"].get<std::string>()) << key << "; " << kRegenerate;
}

TEST(BertNormalizer, LowercaseMatchesEveryCodePoint) {
  expect_step_matches(only(&BertNormalizerOptions::lowercase), "lowercase");
}

TEST(BertNormalizer, StripAccentsRemovesTheReferenceMarks) {
  std::set<char32_t> removed;
  for (const auto& entry : fixture()["strip_accents_changed"]) {
    if (entry[1].get<std::string>().empty()) removed.insert(entry[0].get<char32_t>());
  }
  const BertNormalizer strip = only(&BertNormalizerOptions::strip_accents);
  EXPECT_EQ(describe_differences(removed, [&](char32_t c) { return strip.normalize(utf8(c)).empty(); }), "");
}

TEST(BertNormalizer, StripAccentsMatchesEveryCodePoint) {
  expect_step_matches(only(&BertNormalizerOptions::strip_accents), "strip_accents");
}

TEST(BertNormalizer, StepsRunInTokenizersOrder) {
  const BertNormalizer all;
  // clean (controls dropped, whitespace -> ' '), CJK padded, accents stripped, then lowercased.
  EXPECT_EQ(all.normalize("Caf\u00e9\tNA\u00cfVE\x01\u00ad \u4e2d\u0130"), "cafe naive  \u4e2d i");
  EXPECT_EQ(all.normalize(""), "");
  std::vector<std::string> words;
  bert_pre_tokenize(all.normalize("Hello, World!! ¿Qué?"), words);
  EXPECT_EQ(words, (std::vector<std::string>{"hello", ",", "world", "!", "!", "\u00bf", "que", "?"}));
}

}  // namespace
}  // namespace sentinel
