// StreamDecoder: token bytes in, whole UTF-8 characters out. Because each invalid subpart is
// decided by the bytes up to it (maximal-subpart rule), emitting as soon as a character is known
// gives the same text as replacing the invalid bytes of the whole output at once.
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_ += tokenizer_.token_bytes(id);
  const size_t held = unicode::incomplete_utf8_tail(pending_);
  std::string ready = unicode::replace_invalid_utf8(std::string_view(pending_).substr(0, pending_.size() - held));
  pending_.erase(0, pending_.size() - held);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest = unicode::replace_invalid_utf8(pending_);
  pending_.clear();
  return rest;
}

}  // namespace sentinel
