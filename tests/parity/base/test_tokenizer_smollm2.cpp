// The default model's tokenizer, loaded from its GGUF, against the reference tokenizer that
// reference/make_tokenizer_json.py builds (tokenizers with SmolLM2's real pre-tokenizer): hostile
// strings id for id, and all of WikiText-2 test and valid, whole and line by line.
#include <gtest/gtest.h>

#include <memory>

#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/chat_template.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

class SmolLM2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::open(testing::default_model())));
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }
  static const Tokenizer& tok() { return *tokenizer_; }

 private:
  static inline std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(SmolLM2Tokenizer, DescribesItself) {
  EXPECT_EQ(tok().summary(), "byte-level BPE, 49152 tokens, 48900 merges, pre-tokenizer smollm, 17 special, bos=1 eos=2");
  EXPECT_FALSE(tok().add_bos());
  EXPECT_EQ(tok().stop_ids(), (std::vector<int32_t>{2, 0}));  // <|im_end|> (eos), <|endoftext|>
  EXPECT_EQ(tok().token_text(1), "<|im_start|>");
  EXPECT_EQ(tok().token_text(216), "\xC4\xA0");  // 'Ġ', a lone space
  EXPECT_EQ(tok().token_bytes(216), " ");
}

TEST_F(SmolLM2Tokenizer, MatchesReferenceOnHostileStrings) {
  const auto fixture = testing::read_tokenizer_fixture("hostile_strings.json");
  for (const auto& entry : fixture["cases"]) {
    const std::string input = testing::case_input(entry);
    for (auto [mode, special] : {std::pair{"parse", SpecialTokens::Parse}, std::pair{"ignore", SpecialTokens::Ignore}}) {
      const std::string diff = testing::compare_ids(tok().encode(input, true, special), entry["smollm2"][mode]);
      EXPECT_EQ(diff, "") << "case '" << entry["name"] << "' (" << mode << "): \"" << printable(input) << "\"\n"
                          << testing::kRegenerateTokenizerFixtures;
    }
  }
  EXPECT_EQ(tok().encode("Hello world! 123"), (std::vector<int32_t>{19556, 905, 17, 216, 33, 34, 35}));
}

// The reference encodes each file as one string, and separately line by line (split on '\n'
// only, each line keeping its '\n'). A failure names the first line that differs.
void expect_wikitext_parity(const Tokenizer& tokenizer, const std::string& name, const nlohmann::json& expected) {
  const std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/" + name));
  const std::vector<int32_t> whole = tokenizer.encode(text, false);
  EXPECT_EQ(whole.size(), expected["n_tokens"].get<size_t>()) << name << " as one string";
  EXPECT_EQ(testing::ids_sha256(whole), expected["sha256"].get<std::string>()) << name << " as one string";
  EXPECT_EQ(tokenizer.decode(whole), text) << name << " does not round-trip";

  const auto& counts = expected["line_n_tokens"];
  const auto& hashes = expected["line_sha256_16"];
  size_t line = 0, n_differing = 0, begin = 0;
  while (begin < text.size()) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string::npos ? text.size() : newline + 1;
    const std::string_view line_text = std::string_view(text).substr(begin, end - begin);
    ASSERT_LT(line, counts.size()) << name << " has more lines than the fixture";
    const std::vector<int32_t> ids = tokenizer.encode(line_text, false);
    const bool same = ids.size() == counts[line].get<size_t>() &&
                      testing::ids_sha256(ids).substr(0, 16) == hashes[line].get<std::string>();
    if (!same && n_differing++ == 0) {
      ADD_FAILURE() << name << " line " << line + 1 << " differs: \"" << printable(line_text, 400) << "\"\nours: "
                    << ids.size() << " ids " << testing::format_ids(ids, 200) << "\nexpected: " << counts[line]
                    << " ids, sha256 prefix " << hashes[line].get<std::string>() << "\n"
                    << testing::kRegenerateTokenizerFixtures;
    }
    ++line;
    begin = end;
  }
  EXPECT_EQ(line, expected["n_lines"].get<size_t>()) << name;
  EXPECT_EQ(n_differing, 0u) << name << ": lines that differ";
}

TEST_F(SmolLM2Tokenizer, MatchesReferenceOnWikiText2Test) {
  const auto fixture = testing::read_tokenizer_fixture("wikitext2_smollm2.json");
  expect_wikitext_parity(tok(), "wiki.test.raw", fixture["files"]["wiki.test.raw"]);
}

TEST_F(SmolLM2Tokenizer, MatchesReferenceOnWikiText2Valid) {
  const auto fixture = testing::read_tokenizer_fixture("wikitext2_smollm2.json");
  expect_wikitext_parity(tok(), "wiki.valid.raw", fixture["files"]["wiki.valid.raw"]);
}

TEST_F(SmolLM2Tokenizer, RendersChatLikeTransformers) {
  // tiny-smollm's tokenizer_config.json carries this GGUF's chat template, so its cases apply here.
  const auto config = nlohmann::json::parse(
      testing::read_file(testing::source_path("tests/data/tokenizer/tiny-smollm/tokenizer_config.json")));
  ASSERT_EQ(tok().chat_template(), config["chat_template"].get<std::string>());
  const auto fixture = testing::read_tokenizer_fixture("chat_templates.json");
  int n_checked = 0;
  for (const auto& entry : fixture["cases"]) {
    if (entry["tokenizer"] != "tiny-smollm") continue;
    std::vector<ChatMessage> messages;
    for (const auto& m : entry["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(apply_chat_template(tok(), messages, entry["add_generation_prompt"].get<bool>()),
              entry["rendered"].get<std::string>());
    ++n_checked;
  }
  EXPECT_GT(n_checked, 4);
  const auto ids = tok().encode(apply_chat_template(tok(), {{"user", "Hi"}}));
  EXPECT_EQ(ids.front(), 1);  // <|im_start|> parsed as one token
}

}  // namespace
}  // namespace sentinel
