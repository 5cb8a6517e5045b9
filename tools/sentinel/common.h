// Pieces shared by the `sentinel` subcommands: model options, loading, input files, a
// progress bar on stderr. Each subcommand lives in its own cmd_*.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "sentinel/engine/compression.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/policies/policy.h"

namespace sentinel::cli {

// A count option's check. CLI11's NonNegativeNumber and PositiveNumber print DBL_MAX, 309 digits,
// as the upper bound in their message ("--ctx: Value -1 not in range 0 to 1797..."); this names
// one a person can read, far past any count these commands take.
inline CLI::Range count_at_least(int64_t min) { return CLI::Range(min, int64_t{1} << 30); }

// The most CPU threads any command takes (-t): far past any machine, short of a hang.
inline constexpr int kMaxThreads = 1024;

struct ModelArgs {
  std::string model;             // empty = the default model from the cache
  std::string dtype = "float32";
  int threads = 0;               // 0 = all cores
  std::string backend = "auto";  // auto, dense, quantized (model_loader.h: Backend)
  std::string kv_dtype = "auto"; // auto (f16 quantized, compute dtype dense), f32, f16, bf16, q8_0
  std::string chat_template_file; // commands that chat: a Jinja template replacing the model's own
};

void add_model_options(CLI::App& app, ModelArgs& args);
// A compressed run that removed clearly less than asked (the text shorter than the sinks, the
// window or one span, ...) says so: one line on stderr, and the JSON field "ratio_short_of_asked"
// (set here on `out` when given). Returns whether it fell short.
bool report_ratio_shortfall(const PolicyOptions& policy, double achieved, nlohmann::json* out = nullptr);

// --chat-template-file, for the commands that render chats (generate --chat, serve).
void add_chat_template_option(CLI::App& app, ModelArgs& args);
// Which path ran, for every JSON result: backend, kernels, KV dtype.
nlohmann::json engine_fields(const LoadedModel& loaded);
// Resolves the path, sets the thread count, loads, and prints one line to stderr.
LoadedModel open_model(const ModelArgs& args, bool quiet = false);
// What KL divergence is measured against (ppl --kl-divergence, the Python score(kl=True)): the same
// file on the dense float32 path, uncompressed.
ModelArgs kl_reference_args(ModelArgs args);


// --compress, --ratio, --span, --window, --sinks, --seed, --adapter (engine/compression.h: CompressionArgs).
void add_compression_options(CLI::App& app, CompressionArgs& args);
// The default spans as help text: "16; 48 with --layout heavy (...)" (policy.h: default_span).
std::string default_spans_help();
// The default stride share as help text (policy.h: default_stride_share).
std::string default_stride_shares_help();
// --span, whose default follows --layout (policy.h: default_span) unless the option is given.
void add_span_option(CLI::App& app, int64_t& span, const std::string& layout, const std::string& scope);
// --layout (sentinel's span scheduler, policy.h: SpanLayout), shared by every command that compresses.
void add_layout_option(CLI::App& app, std::string& layout, const std::string& scope);
// --stride-share (policy.h: PolicyOptions::stride_share), for commands that compress; left at -1
// when not given, which resolve_stride_share() turns into the default.
// `default_help` says what an unset share becomes (the default, or 0 for training).
void add_stride_share_option(CLI::App& app, double& share, const std::string& default_help);
// --older-rank (policy.h: OlderRank): what h2o and sentinel's heavy layout rank older tokens by;
// left empty when not given, which resolve_older_rank() turns into the method's default.
// `default_help` says what an unset rank becomes.
void add_older_rank_option(CLI::App& app, std::string& rank, const std::string& default_help);
// The default ranks as help text (policy.h: default_older_rank).
std::string default_older_ranks_help();

std::string read_text_file(const std::string& path);

// A one-line progress bar on stderr ("ppl  12/40 [=====>     ] 30%  2.1 win/s  ETA 13s"),
// drawn only when stderr is a terminal.
class ProgressBar {
 public:
  // `first`: units already done when the bar starts (a resumed run), left out of the rate.
  ProgressBar(std::string label, int64_t total, std::string unit, int64_t first = 0);
  // `extra` is appended to the line (e.g. "loss 2.31  1840 tok/s").
  void update(int64_t done, const std::string& extra = "");
  void finish();

 private:
  std::string label_, unit_;
  int64_t total_, first_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

// Each subcommand registers itself and returns the function that runs it after parsing.
using Runner = std::function<int()>;
Runner register_generate(CLI::App& app);
Runner register_tokenize(CLI::App& app);
Runner register_ppl(CLI::App& app);
Runner register_info(CLI::App& app);
Runner register_train(CLI::App& app);
// `sentinel train` run in-process by another front (the Python API): `args` as they follow "train"
// on the command line. on_step gets each update's log line (the JSON the log file gets, plus the
// run's total "steps") and returns false to stop, as Ctrl-C would (checkpoint and adapter written,
// --resume continues). Returns 0 when the run finished, 130 when it stopped. A bad argument throws
// Error with the command line's message.
struct TrainHooks {
  std::function<bool(const nlohmann::json& update)> on_step;
};
int run_train_command(const std::vector<std::string>& args, const TrainHooks& hooks);
Runner register_eval(CLI::App& app);
Runner register_bench(CLI::App& app);
Runner register_serve(CLI::App& app);
Runner register_export(CLI::App& app);
// What `sentinel export` does: the adapter file as a folder peft loads; `base_name` "" = the base
// model's name recorded in the adapter. Returns the line the command prints.
std::string export_adapter(const std::string& adapter, const std::string& dir, const std::string& base_name,
                           double lora_dropout);
// `eval` subcommands: each adds itself to `eval` and sets the runner it is run by.
CLI::App* register_eval_lm(CLI::App& eval, Runner& runner);
CLI::App* register_eval_gen(CLI::App& eval, Runner& runner);
CLI::App* register_eval_recall(CLI::App& eval, Runner& runner);

}  // namespace sentinel::cli
