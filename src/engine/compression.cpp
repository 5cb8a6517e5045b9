// Compression arguments resolved to a policy and an adapter (compression.h).
#include "sentinel/engine/compression.h"

#include <cstdio>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/policies/separators.h"

namespace sentinel {

PolicyOptions parse_compression(const CompressionArgs& args) {
  PolicyOptions policy = args.policy;
  policy.method = parse_method(args.method);
  policy.layout = parse_span_layout(args.layout);
  policy.stride_share = resolve_stride_share(args.stride_share, policy.method);
  policy.older_rank = resolve_older_rank(args.older_rank, policy.method, policy.layout);
  check(policy.method != Method::None || policy.ratio == 0.0, "--ratio ", policy.ratio,
        " needs a --compress method (none keeps the full cache)");
  if (policy.method == Method::Sentinel) {
    policy.cl_id = 0;  // placeholders, see install_policy_tokens
    policy.cr_id = 1;
  }
  policy.validate();
  const bool fixed_window = policy.method == Method::Local && policy.window > 0;
  check(policy.method == Method::None || policy.ratio > 0.0 || fixed_window, "--compress ", args.method,
        " needs --ratio > 0 (the fraction of the context to remove)");
  return policy;
}

std::string adapter_for(const PolicyOptions& policy, const std::string& requested, DecoderModel& model) {
  if (requested == "none") return "";
  if (!requested.empty() || policy.method != Method::Sentinel) return requested;
  // The shipped adapter of the layout, when it was trained on this model (the default one).
  const std::string bundled = bundled_sentinel_adapter_path(policy.layout);
  return !bundled.empty() && adapter_belongs_to(load_adapter(bundled), model) ? bundled : "";
}

void install_policy_tokens(PolicyOptions& policy, LoadedModel& loaded) {
  if (policy.method == Method::Sentinel) {
    const SentinelTokens tokens = sentinel_tokens(loaded.config);
    policy.cl_id = tokens.cl;
    policy.cr_id = tokens.cr;
    if (loaded.model->n_extra_tokens() == 0) install_sentinels(loaded.model);
  }
  if (policy.method == Method::SepLLM && policy.separators.empty()) {
    policy.separators = separator_ids(*loaded.tokenizer);
    check(!policy.separators.empty(), "--compress sepllm: the vocabulary of ", loaded.name,
          " has no separator token (punctuation or white space alone); use another method");
  }
  policy.validate();
}

namespace {

// An adapter reads best with the layout it was trained on (its metadata's `layout`: stream,
// heavy, or blocks for the paper's periodic spans). Another one is allowed, as an experiment may
// want it, but never silently: since the default layout became heavy, an adapter trained with
// `sentinel train`'s stream default would otherwise be read the other way without a word.
void warn_if_trained_for_another_layout(const Adapter& adapter, const PolicyOptions& policy) {
  if (policy.method != Method::Sentinel) return;
  const auto it = adapter.metadata.find("layout");
  if (it == adapter.metadata.end() || it->second.empty()) return;
  const std::string trained = it->second == "blocks" ? span_layout_name(SpanLayout::Periodic) : it->second;
  const std::string reading = span_layout_name(policy.layout);
  if (trained == reading) return;
  std::fprintf(stderr, "warning: adapter %s was trained with --layout %s but is read with --layout %s; pass "
               "--layout %s to read it as trained\n", adapter.path.c_str(), it->second.c_str(), reading.c_str(),
               trained.c_str());
}

}  // namespace

std::string install_compression(PolicyOptions& policy, const CompressionArgs& args, LoadedModel& loaded,
                                bool quiet) {
  // The adapter's LoRA is merged into the weights and its sentinel rows installed, whatever the
  // method (a baseline fine-tuned with --method local has LoRA and no sentinel rows).
  const std::string adapter = adapter_for(policy, args.adapter, loaded.model);
  if (!adapter.empty()) {
    const Adapter loaded_adapter = load_adapter(adapter);
    warn_if_trained_for_another_layout(loaded_adapter, policy);
    apply_adapter(loaded.model, loaded.name, loaded_adapter);
  }
  install_policy_tokens(policy, loaded);
  if (!quiet && policy.method != Method::None) {
    const std::string sentinels = !adapter.empty()                    ? ", adapter " + adapter
                                  : policy.method == Method::Sentinel ? ", untrained sentinels (no adapter for this model)"
                                                                      : "";
    std::fprintf(stderr, "compress: %s%s\n", describe(policy).c_str(), sentinels.c_str());
  }
  return adapter;
}

std::string describe(const PolicyOptions& policy) {
  std::ostringstream out;
  out << method_name(policy.method);
  if (policy.method == Method::None) return out.str();
  out << " ratio " << policy.ratio;
  if (policy.method == Method::Sentinel) {
    out << " span " << policy.span << " layout " << span_layout_name(policy.layout);
    if (policy.layout != SpanLayout::Periodic) out << " sinks " << policy.sinks;
    if (policy.window > 0 || policy.layout == SpanLayout::Periodic) out << " window " << policy.window;
  }
  if (policy.method == Method::Local && policy.window > 0) out << " window " << policy.window;
  if (policy.method == Method::Streaming || policy.method == Method::SepLLM) out << " sinks " << policy.sinks;
  if (policy.method == Method::Scattered) out << " seed " << policy.seed;
  return out.str();
}

}  // namespace sentinel
