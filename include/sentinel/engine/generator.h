// Text generation: prefill the prompt, then decode token by token with a Sampler until EOS,
// a stop string or the token limit, streaming text as it becomes complete UTF-8.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/engine/sampler.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

class Session;

struct GenerationOptions {
  int64_t max_tokens = 128;               // generated tokens at most
  SamplingOptions sampling;               // greedy by default
  std::vector<std::string> stop_strings;  // generation ends before the first occurrence
  bool stop_at_eos = true;                // end on the tokenizer's stop ids (EOS, <|im_end|>, ...)
  int64_t prefill_chunk = 512;            // prompt tokens per forward pass
  bool logprobs = false;                  // record each generated token's log-probability

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
  // With GenerationOptions::logprobs: log p(token) of each generated token under the model's own
  // distribution (before temperature, top-k/p and the repetition penalty), as OpenAI reports it.
  std::vector<float> logprobs;
};

// One generation advanced by its caller: the caller feeds the prompt, hands each row of logits to
// next_token() and feeds the token it returns, alone (generate()) or beside other sequences' in one
// pass (append_batch). Sampling, EOS, stop strings and the token limit are decided here, so the
// CLI's generate() and the Python package's single, streamed and batched generation end alike.
// (The server's scheduler still runs its own loop, with OpenAI's logprobs and finish reasons.)
class Generation {
 public:
  Generation(const Tokenizer& tokenizer, std::span<const int32_t> prompt, const GenerationOptions& options);
  // Samples the next token from `logits` ([n_vocab] float32, what the last fed token predicts).
  // Returns the token to feed next, or nullopt when the generation has ended (result().stop_reason).
  std::optional<int32_t> next_token(const at::Tensor& logits);
  // The text that became final since the last call: complete UTF-8, never part of a stop string.
  std::string take_text();
  // Ends the generation now (StopReason::Cancelled); text not yet taken is dropped.
  void cancel();
  bool done() const { return done_; }
  const GenerationResult& result() const { return result_; }
  GenerationResult& result() { return result_; }

 private:
  void finish(StopReason reason, bool flush);  // ends: the held-back text becomes final (flush: with the decoder's tail)

  GenerationOptions options_;
  std::vector<int32_t> stop_ids_;  // ids that end the generation (EOS, <|im_end|>, ...)
  std::vector<int32_t> history_;   // prompt + generated: what the repetition penalty sees
  Sampler sampler_;
  StreamDecoder decoder_;
  std::string pending_;  // decoded but held back (could start a stop string)
  std::string ready_;    // final, not yet taken
  GenerationResult result_;
  bool done_ = false;
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
