// Leftmost-longest matching of added tokens: a first-byte index narrows each position to the few
// tokens that could start there, tried longest first.
#include "added_tokens.h"

#include <algorithm>

namespace sentinel::detail {

void AddedTokenMatcher::add(std::string text, int32_t id, bool special) {
  if (text.empty()) return;
  for (const Entry& e : entries_) {
    if (e.text == text) return;  // the first id with this text wins
  }
  const auto index = static_cast<uint32_t>(entries_.size());
  auto& bucket = by_first_byte_[static_cast<uint8_t>(text[0])];
  entries_.push_back({std::move(text), id, special});
  bucket.push_back(index);
  std::stable_sort(bucket.begin(), bucket.end(),
                   [&](uint32_t a, uint32_t b) { return entries_[a].text.size() > entries_[b].text.size(); });
}

void AddedTokenMatcher::find_all(std::string_view text, std::vector<AddedTokenMatch>& matches) const {
  if (entries_.empty()) return;
  for (size_t i = 0; i < text.size();) {
    const auto& bucket = by_first_byte_[static_cast<uint8_t>(text[i])];
    const Entry* found = nullptr;
    for (uint32_t index : bucket) {
      const Entry& e = entries_[index];
      if (text.compare(i, e.text.size(), e.text) == 0) {
        found = &e;
        break;
      }
    }
    if (found == nullptr) {
      ++i;
      continue;
    }
    const auto begin = static_cast<uint32_t>(i);
    const auto end = static_cast<uint32_t>(i + found->text.size());
    matches.push_back({begin, end, found->id, found->special});
    i = end;
  }
}

}  // namespace sentinel::detail
