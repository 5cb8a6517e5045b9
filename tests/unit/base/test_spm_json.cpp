// SentencePiece-style tokenizer.json files (BPE with byte_fallback) against tokenizers 0.23.3: the
// four shapes of tests/data/tokenizer/tiny-spm-*/ (Llama 2's Prepend normalizer, transformers 5's
// Metaspace "first", Gemma's Replace without Strip, Metaspace "always" with its own decoder) on the
// hostile and random strings, random id sequences and 2,000 WikiText-2 lines of spm_json_cases.json
// (reference/make_spm_fixtures.py json); then what must be refused, and streaming.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using nlohmann::json;
using testing::printable;

constexpr const char* kRegenerate = "regenerate with: python3 reference/make_spm_fixtures.py json";

std::string variant_path(const std::string& name) {
  return testing::source_path("tests/data/tokenizer/" + name + "/tokenizer.json");
}

const json& cases_fixture() {
  static const json fixture = testing::read_tokenizer_fixture("spm_json_cases.json");
  return fixture;
}

// Text in the fixture, or {"sha256": ...} of a long one.
std::string compare_text(const std::string& ours, const json& expected) {
  if (expected.is_object()) {
    const std::string hash = sha256_bytes(ours);
    return hash == expected["sha256"].get<std::string>() ? "" : "sha256 " + hash + " != " + expected["sha256"].dump();
  }
  const std::string want = expected.get<std::string>();
  return ours == want ? "" : "\"" + printable(ours) + "\" != \"" + printable(want) + "\"";
}

class SpmJsonVariant : public ::testing::TestWithParam<const char*> {};

TEST_P(SpmJsonVariant, EncodesAndDecodesLikeTokenizers) {
  const std::string name = GetParam();
  const Tokenizer tok = Tokenizer::from_json_file(variant_path(name));
  EXPECT_EQ(tok.model(), TokenizerModel::SentencePieceBpe);
  const json& expected = cases_fixture()["variants"][name];
  const json& cases = cases_fixture()["cases"];
  size_t n_wrong = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string input = testing::case_input(cases[i]);
    const std::vector<int32_t> parsed = tok.encode(input, true, SpecialTokens::Parse);
    const std::vector<int32_t> ignored = tok.encode(input, true, SpecialTokens::Ignore);
    const json& want_ignored = expected["ignore"][i].is_null() ? expected["parse"][i] : expected["ignore"][i];
    const json& want_skip = expected["decode_skip"][i].is_null() ? expected["decode"][i] : expected["decode_skip"][i];
    const std::string diffs[] = {testing::compare_ids(parsed, expected["parse"][i]),
                                 testing::compare_ids(ignored, want_ignored),
                                 compare_text(tok.decode(parsed), expected["decode"][i]),
                                 compare_text(tok.decode(parsed, true), want_skip)};
    const char* what[] = {"ids (special parsed)", "ids (special ignored)", "decode", "decode skipping special"};
    bool wrong = false;
    for (int k = 0; k < 4; ++k) {
      if (diffs[k].empty()) continue;
      wrong = true;
      if (n_wrong < 8) {
        ADD_FAILURE() << name << " case '" << cases[i]["name"].get<std::string>() << "' \"" << printable(input)
                      << "\": " << what[k] << ": " << diffs[k] << "\n" << kRegenerate;
      }
    }
    n_wrong += wrong ? 1 : 0;
  }
  EXPECT_EQ(n_wrong, 0u) << "of " << cases.size() << " cases differ in " << name;

  for (const json& sequence : expected["id_sequences"]) {
    const auto ids = sequence[0].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.decode(ids), sequence[1].get<std::string>()) << name << " " << testing::format_ids(ids);
    EXPECT_EQ(tok.decode(ids, true), sequence[2].get<std::string>()) << name << " " << testing::format_ids(ids);
  }
}

TEST_P(SpmJsonVariant, MatchesTokenizersOnWikiText) {
  const std::string name = GetParam();
  const Tokenizer tok = Tokenizer::from_json_file(variant_path(name));
  const json& wiki = cases_fixture()["variants"][name]["wikitext"];
  const std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw"));
  const auto n_lines = wiki["n_lines"].get<size_t>();
  size_t begin = 0, n_differing = 0, n_decode_differing = 0;
  for (size_t line = 0; line < n_lines; ++line) {
    const size_t end = std::min(text.find('\n', begin), text.size() - 1) + 1;
    const std::string_view line_text = std::string_view(text).substr(begin, end - begin);
    const std::vector<int32_t> ids = tok.encode(line_text, false);
    const bool same = ids.size() == wiki["line_n_tokens"][line].get<size_t>() &&
                      testing::ids_sha256(ids).substr(0, 16) == wiki["line_sha256_16"][line].get<std::string>();
    if (!same && n_differing++ == 0) {
      ADD_FAILURE() << name << ": wiki.test.raw line " << line + 1 << " differs: \"" << printable(line_text, 300)
                    << "\"\nours: " << testing::format_ids(ids, 100) << "\n" << kRegenerate;
    }
    const std::string decoded = tok.decode(ids);
    const auto key = std::to_string(line);
    const bool decode_same = wiki["line_decode_differs"].contains(key)
                                 ? sha256_bytes(decoded).substr(0, 16) == wiki["line_decode_differs"][key].get<std::string>()
                                 : decoded == line_text;
    if (!decode_same && n_decode_differing++ == 0) {
      ADD_FAILURE() << name << ": wiki.test.raw line " << line + 1 << " decodes to \"" << printable(decoded, 300) << "\"";
    }
    begin = end;
  }
  EXPECT_EQ(n_differing, 0u) << name;
  EXPECT_EQ(n_decode_differing, 0u) << name;
  const std::vector<int32_t> whole = tok.encode(std::string_view(text).substr(0, begin), false);
  EXPECT_EQ(testing::compare_ids(whole, wiki["whole"]), "") << name << ": the first " << n_lines << " lines at once";
}

INSTANTIATE_TEST_SUITE_P(Shapes, SpmJsonVariant,
                         ::testing::Values("tiny-spm-llama2", "tiny-spm-metaspace", "tiny-spm-gemma", "tiny-spm-always"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string id = info.param + std::string("tiny-spm-").size();
                           return id;
                         });

TEST(SpmJson, DescribesItself) {
  EXPECT_EQ(Tokenizer::from_json_file(variant_path("tiny-spm-llama2")).summary(),
            "SentencePiece BPE with byte fallback, 1357 tokens, 987 merges, 256 byte tokens, space prefix, "
            "3 special, bos=1 eos=2");
  EXPECT_EQ(Tokenizer::from_json_file(variant_path("tiny-spm-metaspace")).summary(),
            "SentencePiece BPE with byte fallback, 1356 tokens, 987 merges, 256 byte tokens, metaspace first, "
            "3 special, bos=1 eos=2");
  const Tokenizer gemma = Tokenizer::from_json_file(variant_path("tiny-spm-gemma"));
  EXPECT_EQ(gemma.summary(),
            "SentencePiece BPE with byte fallback, 1359 tokens, 987 merges, 256 byte tokens, no space prefix, "
            "5 special, bos=1 eos=1357");
  EXPECT_EQ(gemma.pre_tokenizer(), PreTokenizerKind::None);
  EXPECT_EQ(gemma.stop_ids(), (std::vector<int32_t>{1357}));  // <end_of_turn>
}

// A character split over <0xXX> byte tokens streams out whole, once its last byte arrives; the
// stream keeps the prefix space that decode() drops at the start (streamed ids continue a prompt).
TEST(SpmJson, StreamsByteFallbackCharacters) {
  const Tokenizer tok = Tokenizer::from_json_file(variant_path("tiny-spm-llama2"));
  const std::string text = "x \xF0\x9F\x98\x80 y\xE2\x82\xAC";  // an emoji and a euro sign, both unknown
  const std::vector<int32_t> ids = tok.encode(text, false);
  StreamDecoder stream(tok);
  std::string streamed;
  std::vector<std::string> chunks;
  for (int32_t id : ids) {
    chunks.push_back(stream.push(id));
    EXPECT_TRUE(unicode::is_valid_utf8(chunks.back())) << printable(chunks.back());
    streamed += chunks.back();
  }
  streamed += stream.flush();
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(streamed, " " + text);
  // The emoji's four byte tokens give nothing until the fourth.
  size_t first_byte = 0;
  while (first_byte < ids.size() && tok.token_text(ids[first_byte]) != "<0xF0>") ++first_byte;
  ASSERT_LE(first_byte + 4, ids.size()) << testing::format_ids(ids);
  EXPECT_EQ(chunks[first_byte] + chunks[first_byte + 1] + chunks[first_byte + 2], "");
  EXPECT_EQ(chunks[first_byte + 3], "\xF0\x9F\x98\x80");

  // A byte run that never completes comes out as U+FFFD at the end, and a stray continuation at once.
  StreamDecoder cut(tok);
  EXPECT_EQ(cut.push(*tok.find_token("<0xE2>")), "");
  EXPECT_EQ(cut.push(*tok.find_token("<0x82>")), "");
  EXPECT_EQ(cut.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(cut.push(*tok.find_token("<0x80>")), "\xEF\xBF\xBD");
}

// Every structure that would change ids or text in a way not implemented is refused, naming it.
TEST(SpmJson, RefusesWhatItCannotReproduce) {
  const json base = json::parse(testing::read_file(variant_path("tiny-spm-llama2")));
  const json metaspace = json::parse(testing::read_file(variant_path("tiny-spm-metaspace")));
  struct Variant {
    const char* what;
    const json* from;
    std::function<void(json&)> edit;
  };
  const Variant variants[] = {
      {"NFKC", &base, [](json& j) { j["normalizer"]["normalizers"][0] = {{"type", "NFKC"}}; }},
      {"normalizer", &base, [](json& j) { j["normalizer"] = nullptr; }},
      {"Lowercase", &base, [](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }},
      {"both a normalizer and a pre_tokenizer", &base,
       [](json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"split", false}}; }},
      {"split=true", &metaspace, [](json& j) { j["pre_tokenizer"]["split"] = true; }},
      {"prepend_scheme 'sometimes'", &metaspace, [](json& j) { j["pre_tokenizer"]["prepend_scheme"] = "sometimes"; }},
      {"other than", &metaspace, [](json& j) { j["pre_tokenizer"]["replacement"] = "_"; }},
      {"ByteLevel", &metaspace, [](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}}; }},
      {"decoder", &base, [](json& j) { j["decoder"] = {{"type", "ByteLevel"}}; }},
      {"decoder", &base, [](json& j) { j["decoder"]["decoders"][3]["start"] = 2; }},
      {"decoder", &base, [](json& j) { j["decoder"] = nullptr; }},
      {"byte_fallback", &base, [](json& j) { j["decoder"]["decoders"].erase(1); }},
      {"dropout", &base, [](json& j) { j["model"]["dropout"] = 0.1; }},
      {"continuing_subword_prefix", &base, [](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }},
      {"rstrip", &base, [](json& j) { j["added_tokens"][1]["rstrip"] = true; }},
  };
  const std::string dir = ::testing::TempDir() + "/sentinel-spm-json-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (const Variant& v : variants) {
    json variant = *v.from;
    v.edit(variant);
    const std::string path = dir + "/tokenizer.json";
    std::ofstream(path) << variant.dump();
    try {
      Tokenizer::from_json_file(path);
      ADD_FAILURE() << "expected Error for " << v.what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(v.what), std::string::npos) << e.what();
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sentinel
