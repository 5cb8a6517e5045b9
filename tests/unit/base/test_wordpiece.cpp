// WordPieceTokenizer on a tiny in-memory tokenizer.json: the greedy longest-match rule, unknown
// words, special tokens in the text, truncation, and the errors for files it must refuse. Parity
// with the real all-MiniLM-L6-v2 vocabulary is in tests/parity/base/test_wordpiece_minilm.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/wordpiece.h"

namespace sentinel {
namespace {

using nlohmann::json;

json tiny_tokenizer_json() {
  const std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able",
                                          "affable", "##a", "a", "!", "hello", "##llo", "he", "ca", "##fe", "中"};
  json v = json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  json added = json::array();
  for (int id : {0, 1, 2, 3, 4}) {
    added.push_back({{"id", id}, {"content", vocab[id]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  }
  return {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true}, {"strip_accents", nullptr},
        {"lowercase", true}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}})},
        {"special_tokens",
         {{"[CLS]", {{"id", "[CLS]"}, {"ids", {2}}, {"tokens", {"[CLS]"}}}},
          {"[SEP]", {{"id", "[SEP]"}, {"ids", {3}}, {"tokens", {"[SEP]"}}}}}}}},
      {"model",
       {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", 10}, {"vocab", v}}},
  };
}

WordPieceTokenizer tiny(const json& j = tiny_tokenizer_json()) { return WordPieceTokenizer::from_json_text(j.dump(), "tiny.json"); }

TEST(WordPiece, DescribesItself) {
  const WordPieceTokenizer tok = tiny();
  EXPECT_EQ(tok.summary(), "WordPiece, 18 tokens, unk [UNK], [CLS] $A [SEP], lowercase, strip accents, chinese chars, clean text");
  EXPECT_EQ(tok.n_special_tokens(), 2u);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 1);
  EXPECT_EQ(tok.find_token("##aff"), 6);
  EXPECT_THROW(tok.token_text(18), Error);
}

TEST(WordPiece, LongestMatchFirstWithContinuations) {
  const WordPieceTokenizer tok = tiny();
  EXPECT_EQ(tok.encode("unaffable"), (std::vector<int32_t>{2, 5, 6, 7, 3}));     // un ##aff ##able
  EXPECT_EQ(tok.encode("Affable!"), (std::vector<int32_t>{2, 8, 11, 3}));       // lowercased, "!" split off
  EXPECT_EQ(tok.encode("hello hehe"), (std::vector<int32_t>{2, 12, 1, 3}));     // "##he" is no piece: [UNK]
  EXPECT_EQ(tok.encode("Café"), (std::vector<int32_t>{2, 15, 16, 3}));          // accent stripped: ca ##fe
  EXPECT_EQ(tok.encode("a中a"), (std::vector<int32_t>{2, 10, 17, 10, 3}));      // CJK is its own word
  EXPECT_EQ(tok.encode(""), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(tok.encode(" \t\n"), (std::vector<int32_t>{2, 3}));
}

TEST(WordPiece, WordsLongerThanTheLimitAreUnknown) {
  const WordPieceTokenizer tok = tiny();
  EXPECT_EQ(tok.encode("aaaaaaaaaa"), (std::vector<int32_t>(
                                          {2, 10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 3})));  // 10 characters: a ##a ...
  EXPECT_EQ(tok.encode("aaaaaaaaaaa"), (std::vector<int32_t>{2, 1, 3}));             // 11: over the limit
  EXPECT_EQ(tok.encode("ééééééééééé"), (std::vector<int32_t>{2, 1, 3}));  // counted after normalization, in characters
}

TEST(WordPiece, SpecialTokensInTheTextAndTruncation) {
  const WordPieceTokenizer tok = tiny();
  // "[mask]" is not the special token (matched case-sensitively in the raw text): [ mask ] -> [UNK] x3.
  EXPECT_EQ(tok.encode("[MASK]hello[SEP] [mask]"), (std::vector<int32_t>{2, 4, 12, 3, 1, 1, 1, 3}));
  EXPECT_EQ(tok.encode("hello hello hello", 4), (std::vector<int32_t>{2, 12, 12, 3}));
  EXPECT_EQ(tok.encode("hello", 2), (std::vector<int32_t>{2, 3}));
  EXPECT_THROW(tok.encode("hello", 1), Error);
  EXPECT_EQ(tok.encode("he\xff" "llo"), (std::vector<int32_t>{2, 12, 3}));  // invalid byte -> U+FFFD -> dropped
}

// Each edit makes the file one the tokenizer must refuse; the message names the problem.
void expect_refused(const std::function<void(json&)>& edit, const std::string& needle) {
  json j = tiny_tokenizer_json();
  edit(j);
  try {
    tiny(j);
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiny.json"), std::string::npos) << e.what();
  }
}

TEST(WordPiece, RefusesForeignOrMalformedFiles) {
  expect_refused([](json& j) { j["model"]["type"] = "BPE"; }, "only WordPiece is supported");
  expect_refused([](json& j) { j["model"]["unk_token"] = "<unk>"; }, "'<unk>' is not in model.vocab");
  expect_refused([](json& j) { j["model"]["vocab"]["dup"] = 5; }, "gives the id 5 to both");
  expect_refused([](json& j) { j["model"]["vocab"]["far"] = 99; }, "ids must be 0..18");
  expect_refused([](json& j) { j["model"]["max_input_chars_per_word"] = 0; }, "must be positive");
  expect_refused([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }, "need a BertNormalizer");
  expect_refused([](json& j) { j["normalizer"] = nullptr; }, "need a BertNormalizer");
  expect_refused([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, "need a BertPreTokenizer");
  expect_refused([](json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; }, "RobertaProcessing");
  expect_refused([](json& j) { j["post_processor"]["single"].erase(1); }, "has no $A");
  expect_refused([](json& j) { j["post_processor"]["special_tokens"].erase("[SEP]"); }, "does not define it");
  expect_refused([](json& j) { j["added_tokens"][4]["lstrip"] = true; }, "lstrip=true");
  expect_refused([](json& j) { j["added_tokens"][4]["normalized"] = true; }, "normalized=true");
  expect_refused([](json& j) { j["added_tokens"][4]["id"] = 7; }, "another id");
  expect_refused([](json& j) { j["model"]["vocab"] = "oops"; }, "non-empty");
  expect_refused([](json& j) { j["model"]["unk_token"] = 3; }, "malformed tokenizer file");
  expect_refused([](json& j) { j.erase("model"); }, "no \"model\"");
  EXPECT_THROW(WordPieceTokenizer::from_json_text("{not json", "tiny.json"), Error);
  EXPECT_THROW(WordPieceTokenizer::from_json_file("/nonexistent/tokenizer.json"), Error);
}

}  // namespace
}  // namespace sentinel
