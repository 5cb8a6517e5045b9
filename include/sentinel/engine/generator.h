// Text generation: prefill the prompt, then decode token by token with a Sampler until EOS,
// a stop string or the token limit, streaming text as it becomes complete UTF-8.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/engine/sampler.h"

namespace sentinel {

class Session;
class Tokenizer;

struct GenerationOptions {
  int64_t max_tokens = 128;               // generated tokens at most
  SamplingOptions sampling;               // greedy by default
  std::vector<std::string> stop_strings;  // generation ends before the first occurrence
  bool stop_at_eos = true;                // end on the tokenizer's stop ids (EOS, <|im_end|>, ...)
  int64_t prefill_chunk = 512;            // prompt tokens per forward pass

  void validate() const;
};

enum class StopReason { Eos, StopString, MaxTokens, Cancelled };
std::string stop_reason_name(StopReason reason);

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (the EOS that ended it excluded)
  std::string text;             // generated text, cut before a stop string
  StopReason stop_reason = StopReason::MaxTokens;
  int64_t n_prompt = 0;
  double prefill_seconds = 0;
  // Decoding: the steps that fed one sampled token each (the last sampled token is never fed) and
  // their time, sampling included, streaming the text out excluded: decode tok/s = steps / seconds.
  int64_t decode_steps = 0;
  double decode_seconds = 0;
};

// Called with each new piece of text; return false to stop generation (StopReason::Cancelled).
using TextCallback = std::function<bool(std::string_view piece)>;

// Generates a continuation of `prompt` (token ids) in `session` (which should be empty).
GenerationResult generate(Session& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TextCallback& on_text = {});

// Length of the longest suffix of `text` that is a proper prefix of a stop string: text that may
// still turn into a stop string is held back, so a stop string is never streamed.
size_t held_back_length(std::string_view text, const std::vector<std::string>& stops);

}  // namespace sentinel
