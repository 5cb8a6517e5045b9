// How a run compresses, as a person asks for it: the method and knobs by name (the CLI's
// --compress, --ratio, ... options and the Python API's keywords of the same names), resolved to
// PolicyOptions with every default and check in one place, and the adapter it reads with. Each
// front (CLI, Python) therefore refuses the same values with the same words.
#pragma once

#include <string>

#include "sentinel/engine/model_loader.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

struct CompressionArgs {
  std::string method = "none";
  PolicyOptions policy;           // ratio, span, window, sinks, seed: taken as given
  std::string layout = span_layout_name(default_span_layout());  // sentinel: SpanLayout by name
  double stride_share = -1;       // sentinel, heavy layout: -1 = the layout's default (policy.h)
  std::string older_rank;         // h2o, sentinel heavy layout: OlderRank by name; "" = the default (policy.h)
  std::string adapter;  // an adapter file; "" = the shipped one for sentinel, "none" = no adapter
};

// The policy the arguments ask for, validated before any model is loaded, so that a bad request
// fails fast. Sentinel token ids are placeholders until install_policy_tokens().
PolicyOptions parse_compression(const CompressionArgs& args);

// The adapter file a run with `policy` reads with, "" for none: `requested` when it names a file;
// none for "none"; for sentinel without one, the shipped adapter of the layout when it was trained
// on `model` (the default model), else none.
std::string adapter_for(const PolicyOptions& policy, const std::string& requested, DecoderModel& model);

// Fills in the token ids the method reads. Sentinel: the <CL>/<CR> ids, and sentinel rows for a
// model that has none (an adapter applied before brings its own; otherwise the documented initial
// ones). SepLLM: the tokenizer's separators (separators.h). Other methods: nothing to do.
// Validates the completed policy.
void install_policy_tokens(PolicyOptions& policy, LoadedModel& loaded);

// Completes `policy` for the loaded model: applies the adapter adapter_for() picks (merging its
// LoRA into the weights, so once per loaded model) and installs the sentinel tokens. Returns the
// adapter applied ("" = none). One line on stderr unless quiet.
std::string install_compression(PolicyOptions& policy, const CompressionArgs& args, LoadedModel& loaded,
                                bool quiet = false);

// "sentinel ratio 0.5 span 16 window 0" for messages.
std::string describe(const PolicyOptions& policy);

}  // namespace sentinel
