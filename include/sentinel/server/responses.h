// The JSON the API answers with, shaped as OpenAI's: chat.completion, text_completion, their
// streaming chunks, usage, logprobs, plus the "compression" report this server adds.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sentinel/server/request.h"
#include "sentinel/server/scheduler.h"

namespace sentinel::server {

struct ResponseContext {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  std::string model;
  int64_t created = 0;  // unix seconds
  const Tokenizer* tokenizer = nullptr;
};

nlohmann::json usage_json(const Outcome& o);
// What compression achieved: method, requested ratio, achieved_ratio, kv_entries, kv_bytes, ...
nlohmann::json compression_json(const Outcome& o);

// Non-streaming answers. `text`: everything generated; `logprobs`: the generated tokens'.
nlohmann::json chat_response(const ResponseContext& c, const GenerationRequest& r, const std::string& text,
                             const std::vector<TokenLogprob>& logprobs, const Outcome& o);
nlohmann::json completion_response(const ResponseContext& c, const GenerationRequest& r, const std::string& prompt_text,
                                   const std::string& text, const std::vector<TokenLogprob>& logprobs, const Outcome& o);

// Streaming chunks: a delta (role first for chat), the final one (finish_reason, compression,
// usage unless include_usage asks for a separate usage chunk), and the usage chunk.
nlohmann::json chat_chunk(const ResponseContext& c, const GenerationRequest& r, const Delta* delta, bool first,
                          const Outcome* final_outcome);
nlohmann::json completion_chunk(const ResponseContext& c, const GenerationRequest& r, const std::string& text,
                                const std::vector<TokenLogprob>& logprobs, const Outcome* final_outcome);
nlohmann::json usage_chunk(const ResponseContext& c, const GenerationRequest& r, const Outcome& o);

// Text of a token as logprobs show it: its bytes, invalid UTF-8 replaced.
std::string token_text(const TokenLogprob& t);

}  // namespace sentinel::server
