// `sentinel ppl`: perplexity of a text file under the model with a strided sliding window,
// optionally read incrementally under a compression policy.
#include <nlohmann/json.hpp>

#include <optional>

#include <cstdio>
#include <iostream>

#include "common.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/eval/perplexity.h"

namespace sentinel::cli {
namespace {

struct PplArgs {
  ModelArgs model;
  std::string data;
  PerplexityOptions window;
  CompressionArgs compression;
  int64_t chunk = 0;  // 0 = one forward pass per window (no compression only)
  int64_t max_tokens = 0;
  bool json = false;
  bool kl_divergence = false;  // compare every prediction with the uncompressed dense float32 model
};

int run_ppl(const PplArgs& args) {
  PolicyOptions policy = parse_compression(args.compression);
  const int64_t chunk = args.chunk > 0 ? args.chunk : default_read_chunk(policy);
  validate_compressed_perplexity(args.window, policy, chunk);
  const std::string text = read_text_file(args.data);
  LoadedModel loaded = open_model(args.model, args.json);
  const std::string adapter = install_compression(policy, args.compression, loaded, args.json);
  // The bytes just loaded, not just the path: adapters are retrained in place.
  const std::string adapter_sha256 = adapter.empty() ? "" : sha256_file(adapter);
  // Without compression and --chunk, each window is one causal pass on the dense path: same
  // result, fastest there. The quantized path reads windows through a session (its whole-window
  // pass would need the dense matrices).
  const bool incremental = policy.method != Method::None || args.chunk > 0 || loaded.model->is_quantized();
  if (reads_attention(policy) && chunk > 1 && !args.json)
    std::fprintf(stderr, "note: this policy evicts by attention between forward passes only, so the %lld tokens of a chunk see each other "
                         "uncompressed; --chunk 1 measures it as it decodes\n", static_cast<long long>(chunk));
  std::vector<int32_t> ids = loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
  if (args.max_tokens > 0 && static_cast<int64_t>(ids.size()) > args.max_tokens) ids.resize(args.max_tokens);
  std::unique_ptr<ProgressBar> progress;
  auto on_window = [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<ProgressBar>("ppl", total, "windows");
    progress->update(done);
  };
  // The reference of --kl-divergence: the same file on the dense float32 path, uncompressed.
  std::optional<LoadedModel> reference;
  if (args.kl_divergence) {
    reference.emplace(open_model(kl_reference_args(args.model), /*quiet=*/true));
  }
  const PerplexityResult r =
      incremental || reference
          ? compressed_perplexity(loaded.model, ids, args.window, policy, chunk, on_window,
                                  reference ? &reference->model : nullptr)
          : strided_perplexity(loaded.model, ids, args.window, on_window);
  if (progress) progress->finish();
  // The model under test's own speed: the reference's passes (--kl-divergence) are not its work.
  const double own_seconds = r.seconds - r.reference_seconds;
  const double tps = own_seconds > 0 ? r.n_scored / own_seconds : 0;
  if (args.json) {
    nlohmann::json out = {{"model", loaded.name}, {"dtype", dtype_name(loaded.model->dtype())},
                          {"data", args.data},     {"ppl", r.ppl},
                          {"nll", r.nll_sum},      {"tokens", r.n_tokens},
                          {"scored", r.n_scored},  {"ctx", args.window.ctx},
                          {"stride", args.window.stride}, {"windows", r.n_windows},
                          {"compress", method_name(policy.method)}, {"ratio", policy.ratio},
                          {"achieved_ratio", r.achieved_ratio()}, {"kv_entries_retained", r.cells_retained},
                          {"peak_kv_bytes", r.peak_kv_bytes}, {"span", policy.span},
                          {"window", policy.window}, {"layout", span_layout_name(policy.layout)},
                          {"sinks", policy.sinks},   {"stride_share", policy.stride_share},
                          {"older_rank", older_rank_name(policy.older_rank)}, {"adapter", adapter},
                          {"adapter_sha256", adapter_sha256},
                          {"chunk", incremental ? chunk : args.window.ctx},
                          {"seconds", r.seconds},  {"reference_seconds", r.reference_seconds},
                          {"tokens_per_s", tps}};
    if (r.has_reference)
      out["reference"] = {{"model", "dense float32, uncompressed"}, {"ppl", r.reference_ppl()},
                          {"ppl_ratio", r.ppl / r.reference_ppl()}, {"mean_kl_divergence", r.mean_kl()},
                          {"top1_agreement", r.top1_agreement()}};
    out["engine"] = engine_fields(loaded);
    out["environment"] = run_environment(dtype_name(loaded.model->dtype()));
    report_ratio_shortfall(policy, r.achieved_ratio(), &out);
    std::cout << out.dump() << "\n";
  } else {
    std::printf("ppl %.4f over %lld tokens (%lld windows, ctx %lld, stride %lld) in %.1fs, %.0f tok/s\n", r.ppl,
                static_cast<long long>(r.n_tokens), static_cast<long long>(r.n_windows),
                static_cast<long long>(args.window.ctx), static_cast<long long>(args.window.stride), r.seconds, tps);
    std::printf("kv cache: %s, achieved ratio %.4f, peak %.1f MiB\n", describe(policy).c_str(), r.achieved_ratio(),
                static_cast<double>(r.peak_kv_bytes) / (1 << 20));
    if (r.has_reference)
      std::printf("vs dense float32 uncompressed: ppl %.4f (ratio %.4f), mean KL %.5f, same top token %.2f%%\n",
                  r.reference_ppl(), r.ppl / r.reference_ppl(), r.mean_kl(), 100.0 * r.top1_agreement());
    report_ratio_shortfall(policy, r.achieved_ratio());
  }
  return 0;
}

}  // namespace

Runner register_ppl(CLI::App& app) {
  auto args = std::make_shared<PplArgs>();
  CLI::App* cmd = app.add_subcommand("ppl", "Perplexity of a text file (strided sliding window)");
  add_model_options(*cmd, args->model);
  cmd->add_option("-d,--data", args->data, "Text file to evaluate (read whole, tokenized without special tokens)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--ctx", args->window.ctx, "Tokens per window")->capture_default_str();
  cmd->add_option("--stride", args->window.stride, "Tokens between window starts (<= ctx)")->capture_default_str();
  add_compression_options(*cmd, args->compression);
  cmd->add_option("--chunk", args->chunk,
                  "Read each window incrementally, N tokens per forward pass (1 = pure decoding); implied by "
                  "--compress: " + std::to_string(kAttentionReadChunk) + " for policies that evict by attention "
                  "between passes (h2o, tova, sentinel --layout heavy), as eval lm reads them; 512 for the others")
      ->check(count_at_least(1));
  cmd->add_option("--max-tokens", args->max_tokens, "Evaluate only the first N tokens (0 = all)")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object with \"ppl\", \"tokens\", ...");
  cmd->add_flag("--kl-divergence", args->kl_divergence,
                "Also read every window with the same model on the dense float32 path, uncompressed, and report its "
                "perplexity, the mean KL divergence per token and the top-token agreement (as llama-perplexity "
                "--kl-divergence): what quantization and compression cost");
  return [args] { return run_ppl(*args); };
}

}  // namespace sentinel::cli
