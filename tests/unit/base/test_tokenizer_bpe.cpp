// Tokenizer from tokenizer.json on the two tiny trained fixtures (SmolLM2-style and Llama-3-style):
// ids of the hostile strings against tokenizers, both merge spellings, round trips, streaming,
// and the errors for what is not supported.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using nlohmann::json;
using testing::printable;

std::string tiny_path(const std::string& name) {
  return testing::source_path("tests/data/tokenizer/" + name + "/tokenizer.json");
}

// A scratch folder for tokenizer.json variants; removed with the test.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("sentinel-tok-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const json& value) const {
    const auto file = path_ / name;
    std::ofstream(file) << value.dump();
    return file.string();
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

void expect_hostile_ids(const Tokenizer& tokenizer, const std::string& fixture_key) {
  const auto fixture = testing::read_tokenizer_fixture("hostile_strings.json");
  ASSERT_GT(fixture["cases"].size(), 30u) << testing::kRegenerateTokenizerFixtures;
  for (const auto& entry : fixture["cases"]) {
    const std::string input = testing::case_input(entry);
    const auto& expected = entry[fixture_key];
    const std::string parse = testing::compare_ids(tokenizer.encode(input, true, SpecialTokens::Parse), expected["parse"]);
    EXPECT_EQ(parse, "") << fixture_key << " case '" << entry["name"] << "' (Parse): \"" << printable(input) << "\"";
    const std::string ignore =
        testing::compare_ids(tokenizer.encode(input, true, SpecialTokens::Ignore), expected["ignore"]);
    EXPECT_EQ(ignore, "") << fixture_key << " case '" << entry["name"] << "' (Ignore): \"" << printable(input) << "\"";
  }
}

TEST(TokenizerJson, TinySmolLMMatchesTokenizersOnHostileStrings) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  EXPECT_EQ(tokenizer.pre_tokenizer(), PreTokenizerKind::DigitsThenGpt2);
  EXPECT_FALSE(tokenizer.add_bos());
  expect_hostile_ids(tokenizer, "tiny-smollm");
}

TEST(TokenizerJson, TinyLlama3MatchesTokenizersOnHostileStrings) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-llama3"));
  EXPECT_EQ(tokenizer.pre_tokenizer(), PreTokenizerKind::Llama3);
  EXPECT_TRUE(tokenizer.add_bos());
  expect_hostile_ids(tokenizer, "tiny-llama3");
}

TEST(TokenizerJson, ReadsMergesWrittenAsStrings) {
  json root = json::parse(testing::read_file(tiny_path("tiny-smollm")));
  for (auto& merge : root["model"]["merges"]) merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  TempDir dir;
  const Tokenizer tokenizer = Tokenizer::from_json_file(dir.write("tokenizer.json", root));
  EXPECT_EQ(tokenizer.n_merges(), static_cast<int32_t>(root["model"]["merges"].size()));
  expect_hostile_ids(tokenizer, "tiny-smollm");  // no tokenizer_config.json here, but add_bos is off anyway
}

TEST(TokenizerJson, ReadsBosEosAndTemplateFromTokenizerConfig) {
  const Tokenizer smol = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  EXPECT_EQ(smol.bos_id(), smol.find_token("<|im_start|>"));
  EXPECT_EQ(smol.eos_id(), smol.find_token("<|im_end|>"));
  EXPECT_NE(smol.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(smol.stop_ids(), (std::vector<int32_t>{*smol.find_token("<|im_end|>"), *smol.find_token("<|endoftext|>")}));
  EXPECT_EQ(smol.summary(), "byte-level BPE, " + std::to_string(smol.n_vocab()) + " tokens, " +
                                std::to_string(smol.n_merges()) + " merges, pre-tokenizer smollm, 3 special, bos=1 eos=2");

  const Tokenizer llama = Tokenizer::from_json_file(tiny_path("tiny-llama3"));
  const int32_t bos = *llama.find_token("<|begin_of_text|>");
  EXPECT_EQ(llama.bos_id(), bos);
  EXPECT_EQ(llama.eos_id(), llama.find_token("<|eot_id|>"));
  EXPECT_EQ(llama.encode("hi").front(), bos);
  EXPECT_NE(llama.encode("hi", /*add_bos=*/false).front(), bos);
}

TEST(TokenizerJson, DecodeInvertsEncodeForValidUtf8) {
  const auto fixture = testing::read_tokenizer_fixture("hostile_strings.json");
  for (const std::string name : {"tiny-smollm", "tiny-llama3"}) {
    const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path(name));
    for (const auto& entry : fixture["cases"]) {
      const std::string input = testing::case_input(entry);
      const std::string text = unicode::replace_invalid_utf8(input);  // invalid bytes become U+FFFD first
      for (auto special : {SpecialTokens::Parse, SpecialTokens::Ignore}) {
        EXPECT_EQ(tokenizer.decode(tokenizer.encode(input, false, special)), text)
            << name << " case '" << entry["name"] << "'";
      }
    }
  }
}

TEST(TokenizerJson, DecodeSkipsSpecialTokensOnRequest) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  const auto ids = tokenizer.encode("<|im_start|>user\nhi <tool><|im_end|>");
  EXPECT_EQ(ids.front(), *tokenizer.find_token("<|im_start|>"));
  EXPECT_TRUE(tokenizer.is_special(ids.front()));
  EXPECT_EQ(tokenizer.decode(ids, /*skip_special=*/true), "user\nhi <tool>");  // <tool> is added, not special
}

TEST(TokenizerJson, DecodeNamesAnIdOutOfRange) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  const std::vector<int32_t> ids = {5, tokenizer.n_vocab()};
  try {
    tokenizer.decode(ids);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("token id " + std::to_string(tokenizer.n_vocab())), std::string::npos) << message;
    EXPECT_NE(message.find("n_vocab=" + std::to_string(tokenizer.n_vocab())), std::string::npos) << message;
  }
  EXPECT_THROW(tokenizer.token_bytes(-1), Error);
}

TEST(TokenizerStream, HoldsBackAnEmojiSplitAcrossTokens) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  const std::string thumbs = "\xF0\x9F\x91\x8D";  // U+1F44D, one token per byte in any byte-level vocabulary
  StreamDecoder stream(tokenizer);
  EXPECT_EQ(stream.push(*tokenizer.find_token("a")), "a");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(stream.push(*tokenizer.find_token(unicode::bytes_to_byte_level(thumbs.substr(i, 1)))), "");
  }
  EXPECT_EQ(stream.push(*tokenizer.find_token(unicode::bytes_to_byte_level(thumbs.substr(3, 1)))), thumbs);
  EXPECT_EQ(stream.push(*tokenizer.find_token("<|im_end|>")), "");  // special: skipped by default
  EXPECT_EQ(stream.push(*tokenizer.find_token(unicode::bytes_to_byte_level("\xF0"))), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");  // a cut character ends as one U+FFFD
  EXPECT_EQ(stream.flush(), "");
}

TEST(TokenizerStream, ConcatenationEqualsReplacedDecode) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-smollm"));
  const auto fixture = testing::read_tokenizer_fixture("hostile_strings.json");
  for (const auto& entry : fixture["cases"]) {
    const auto ids = tokenizer.encode(testing::case_input(entry), false, SpecialTokens::Ignore);
    StreamDecoder stream(tokenizer, /*skip_special=*/false);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string part = stream.push(id);
      EXPECT_TRUE(unicode::is_valid_utf8(part)) << "case '" << entry["name"] << "'";
      streamed += part;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, unicode::replace_invalid_utf8(tokenizer.decode(ids))) << "case '" << entry["name"] << "'";
  }
}

// encode() shares a piece cache between threads; concurrent calls must give the serial answer.
TEST(TokenizerJson, EncodesConcurrentlyLikeSerially) {
  const Tokenizer tokenizer = Tokenizer::from_json_file(tiny_path("tiny-llama3"));
  const auto fixture = testing::read_tokenizer_fixture("hostile_strings.json");
  std::vector<std::string> inputs;
  for (const auto& entry : fixture["cases"]) inputs.push_back(testing::case_input(entry));
  std::vector<std::vector<int32_t>> serial;
  for (const auto& input : inputs) serial.push_back(Tokenizer(tokenizer).encode(input));
  std::vector<int> n_wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < inputs.size(); ++i) n_wrong[t] += tokenizer.encode(inputs[i]) != serial[i];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(n_wrong, std::vector<int>(4, 0));
}

// Each variant of the tiny tokenizer.json that must be refused, and a word its message must hold.
TEST(TokenizerJson, RefusesWhatItCannotReproduce) {
  const json base = json::parse(testing::read_file(tiny_path("tiny-smollm")));
  struct Variant {
    const char* what;
    std::function<void(json&)> edit;
  };
  const Variant variants[] = {
      {"byte_fallback", [](json& j) { j["model"]["byte_fallback"] = true; }},
      {"WordPiece", [](json& j) { j["model"]["type"] = "WordPiece"; }},
      {"normalizer", [](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }},  // NFC is read (Qwen); NFKC is not
      {"Whitespace", [](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }},
      {"not in the vocabulary", [](json& j) { j["model"]["merges"][0] = {"Ġ", "no-such-token"}; }},
      {"lstrip", [](json& j) { j["added_tokens"][0]["lstrip"] = true; }},
      {"exactly one space", [](json& j) { j["model"]["merges"][0] = "a b c"; }},
      {"missing", [](json& j) { j["model"]["vocab"].erase("a"); }},
      {"malformed", [](json& j) { j["model"]["vocab"]["a"] = "not a number"; }},
  };
  TempDir dir;
  for (const Variant& v : variants) {
    json variant = base;
    v.edit(variant);
    const std::string path = dir.write("tokenizer.json", variant);
    try {
      Tokenizer::from_json_file(path);
      ADD_FAILURE() << "expected Error for " << v.what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(v.what), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Tokenizer::from_json_file(dir.write("empty.json", json::object())), Error);
  EXPECT_THROW(Tokenizer::from_json_file("/nonexistent/tokenizer.json"), Error);
}

}  // namespace
}  // namespace sentinel
