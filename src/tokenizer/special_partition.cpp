// llama.cpp's special-token partition. For each token in its order, every fragment of text still
// left is searched left to right for occurrences that fit inside it; each is cut out, the text on
// its left kept (less trailing whitespace with lstrip) and the search goes on after it (after the
// whitespace with rstrip). Searching only for the tokens the trie finds in the text gives the same
// fragments as llama.cpp's search for every token, at a cost that grows with the tokens present.
#include "special_partition.h"

#include <algorithm>
#include <cctype>

namespace sentinel::detail {

SpecialPartition::SpecialPartition(std::vector<Token> tokens) {
  for (Token& t : tokens) {
    if (!t.text.empty()) tokens_.push_back(std::move(t));
  }
  // llama.cpp sorts its cache of special tokens with std::sort, which is not stable: equal lengths
  // keep whatever order the sort leaves, so the same call on the same id-ordered list is needed to
  // give the same order (it only matters for two tokens of one length that overlap in a text).
  std::sort(tokens_.begin(), tokens_.end(),
            [](const Token& a, const Token& b) { return a.text.size() > b.text.size(); });

  trie_.emplace_back();
  for (size_t index = 0; index < tokens_.size(); ++index) {
    int32_t node = 0;
    for (char c : tokens_[index].text) {
      const auto byte = static_cast<uint8_t>(c);
      const auto it = trie_[node].children.find(byte);
      if (it != trie_[node].children.end()) {
        node = it->second;
        continue;
      }
      const auto child = static_cast<int32_t>(trie_.size());
      trie_[node].children.emplace(byte, child);
      trie_.emplace_back();
      node = child;
    }
    trie_[node].tokens.push_back(static_cast<int32_t>(index));
  }
}

void SpecialPartition::mark_present(std::string_view text, std::vector<char>& present) const {
  for (size_t start = 0; start < text.size(); ++start) {
    int32_t node = 0;
    for (size_t i = start; i < text.size(); ++i) {
      const auto it = trie_[node].children.find(static_cast<uint8_t>(text[i]));
      if (it == trie_[node].children.end()) break;
      node = it->second;
      for (int32_t index : trie_[node].tokens) present[index] = 1;
    }
  }
}

void SpecialPartition::split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  out.clear();
  if (text.empty()) return;
  out.push_back({0, static_cast<uint32_t>(text.size()), -1});
  if (tokens_.empty()) return;

  std::vector<char> present(tokens_.size(), 0);
  mark_present(text, present);
  std::vector<Fragment> next;
  for (size_t index = 0; index < tokens_.size(); ++index) {
    const Token& token = tokens_[index];
    if (!present[index] || (token.special && !parse_special)) continue;
    next.clear();
    for (const Fragment& f : out) {
      if (f.id >= 0) {
        next.push_back(f);
        continue;
      }
      uint32_t from = f.begin;
      while (true) {
        const std::string_view window = text.substr(0, f.end);
        const size_t match = window.find(token.text, from);
        if (match == std::string_view::npos) break;
        auto left_end = static_cast<uint32_t>(match);
        if (token.lstrip) {
          while (left_end > from && std::isspace(static_cast<unsigned char>(text[left_end - 1]))) --left_end;
        }
        if (left_end > from) next.push_back({from, left_end, -1});
        next.push_back({0, 0, token.id});
        from = static_cast<uint32_t>(match + token.text.size());
        if (token.rstrip) {
          while (from < f.end && std::isspace(static_cast<unsigned char>(text[from]))) ++from;
        }
      }
      if (from < f.end) next.push_back({from, f.end, -1});
    }
    out.swap(next);
  }
}

}  // namespace sentinel::detail
