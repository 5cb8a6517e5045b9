// OpenAI response shapes. Text that is not valid UTF-8 (a token holding part of a character) is
// shown with U+FFFD, and the raw bytes travel in "bytes" as OpenAI does.
#include "sentinel/server/responses.h"

#include "sentinel/tokenizer/unicode.h"

namespace sentinel::server {
namespace {

using nlohmann::json;

json bytes_json(const std::string& bytes) {
  json out = json::array();
  for (unsigned char b : bytes) out.push_back(static_cast<int>(b));
  return out;
}

json chat_logprobs(const std::vector<TokenLogprob>& tokens, const Tokenizer& tokenizer) {
  json content = json::array();
  for (const auto& t : tokens) {
    json top = json::array();
    for (const auto& [id, lp] : t.top) {
      const std::string b = tokenizer.token_bytes(id);
      top.push_back({{"token", unicode::replace_invalid_utf8(b)}, {"logprob", lp}, {"bytes", bytes_json(b)}});
    }
    content.push_back({{"token", token_text(t)}, {"logprob", t.logprob}, {"bytes", bytes_json(t.bytes)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Completions' legacy format: parallel arrays; text_offset counts bytes from the text's start.
json completion_logprobs(const std::vector<TokenLogprob>& tokens, const Tokenizer& tokenizer, int64_t offset) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const auto& t : tokens) {
    out["tokens"].push_back(token_text(t));
    out["token_logprobs"].push_back(t.has_logprob ? json(t.logprob) : json(nullptr));
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[unicode::replace_invalid_utf8(tokenizer.token_bytes(id))] = lp;
    out["top_logprobs"].push_back(t.has_logprob ? top : json(nullptr));
    out["text_offset"].push_back(offset);
    offset += static_cast<int64_t>(t.bytes.size());
  }
  return out;
}

json timings_json(const Outcome& o) {
  const int64_t evaluated = o.n_prompt - o.n_cached;
  return {{"queued_ms", o.queued_ms},
          {"prompt_n", evaluated},
          {"prompt_ms", o.prompt_ms},
          {"prompt_per_second", o.prompt_ms > 0 ? 1000.0 * static_cast<double>(evaluated) / o.prompt_ms : 0.0},
          {"predicted_n", o.n_generated},
          {"predicted_ms", o.predicted_ms},
          {"predicted_per_second", o.predicted_ms > 0 ? 1000.0 * static_cast<double>(o.n_generated) / o.predicted_ms : 0.0}};
}

json finish_reason_json(const Outcome& o) { return o.finish_reason; }

}  // namespace

std::string token_text(const TokenLogprob& t) { return unicode::replace_invalid_utf8(t.bytes); }

json usage_json(const Outcome& o) {
  return {{"prompt_tokens", o.n_prompt},
          {"completion_tokens", o.n_generated},
          {"total_tokens", o.n_prompt + o.n_generated},
          {"prompt_tokens_details", {{"cached_tokens", o.n_cached}}}};
}

json compression_json(const Outcome& o) {
  return {{"method", method_name(o.policy.method)},
          {"ratio", o.policy.ratio},
          {"span", o.policy.span},
          {"layout", span_layout_name(o.policy.layout)},
          {"stride_share", o.policy.stride_share},
          {"older_rank", older_rank_name(o.policy.older_rank)},
          {"marked_spans", o.n_spans},
          {"achieved_ratio", o.stats.achieved_ratio()},
          {"tokens_seen", o.stats.ordinary_seen},
          {"kv_entries", o.stats.cells_in_use},
          {"kv_entries_evicted", o.stats.cells_evicted},
          {"kv_bytes", o.kv_bytes},
          {"kv_bytes_by_layer_type", {{"global", o.kv_bytes_global}, {"sliding_window", o.kv_bytes_window}}},
          {"kv_bytes_full", o.kv_bytes_full},
          {"peak_kv_bytes", o.stats.peak_bytes}};
}

json chat_response(const ResponseContext& c, const GenerationRequest& r, const std::string& text,
                   const std::vector<TokenLogprob>& logprobs, const Outcome& o) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}}},
                 {"finish_reason", finish_reason_json(o)},
                 {"logprobs", r.logprobs ? chat_logprobs(logprobs, *c.tokenizer) : json(nullptr)}};
  return {{"id", c.id},           {"object", "chat.completion"}, {"created", c.created},
          {"model", c.model},     {"choices", json::array({choice})}, {"usage", usage_json(o)},
          {"compression", compression_json(o)}, {"timings", timings_json(o)}, {"system_fingerprint", "sentinel"}, {"id_slot", o.slot}};
}

json completion_response(const ResponseContext& c, const GenerationRequest& r, const std::string& prompt_text,
                         const std::string& text, const std::vector<TokenLogprob>& logprobs, const Outcome& o) {
  json lp = nullptr;
  if (r.logprobs) {
    std::vector<TokenLogprob> all;
    if (r.echo) all = o.prompt_logprobs;
    all.insert(all.end(), logprobs.begin(), logprobs.end());
    lp = completion_logprobs(all, *c.tokenizer, 0);
  }
  json choice = {{"index", 0}, {"text", r.echo ? prompt_text + text : text}, {"finish_reason", finish_reason_json(o)}, {"logprobs", lp}};
  return {{"id", c.id},           {"object", "text_completion"}, {"created", c.created},
          {"model", c.model},     {"choices", json::array({choice})}, {"usage", usage_json(o)},
          {"compression", compression_json(o)}, {"timings", timings_json(o)}, {"system_fingerprint", "sentinel"}, {"id_slot", o.slot}};
}

json chat_chunk(const ResponseContext& c, const GenerationRequest& r, const Delta* delta, bool first,
                const Outcome* final_outcome) {
  json d = json::object();
  if (first) d["role"] = "assistant";
  if (delta) d["content"] = delta->text;
  if (first && !delta) d["content"] = "";
  json choice = {{"index", 0},
                 {"delta", d},
                 {"finish_reason", final_outcome ? finish_reason_json(*final_outcome) : json(nullptr)},
                 {"logprobs", r.logprobs && delta ? chat_logprobs(delta->logprobs, *c.tokenizer) : json(nullptr)}};
  json out = {{"id", c.id}, {"object", "chat.completion.chunk"}, {"created", c.created}, {"model", c.model},
              {"choices", json::array({choice})}, {"system_fingerprint", "sentinel"}};
  if (final_outcome) {
    out["compression"] = compression_json(*final_outcome);
    out["timings"] = timings_json(*final_outcome);
    if (!r.include_usage) out["usage"] = usage_json(*final_outcome);
  }
  return out;
}

json completion_chunk(const ResponseContext& c, const GenerationRequest& r, const std::string& text,
                      const std::vector<TokenLogprob>& logprobs, const Outcome* final_outcome) {
  json choice = {{"index", 0},
                 {"text", text},
                 {"finish_reason", final_outcome ? finish_reason_json(*final_outcome) : json(nullptr)},
                 {"logprobs", r.logprobs ? completion_logprobs(logprobs, *c.tokenizer, 0) : json(nullptr)}};
  json out = {{"id", c.id}, {"object", "text_completion"}, {"created", c.created}, {"model", c.model},
              {"choices", json::array({choice})}, {"system_fingerprint", "sentinel"}};
  if (final_outcome) {
    out["compression"] = compression_json(*final_outcome);
    out["timings"] = timings_json(*final_outcome);
    if (!r.include_usage) out["usage"] = usage_json(*final_outcome);
  }
  return out;
}

json usage_chunk(const ResponseContext& c, const GenerationRequest& r, const Outcome& o) {
  return {{"id", c.id},
          {"object", r.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
          {"created", c.created},
          {"model", c.model},
          {"choices", json::array()},
          {"usage", usage_json(o)},
          {"compression", compression_json(o)}};
}

}  // namespace sentinel::server
