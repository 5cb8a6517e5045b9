// Request validation of the HTTP server (no model): every bad body is refused with a message
// naming the field and the fix, good bodies get the documented defaults, and marked segments
// become sentinel spans laid out like the scheduler's.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/server/errors.h"
#include "sentinel/server/request.h"

namespace sentinel::server {
namespace {

using nlohmann::json;

ServerDefaults defaults() {
  ServerDefaults d;
  d.n_ctx = 2048;
  d.max_tokens = 64;
  d.timeout_s = 30;
  return d;
}

json chat(json extra = json::object()) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  body.update(extra);
  return body;
}

std::string error_of(Endpoint endpoint, const json& body) {
  try {
    parse_generation_request(endpoint, body, defaults());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ServerRequest, GoodChatBodyGetsDefaults) {
  const GenerationRequest r = parse_generation_request(Endpoint::Chat, chat(), defaults());
  EXPECT_EQ(r.max_tokens, 64);
  EXPECT_FALSE(r.max_tokens_given);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 1.0);
  EXPECT_FALSE(r.stream);
  EXPECT_EQ(r.compression.method, "none");
  EXPECT_DOUBLE_EQ(r.timeout_s, 30);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "Hi");
}

TEST(ServerRequest, ContentPartsAndMarksAreRead) {
  const json body = {{"messages", json::array({{{"role", "user"},
                                                 {"content", json::array({{{"type", "text"}, {"text", "a"}},
                                                                          {{"type", "text"}, {"text", "b"}}})},
                                                 {"compress", true}}})},
                     {"compression", {{"method", "sentinel"}, {"ratio", 0.5}}}};
  const GenerationRequest r = parse_generation_request(Endpoint::Chat, body, defaults());
  EXPECT_EQ(r.messages[0].content, "ab");
  EXPECT_TRUE(r.compress_message[0]);
}

// A compression object without a span gets its layout's (policy.h: default_span); a given one wins.
TEST(ServerRequest, SpanFollowsTheLayoutUnlessGiven) {
  auto span_of = [](json compression) {
    compression["method"] = "sentinel";
    compression["ratio"] = 0.5;
    return parse_generation_request(Endpoint::Chat, chat({{"compression", compression}}), defaults()).compression.span;
  };
  EXPECT_EQ(span_of(json::object()), 48);  // the default layout, heavy
  EXPECT_EQ(span_of({{"layout", "stream"}}), 16);
  EXPECT_EQ(span_of({{"layout", "heavy"}}), 48);
  EXPECT_EQ(span_of({{"layout", "heavy"}, {"span", 24}}), 24);
  EXPECT_EQ(span_of({{"span", 8}, {"layout", "periodic"}}), 8);
}

// Without stride_share a request gets its layout's (policy.h: default_stride_share) for sentinel
// and 0 for every other method; a given one wins, and one out of [0, 1] is refused by name.
TEST(ServerRequest, StrideShareFollowsTheLayoutUnlessGiven) {
  auto share_of = [](json compression) {
    compression["ratio"] = 0.5;
    const CompressionSpec spec =
        parse_generation_request(Endpoint::Chat, chat({{"compression", compression}}), defaults()).compression;
    return policy_from_spec(spec).stride_share;
  };
  EXPECT_EQ(share_of({{"method", "sentinel"}, {"layout", "heavy"}}), default_stride_share());
  EXPECT_EQ(share_of({{"method", "sentinel"}}), 0.0);
  EXPECT_EQ(share_of({{"method", "sentinel"}, {"layout", "heavy"}, {"stride_share", 0.25}}), 0.25);
  EXPECT_EQ(share_of({{"method", "h2o"}, {"layout", "heavy"}}), 0.0);
  EXPECT_THROW(share_of({{"method", "sentinel"}, {"layout", "heavy"}, {"stride_share", 1.5}}), Error);
  EXPECT_THROW(share_of({{"method", "sentinel"}, {"layout", "stream"}, {"stride_share", 0.5}}), Error);
}

// Without older_rank, h2o ranks by attention (the published rule) and sentinel's heavy layout by
// its default (policy.h: default_older_rank); a given rank wins where it applies and is refused
// by name where nothing is ranked.
TEST(ServerRequest, OlderRankFollowsTheMethodUnlessGiven) {
  auto rank_of = [](json compression) {
    compression["ratio"] = 0.5;
    const CompressionSpec spec =
        parse_generation_request(Endpoint::Chat, chat({{"compression", compression}}), defaults()).compression;
    return policy_from_spec(spec).older_rank;
  };
  EXPECT_EQ(rank_of({{"method", "h2o"}}), OlderRank::Attention);
  EXPECT_EQ(rank_of({{"method", "h2o"}, {"older_rank", "surprisal"}}), OlderRank::Surprisal);
  EXPECT_EQ(rank_of({{"method", "sentinel"}, {"layout", "heavy"}}), default_older_rank(Method::Sentinel, SpanLayout::Heavy));
  EXPECT_EQ(rank_of({{"method", "sentinel"}, {"layout", "heavy"}, {"older_rank", "attention"}}), OlderRank::Attention);
  EXPECT_EQ(rank_of({{"method", "sentinel"}}), OlderRank::Both);  // the default layout, heavy
  EXPECT_EQ(rank_of({{"method", "sentinel"}, {"layout", "stream"}}), OlderRank::Attention);
  EXPECT_THROW(rank_of({{"method", "streaming"}, {"older_rank", "surprisal"}}), Error);
}

struct BadCase {
  const char* name;
  Endpoint endpoint;
  json body;
  std::vector<std::string> message_parts;  // each must appear in the error
};

TEST(ServerRequest, BadBodiesAreRefusedWithTheFieldAndTheFix) {
  const std::vector<BadCase> cases = {
      {"no messages", Endpoint::Chat, json::object(), {"'messages' is required"}},
      {"messages not array", Endpoint::Chat, {{"messages", "hi"}}, {"'messages' must be a non-empty array"}},
      {"empty messages", Endpoint::Chat, {{"messages", json::array()}}, {"non-empty array"}},
      {"bad role", Endpoint::Chat, {{"messages", json::array({{{"role", "robot"}, {"content", "x"}}})}}, {"'robot'", "user"}},
      {"content number", Endpoint::Chat, {{"messages", json::array({{{"role", "user"}, {"content", 3}}})}},
       {"messages[0].content", "string"}},
      {"unknown field", Endpoint::Chat, chat({{"temprature", 0.5}}), {"unknown field 'temprature'", "temperature"}},
      {"unknown message field", Endpoint::Chat,
       {{"messages", json::array({{{"role", "user"}, {"content", "x"}, {"weight", 1}}})}},
       {"unknown field 'messages[0].weight'"}},
      {"temperature type", Endpoint::Chat, chat({{"temperature", "hot"}}), {"'temperature' must be a number"}},
      {"temperature range", Endpoint::Chat, chat({{"temperature", 5}}), {"'temperature' must be in [0, 2]"}},
      {"top_p zero", Endpoint::Chat, chat({{"top_p", 0}}), {"'top_p' must be > 0"}},
      {"max_tokens negative", Endpoint::Chat, chat({{"max_tokens", -1}}), {"'max_tokens' must be in [0, 2048]"}},
      {"max_tokens absurd", Endpoint::Chat, chat({{"max_tokens", 1000000000}}), {"'max_tokens' must be in"}},
      {"max_tokens float", Endpoint::Chat, chat({{"max_tokens", 1.5}}), {"'max_tokens' must be an integer"}},
      {"n", Endpoint::Chat, chat({{"n", 2}}), {"'n' must be 1"}},
      {"stream type", Endpoint::Chat, chat({{"stream", "yes"}}), {"'stream' must be true or false"}},
      {"stream_options without stream", Endpoint::Chat, chat({{"stream_options", {{"include_usage", true}}}}),
       {"only with \"stream\": true"}},
      {"stop empty", Endpoint::Chat, chat({{"stop", ""}}), {"'stop' must be a non-empty string"}},
      {"stop number", Endpoint::Chat, chat({{"stop", json::array({1})}}), {"'stop'"}},
      {"penalty", Endpoint::Chat, chat({{"frequency_penalty", 0.5}}), {"'frequency_penalty' is not supported"}},
      {"top_logprobs without logprobs", Endpoint::Chat, chat({{"top_logprobs", 3}}), {"needs \"logprobs\": true"}},
      {"top_logprobs range", Endpoint::Chat, chat({{"logprobs", true}, {"top_logprobs", 50}}), {"'top_logprobs' must be in [0, 20]"}},
      {"compression not object", Endpoint::Chat, chat({{"compression", "sentinel"}}), {"'compression' must be an object"}},
      {"compression no method", Endpoint::Chat, chat({{"compression", {{"ratio", 0.5}}}}), {"'compression.method' is required"}},
      {"compression bad method", Endpoint::Chat, chat({{"compression", {{"method", "zip"}}}}),
       {"unknown compression method 'zip'", "sentinel"}},
      {"compression unknown key", Endpoint::Chat, chat({{"compression", {{"method", "local"}, {"ratio", 0.5}, {"foo", 1}}}}),
       {"unknown field 'compression.foo'"}},
      {"compression ratio range", Endpoint::Chat, chat({{"compression", {{"method", "local"}, {"ratio", 1.5}}}}),
       {"'compression.ratio': ratio must be in [0, 0.999], got 1.5"}},
      {"compression needs ratio", Endpoint::Chat, chat({{"compression", {{"method", "sentinel"}}}}), {"needs compression.ratio > 0"}},
      {"compression impossible ratio", Endpoint::Chat, chat({{"compression", {{"method", "sentinel"}, {"ratio", 0.9}, {"span", 4}}}}),
       {"impossible with spans of 4"}},
      {"mark without sentinel", Endpoint::Chat,
       {{"messages", json::array({{{"role", "user"}, {"content", "x"}, {"compress", true}}})}},
       {"marked \"compress\": true", "\"method\": \"sentinel\""}},
      {"mark type", Endpoint::Chat, {{"messages", json::array({{{"role", "user"}, {"content", "x"}, {"compress", 1}}})}},
       {"'compress' must be true or false"}},
      {"timeout above server's", Endpoint::Chat, chat({{"timeout", 100}}), {"'timeout' must be in"}},
      {"no prompt", Endpoint::Completion, json::object(), {"'prompt' is required"}},
      {"prompt list of strings", Endpoint::Completion, {{"prompt", json::array({"a", "b"})}}, {"several prompts"}},
      {"prompt negative id", Endpoint::Completion, {{"prompt", json::array({1, -2})}}, {"non-negative integers"}},
      {"segment without text", Endpoint::Completion, {{"prompt", json::array({{{"compress", true}}})}}, {"'prompt[0].text'"}},
      {"echo type", Endpoint::Completion, {{"prompt", "x"}, {"echo", 1}}, {"'echo' must be true or false"}},
      {"logprobs range", Endpoint::Completion, {{"prompt", "x"}, {"logprobs", 99}}, {"'logprobs' must be in [0, 20]"}},
      {"suffix", Endpoint::Completion, {{"prompt", "x"}, {"suffix", "y"}}, {"'suffix' is not supported"}},
      {"chat field on completions", Endpoint::Completion, {{"prompt", "x"}, {"messages", json::array()}},
       {"unknown field 'messages'"}},
  };
  for (const auto& c : cases) {
    const std::string error = error_of(c.endpoint, c.body);
    ASSERT_FALSE(error.empty()) << c.name << ": accepted " << c.body.dump();
    for (const auto& part : c.message_parts)
      EXPECT_NE(error.find(part), std::string::npos) << c.name << ": '" << error << "' lacks '" << part << "'";
  }
}

TEST(ServerRequest, EveryProblemIsReportedAtOnce) {
  const std::string error = error_of(Endpoint::Chat, chat({{"temperature", -1}, {"top_p", 7}, {"bogus", 1}}));
  EXPECT_NE(error.find("'temperature'"), std::string::npos) << error;
  EXPECT_NE(error.find("'top_p'"), std::string::npos) << error;
  EXPECT_NE(error.find("'bogus'"), std::string::npos) << error;
}

TEST(ServerRequest, MalformedJsonAndInvalidUtf8AreRefused) {
  EXPECT_THROW(parse_json_body("{\"messages\": [}"), Error);
  EXPECT_THROW(parse_json_body(""), Error);
  EXPECT_THROW(parse_json_body("[1, 2]"), Error);
  // A number past double's range is nlohmann's out_of_range, not a parse_error: still our Error (a 400).
  EXPECT_THROW(parse_json_body("{\"max_tokens\": 666666666666666666e6666}"), Error);
  try {
    parse_json_body("{\"prompt\": \"\xff\xfe\"}");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

TEST(ServerRequest, ErrorsMapToStatusCodes) {
  auto status_of = [](auto thrower) {
    try {
      thrower();
    } catch (...) {
      return map_exception(std::current_exception()).status;
    }
    return 0;
  };
  EXPECT_EQ(status_of([] { fail("bad field"); }), 400);
  EXPECT_EQ(status_of([] { throw HttpError(503, "busy"); }), 503);
  EXPECT_EQ(status_of([] { throw std::runtime_error("boom\nbacktrace"); }), 500);
  const ErrorReply r = error_reply(400, "field 'x' is wrong");
  EXPECT_EQ(r.body["error"]["message"], "field 'x' is wrong");
  EXPECT_EQ(r.body["error"]["type"], "invalid_request_error");
}

TEST(ServerRequest, MarkedSegmentSpansFollowTheSchedulerLayout) {
  // L = 4, ratio 0.5: period (L - 1) / r = 6, spans start at 10, 16, 22 while they fit before 30.
  const std::vector<Span> spans = spans_for_segment(10, 30, 4, 0.5);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].begin, 10);
  EXPECT_EQ(spans[0].end, 14);
  EXPECT_EQ(spans[1].begin, 16);
  EXPECT_EQ(spans[2].begin, 22);
  EXPECT_EQ(spans[2].end, 26);
  EXPECT_TRUE(spans_for_segment(0, 3, 4, 0.5).empty());  // shorter than one span
}

}  // namespace
}  // namespace sentinel::server

namespace sentinel::server {
namespace {

// One table of compression bounds (policy.h: CompressionBound) for the CLI and the server: each
// value just past a bound is refused by the server's request parser and by PolicyOptions::validate
// (what the CLI and the library run) in the same words, and each value at the bound is accepted by both.
TEST(CompressionLimitsTable, TheServerAndTheCliRefuseTheSameValues) {
  using L = CompressionLimits;
  struct Knob {
    const char* field;
    double at_bound, past_bound;
  };
  const std::vector<Knob> knobs = {{"ratio", L::kMaxRatio, 1.0},
                                   {"span", static_cast<double>(L::kMaxSpan), static_cast<double>(L::kMaxSpan + 1)},
                                   {"span", static_cast<double>(L::kMinSpan), static_cast<double>(L::kMinSpan - 1)},
                                   {"window", static_cast<double>(L::kMaxWindow), static_cast<double>(L::kMaxWindow + 1)},
                                   {"sinks", static_cast<double>(L::kMaxSinks), static_cast<double>(L::kMaxSinks + 1)},
                                   {"stride_share", 1.0, 1.5}};
  for (const Knob& k : knobs) {
    for (const double value : {k.at_bound, k.past_bound}) {
      SCOPED_TRACE(std::string(k.field) + " = " + std::to_string(value));
      json compression = {{"method", "sentinel"}, {"ratio", 0.5}, {"span", 16}};
      const bool real = std::string(k.field) == "ratio" || std::string(k.field) == "stride_share";
      compression[k.field] = real ? json(value) : json(static_cast<int64_t>(value));
      if (std::string(k.field) == "ratio") compression["span"] = L::kMaxSpan;  // a ratio of 0.999 needs long spans
      if (std::string(k.field) == "stride_share") compression["layout"] = "heavy";
      const std::string server_error = error_of(Endpoint::Chat, chat({{"compression", compression}}));
      PolicyOptions cli;  // what `--compress sentinel --ratio .. --span .. --window .. --sinks ..` builds
      cli.method = Method::Sentinel;
      cli.cl_id = 100;
      cli.cr_id = 101;
      cli.ratio = compression["ratio"].get<double>();
      cli.span = compression["span"].get<int64_t>();
      cli.window = compression.value("window", int64_t{0});
      cli.sinks = compression.value("sinks", int64_t{4});
      cli.layout = parse_span_layout(compression.value("layout", span_layout_name(default_span_layout())));
      cli.stride_share = compression.value("stride_share", 0.0);
      std::string cli_error;
      try {
        cli.validate();
      } catch (const Error& e) {
        cli_error = e.what();
      }
      const bool refused = value == k.past_bound;
      EXPECT_EQ(!server_error.empty(), refused) << server_error;
      EXPECT_EQ(!cli_error.empty(), refused) << cli_error;
      // The same words: the server's message is the CLI's, after the field it was read from.
      if (refused) EXPECT_NE(server_error.find("field 'compression." + std::string(k.field) + "': " + cli_error),
                             std::string::npos)
          << "server: " << server_error << "\ncli: " << cli_error;
    }
  }
}

}  // namespace
}  // namespace sentinel::server
