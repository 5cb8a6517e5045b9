// Internal: finds added tokens ("<|im_start|>") in text before pre-tokenization, leftmost-longest
// like the Aho-Corasick matcher of tokenizers' AddedVocabulary. Not a general string search: the
// token list is small and almost every byte of text has no candidate at all.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel::detail {

struct AddedTokenMatch {
  uint32_t begin, end;  // byte range in the searched text
  int32_t id;
  bool special;
};

class AddedTokenMatcher {
 public:
  void add(std::string text, int32_t id, bool special);  // empty texts are ignored
  bool empty() const { return entries_.empty(); }

  // Non-overlapping matches, scanning left to right; at each position the longest token wins.
  // Matches of special tokens are reported too: the caller decides whether to honour them.
  void find_all(std::string_view text, std::vector<AddedTokenMatch>& matches) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool special;
  };
  std::vector<Entry> entries_;
  std::array<std::vector<uint32_t>, 256> by_first_byte_;  // entry indices, longest text first
};

}  // namespace sentinel::detail
