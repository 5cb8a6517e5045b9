// Documents for zero-shot open-ended generation (docs/method.md section 8): long texts cut into
// excerpts of a P-token prefix, which a method continues, and the N tokens that really follow,
// which the continuation is scored against.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

struct Excerpt {
  std::string source;                 // "file.raw#article 3", "book.txt@12345"
  std::vector<int32_t> prefix;        // [P] starting with BOS when the tokenizer has one
  std::vector<int32_t> continuation;  // [N] the tokens that follow the prefix in the document
};

// Excerpts of one file. WikiText files (article titles " = Title = " on a line of their own) are
// split into articles and each long enough article gives one excerpt from its start; any other file
// (a book) gives `per_file` excerpts at evenly spaced token offsets. At most `per_file` excerpts
// per file, spread evenly over the eligible ones. Throws Error when none is long enough.
std::vector<Excerpt> make_excerpts(const Tokenizer& tokenizer, const std::string& name, const std::string& text,
                                   int64_t prefix, int64_t continuation, int64_t per_file);

}  // namespace sentinel
