// The grid the evaluation commands sweep: methods x ratios x settings, each method untrained and,
// where an adapter exists for it, fine-tuned. Shared by `eval lm` and `eval gen`.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "common.h"
#include "results.h"
#include "sentinel/policies/policy.h"

namespace sentinel::cli {

struct GridArgs {
  std::vector<std::string> methods = {"full", "sentinel", "local", "scattered", "strided", "streaming", "h2o"};
  std::vector<double> ratios = {0.25, 0.5, 0.75};
  std::vector<std::string> adapters;  // METHOD=FILE: adds that method's fine-tuned rows
  bool no_bundled_adapter = false;    // sentinel: leave the shipped adapter out
  int64_t span = 16;                  // sentinel (inference scheduler): tokens per span; follows the layout
  int64_t window = 0;                 // sentinel: protected recent tokens
  std::string layout = span_layout_name(default_span_layout());  // sentinel: SpanLayout by name
  int64_t sinks = 4;                  // streaming, sentinel (stream layout)
  double stride_share = -1;           // sentinel (heavy layout): older budget kept evenly spread; -1 = default
  std::string older_rank;             // h2o, sentinel (heavy layout): OlderRank by name; "" = each one's default
  uint64_t seed = 0;                  // scattered patterns, random spans
};

void add_grid_options(CLI::App& app, GridArgs& args);

// A command's run config (part of every record's key) with the grid options added since records
// were first written: each joins only when set, so that records written without it keep their keys
// and `--resume` still finds them.
nlohmann::json with_later_grid_options(nlohmann::json config, const GridArgs& args);

struct GridCell {
  std::string setting;   // e.g. "paper", "stream"
  Method method = Method::None;
  std::string variant;   // "base" (full), "untrained", "fine-tuned"
  std::string adapter;   // file applied to the model, "" = none
  double ratio = 0.0;    // nominal; 0 for full
  // SHA-256 of the adapter's bytes ("" = none). Part of the cell's key on file, so that --resume
  // after retraining an adapter at the same path runs its cells again instead of keeping the old ones.
  std::string adapter_sha256;
};

// Every cell, in an order that loads each adapter once. The shipped sentinel adapter joins only
// for the default model (`default_model`), the one it was trained on. Validates the methods, ratios
// and adapters (files exist, METHOD=FILE syntax) and throws naming the bad value.
std::vector<GridCell> plan_grid(const GridArgs& args, const std::vector<std::string>& settings, bool default_model);

// The cell's policy with placeholder sentinel ids (for validation before loading).
PolicyOptions grid_policy(const GridArgs& args, const GridCell& cell);
// The cell's policy for the loaded model (its sentinel ids).
PolicyOptions cell_policy(const GridArgs& args, const GridCell& cell, const LoadedModel& loaded);

// "stream sentinel fine-tuned 0.5"
std::string describe_cell(const GridCell& cell);
std::string cell_key(const std::string& config_id, const GridCell& cell);
// The cell's identity as JSON: setting, method, variant, adapter, adapter_sha256, ratio.
nlohmann::json cell_record(const GridCell& cell);
// A record's variant as the tables print it: "fine-tuned (de3860a7)" names the adapter's bytes, so
// the rows of an adapter retrained in place and resumed into the same file stay apart.
std::string variant_label(const nlohmann::json& record);

// The cells this process runs, in run order (grouped by adapter, each group in plan order, the
// order records reach the results file): those not on file, or under torchrun its rank's share of
// them (ResultsFile::share). `n_on_file` gets how many of `cells` are on file already.
std::vector<GridCell> cells_to_run(ResultsFile& results, const std::vector<GridCell>& cells,
                                   const std::string& config_id, int64_t& n_on_file);
// Calls fn(adapter, cells using it) per adapter, in plan order.
void for_each_adapter_group(const std::vector<GridCell>& cells,
                            const std::function<void(const std::string&, const std::vector<GridCell>&)>& fn);

// Loads the model with `adapter` merged ("" = none) and the sentinel rows present. The adapter must
// still hold the bytes its cells were planned with (`adapter_sha256`, GridCell), or this throws.
LoadedModel open_grid_model(const ModelArgs& model, const std::string& adapter, const std::string& adapter_sha256,
                            bool quiet);

// Prints the perplexity cells of `path` with this config id as a markdown table on stdout.
void print_ppl_table(const std::string& path, const std::string& config_id);
// The same for generation cells: BLEU, ROUGE-L, similarity, fluency, distinct-2.
void print_gen_table(const std::string& path, const std::string& config_id);

}  // namespace sentinel::cli
