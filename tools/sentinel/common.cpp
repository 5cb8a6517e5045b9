// Shared CLI helpers.
#include "common.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"

namespace sentinel::cli {

void add_model_options(CLI::App& app, ModelArgs& args) {
  app.add_option("-m,--model", args.model,
                 "Model: a .gguf file or a Hugging Face folder (config.json + *.safetensors + tokenizer.json). "
                 "Default: SmolLM2-135M-Instruct from the cache ($SENTINEL_HOME, ~/.cache/sentinel)");
  app.add_option("--dtype", args.dtype, "Compute dtype: float32 or bfloat16")
      ->check(CLI::IsMember({"float32", "bfloat16", "f32", "bf16"}))
      ->capture_default_str();
  app.add_option("-t,--threads", args.threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
}

LoadedModel open_model(const ModelArgs& args, bool quiet) {
  if (args.threads > 0) at::set_num_threads(args.threads);
  const std::string path = args.model.empty() ? default_model_path() : args.model;
  const auto start = std::chrono::steady_clock::now();
  LoadedModel loaded = load_model(path, LoadOptions{parse_dtype(args.dtype), at::kCPU});
  if (!quiet) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "loaded %s (%s, %s) in %.2fs, %d threads\n", loaded.name.c_str(),
                 dtype_name(loaded.model->dtype()).c_str(), loaded.tensor_types.c_str(), s, at::get_num_threads());
  }
  return loaded;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done) {
  if (!enabled_ || total_ <= 0) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  const int width = 30, filled = static_cast<int>(width * done / total_);
  std::string bar(filled, '=');
  if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
  std::fprintf(stderr, "\r%s %lld/%lld [%s] %3d%%  %.2f %s/s  ETA %.0fs ", label_.c_str(), (long long)done,
               (long long)total_, bar.c_str(), static_cast<int>(100 * done / total_), rate, unit_.c_str(), eta);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_) std::fprintf(stderr, "\n");
}

}  // namespace sentinel::cli
