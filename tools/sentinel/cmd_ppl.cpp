// `sentinel ppl`: perplexity of a text file under the model with a strided sliding window.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "common.h"
#include "sentinel/core/error.h"
#include "sentinel/eval/perplexity.h"

namespace sentinel::cli {
namespace {

struct PplArgs {
  ModelArgs model;
  std::string data;
  PerplexityOptions window;
  int64_t max_tokens = 0;
  bool json = false;
};

int run_ppl(const PplArgs& args) {
  args.window.validate();
  const std::string text = read_text_file(args.data);
  LoadedModel loaded = open_model(args.model, args.json);
  std::vector<int32_t> ids = loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
  if (args.max_tokens > 0 && static_cast<int64_t>(ids.size()) > args.max_tokens) ids.resize(args.max_tokens);
  std::unique_ptr<ProgressBar> progress;
  const PerplexityResult r = strided_perplexity(loaded.model, ids, args.window, [&](int64_t done, int64_t total) {
    if (!progress) progress = std::make_unique<ProgressBar>("ppl", total, "windows");
    progress->update(done);
  });
  if (progress) progress->finish();
  const double tps = r.seconds > 0 ? r.n_scored / r.seconds : 0;
  if (args.json) {
    nlohmann::json out = {{"model", loaded.name}, {"dtype", dtype_name(loaded.model->dtype())},
                          {"data", args.data},     {"ppl", r.ppl},
                          {"nll", r.nll_sum},      {"tokens", r.n_tokens},
                          {"scored", r.n_scored},  {"ctx", args.window.ctx},
                          {"stride", args.window.stride}, {"windows", r.n_windows},
                          {"seconds", r.seconds},  {"tokens_per_s", tps}};
    std::cout << out.dump() << "\n";
  } else {
    std::printf("ppl %.4f over %lld tokens (%lld windows, ctx %lld, stride %lld) in %.1fs, %.0f tok/s\n", r.ppl,
                static_cast<long long>(r.n_tokens), static_cast<long long>(r.n_windows),
                static_cast<long long>(args.window.ctx), static_cast<long long>(args.window.stride), r.seconds, tps);
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
  cmd->add_option("--max-tokens", args->max_tokens, "Evaluate only the first N tokens (0 = all)")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object with \"ppl\", \"tokens\", ...");
  return [args] { return run_ppl(*args); };
}

}  // namespace sentinel::cli
