// SentencePiece GGUF vocabularies against llama.cpp itself: every tests/data/tokenizer/gguf_spm_*.json
// that reference/make_spm_fixtures.py wrote from libllama (hostile and random strings with special
// tokens parsed and not, their decodes both ways, WikiText-2 test line by line and whole). Each
// names its GGUF under $SENTINEL_HOME (scripts/setup.sh installs llama.cpp's test vocabularies) and
// its SHA-256, so a fixture is only ever compared with the file it was made from.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"
#include "sentinel/core/sha256.h"
#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using nlohmann::json;
using testing::printable;

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  const std::filesystem::path dir = testing::source_path("tests/data/tokenizer");
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("gguf_spm_", 0) == 0 && entry.path().extension() == ".json") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string gguf_of(const json& fixture, const std::string& fixture_name) {
  const std::string named = fixture["gguf"].get<std::string>();  // relative to $SENTINEL_HOME
  const std::string path = std::filesystem::path(named).is_absolute() ? named : cache_dir() + "/" + named;
  check(std::filesystem::exists(path), fixture_name, " needs '", path, "', which is missing: run scripts/setup.sh ",
        "(it installs llama.cpp's tokenizer test vocabularies into ", cache_dir(), "/llama.cpp-vocab)");
  const std::string actual = sha256_file(path);
  check(actual == fixture["gguf_sha256"].get<std::string>(), path, " has SHA-256 ", actual, ", but ", fixture_name,
        " was made from ", fixture["gguf_sha256"].get<std::string>(), "; run scripts/setup.sh, or regenerate with ",
        "reference/make_spm_fixtures.py gguf");
  return path;
}

// A decode in the fixture: base64 of the bytes, or {"sha256": ...} for a long one.
std::string compare_text(const std::string& ours, const json& expected) {
  if (expected.is_object()) {
    const std::string hash = sha256_bytes(ours);
    return hash == expected["sha256"].get<std::string>() ? "" : "sha256 " + hash + " != " + expected["sha256"].dump();
  }
  const std::string want = testing::base64_decode(expected.get<std::string>());
  return ours == want ? "" : "\"" + printable(ours) + "\" != \"" + printable(want) + "\"";
}

class SentencePieceGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(SentencePieceGguf, MatchesLlamaCpp) {
  const std::string name = GetParam();
  const json fixture = testing::read_tokenizer_fixture(name);
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(gguf_of(fixture, name)));
  ASSERT_EQ(tok.model(), TokenizerModel::SentencePiece) << tok.summary();
  const char* regenerate = "regenerate with: python3 reference/make_spm_fixtures.py gguf (see its header)";

  size_t n_cases = 0, n_wrong = 0;
  for (const json& entry : fixture["cases"]) {
    const std::string input = testing::case_input(entry);
    const std::string where = name + " case '" + entry["name"].get<std::string>() + "': \"" + printable(input) + "\"\n";
    const std::vector<int32_t> plain = tok.encode(input, false, SpecialTokens::Ignore);
    const std::vector<int32_t> special = tok.encode(input, true, SpecialTokens::Parse);
    const json& skip = entry["decode_skip"].is_null() ? entry["decode"] : entry["decode_skip"];
    const std::string diffs[] = {
        testing::compare_ids(plain, entry["plain"]), testing::compare_ids(special, entry["special"]),
        compare_text(tok.decode(special), entry["decode"]), compare_text(tok.decode(special, true), skip)};
    const char* what[] = {"plain ids", "special ids", "decode", "decode skipping special"};
    ++n_cases;
    bool wrong = false;
    for (int k = 0; k < 4; ++k) {
      if (diffs[k].empty()) continue;
      wrong = true;
      if (n_wrong < 8) ADD_FAILURE() << where << what[k] << ": " << diffs[k] << "\n" << regenerate;
    }
    n_wrong += wrong ? 1 : 0;
  }
  EXPECT_EQ(n_wrong, 0u) << "of " << n_cases << " cases differ in " << name;

  const json& wiki = fixture["wikitext"];
  const std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw"));
  const std::vector<int32_t> whole = tok.encode(text, false, SpecialTokens::Ignore);
  EXPECT_EQ(testing::compare_ids(whole, wiki["whole_file"]), "") << name << ": wiki.test.raw as one string";
  size_t begin = 0, n_differing = 0;
  const auto n_lines = wiki["n_lines"].get<size_t>();
  for (size_t line = 0; line < n_lines && begin < text.size(); ++line) {
    const size_t end = std::min(text.find('\n', begin), text.size() - 1) + 1;
    const std::string_view line_text = std::string_view(text).substr(begin, end - begin);
    const std::vector<int32_t> ids = tok.encode(line_text, false, SpecialTokens::Ignore);
    const bool same = ids.size() == wiki["line_n_tokens"][line].get<size_t>() &&
                      testing::ids_sha256(ids).substr(0, 16) == wiki["line_sha256_16"][line].get<std::string>();
    if (!same && n_differing++ == 0) {
      ADD_FAILURE() << name << ": wiki.test.raw line " << line + 1 << " differs: \"" << printable(line_text, 300)
                    << "\"\nours: " << testing::format_ids(ids, 100) << "\n" << regenerate;
    }
    begin = end;
  }
  EXPECT_EQ(n_differing, 0u) << "of the first " << n_lines << " lines of wiki.test.raw differ in " << name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SentencePieceGguf, ::testing::ValuesIn(fixture_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string id = info.param.substr(std::string("gguf_spm_").size());
                           id = id.substr(0, id.size() - std::string(".json").size());
                           for (char& c : id) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return id;
                         });

TEST(SentencePieceGguf, FixturesOfTheInstalledVocabulariesArePresent) {
  const std::vector<std::string> names = fixture_names();
  for (const char* required : {"gguf_spm_llama-spm.json", "gguf_spm_phi-3.json"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end())
        << required << " is missing from tests/data/tokenizer; regenerate with reference/make_spm_fixtures.py gguf";
  }
}

}  // namespace
}  // namespace sentinel
