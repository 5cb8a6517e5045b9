// Python's whitespace splitting, word interning and n-gram counting for the generation metrics.
#include "sentinel/metrics/ngrams.h"

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::metrics {
namespace {

// Calls on_char(code point, its bytes as Python's replace-decoding would write them) for each
// character of `text`.
template <typename OnChar>
void for_each_char(std::string_view text, OnChar&& on_char) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  for (size_t i = 0; i < text.size();) {
    const unicode::Utf8Step step = unicode::decode_utf8_step(text, i);
    on_char(step.code_point, step.valid ? text.substr(i, step.length) : kReplacement);
    i += step.length;
  }
}

}  // namespace

std::vector<std::string> split_whitespace(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for_each_char(text, [&](char32_t c, std::string_view bytes) {
    if (unicode::is_python_space(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += bytes;
      in_word = true;
    }
  });
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string rstrip_whitespace(std::string_view text) {
  std::string out;
  size_t kept = 0;  // bytes of `out` up to the last character that is not whitespace
  for_each_char(text, [&](char32_t c, std::string_view bytes) {
    out += bytes;
    if (!unicode::is_python_space(c)) kept = out.size();
  });
  out.resize(kept);
  return out;
}

int32_t Vocabulary::id(const std::string& word) {
  const auto [it, inserted] = ids_.try_emplace(word, static_cast<int32_t>(ids_.size()));
  return it->second;
}

std::vector<int32_t> Vocabulary::ids(const std::vector<std::string>& words) {
  std::vector<int32_t> out;
  out.reserve(words.size());
  for (const std::string& word : words) out.push_back(id(word));
  return out;
}

size_t NgramHash::operator()(const std::vector<int32_t>& ngram) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the ids
  for (const int32_t id : ngram) {
    h ^= static_cast<uint32_t>(id);
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h);
}

void add_ngrams(std::span<const int32_t> ids, int n, NgramCounts& counts) {
  check(n >= 1, "n-gram order ", n, " is invalid; use n >= 1");
  const auto order = static_cast<size_t>(n);
  for (size_t i = 0; i + order <= ids.size(); ++i) ++counts[std::vector<int32_t>(ids.begin() + i, ids.begin() + i + order)];
}

}  // namespace sentinel::metrics
