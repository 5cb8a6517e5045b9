// Pre-tokenizer splits against tokenizers' pre_tokenize_str (fixture), for each supported pattern,
// and the mapping from GGUF names and tokenizer.json structures to a pattern.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/pretokenizer.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

std::string joined(const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += "[" + printable(p) + "]";
  return out;
}

TEST(TokenizerPreTokenizer, MatchesTokenizersOnEveryFixtureCase) {
  const auto fixture = testing::read_tokenizer_fixture("pretokenizer_pieces.json");
  const std::pair<const char*, PreTokenizerKind> kinds[] = {
      {"gpt2", PreTokenizerKind::Gpt2},
      {"smollm", PreTokenizerKind::DigitsThenGpt2},
      {"llama3", PreTokenizerKind::Llama3},
      {"qwen2", PreTokenizerKind::Qwen2},
  };
  ASSERT_GT(fixture["cases"].size(), 50u) << testing::kRegenerateTokenizerFixtures;
  for (const auto& entry : fixture["cases"]) {
    const std::string text = entry["text"].get<std::string>();
    for (const auto& [name, kind] : kinds) {
      const auto expected = entry[name].get<std::vector<std::string>>();
      const auto ours = PreTokenizer(kind).split(text);
      EXPECT_EQ(ours, expected) << name << " on \"" << printable(text) << "\"\nours:     " << joined(ours)
                                << "\nexpected: " << joined(expected);
    }
  }
}

TEST(TokenizerPreTokenizer, PiecesCoverTheTextInOrder) {
  const std::string text = "It's 2024!\r\n\tHello,  wörld  \u3000 ١٢٣ 👍🏽";
  for (auto kind : {PreTokenizerKind::Gpt2, PreTokenizerKind::DigitsThenGpt2, PreTokenizerKind::Llama3,
                    PreTokenizerKind::Qwen2}) {
    std::vector<Piece> pieces;
    PreTokenizer(kind).split(text, pieces, 100);
    uint32_t at = 100;
    for (const Piece& p : pieces) {
      EXPECT_EQ(p.begin, at);
      EXPECT_LT(p.begin, p.end);
      at = p.end;
    }
    EXPECT_EQ(at, 100 + text.size()) << pre_tokenizer_name(kind);
  }
}

TEST(TokenizerPreTokenizer, SplitsDigitsOneByOneForSmolLM) {
  EXPECT_EQ(PreTokenizer(PreTokenizerKind::DigitsThenGpt2).split("a 2024x"),
            (std::vector<std::string>{"a", " ", "2", "0", "2", "4", "x"}));
  EXPECT_EQ(PreTokenizer(PreTokenizerKind::Llama3).split("1234567"),
            (std::vector<std::string>{"123", "456", "7"}));
}

TEST(TokenizerPreTokenizer, KnowsGgufNames) {
  EXPECT_EQ(pre_tokenizer_from_gguf("smollm"), PreTokenizerKind::DigitsThenGpt2);
  EXPECT_EQ(pre_tokenizer_from_gguf("gpt2"), PreTokenizerKind::Gpt2);
  EXPECT_EQ(pre_tokenizer_from_gguf("default"), PreTokenizerKind::Gpt2);
  EXPECT_EQ(pre_tokenizer_from_gguf("llama-bpe"), PreTokenizerKind::Llama3);
  EXPECT_EQ(pre_tokenizer_from_gguf("llama3"), PreTokenizerKind::Llama3);
  EXPECT_EQ(pre_tokenizer_from_gguf("qwen2"), PreTokenizerKind::Qwen2);
  try {
    pre_tokenizer_from_gguf("deepseek-coder");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'deepseek-coder'"), std::string::npos) << e.what();
  }
}

TEST(TokenizerPreTokenizer, RecognisesTokenizerJsonStructures) {
  using nlohmann::json;
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  const json byte_level_no_regex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(pre_tokenizer_from_json(byte_level), PreTokenizerKind::Gpt2);
  const json smollm = {{"type", "Sequence"},
                       {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
  EXPECT_EQ(pre_tokenizer_from_json(smollm), PreTokenizerKind::DigitsThenGpt2);
  auto split = [&](const std::string& regex) {
    return json{{"type", "Sequence"},
                {"pretokenizers",
                 {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                  byte_level_no_regex}}};
  };
  EXPECT_EQ(pre_tokenizer_from_json(split(
                R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)")),
            PreTokenizerKind::Llama3);
  EXPECT_THROW(pre_tokenizer_from_json(split(R"(\w+|\s+)")), Error);
  EXPECT_THROW(pre_tokenizer_from_json(json{{"type", "Whitespace"}}), Error);
  EXPECT_THROW(pre_tokenizer_from_json(json{{"type", "ByteLevel"}, {"add_prefix_space", true}}), Error);
  const json digits_grouped = {{"type", "Sequence"},
                               {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", false}}, byte_level}}};
  EXPECT_THROW(pre_tokenizer_from_json(digits_grouped), Error);
  EXPECT_THROW(pre_tokenizer_from_json(json{{"type", "Sequence"}, {"pretokenizers", 3}}), Error);
}

}  // namespace
}  // namespace sentinel
