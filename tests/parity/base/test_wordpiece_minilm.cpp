// all-MiniLM-L6-v2's WordPiece tokenizer (the installed model's tokenizer.json) against Hugging Face
// `tokenizers` (tests/data/minilm/tokens.json from reference/make_minilm_fixtures.py): hostile
// strings id for id, with and without sentence-transformers' truncation to 256, and every line of
// WikiText-2 test, plus the file as one string.
#include <gtest/gtest.h>

#include <memory>

#include "sentinel/core/paths.h"
#include "sentinel/tokenizer/wordpiece.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

constexpr const char* kRegenerate = "fixtures from: python3 reference/make_minilm_fixtures.py";
constexpr size_t kMaxSeqLength = 256;  // sentence_bert_config.json of all-MiniLM-L6-v2

class MiniLmTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = std::make_unique<WordPieceTokenizer>(
        WordPieceTokenizer::from_json_file(minilm_model_path() + "/tokenizer.json"));
    fixture_ = nlohmann::json::parse(testing::read_file(testing::source_path("tests/data/minilm/tokens.json")));
  }
  static void TearDownTestSuite() { tokenizer_.reset(); }
  static const WordPieceTokenizer& tok() { return *tokenizer_; }
  static const nlohmann::json& fixture() { return fixture_; }

 private:
  static inline std::unique_ptr<WordPieceTokenizer> tokenizer_;
  static inline nlohmann::json fixture_;
};

TEST_F(MiniLmTokenizer, DescribesItself) {
  EXPECT_EQ(tok().summary(),
            "WordPiece, 30522 tokens, unk [UNK], [CLS] $A [SEP], lowercase, strip accents, chinese chars, clean text");
  EXPECT_EQ(tok().pad_id(), 0);
  EXPECT_EQ(tok().encode("Hello, world!"), (std::vector<int32_t>{101, 7592, 1010, 2088, 999, 102}));
}

TEST_F(MiniLmTokenizer, MatchesTokenizersOnHostileStrings) {
  int n_cases = 0;
  for (const auto& entry : fixture()["cases"]) {
    const std::string input = testing::case_input(entry);
    const std::vector<int32_t> ids = tok().encode(input);
    EXPECT_EQ(testing::compare_ids(ids, entry["ids"]), "")
        << "case '" << entry["name"] << "': \"" << printable(input) << "\"\n" << kRegenerate;
    // sentence-transformers' ids: cut to 256 where that changes them, the same ids otherwise.
    const nlohmann::json& truncated = entry.contains("ids_max_seq_length") ? entry["ids_max_seq_length"] : entry["ids"];
    EXPECT_EQ(testing::compare_ids(tok().encode(input, kMaxSeqLength), truncated), "")
        << "case '" << entry["name"] << "' truncated to " << kMaxSeqLength;
    ++n_cases;
  }
  EXPECT_GE(n_cases, 50);
}

// Lines as the fixture splits them: on '\n' only, each keeping its '\n'.
std::vector<std::string_view> wikitext_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t begin = 0; begin < text.size();) {
    const size_t newline = text.find('\n', begin);
    const size_t end = newline == std::string::npos ? text.size() : newline + 1;
    lines.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return lines;
}

TEST_F(MiniLmTokenizer, MatchesTokenizersOnEveryWikiTextTestLine) {
  const nlohmann::json& expected = fixture()["wikitext"];
  const std::string text = testing::read_file(testing::shared_data_path(expected["file"].get<std::string>()));
  const std::vector<std::string_view> lines = wikitext_lines(text);
  ASSERT_EQ(lines.size(), expected["n_lines"].get<size_t>()) << kRegenerate;

  const auto& counts = expected["line_n_tokens"];
  const auto& hashes = expected["line_sha256_12"];
  const auto every = expected["full_ids_every"].get<size_t>();
  size_t n_differing = 0, n_tokens = 0;
  for (size_t line = 0; line < lines.size(); ++line) {
    const std::vector<int32_t> ids = tok().encode(lines[line]);
    n_tokens += ids.size();
    if (line % every == 0) {  // the stored ids say where they part
      EXPECT_EQ(testing::compare_ids(ids, expected["full_ids"][line / every]), "")
          << "line " << line + 1 << ": \"" << printable(lines[line], 300) << "\"";
    }
    const bool same = ids.size() == counts[line].get<size_t>() &&
                      testing::ids_sha256(ids).substr(0, 12) == hashes[line].get<std::string>();
    if (!same && n_differing++ < 5) {
      ADD_FAILURE() << "line " << line + 1 << " differs: \"" << printable(lines[line], 300) << "\"\nours: "
                    << ids.size() << " ids " << testing::format_ids(ids, 100) << "\nexpected: " << counts[line]
                    << " ids, sha256 prefix " << hashes[line].get<std::string>() << "\n" << kRegenerate;
    }
  }
  EXPECT_EQ(n_differing, 0u) << "of " << lines.size() << " lines (" << n_tokens << " tokens)";

  const size_t longest = expected["longest_line"].get<size_t>();
  EXPECT_EQ(testing::compare_ids(tok().encode(lines[longest], kMaxSeqLength),
                                 expected["longest_line_ids_max_seq_length"]),
            "")
      << "line " << longest + 1 << " truncated to " << kMaxSeqLength;

  const std::vector<int32_t> whole = tok().encode(text);
  EXPECT_EQ(whole.size(), expected["n_tokens"].get<size_t>()) << "the file as one string";
  EXPECT_EQ(testing::ids_sha256(whole), expected["sha256"].get<std::string>()) << "the file as one string";
}

}  // namespace
}  // namespace sentinel
