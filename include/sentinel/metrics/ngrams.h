// Word n-grams for the generation metrics (BLEU, distinct-n, repetition): Python's str.split(),
// words interned to integer ids, and n-gram counting over id sequences. Not a tokenizer of the
// model: metrics count words of text (or token ids the caller already has).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentinel::metrics {

// Python's str.split() without arguments: the runs between Unicode whitespace (str.isspace():
// ASCII \t\n\v\f\r and space, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000). Invalid UTF-8 is read as Python's errors='replace' decoding
// reads it: each maximal invalid subpart becomes U+FFFD in the words returned.
std::vector<std::string> split_whitespace(std::string_view text);

// Python's str.rstrip() without arguments, with the same whitespace and invalid-UTF-8 rule.
std::string rstrip_whitespace(std::string_view text);

// Gives each distinct word a small integer id, so that n-grams of words are id sequences that
// compare and hash cheaply. Ids are dense: 0, 1, 2, ... in order of first appearance.
class Vocabulary {
 public:
  int32_t id(const std::string& word);
  std::vector<int32_t> ids(const std::vector<std::string>& words);

 private:
  std::unordered_map<std::string, int32_t> ids_;
};

struct NgramHash {
  size_t operator()(const std::vector<int32_t>& ngram) const;
};

// n-gram -> how many times it occurs.
using NgramCounts = std::unordered_map<std::vector<int32_t>, int64_t, NgramHash>;

// Adds every n-gram of `ids` (the len(ids) - n + 1 windows; none if n > len(ids)) to `counts`.
// Throws Error unless n >= 1.
void add_ngrams(std::span<const int32_t> ids, int n, NgramCounts& counts);

}  // namespace sentinel::metrics
