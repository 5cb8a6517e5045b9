// Result files of the long-running commands (eval lm, eval gen, bench): JSON lines, one object
// per finished cell, appended and flushed as each cell ends, so a killed run loses at most the
// cell in progress and --resume skips every cell already on file. Each record carries the run's
// environment (machine, threads, dtype, git revision), so a table can always say where it came from.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <string>

namespace sentinel::cli {

// Where a measurement was taken: CPU model and cores, threads, compute dtype, git revision of the
// source tree the binary was built from, and the UTC time.
nlohmann::json run_environment(const std::string& dtype);

// -o/--out (required) and --resume, as every results-writing command takes them.
void add_results_options(CLI::App& app, std::string& out, bool& resume);

class ResultsFile {
 public:
  // Opens `path` for appending. An existing file is refused unless `resume` (then its cells count
  // as done); `resume` on a missing file starts a new one.
  ResultsFile(const std::string& path, bool resume);
  // Whether a record with this key (see key_of) is already on file.
  bool done(const std::string& key) const { return done_.contains(key); }
  int64_t n_done() const { return static_cast<int64_t>(done_.size()); }
  // Appends one record (a line) and flushes it; `key` marks the cell done.
  void append(const std::string& key, nlohmann::json record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::set<std::string> done_;
  std::ofstream out_;
};

}  // namespace sentinel::cli
