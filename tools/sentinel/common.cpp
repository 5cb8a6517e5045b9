// Shared CLI helpers.
#include "common.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"
#include "sentinel/tokenizer/chat_template.h"

namespace sentinel::cli {

void add_model_options(CLI::App& app, ModelArgs& args) {
  app.add_option("-m,--model", args.model,
                 "Model: a .gguf file or a Hugging Face folder (config.json + *.safetensors + tokenizer.json). "
                 "Default: SmolLM2-135M-Instruct from the cache ($SENTINEL_HOME, ~/.cache/sentinel)");
  app.add_option("--dtype", args.dtype, "Compute dtype: float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16", "f32", "bf16"}))
      ->capture_default_str();
  app.add_option("-t,--threads", args.threads, "CPU threads (0 = all cores; more than the cores is allowed, with a warning)")
      ->check(CLI::Range(0, kMaxThreads));
  app.add_option("--backend", args.backend,
                 "Weights: quantized reads a GGUF's Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K/F16/BF16/F32 matrices in "
                 "place (float32 compute, CPU kernels picked from cpuid; SENTINEL_ISA=scalar forces the portable ones), "
                 "dense dequantizes them to float32/bfloat16 (parity with transformers, Hugging Face folders), auto "
                 "picks quantized where it can run")
      ->check(CLI::IsMember({"auto", "dense", "quantized"}))
      ->capture_default_str();
  app.add_option("--kv-dtype", args.kv_dtype,
                 "KV-cache storage: f32, f16, bf16 or q8_0 (stacks with --compress); auto = f16 on the quantized "
                 "backend, the compute dtype on the dense one")
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16", "q8_0"}))
      ->capture_default_str();
}

bool report_ratio_shortfall(const PolicyOptions& policy, double achieved, nlohmann::json* out) {
  // 0.05: the budget rounds up, and a scheduler works in whole spans; a text of thousands of
  // tokens lands within a few hundredths of the asked ratio.
  const bool short_of_asked = policy.method != Method::None && achieved + 0.05 < policy.ratio;
  if (out != nullptr) (*out)["ratio_short_of_asked"] = short_of_asked;
  if (short_of_asked)
    std::fprintf(stderr, "warning: asked to remove %.3f of the context, removed %.3f: the text is too short for these "
                         "options (sinks %lld, window %lld, span %lld); read more text or ask for less\n",
                 policy.ratio, achieved, static_cast<long long>(policy.sinks), static_cast<long long>(policy.window),
                 static_cast<long long>(policy.span));
  return short_of_asked;
}

void add_chat_template_option(CLI::App& app, ModelArgs& args) {
  app.add_option("--chat-template-file", args.chat_template_file,
                 "Jinja chat template to use instead of the model's own (tokenizer.chat_template), as llama.cpp's "
                 "option of that name: for base models that carry none, or to try another format")
      ->check(CLI::ExistingFile);
}

nlohmann::json engine_fields(const LoadedModel& loaded) {
  return {{"backend", loaded.model->is_quantized() ? "quantized" : "dense"},
          {"weights", loaded.model->backend_description()},
          {"kv_dtype", kernels::row_type_name(kv_row_type(loaded.model->kv_storage(), loaded.model->dtype()))}};
}

LoadedModel open_model(const ModelArgs& args, bool quiet) {
  const auto cores = static_cast<int>(std::thread::hardware_concurrency());
  if (args.threads > cores && cores > 0)
    std::fprintf(stderr, "warning: %d threads on %d cores: the threads wait for each other at every step, which "
                         "is slower than -t %d\n", args.threads, cores, cores);
  if (args.threads > 0) at::set_num_threads(args.threads);
  const std::string path = args.model.empty() ? default_model_path() : args.model;
  const auto start = std::chrono::steady_clock::now();
  LoadedModel loaded = load_model(path, LoadOptions{parse_dtype(args.dtype), at::kCPU, parse_backend(args.backend)});
  if (args.kv_dtype != "auto") loaded.model->set_kv_storage(parse_kv_storage(args.kv_dtype));
  KvCache probe(loaded.config.kv_shape(), loaded.model->cache_options(1));  // a KV dtype this model cannot store fails here
  if (!args.chat_template_file.empty()) {
    loaded.tokenizer->set_chat_template(read_text_file(args.chat_template_file));
    try {  // a template that does not parse fails now, naming its file, not at the first chat
      apply_chat_template(*loaded.tokenizer, {{"user", "hello"}});
    } catch (const Error& e) {
      fail("--chat-template-file '", args.chat_template_file, "': ", e.what());
    }
  }
  if (!quiet) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "loaded %s (%s; %s, KV %s) in %.2fs, %d threads\n", loaded.name.c_str(),
                 loaded.tensor_types.c_str(), loaded.model->backend_description().c_str(),
                 engine_fields(loaded)["kv_dtype"].get<std::string>().c_str(), s, at::get_num_threads());
  }
  return loaded;
}

ModelArgs kl_reference_args(ModelArgs args) {
  args.backend = "dense";
  args.dtype = "float32";
  args.kv_dtype = "auto";
  return args;
}

void add_compression_options(CLI::App& app, CompressionArgs& args) {
  app.add_option("--compress", args.method, "KV-cache compression method: " + joined_method_names())
      ->check(CLI::IsMember(method_names()))
      ->capture_default_str();
  app.add_option("--ratio", args.policy.ratio,
                 "Fraction of the context to remove from the KV cache, in [0, 1); every baseline gets the same budget")
      ->capture_default_str();
  add_span_option(app, args.policy.span, args.layout, "sentinel");
  add_layout_option(app, args.layout, "sentinel");
  app.add_option("--window", args.policy.window,
                 "sentinel: most recent tokens never compressed (stream: a floor under the window the budget leaves); "
                 "local: a fixed window of this size instead of the paper's relative one (0 = relative)")
      ->capture_default_str();
  app.add_option("--sinks", args.policy.sinks,
                 "streaming, sepllm, sentinel (stream layout): initial attention-sink tokens always kept")
      ->capture_default_str();
  add_stride_share_option(app, args.stride_share, default_stride_shares_help());
  add_older_rank_option(app, args.older_rank, default_older_ranks_help());
  app.add_option("--compress-seed", args.policy.seed, "scattered: seed of the kept positions")->capture_default_str();
  app.add_option("--adapter", args.adapter,
                 "Adapter file from `sentinel train` for this model: sentinel embeddings and/or LoRA (merged at load). "
                 "--compress sentinel on the default model uses the shipped adapter unless given one; 'none' reads "
                 "with the untrained sentinel rows")
      ->check(CLI::ExistingFile | CLI::IsMember({"none"}));
}

std::string default_stride_shares_help() {
  char text[128];
  std::snprintf(text, sizeof text, "%g with --layout heavy, the share its shipped adapter reads best at (all of the "
                "older room ranked by --older-rank)", default_stride_share());
  return text;
}

std::string default_spans_help() {
  return std::to_string(default_span(SpanLayout::Heavy)) + " with --layout heavy, the span its shipped adapter was "
         "validated at; " + std::to_string(default_span(SpanLayout::Stream)) + " with stream and periodic";
}

void add_span_option(CLI::App& app, int64_t& span, const std::string& layout, const std::string& scope) {
  app.add_option("--span", span, scope + ": tokens compressed into each <CR> (default: " + default_spans_help() + ")");
  // Once parsing is done the layout is known; the span follows it unless given.
  CLI::App* self = &app;
  app.parse_complete_callback([self, &span, &layout] {
    if (self->count("--span") == 0) span = default_span(parse_span_layout(layout));
  });
}

void add_layout_option(CLI::App& app, std::string& layout, const std::string& scope) {
  app.add_option("--layout", layout,
                 scope + ": where scheduled spans go. heavy (the default, chosen on the validation text): after "
                         "the --sinks first tokens, each span compressed as it leaves H2O's recent half of the "
                         "budget, the <CR>s sharing the rest with the older tokens ranked by --older-rank (or kept "
                         "evenly spread, --stride-share); it evicts between passes, as H2O, so its sessions cannot be "
                         "saved or resumed. stream: each span compressed as the budget pushes it out of the raw recent "
                         "window (the window is what the budget leaves); a plan fixed by token positions, so sessions "
                         "save and resume. periodic: the paper setting's spans every (L-1)/ratio tokens from the "
                         "first one")
      ->check(CLI::IsMember({"stream", "heavy", "periodic"}))
      ->capture_default_str();
}

void add_stride_share_option(CLI::App& app, double& share, const std::string& default_help) {
  app.add_option("--stride-share", share,
                 "sentinel, --layout heavy: the share of the older tokens' budget kept evenly spread over them (as "
                 "strided keeps its older half) instead of ranked by --older-rank; 0 = all ranked, 1 = all evenly "
                 "spread (default: " + default_help + ")")
      ->check(CLI::Range(0.0, 1.0));
}

void add_older_rank_option(CLI::App& app, std::string& rank, const std::string& default_help) {
  app.add_option("--older-rank", rank,
                 "h2o, sentinel --layout heavy: what ranks the older tokens kept by score. attention: the attention "
                 "mass each received so far (H2O's heavy hitters); surprisal: how little the model expected each "
                 "token as it read it, -log p(token | text before it), so that what it could not predict stays; "
                 "both: half the ranked room each, the heavy hitters first (default: " + default_help + ")")
      ->check(CLI::IsMember({"attention", "surprisal", "both"}));
}

std::string default_older_ranks_help() {
  return older_rank_name(default_older_rank(Method::Sentinel, SpanLayout::Heavy)) +
         " for sentinel --layout heavy, the rank its shipped adapter reads best with; " +
         older_rank_name(default_older_rank(Method::H2O, SpanLayout::Stream)) + " for h2o, the published rule";
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit, int64_t first)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), first_(first),
      enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (!enabled_ || total_ <= 0) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? (done - first_) / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  const int width = 30, filled = static_cast<int>(width * done / total_);
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  std::fprintf(stderr, "\r%s %lld/%lld [%s] %3d%%  %.2f %s/s  ETA %.0fs %s ", label_.c_str(), (long long)done,
               (long long)total_, bar.c_str(), static_cast<int>(100 * done / total_), rate, unit_.c_str(), eta,
               extra.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_) std::fprintf(stderr, "\n");
}

}  // namespace sentinel::cli
