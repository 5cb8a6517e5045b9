// llama.cpp's own tokenizer tests, run on our tokenizer: the ggml-vocab-*.gguf vocabularies of the
// llama-cpp-python==0.3.36 sdist with their .inp (inputs separated by "\n__ggml_vocab_test__\n") and
// .out (expected ids, one line per input) files, as tests/test-tokenizer-0.cpp reads them (no BOS,
// special tokens not parsed). scripts/setup.sh unpacks them into $SENTINEL_HOME/llama.cpp-vocab/.
// Every file whose model and pre-tokenizer we support must match id for id; the others must be
// refused at load with an Error, never tokenized differently.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"
#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

using testing::printable;

std::string vocab_path(const std::string& file) {
  const std::string dir = cache_dir() + "/llama.cpp-vocab";
  const std::string path = dir + "/" + file;
  check(std::filesystem::exists(path), "'", path, "' is missing: run scripts/setup.sh, which unpacks llama.cpp's ",
        "tokenizer test vocabularies (models/ggml-vocab-*) from the llama-cpp-python==0.3.36 sdist into ", dir);
  return path;
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// test-tokenizer-0.cpp's read_tests: inputs split on the separator, outputs one line each.
std::vector<VocabCase> read_cases(const std::string& gguf_file) {
  const std::string inputs = testing::read_file(vocab_path(gguf_file + ".inp"));
  const std::string outputs = testing::read_file(vocab_path(gguf_file + ".out"));
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (size_t pos = 0; pos < inputs.size();) {
    const size_t next = inputs.find(separator, pos);
    cases.push_back({inputs.substr(pos, next == std::string::npos ? std::string::npos : next - pos), {}});
    if (next == std::string::npos) break;
    pos = next + separator.size();
  }
  size_t line_begin = 0;
  for (VocabCase& c : cases) {
    check(line_begin <= outputs.size(), gguf_file, ".out has fewer lines than ", gguf_file, ".inp has inputs");
    const size_t line_end = std::min(outputs.find('\n', line_begin), outputs.size());
    std::istringstream line(outputs.substr(line_begin, line_end - line_begin));
    for (int32_t id; line >> id;) c.ids.push_back(id);
    line_begin = line_end + 1;
  }
  return cases;
}

struct Supported {
  const char* file;
  TokenizerModel model;
  bool round_trips;  // decode(encode(text)) == text for every input (SentencePiece has byte fallback)
};

class LlamaCppVocabFile : public ::testing::TestWithParam<Supported> {};

TEST_P(LlamaCppVocabFile, MatchesLlamaCppIdForId) {
  const Supported& s = GetParam();
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(vocab_path(s.file)));
  EXPECT_EQ(tok.model(), s.model) << tok.summary();
  const std::vector<VocabCase> cases = read_cases(s.file);
  ASSERT_GT(cases.size(), 30u);
  size_t n_wrong = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> ids = tok.encode(c.text, false, SpecialTokens::Ignore);
    if (ids != c.ids) {
      ++n_wrong;
      ADD_FAILURE() << s.file << ": \"" << printable(c.text, 300) << "\"\nours:     " << testing::format_ids(ids)
                    << "\nllama.cpp: " << testing::format_ids(c.ids);
    }
    if (s.round_trips) EXPECT_EQ(tok.decode(ids), c.text) << s.file << " does not round-trip \"" << printable(c.text) << "\"";
  }
  EXPECT_EQ(n_wrong, 0u) << "of " << cases.size() << " cases in " << s.file;
}

INSTANTIATE_TEST_SUITE_P(
    Supported, LlamaCppVocabFile,
    ::testing::Values(Supported{"ggml-vocab-llama-spm.gguf", TokenizerModel::SentencePiece, true},
                      Supported{"ggml-vocab-phi-3.gguf", TokenizerModel::SentencePiece, true},
                      Supported{"ggml-vocab-gpt-2.gguf", TokenizerModel::ByteLevelBpe, false},
                      Supported{"ggml-vocab-llama-bpe.gguf", TokenizerModel::ByteLevelBpe, false},
                      Supported{"ggml-vocab-qwen2.gguf", TokenizerModel::ByteLevelBpe, false}),
    [](const ::testing::TestParamInfo<Supported>& info) {
      std::string name = info.param.file + std::string("ggml-vocab-").size();
      name = name.substr(0, name.find(".gguf"));
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

// The vocabularies with test files that we do not tokenize: each must be refused when loaded, with
// the reason in the message (move a file to the list above once its pre-tokenizer is supported).
TEST(LlamaCppVocabFiles, RefusesTheUnsupportedOnes) {
  const std::pair<const char*, const char*> refused[] = {
      {"ggml-vocab-bert-bge.gguf", "'bert'"},          {"ggml-vocab-command-r.gguf", "'command-r'"},
      {"ggml-vocab-deepseek-coder.gguf", "'deepseek-coder'"}, {"ggml-vocab-deepseek-llm.gguf", "'deepseek-llm'"},
      {"ggml-vocab-falcon.gguf", "'falcon'"},          {"ggml-vocab-gemma-4.gguf", "'gemma4'"},
      {"ggml-vocab-mpt.gguf", "'mpt'"},                {"ggml-vocab-qwen35.gguf", "'qwen35'"},
      {"ggml-vocab-refact.gguf", "'refact'"},          {"ggml-vocab-starcoder.gguf", "'starcoder'"},
  };
  for (const auto& [file, reason] : refused) {
    const std::string path = vocab_path(file);  // a missing file fails the test here, naming setup.sh
    try {
      Tokenizer::from_gguf(GgufFile::open(path));
      ADD_FAILURE() << file << " loaded; if it is now supported, check it against its .inp/.out above";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << file << ": " << e.what();
    }
  }
}

TEST(LlamaCppVocabFiles, SentencePieceDescribesItself) {
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(vocab_path("ggml-vocab-llama-spm.gguf")));
  EXPECT_EQ(tok.summary(),
            "SentencePiece (llama.cpp scores), 32000 tokens, 256 byte tokens, space prefix, 3 special, bos=1 eos=2");
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.pre_tokenizer(), PreTokenizerKind::None);
  EXPECT_EQ(tok.stop_ids(), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok.token_text(29871), "\xE2\x96\x81");  // "▁"
  EXPECT_EQ(tok.token_bytes(29871), " ");
  EXPECT_EQ(tok.token_bytes(13), "\n");  // <0x0A>
  // llama.cpp's rules: BOS when asked, a space prefix after it and after every special token.
  EXPECT_EQ(tok.encode(" Hello"), (std::vector<int32_t>{1, 29871, 15043}));
  EXPECT_EQ(tok.encode("<s>hi</s> yo"), (std::vector<int32_t>{1, 1, 7251, 2, 29871, 24800}));
  EXPECT_EQ(tok.encode("<s>hi</s> yo", false, SpecialTokens::Ignore),
            (std::vector<int32_t>{529, 29879, 29958, 2918, 829, 29879, 29958, 24800}));
  // Decoding drops the prefix space of the first token, but not after a skipped BOS (llama_detokenize).
  EXPECT_EQ(tok.decode(std::vector<int32_t>{15043, 3186}), "Hello world");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 15043, 3186}), "<s> Hello world");
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 15043, 3186}, true), " Hello world");
}

}  // namespace
}  // namespace sentinel
