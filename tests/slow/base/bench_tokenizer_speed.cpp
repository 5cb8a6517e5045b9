// Encoding speed of the default model's tokenizer on all of WikiText-2 test, one thread: the
// number docs/tokenizer.md quotes next to tokenizers' (reference/bench_tokenizer_speed.py).
// A measurement, not a pass/fail speed gate; it only checks the token count.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

double seconds_to_encode(const Tokenizer& tokenizer, const std::string& text, size_t* n_tokens) {
  const auto start = std::chrono::steady_clock::now();
  *n_tokens = tokenizer.encode(text, false).size();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(TokenizerSpeed, EncodesWikiText2TestOnOneThread) {
  const std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw"));
  const auto fixture = testing::read_tokenizer_fixture("wikitext2_smollm2.json");
  const auto expected = fixture["files"]["wiki.test.raw"]["n_tokens"].get<size_t>();
  const GgufFile gguf = GgufFile::open(testing::default_model());

  // Cold: a fresh tokenizer, so its piece cache starts empty. Warm: the same tokenizer again.
  const auto load_start = std::chrono::steady_clock::now();
  const Tokenizer tokenizer = Tokenizer::from_gguf(gguf);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  size_t n_tokens = 0;
  const double cold_s = seconds_to_encode(tokenizer, text, &n_tokens);
  ASSERT_EQ(n_tokens, expected);
  std::vector<double> warm;
  for (int run = 0; run < 7; ++run) warm.push_back(seconds_to_encode(tokenizer, text, &n_tokens));
  std::sort(warm.begin(), warm.end());
  const double median = warm[warm.size() / 2];
  // The same text as one encode() call per line, each line keeping its newline.
  std::vector<std::string_view> lines;
  for (size_t begin = 0; begin < text.size();) {
    const size_t end = std::min(text.find('\n', begin), text.size() - 1) + 1;
    lines.push_back(std::string_view(text).substr(begin, end - begin));
    begin = end;
  }
  std::vector<double> by_line;
  for (int run = 0; run < 7; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (std::string_view line : lines) tokenizer.encode(line, false);
    by_line.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(by_line.begin(), by_line.end());
  std::printf("tokenizer load from GGUF metadata: %.3f s\n", load_s);
  std::printf("wiki.test.raw: %zu bytes, %zu tokens\n", text.size(), n_tokens);
  std::printf("cold (first encode): %.3f s = %.0f tokens/s\n", cold_s, n_tokens / cold_s);
  std::printf("warm (median of 7, min %.3f max %.3f): %.3f s = %.0f tokens/s\n", warm.front(), warm.back(), median,
              n_tokens / median);
  std::printf("line by line (%zu calls, median of 7): %.3f s = %.0f tokens/s\n", lines.size(), by_line[3],
              n_tokens / by_line[3]);
}

}  // namespace
}  // namespace sentinel
