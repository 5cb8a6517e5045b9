// The options every compression method is configured with (method, ratio, spans, ...), their
// bounds, and what a session reports it achieved: plain data, read by the CLI, the server's
// requests and its saved states without any tensor code (policy.h plans with them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sentinel/policies/span_layout.h"

namespace sentinel {

// SepLLM: sinks, separator tokens and a recent window (sepllm.h). Tova: TOVA (scored.h). Custom: a policy the caller builds (PolicyOptions::custom), such as a
// scorer written in Python (scored.h); not selectable by name.
enum class Method { None, Sentinel, Local, Scattered, Strided, Streaming, H2O, Tova, SepLLM, Custom };

Method parse_method(const std::string& name);  // "none", "sentinel", ...; throws naming the accepted values
std::string method_name(Method method);
std::vector<std::string> method_names();
// "none, sentinel, ..., sepllm" for help texts and messages; `none_as` renames none ("full" in grids).
std::string joined_method_names(const std::string& none_as = "none");

// A half-open range [begin, end) of ordinary token indices to compress into one <CR>.
struct Span {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t length() const { return end - begin; }
};

// PolicyOptions::stride_share when none is given: the share the shipped adapters read best at
// (docs/training_runs.md, "Surprising older tokens"). 0, the same for every layout: the heavy
// layout's adapter was trained at share 1, but with its older tokens ranked by surprisal as well
// as attention (default_older_rank) it reads best with all of their room ranked.
double default_stride_share();
// A stride share as the CLI and the server take it: negative = not given, then the default for
// sentinel and 0 for the other methods (which keep no summaries to share a budget with).
double resolve_stride_share(double given, Method method);

// What ranks the older tokens a policy that reads while it evicts keeps (h2o; sentinel's heavy
// layout, for the share of the older budget not evenly spread):
//   Attention: the attention mass each has received so far, summed over layers, heads and queries
//     (H2O's heavy hitters, attention_scores.h).
//   Surprisal: the negative log-probability the model gave the token as it read it,
//     -log p(x_t | x_<t) (token_surprisal.h). What the model could not predict is what it cannot
//     rebuild once the entry is gone: a passkey among filler, a name, a number.
//   Both: half the ranked room to the heaviest hitters (the odd cell included), the other half to
//     the most surprising of the tokens they leave.
enum class OlderRank { Attention, Surprisal, Both };
OlderRank parse_older_rank(const std::string& name);  // "attention" | "surprisal" | "both"; throws naming them
std::string older_rank_name(OlderRank rank);
// PolicyOptions::older_rank when none is given: both for sentinel's heavy layout, the rank its
// shipped adapter reads best with (docs/training_runs.md); attention for h2o, the published rule.
OlderRank default_older_rank(Method method, SpanLayout layout);
// A rank as the CLI and the server take it: "" = not given, the default above.
OlderRank resolve_older_rank(const std::string& given, Method method, SpanLayout layout);

// The bounds of the compression knobs, one table for every front (CLI options, the server's
// "compression" object, the Python API), so that a value one refuses the others refuse too.
struct CompressionLimits {
  static constexpr double kMaxRatio = 0.999;          // 1 would remove the whole context
  static constexpr int64_t kMinSpan = 2, kMaxSpan = 4096;
  static constexpr int64_t kMaxWindow = 1 << 20, kMaxSinks = 1 << 20;  // tokens, far past any context read
};

// One bounded compression option, named as the CLI and the server both name it, with why it is bounded.
struct CompressionBound {
  const char* name;  // "span": --span on the command line, compression.span in a request
  double lo, hi;
  const char* unit;  // " tokens" or ""
  const char* why;
  bool holds(double value) const { return value >= lo && value <= hi; }
  // "span must be in [2, 4096] tokens, got 5000 (why)": the words the CLI's error and the server's
  // 400 (after the field it was read from) both use, so the same value reads the same in both.
  std::string refusal(double value) const;
};
inline constexpr CompressionBound kRatioBound{"ratio", 0.0, CompressionLimits::kMaxRatio, "",
                                              "the fraction of the context removed from the KV cache"};
inline constexpr CompressionBound kSpanBound{
    "span", CompressionLimits::kMinSpan, CompressionLimits::kMaxSpan, " tokens",
    "a span of 1 token saves nothing; one longer than any context compresses nothing"};
inline constexpr CompressionBound kWindowBound{"window", 0, CompressionLimits::kMaxWindow, " tokens",
                                               "recent tokens never compressed"};
inline constexpr CompressionBound kSinksBound{"sinks", 0, CompressionLimits::kMaxSinks, " tokens",
                                              "initial tokens always kept"};
inline constexpr CompressionBound kStrideShareBound{
    "stride_share", 0.0, 1.0, "", "the share of the older tokens' budget kept evenly spread instead of by attention"};

class CompressionPolicy;
// Builds a fresh policy for Method::Custom: every session (and every perplexity window) gets its own.
using PolicyMaker = std::function<std::unique_ptr<CompressionPolicy>()>;

// Every knob of every policy, validated once by validate(). Fields a method does not use are ignored.
struct PolicyOptions {
  Method method = Method::None;
  // Fraction of the context to remove from the KV cache, in [0, 1). Sets every baseline's budget:
  // after n ordinary tokens a query sees at most budget(n) = max(1, ceil((1 - ratio) * n)) entries.
  double ratio = 0.0;
  // sentinel: tokens per scheduled span (L). Compressing L tokens leaves 1 <CR>, so a ratio above
  // (L-1)/L is impossible with spans of L.
  int64_t span = 16;
  SpanLayout layout = SpanLayout::Stream;  // sentinel: the scheduler's layout
  // sentinel: the most recent `window` ordinary tokens are never compressed by the scheduler
  // (stream: a floor under the window the budget leaves).
  // local: when > 0, a fixed window of this many tokens instead of the paper's relative window.
  int64_t window = 0;
  int64_t sinks = 4;        // streaming, sepllm, sentinel (stream layout): initial "attention sink" tokens always kept
  // sentinel (heavy layout): the share of the older tokens' budget kept evenly spread over them, as
  // strided keeps its older half, instead of by accumulated attention; in [0, 1], 0 = all by attention.
  double stride_share = 0.0;
  // h2o, sentinel (heavy layout): what ranks the older tokens kept by score (see OlderRank).
  OlderRank older_rank = OlderRank::Attention;
  uint64_t seed = 0;        // scattered: which tokens are kept
  std::vector<Span> spans;  // sentinel: explicit spans (sorted, disjoint); replaces the scheduler
  int32_t cl_id = -1;       // sentinel: token ids of <CL> and <CR> (n_vocab and n_vocab + 1)
  int32_t cr_id = -1;
  // sepllm: the ids of the separator tokens (punctuation and white space), found through the
  // model's tokenizer (separators.h: separator_ids), which the front ends fill in.
  std::vector<int32_t> separators;
  // Method::Custom: makes the policy; its eviction budget is still `ratio`'s (scored.h).
  std::shared_ptr<const PolicyMaker> custom;
  void validate() const;
};

// Retained entries allowed after n ordinary tokens at a given ratio (see PolicyOptions::ratio).
int64_t kv_budget(double ratio, int64_t n_ordinary);

// Does the policy decide from attention scores while it reads (h2o, sentinel's heavy layout)? Such
// a plan depends on how the text is cut into forward passes (tokens of one pass see each other
// before anything is evicted), has no mask fixed in advance, and cannot be rebuilt from the token
// indices alone (no session resume, no saved slots).
bool reads_attention(const PolicyOptions& options);

// Tokens per forward pass when such a policy reads a text whole (perplexity, recall, training's
// read of a sequence), unless told otherwise: small enough that a pass's tokens seeing each other
// uncompressed changes little, large enough to read at matrix speed. Every published number of
// h2o, TOVA and the heavy layout was read this way, and training lays out what it reads.
inline constexpr int64_t kAttentionReadChunk = 16;
// Tokens per forward pass when a text is read whole under `options` and no chunk is given
// (`sentinel ppl`, Python's score and its lm-eval model): kAttentionReadChunk for a policy that
// reads attention, 512 for the others, whose numbers do not depend on it.
int64_t default_read_chunk(const PolicyOptions& options);

// What compression achieved so far in a session.
struct CompressionStats {
  int64_t ordinary_seen = 0;  // ordinary tokens fed
  int64_t sentinels_fed = 0;  // <CL> and <CR> tokens fed
  int64_t cells_evicted = 0;
  int64_t cells_in_use = 0;   // cells in the cache now
  int64_t peak_cells = 0;     // most cells held at once (after a step, before its evictions)
  int64_t peak_bytes = 0;     // K/V bytes of peak_cells
  // Fraction of a full cache saved: 1 - cells in use / ordinary tokens seen (retained sentinels
  // count against it). 0 for a full cache.
  double achieved_ratio() const;
};

}  // namespace sentinel
