// The separator tokens of SepLLM (sepllm.h) in a model's vocabulary: the tokens whose text is
// white space only, or one of the paper's punctuation marks . , ? ! ; : after optional leading
// spaces (byte-level BPE spells " ." as one token, SentencePiece as "▁."). Found through the
// tokenizer, so every model gets its own set, never a list of ids.
#pragma once

#include <cstdint>
#include <vector>

#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

std::vector<int32_t> separator_ids(const Tokenizer& tokenizer);  // ascending

}  // namespace sentinel
