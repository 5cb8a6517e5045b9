// Request parsing and validation: every field checked for type and range, unknown fields
// refused (a misspelt option silently ignored would return a wrong answer), all problems of a
// body reported in one message. Then the prompt is tokenized segment by segment.
#include "sentinel/server/request.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::server {
namespace {

using nlohmann::json;

// Collects the problems of one body; throw_if_any() reports them together.
class Problems {
 public:
  void add(const std::string& message) { list_.push_back(message); }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  void throw_if_any() const {
    if (list_.empty()) return;
    std::string joined;
    for (const auto& m : list_) joined += (joined.empty() ? "" : "; ") + m;
    fail(joined);
  }

 private:
  std::vector<std::string> list_;
};

const char* type_name(const json& v) { return v.type_name(); }

std::string number_text(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

bool get_bool(const json& body, const char* key, bool fallback, Problems& p) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_boolean()) {
    p.add(std::string("field '") + key + "' must be true or false, got " + type_name(body[key]));
    return fallback;
  }
  return body[key].get<bool>();
}

double get_number(const json& body, const char* key, double fallback, double lo, double hi, Problems& p,
                  const std::string& prefix = "") {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  if (!v.is_number()) {
    p.add("field '" + prefix + key + "' must be a number, got " + type_name(v));
    return fallback;
  }
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    p.add("field '" + prefix + key + "' must be in [" + number_text(lo) + ", " + number_text(hi) + "], got " + v.dump());
    return fallback;
  }
  return x;
}

int64_t get_int(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi, Problems& p,
                const std::string& prefix = "") {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  const bool integral = v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
                                                  std::fabs(v.get<double>()) < 9e15);
  if (!integral) {
    p.add("field '" + prefix + key + "' must be an integer, got " + (v.is_number() ? v.dump() : type_name(v)));
    return fallback;
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    p.add("field '" + prefix + key + "' is out of range: " + v.dump());
    return fallback;
  }
  const int64_t x = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  if (x < lo || x > hi) {
    p.add("field '" + prefix + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
          std::to_string(x));
    return fallback;
  }
  return x;
}

// compression.<name> within its bound (policy.h), refused in the words the CLI uses for the same
// value: "field 'compression.span': span must be in [2, 4096] tokens, got 5000 (...)". A value of
// the wrong type is refused by get_number/get_int, as every other field is.
template <typename T>
T get_bounded(const json& compression, const CompressionBound& bound, T fallback, Problems& p) {
  const size_t problems = p.size();
  T x;
  if constexpr (std::is_integral_v<T>) x = get_int(compression, bound.name, fallback, INT64_MIN, INT64_MAX, p, "compression.");
  else x = get_number(compression, bound.name, fallback, -HUGE_VAL, HUGE_VAL, p, "compression.");
  if (p.size() > problems || !compression.contains(bound.name) || compression[bound.name].is_null()) return x;
  if (!bound.holds(static_cast<double>(x))) {
    p.add("field 'compression." + std::string(bound.name) + "': " + bound.refusal(static_cast<double>(x)));
    return fallback;
  }
  return x;
}

void refuse_unknown(const json& body, const std::set<std::string>& known, const std::string& where, Problems& p) {
  for (const auto& [key, value] : body.items()) {
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      p.add("unknown field '" + where + key + "' (accepted: " + list + ")");
    }
  }
}

// Fields OpenAI defines that change nothing here at their neutral value; anything else is refused
// rather than ignored.
void neutral_only(const json& body, Problems& p) {
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (body.contains(key) && !body[key].is_null() && !(body[key].is_number() && body[key].get<double>() == 0.0))
      p.add(std::string("field '") + key + "' is not supported; leave it out or set it to 0");
  }
  if (body.contains("logit_bias") && !body["logit_bias"].is_null() &&
      !(body["logit_bias"].is_object() && body["logit_bias"].empty()))
    p.add("field 'logit_bias' is not supported; leave it out");
  if (body.contains("user") && !body["user"].is_null() && !body["user"].is_string())
    p.add(std::string("field 'user' must be a string, got ") + type_name(body["user"]));
  if (body.contains("n") && !body["n"].is_null() && !(body["n"].is_number_integer() && body["n"].get<int64_t>() == 1))
    p.add("field 'n' must be 1: one choice per request (send several requests for more)");
}

// compression.KEY, a name `parse` accepts (it throws an Error that lists the accepted ones):
// nullopt when absent or not a string; a name it refuses is returned too, with the problem noted.
template <typename Parse>
std::optional<std::string> get_compression_name(const json& v, const std::string& key, Parse parse, Problems& p) {
  if (!v.contains(key)) return std::nullopt;
  const std::string field = "field 'compression." + key + "'";
  if (!v[key].is_string()) {
    p.add(field + " must be a string, got " + type_name(v[key]));
    return std::nullopt;
  }
  std::string name = v[key].get<std::string>();
  try {
    parse(name);
  } catch (const Error& e) {
    p.add(field + ": " + e.what());
  }
  return name;
}

// The span a request gets without one: its layout's (policy.h: default_span). An unknown layout
// is already a problem of the request (get_compression_name noted it); it gets the default layout's.
int64_t layout_default_span(const std::string& layout) {
  try {
    return default_span(parse_span_layout(layout));
  } catch (const Error&) {
    return default_span(default_span_layout());
  }
}

CompressionSpec parse_compression(const json& v, const CompressionSpec& fallback, Problems& p) {
  if (!v.is_object()) {
    p.add(std::string("field 'compression' must be an object such as {\"method\": \"sentinel\", \"ratio\": 0.5}, got ") +
          type_name(v));
    return fallback;
  }
  refuse_unknown(v, {"method", "ratio", "span", "window", "sinks", "seed", "layout", "stride_share", "older_rank"},
                 "compression.", p);
  CompressionSpec spec;  // a given object starts from the method defaults, not the server's
  if (!v.contains("method")) {
    std::string names;
    for (const auto& name : method_names()) names += (names.empty() ? "" : ", ") + name;
    p.add("field 'compression.method' is required (" + names + ")");
  }
  if (auto method = get_compression_name(v, "method", parse_method, p)) spec.method = *method;
  // The CLI's bounds and words (policy.h: CompressionBound, read by PolicyOptions::validate too).
  spec.ratio = get_bounded(v, kRatioBound, 0.0, p);
  spec.window = get_bounded(v, kWindowBound, spec.window, p);
  spec.sinks = get_bounded(v, kSinksBound, spec.sinks, p);
  spec.seed = static_cast<uint64_t>(get_int(v, "seed", 0, 0, INT64_MAX, p, "compression."));
  if (auto layout = get_compression_name(v, "layout", parse_span_layout, p)) spec.layout = *layout;
  spec.span = get_bounded(v, kSpanBound, layout_default_span(spec.layout), p);
  spec.stride_share = get_bounded(v, kStrideShareBound, -1.0, p);
  if (auto rank = get_compression_name(v, "older_rank", parse_older_rank, p)) spec.older_rank = *rank;
  return spec;
}

// A message's content: a string, or OpenAI's array of {"type": "text", "text": ...} parts.
std::string message_content(const json& m, size_t index, Problems& p) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (!m.contains("content") || m["content"].is_null()) {
    p.add("field '" + where + "' is required");
    return "";
  }
  const json& c = m["content"];
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    std::string text;
    for (const auto& part : c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
        p.add("field '" + where + "': only text parts {\"type\": \"text\", \"text\": \"...\"} are supported");
        return "";
      }
      text += part["text"].get<std::string>();
    }
    return text;
  }
  p.add("field '" + where + "' must be a string or an array of text parts, got " + type_name(c));
  return "";
}

void parse_messages(const json& body, GenerationRequest& r, Problems& p) {
  if (!body.contains("messages")) {
    p.add("field 'messages' is required: a non-empty array of {\"role\", \"content\"}");
    return;
  }
  const json& messages = body["messages"];
  if (!messages.is_array() || messages.empty()) {
    p.add("field 'messages' must be a non-empty array of {\"role\", \"content\"}");
    return;
  }
  static const std::set<std::string> roles = {"system", "user", "assistant", "tool", "developer"};
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) {
      p.add("field '" + where + "' must be an object, got " + type_name(m));
      continue;
    }
    refuse_unknown(m, {"role", "content", "name", "compress"}, where + ".", p);
    std::string role;
    if (!m.contains("role") || !m["role"].is_string()) {
      p.add("field '" + where + ".role' must be one of system, user, assistant, tool, developer");
    } else {
      role = m["role"].get<std::string>();
      if (roles.count(role) == 0) p.add("field '" + where + ".role' is '" + role + "'; use system, user, assistant, tool or developer");
    }
    const std::string content = message_content(m, i, p);
    r.messages.push_back({role == "developer" ? "system" : role, content});
    r.compress_message.push_back(get_bool(m, "compress", false, p));
  }
}

void parse_prompt(const json& body, GenerationRequest& r, Problems& p) {
  if (!body.contains("prompt") || body["prompt"].is_null()) {
    p.add("field 'prompt' is required: a string, an array of token ids, or an array of segments {\"text\", \"compress\"}");
    return;
  }
  const json& prompt = body["prompt"];
  if (prompt.is_string()) {
    r.segments.push_back({prompt.get<std::string>(), {}, false, {}});
    return;
  }
  if (!prompt.is_array() || prompt.empty()) {
    p.add("field 'prompt' must be a string, a non-empty array of token ids, or a non-empty array of segments");
    return;
  }
  if (prompt[0].is_number_integer()) {
    Segment s;
    for (const auto& id : prompt) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        p.add("field 'prompt': a token-id array must hold only non-negative integers, got " + id.dump());
        return;
      }
      s.ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
    r.segments.push_back(std::move(s));
    return;
  }
  if (prompt[0].is_string()) {
    p.add("field 'prompt': an array of strings asks for several prompts, and a request takes one; send a string, or "
          "segments [{\"text\": ..., \"compress\": true}, {\"text\": ...}]");
    return;
  }
  for (size_t i = 0; i < prompt.size(); ++i) {
    const json& seg = prompt[i];
    const std::string where = "prompt[" + std::to_string(i) + "]";
    if (!seg.is_object()) {
      p.add("field '" + where + "' must be a segment object {\"text\": \"...\", \"compress\": false}, got " + type_name(seg));
      continue;
    }
    refuse_unknown(seg, {"text", "compress"}, where + ".", p);
    if (!seg.contains("text") || !seg["text"].is_string()) {
      p.add("field '" + where + ".text' must be a string");
      continue;
    }
    const std::string text = seg["text"].get<std::string>();
    r.segments.push_back({text, {}, get_bool(seg, "compress", false, p), text});
  }
}

void parse_stop(const json& body, GenerationRequest& r, Problems& p) {
  if (!body.contains("stop") || body["stop"].is_null()) return;
  const json& stop = body["stop"];
  std::vector<json> items = stop.is_array() ? std::vector<json>(stop.begin(), stop.end()) : std::vector<json>{stop};
  if (items.size() > 16) p.add("field 'stop' holds " + std::to_string(items.size()) + " strings; at most 16");
  for (const auto& s : items) {
    if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > 1024) {
      p.add("field 'stop' must be a non-empty string or an array of them (each at most 1024 bytes), got " + s.dump());
      return;
    }
    r.stop.push_back(s.get<std::string>());
  }
}

}  // namespace

PolicyOptions policy_from_spec(const CompressionSpec& spec) {
  PolicyOptions policy;
  policy.method = parse_method(spec.method);
  policy.ratio = spec.ratio;
  policy.span = spec.span;
  policy.window = spec.window;
  policy.sinks = spec.sinks;
  policy.seed = spec.seed;
  policy.layout = parse_span_layout(spec.layout);
  policy.stride_share = resolve_stride_share(spec.stride_share, policy.method);
  policy.older_rank = resolve_older_rank(spec.older_rank, policy.method, policy.layout);  // validate() refuses misplaced ones
  check(policy.method != Method::None || policy.ratio == 0.0, "compression.ratio ", policy.ratio,
        " needs a compression.method other than none (none keeps the full cache)");
  if (policy.method == Method::Sentinel) {
    policy.cl_id = 0;  // placeholders until the server sets the model's ids
    policy.cr_id = 1;
  }
  try {
    policy.validate();
  } catch (const Error& e) {
    fail("compression: ", e.what());
  }
  const bool fixed_window = policy.method == Method::Local && policy.window > 0;
  check(policy.method == Method::None || policy.ratio > 0.0 || fixed_window, "compression.method ", spec.method,
        " needs compression.ratio > 0 (the fraction of the context to remove)");
  return policy;
}

json parse_json_body(const std::string& body) {
  check(!body.empty(), "the request body is empty; send a JSON object");
  try {
    json parsed = json::parse(body);
    check(parsed.is_object(), "the request body must be a JSON object, got ", parsed.type_name());
    return parsed;
  } catch (const json::exception& e) {
    // nlohmann checks UTF-8 inside strings: invalid bytes are a parse error too; a number past
    // double's range (1e999) is an out_of_range error, not a parse_error (found by fuzz_request).
    fail("malformed JSON body (", e.what(), "); send one JSON object in UTF-8");
  }
}

GenerationRequest parse_generation_request(Endpoint endpoint, const json& body, const ServerDefaults& defaults) {
  Problems p;
  GenerationRequest r;
  r.endpoint = endpoint;
  std::set<std::string> known = {"model", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "n",
                                 "stream", "stream_options", "presence_penalty", "frequency_penalty", "logit_bias",
                                 "user", "compression", "cache_prompt", "timeout", "repetition_penalty", "logprobs",
                                 "ignore_eos"};
  if (endpoint == Endpoint::Chat) {
    known.insert({"messages", "top_logprobs", "max_completion_tokens"});
    parse_messages(body, r, p);
  } else {
    known.insert({"prompt", "echo", "suffix", "best_of"});
    parse_prompt(body, r, p);
    if (body.contains("suffix") && !body["suffix"].is_null()) p.add("field 'suffix' is not supported; leave it out");
    if (body.contains("best_of") && !body["best_of"].is_null() && body["best_of"] != 1)
      p.add("field 'best_of' must be 1");
  }
  refuse_unknown(body, known, "", p);
  neutral_only(body, p);
  if (body.contains("model") && !body["model"].is_null() && !body["model"].is_string())
    p.add(std::string("field 'model' must be a string, got ") + type_name(body["model"]));

  const char* max_key = endpoint == Endpoint::Chat && body.contains("max_completion_tokens") ? "max_completion_tokens"
                                                                                              : "max_tokens";
  r.max_tokens_given = body.contains(max_key) && !body[max_key].is_null();
  r.max_tokens = get_int(body, max_key, defaults.max_tokens, 0, defaults.n_ctx, p);
  r.sampling.temperature = get_number(body, "temperature", 1.0, 0.0, 2.0, p);
  r.sampling.top_p = get_number(body, "top_p", 1.0, 0.0, 1.0, p);
  if (body.contains("top_p") && body["top_p"].is_number() && body["top_p"].get<double>() <= 0.0)
    p.add("field 'top_p' must be > 0 (1 turns nucleus sampling off)");
  r.sampling.top_k = get_int(body, "top_k", 0, 0, 1 << 20, p);
  r.sampling.repetition_penalty = get_number(body, "repetition_penalty", 1.0, 0.01, 10.0, p);
  r.sampling.seed = static_cast<uint64_t>(get_int(body, "seed", 0, INT64_MIN, INT64_MAX, p));
  parse_stop(body, r, p);
  r.stream = get_bool(body, "stream", false, p);
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const json& so = body["stream_options"];
    if (!so.is_object()) {
      p.add("field 'stream_options' must be an object such as {\"include_usage\": true}");
    } else {
      refuse_unknown(so, {"include_usage"}, "stream_options.", p);
      r.include_usage = get_bool(so, "include_usage", false, p);
    }
    if (!r.stream) p.add("field 'stream_options' applies only with \"stream\": true");
  }
  if (endpoint == Endpoint::Chat) {
    r.logprobs = get_bool(body, "logprobs", false, p);
    r.top_logprobs = get_int(body, "top_logprobs", 0, 0, defaults.max_top_logprobs, p);
    if (r.top_logprobs > 0 && !r.logprobs) p.add("field 'top_logprobs' needs \"logprobs\": true");
  } else {
    // Completions: logprobs is the number of alternatives per token (0 = the chosen token's only).
    r.logprobs = body.contains("logprobs") && !body["logprobs"].is_null();
    r.top_logprobs = get_int(body, "logprobs", 0, 0, defaults.max_top_logprobs, p);
    r.echo = get_bool(body, "echo", false, p);
  }
  r.cache_prompt = get_bool(body, "cache_prompt", true, p);
  r.ignore_eos = get_bool(body, "ignore_eos", false, p);
  r.timeout_s = get_number(body, "timeout", defaults.timeout_s, 0.001, defaults.timeout_s, p);

  r.compression = defaults.compression;
  if (body.contains("compression") && !body["compression"].is_null()) {
    r.compression = parse_compression(body["compression"], defaults.compression, p);
    r.compression_given = true;
  }
  if (p.empty()) {
    try {
      policy_from_spec(r.compression);
    } catch (const Error& e) {
      p.add(e.what());
    }
  }
  const bool marked = std::count(r.compress_message.begin(), r.compress_message.end(), true) > 0 ||
                      std::any_of(r.segments.begin(), r.segments.end(), [](const Segment& s) { return s.compress; });
  if (marked && r.compression.method != "sentinel")
    p.add("a segment is marked \"compress\": true, which needs sentinel compression; add \"compression\": "
          "{\"method\": \"sentinel\", \"ratio\": 0.5}");
  if (marked && r.compression.method == "sentinel" && r.compression.ratio <= 0)
    p.add("marked segments need compression.ratio > 0: the fraction of each marked segment to remove");
  p.throw_if_any();
  return r;
}

std::vector<Span> spans_for_segment(int64_t begin, int64_t end, int64_t span, double ratio) {
  std::vector<Span> spans;
  if (ratio <= 0 || span < 2) return spans;
  const double period = static_cast<double>(span - 1) / ratio;
  for (int64_t k = 0;; ++k) {
    const int64_t b = begin + static_cast<int64_t>(std::floor(static_cast<double>(k) * period));
    if (b + span > end) break;
    spans.push_back({b, b + span});
  }
  return spans;
}

PreparedPrompt prepare_prompt(const GenerationRequest& request, const Tokenizer& tokenizer,
                              const ServerDefaults& defaults, int32_t cl_id, int32_t cr_id) {
  PreparedPrompt out;
  std::vector<Segment> segments = request.segments;
  bool add_bos = true;
  if (request.endpoint == Endpoint::Chat) {
    // The whole conversation rendered once, as transformers renders it, then cut after each
    // message's content where it appears verbatim and in order: message k's segment ends with its
    // content, so a later request that repeats these messages repeats these tokens (the prompt
    // cache keeps all but the last segment: the last message with the generation prompt), and a
    // marked message's content is a segment of its own. Many templates (Qwen3's thinking, Phi-3, ...) do not render a conversation's start as a
    // prefix of the whole, so the rendering cannot be built message by message.
    const std::string rendered = apply_chat_template(tokenizer, request.messages, /*add_generation_prompt=*/true);
    size_t done = 0;
    for (size_t k = 0; k < request.messages.size(); ++k) {
      const std::string& content = request.messages[k].content;
      const size_t found = content.empty() ? std::string::npos : rendered.find(content, done);
      if (found == std::string::npos) {
        check(!request.compress_message[k], "message ", k, " is marked for compression, but the chat template ",
              "does not render its content verbatim, so its tokens cannot be told apart; unmark it");
        continue;  // its text joins the next segment
      }
      const size_t end = found + content.size();
      const bool last = k + 1 == request.messages.size();
      if (last && !request.compress_message[k]) break;  // the last message joins the generation prompt
      if (request.compress_message[k]) {
        segments.push_back({rendered.substr(done, found - done), {}, false, {}});
        segments.push_back({content, {}, true, content});
      } else {
        segments.push_back({rendered.substr(done, end - done), {}, false, content});
      }
      done = end;
    }
    segments.push_back({rendered.substr(done), {}, false, {}});  // the template's close and generation prompt
    add_bos = chat_prompt_needs_bos(tokenizer, rendered);
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    const bool first = i == 0;
    if (!s.ids.empty()) {
      for (int32_t id : s.ids)
        check(id < tokenizer.n_vocab(), "prompt token id ", id, " is outside the vocabulary [0, ", tokenizer.n_vocab(), ")");
      out.tokens.insert(out.tokens.end(), s.ids.begin(), s.ids.end());
      out.boundaries.push_back(static_cast<int64_t>(out.tokens.size()));
      continue;
    }
    // A marked segment is tokenized in three parts so that the content's tokens are known exactly:
    // what precedes the content in the segment (a chat header), the content, what follows.
    size_t at = 0, size = s.text.size();  // the whole segment, unless the content is found in it
    if (s.compress && !s.content.empty()) {
      // (A template that alters the content, e.g. trims it, gets its whole segment compressed.)
      if (const size_t found = s.text.find(s.content); found != std::string::npos) {
        at = found;
        size = s.content.size();
      }
    }
    const std::string head = s.compress ? s.text.substr(0, at) : s.text;
    const std::string body = s.compress ? s.text.substr(at, size) : "";
    const std::string tail = s.compress ? s.text.substr(at + size) : "";
    auto encode = [&](const std::string& text, bool bos) {
      std::vector<int32_t> ids = tokenizer.encode(text, bos, SpecialTokens::Parse);
      out.tokens.insert(out.tokens.end(), ids.begin(), ids.end());
    };
    encode(head, first && add_bos);
    if (s.compress) {
      const int64_t begin = static_cast<int64_t>(out.tokens.size());
      encode(body, false);
      const int64_t end = static_cast<int64_t>(out.tokens.size());
      const auto spans = spans_for_segment(begin, end, request.compression.span, request.compression.ratio);
      out.policy.spans.insert(out.policy.spans.end(), spans.begin(), spans.end());
      encode(tail, false);
    }
    out.boundaries.push_back(static_cast<int64_t>(out.tokens.size()));
  }
  const int64_t n = static_cast<int64_t>(out.tokens.size());
  check(n > 0, "the prompt is empty: give at least one token of text");
  check(n < defaults.n_ctx, "the prompt has ", n, " tokens and the context holds ", defaults.n_ctx,
        " (prompt plus generated tokens); shorten the prompt or start the server with a larger --ctx");
  if (out.boundaries.size() >= 2) out.cache_boundary = out.boundaries[out.boundaries.size() - 2];

  std::vector<Span> spans = std::move(out.policy.spans);
  out.policy = policy_from_spec(request.compression);
  if (out.policy.method == Method::Sentinel) {
    out.policy.cl_id = cl_id;
    out.policy.cr_id = cr_id;
    const bool marked = std::any_of(segments.begin(), segments.end(), [](const Segment& s) { return s.compress; });
    if (marked) {
      // Marks replace the scheduler: only the marked segments are compressed. A mark on a segment
      // shorter than one span compresses nothing, which the response's achieved_ratio shows. With
      // no scheduler there are no older tokens to rank: the layout's ranking defaults do not apply
      // (one the request gives is still refused by validate(), as the CLI refuses it).
      out.policy.spans = std::move(spans);
      if (request.compression.older_rank.empty()) out.policy.older_rank = OlderRank::Attention;
      if (request.compression.stride_share < 0) out.policy.stride_share = 0.0;
      if (out.policy.spans.empty()) out.policy.method = Method::None, out.policy.ratio = 0.0;
    }
  }
  out.policy.validate();
  return out;
}

}  // namespace sentinel::server
