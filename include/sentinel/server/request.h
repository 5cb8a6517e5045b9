// The requests of the OpenAI-compatible API, parsed and fully validated before anything is
// queued (docs/server.md): /v1/chat/completions and /v1/completions bodies, with the "compression"
// extension and caller-marked spans, then tokenized into the prompt the scheduler feeds. Every
// problem of a body is reported at once, each naming the field and the fix. Nothing here runs
// the model; the tokenizer is thread-safe, so HTTP threads call this concurrently.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "sentinel/engine/sampling_options.h"
#include "sentinel/policies/policy_options.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/tokenizer/chat_template.h"

namespace sentinel::server {

enum class Endpoint { Chat, Completion };

// The "compression" extension object, or the server-wide default (sentinel serve --compress ...).
struct CompressionSpec {
  std::string method = "none";  // policy_options.h: none, sentinel, local, scattered, strided, streaming, h2o, tova, sepllm
  double ratio = 0.0;           // fraction of the context removed from the KV cache, [0, 1)
  int64_t span = default_span(default_span_layout());  // sentinel: tokens per <CR>; a request without one gets its layout's
  int64_t window = 0;           // sentinel: recent tokens never compressed; local: fixed window
  int64_t sinks = 4;            // streaming, sepllm: attention sinks kept
  uint64_t seed = 0;            // scattered: which tokens are kept
  std::string layout = span_layout_name(default_span_layout());  // sentinel: the span scheduler: stream, heavy or periodic
  double stride_share = -1;       // sentinel, heavy layout: -1 = the layout's default (policy.h)
  std::string older_rank;         // h2o, sentinel heavy layout: attention or surprisal; "" = the default (policy.h)
};

// The policy a spec asks for (sentinel ids are placeholders until the server sets them); throws
// Error naming the field ("compression.ratio ...") for anything the CLI would refuse.
PolicyOptions policy_from_spec(const CompressionSpec& spec);

// What the server fills in when a request leaves a field out, and the limits it enforces.
struct ServerDefaults {
  int64_t n_ctx = 8192;          // positions one request may use: prompt + generated tokens
  int64_t max_tokens = 256;      // generated tokens when the request gives no max_tokens
  double timeout_s = 600;        // seconds from arrival to the end of generation
  int64_t max_top_logprobs = 20;
  CompressionSpec compression;   // when the request has no "compression" object
};

// One piece of the prompt: a rendered chat message or a completion prompt segment. Marked
// segments (compress: true) are compressed into sentinel spans; the rest stays in the cache.
struct Segment {
  std::string text;
  std::vector<int32_t> ids;  // token ids given by the client instead of text
  bool compress = false;
  std::string content;       // chat: the message content inside `text` (what a mark compresses)
};

struct GenerationRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::vector<ChatMessage> messages;  // chat
  std::vector<bool> compress_message; // chat: [messages.size()] the caller's marks
  std::vector<Segment> segments;      // completions
  int64_t max_tokens = 0;             // after defaults
  bool max_tokens_given = false;
  SamplingOptions sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  bool logprobs = false;              // chat: logprobs; completions: logprobs is given
  int64_t top_logprobs = 0;
  bool echo = false;                  // completions: the prompt is returned (with logprobs if asked)
  bool cache_prompt = true;           // may reuse / populate the prompt cache
  bool ignore_eos = false;            // generate max_tokens even past end-of-sequence (benchmarks)
  CompressionSpec compression;
  bool compression_given = false;
  double timeout_s = 600;
};

// Parses the body text; malformed JSON and invalid UTF-8 throw Error naming the byte offset.
nlohmann::json parse_json_body(const std::string& body);

// Validates every field of a chat or completion body against `defaults`; throws one Error listing
// every problem found ("field 'x': ...; field 'y': ...").
GenerationRequest parse_generation_request(Endpoint endpoint, const nlohmann::json& body,
                                           const ServerDefaults& defaults);

// The tokenized prompt, ready to queue.
struct PreparedPrompt {
  std::vector<int32_t> tokens;       // [n_prompt] ordinary token ids
  std::vector<int64_t> boundaries;   // token count at the end of each segment, ascending
  int64_t cache_boundary = 0;        // prefix worth keeping for later requests (all but the last segment); 0 = none
  PolicyOptions policy;              // the request's compression, explicit spans filled in from the marks
};

// Tokenizes the segments (chat: the model's chat template renders the conversation, cut after
// each message's content, so a message's tokens do not depend on what follows it) and turns marked
// segments into sentinel
// spans of `span` tokens spaced to remove `ratio` of them (docs/method.md section 6, explicit
// spans). cl/cr: the sentinel ids. Throws Error for an empty prompt, one that leaves no room in
// the context, or token ids outside the vocabulary.
PreparedPrompt prepare_prompt(const GenerationRequest& request, const Tokenizer& tokenizer,
                              const ServerDefaults& defaults, int32_t cl_id, int32_t cr_id);

// Explicit spans covering [begin, end) as the scheduler would lay them out over that range:
// span k starts at begin + floor(k (L - 1) / ratio) and holds L tokens. Exposed for the tests.
std::vector<Span> spans_for_segment(int64_t begin, int64_t end, int64_t span, double ratio);

}  // namespace sentinel::server
