// Pieces shared by the `sentinel` subcommands: model options, loading, input files, a
// progress bar on stderr. Each subcommand lives in its own cmd_*.cpp.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "sentinel/engine/model_loader.h"

namespace sentinel::cli {

struct ModelArgs {
  std::string model;             // empty = the default model from the cache
  std::string dtype = "float32";
  int threads = 0;               // 0 = all cores
};

void add_model_options(CLI::App& app, ModelArgs& args);
// Resolves the path, sets the thread count, loads, and prints one line to stderr.
LoadedModel open_model(const ModelArgs& args, bool quiet = false);

std::string read_text_file(const std::string& path);

// A one-line progress bar on stderr ("ppl  12/40 [=====>     ] 30%  2.1 win/s  ETA 13s"),
// drawn only when stderr is a terminal unless forced.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit);
  void update(int64_t done);
  void finish();

 private:
  std::string label_, unit_;
  int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

// Each subcommand registers itself and returns the function that runs it after parsing.
using Runner = std::function<int()>;
Runner register_generate(CLI::App& app);
Runner register_tokenize(CLI::App& app);
Runner register_ppl(CLI::App& app);
Runner register_info(CLI::App& app);

}  // namespace sentinel::cli
