// Method and layout names, the shared KV budget, and the validation of PolicyOptions against the
// bounds table (policy_options.h).
#include "sentinel/policies/policy_options.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

const std::vector<std::pair<Method, std::string>>& method_table() {
  static const std::vector<std::pair<Method, std::string>> table = {
      {Method::None, "none"},           {Method::Sentinel, "sentinel"},   {Method::Local, "local"},
      {Method::Scattered, "scattered"}, {Method::Strided, "strided"},     {Method::Streaming, "streaming"},
      {Method::H2O, "h2o"},             {Method::Tova, "tova"},           {Method::SepLLM, "sepllm"}};
  return table;
}

}  // namespace

Method parse_method(const std::string& name) {
  for (const auto& [method, text] : method_table())
    if (text == name) return method;
  std::string accepted;
  for (const auto& [method, text] : method_table()) accepted += (accepted.empty() ? "" : ", ") + text;
  fail("unknown compression method '", name, "'; use one of: ", accepted);
}

std::string method_name(Method method) {
  if (method == Method::Custom) return "custom";  // not in the table: no option names it
  for (const auto& [m, text] : method_table())
    if (m == method) return text;
  return "unknown";
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& [method, text] : method_table()) names.push_back(text);
  return names;
}

std::string joined_method_names(const std::string& none_as) {
  std::string joined;
  for (const auto& [method, text] : method_table())
    joined += (joined.empty() ? "" : ", ") + (method == Method::None ? none_as : text);
  return joined;
}

SpanLayout parse_span_layout(const std::string& name) {
  if (name == "stream") return SpanLayout::Stream;
  if (name == "periodic") return SpanLayout::Periodic;
  if (name == "heavy") return SpanLayout::Heavy;
  fail("unknown span layout '", name,
       "': expected stream (sinks + window + spans of what leaves it), periodic (the paper's spans from the first "
       "token) or heavy (stream's spans beside H2O's heavy hitters)");
}

int64_t default_span(SpanLayout layout) { return layout == SpanLayout::Heavy ? 48 : 16; }

SpanLayout default_span_layout() { return SpanLayout::Heavy; }  // why heavy: span_layout.h

double default_stride_share() { return 0.0; }  // why 0: policy.h

double resolve_stride_share(double given, Method method) {
  if (given >= 0) return given;
  return method == Method::Sentinel ? default_stride_share() : 0.0;
}

OlderRank parse_older_rank(const std::string& name) {
  if (name == "attention") return OlderRank::Attention;
  if (name == "surprisal") return OlderRank::Surprisal;
  if (name == "both") return OlderRank::Both;
  fail("unknown --older-rank '", name,
       "': expected attention (the mass each older token received, H2O's heavy hitters), surprisal (how little "
       "the model expected each token as it read it) or both (half the ranked room each)");
}

std::string older_rank_name(OlderRank rank) {
  switch (rank) {
    case OlderRank::Attention: return "attention";
    case OlderRank::Surprisal: return "surprisal";
    case OlderRank::Both: return "both";
  }
  return "unknown";
}

OlderRank default_older_rank(Method method, SpanLayout layout) {
  return method == Method::Sentinel && layout == SpanLayout::Heavy ? OlderRank::Both : OlderRank::Attention;
}

OlderRank resolve_older_rank(const std::string& given, Method method, SpanLayout layout) {
  return given.empty() ? default_older_rank(method, layout) : parse_older_rank(given);
}

std::string span_layout_name(SpanLayout layout) {
  switch (layout) {
    case SpanLayout::Stream: return "stream";
    case SpanLayout::Periodic: return "periodic";
    case SpanLayout::Heavy: return "heavy";
  }
  return "unknown";
}

int64_t kv_budget(double ratio, int64_t n_ordinary) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - ratio) * static_cast<double>(n_ordinary) - 1e-9)));
}

int64_t default_read_chunk(const PolicyOptions& options) {
  return reads_attention(options) ? kAttentionReadChunk : 512;
}

bool reads_attention(const PolicyOptions& options) {
  // A custom policy may read attention or keys at any step: treated as one that does.
  return options.method == Method::H2O || options.method == Method::Tova || options.method == Method::Custom ||
         (options.method == Method::Sentinel && options.spans.empty() && options.layout == SpanLayout::Heavy);
}

std::string CompressionBound::refusal(double value) const {
  // Integral values print as integers (1048576, not 1.04858e+06), the others in their shortest form.
  auto text = [](double x) {
    std::ostringstream out;
    if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 1e15) out << static_cast<int64_t>(x);
    else out << std::setprecision(15) << x;
    return out.str();
  };
  return std::string(name) + " must be in [" + text(lo) + ", " + text(hi) + "]" + unit + ", got " + text(value) +
         " (" + why + ")";
}

namespace {
void require(const CompressionBound& bound, double value) {
  if (!bound.holds(value)) fail(bound.refusal(value));
}
}  // namespace

void PolicyOptions::validate() const {
  require(kRatioBound, ratio);
  require(kWindowBound, static_cast<double>(window));
  require(kSinksBound, static_cast<double>(sinks));
  require(kStrideShareBound, stride_share);
  check((method == Method::Custom) == (custom != nullptr),
        method == Method::Custom ? "a custom compression method needs its policy maker"
                                 : "a policy maker applies to the custom method only");
  check(stride_share == 0.0 || (method == Method::Sentinel && layout == SpanLayout::Heavy),
        "--stride-share applies to --compress sentinel --layout heavy only");
  check(older_rank == OlderRank::Attention || (reads_attention(*this) && method != Method::Custom),
        "--older-rank ", older_rank_name(older_rank),
        " applies to the policies that rank older tokens: --compress h2o, or sentinel --layout heavy");
  if (method == Method::Sentinel) {
    check(cl_id >= 0 && cr_id >= 0 && cl_id != cr_id, "sentinel compression needs the <CL>/<CR> token ids");
    if (spans.empty()) {
      require(kSpanBound, static_cast<double>(span));
      const double max_ratio = static_cast<double>(span - 1) / static_cast<double>(span);
      check(ratio <= max_ratio + 1e-12, "ratio ", ratio, " is impossible with spans of ", span,
            " tokens: each span leaves one <CR>, so at most (L-1)/L = ", max_ratio,
            " of the context can be removed; use a longer --span or a lower --ratio");
    }
    for (size_t i = 0; i < spans.size(); ++i) {
      check(spans[i].begin >= 0 && spans[i].length() >= 1, "span ", i, " [", spans[i].begin, ", ", spans[i].end,
            ") is empty or negative");
      // (check() evaluates its message's arguments: spans[i - 1] only exists from i = 1.)
      if (i > 0)
        check(spans[i].begin >= spans[i - 1].end, "spans must be sorted and disjoint: span ", i, " [", spans[i].begin,
              ", ", spans[i].end, ") starts before span ", i - 1, " ends at ", spans[i - 1].end);
    }
  } else {
    check(spans.empty(), "explicit spans only apply to --compress sentinel");
  }
  check(separators.empty() || method == Method::SepLLM, "separator ids apply to --compress sepllm only");
}

double CompressionStats::achieved_ratio() const {
  return ordinary_seen > 0 ? 1.0 - static_cast<double>(cells_in_use) / static_cast<double>(ordinary_seen) : 0.0;
}

}  // namespace sentinel
