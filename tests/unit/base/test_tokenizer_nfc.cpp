// Qwen's tokenizers put text in Unicode NFC before splitting it: the tokenizer.json of the tiny
// Qwen2 fixture (its normalizer is {"type": "NFC"}) against Hugging Face tokenizers' ids on
// decomposed accents, Hangul jamo, an ohm sign and compatibility characters NFC keeps
// (tests/data/tokenizer/nfc_qwen2.json, reference/make_nfc_fixtures.py); the Qwen2 GGUF of the
// same vocabulary gives the same ids, and unicode::nfc itself on a few known forms.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/unicode.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::read_file;
using testing::source_path;

TEST(UnicodeNfc, ComposesAndKeepsCompatibilityCharacters) {
  EXPECT_EQ(unicode::nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(unicode::nfc("\u2126"), "\u03a9");                    // ohm sign -> omega (a singleton)
  EXPECT_EQ(unicode::nfc("\u1112\u1161\u11ab"), "\ud55c");         // jamo -> one Hangul syllable
  EXPECT_EQ(unicode::nfc("\ufb01 \uff11"), "\ufb01 \uff11");       // NFKC would change these, NFC not
  EXPECT_EQ(unicode::nfc("a\u0323\u0307"), unicode::nfc("a\u0307\u0323"));  // canonical reordering
  EXPECT_EQ(unicode::nfc("plain"), "plain");
}

TEST(TokenizerNfc, QwenTokenizerJsonAndGgufGiveTokenizersIds) {
  const nlohmann::json fixture = nlohmann::json::parse(read_file(source_path("tests/data/tokenizer/nfc_qwen2.json")));
  const Tokenizer json = Tokenizer::from_json_file(source_path(fixture.at("tokenizer").get<std::string>()));
  const Tokenizer gguf = Tokenizer::from_gguf(GgufFile::open(source_path("tests/data/families/qwen2/model.f16.gguf")));
  for (const auto& c : fixture.at("cases")) {
    const std::string text = c.at("text");
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(json.encode(text, /*add_bos=*/false), expected) << text;
    EXPECT_EQ(gguf.encode(text, /*add_bos=*/false), expected) << text;
  }
}

}  // namespace
}  // namespace sentinel
