#include "sentinel/policies/separators.h"

#include <string>

namespace sentinel {
namespace {

bool is_separator_text(const std::string& text) {
  if (text.empty()) return false;
  if (text.find_first_not_of(" \t\n\r") == std::string::npos) return true;  // white space only
  const size_t mark = text.find_first_not_of(' ');
  return mark + 1 == text.size() && std::string(".,?!;:").find(text[mark]) != std::string::npos;
}

}  // namespace

std::vector<int32_t> separator_ids(const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id)
    if (tokenizer.token_kind(id) != TokenKind::Special && is_separator_text(tokenizer.token_bytes(id))) ids.push_back(id);
  return ids;
}

}  // namespace sentinel
