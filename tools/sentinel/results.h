// Result files of the long-running commands (eval lm, eval gen, bench): JSON lines, one object
// per finished cell, appended and flushed as each cell ends, so a killed run loses at most the
// cell in progress and --resume skips every cell already on file. Each record carries the run's
// environment (machine, instruction sets, threads, dtype, git revision, command line), so a table
// can always say where it came from; `ppl --json` and `generate --json` carry the same object.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sentinel/distributed/process_group.h"

namespace sentinel::cli {

// Where and how a measurement was taken, as the "environment" object of every JSON result:
//   cpu, cores          the CPU model (/proc/cpuinfo) and hardware threads
//   isa                 which of the instruction sets the kernels choose between the CPU has
//                       (avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16,
//                       amx_tile, amx_int8, amx_bf16: true/false, /proc/cpuinfo's names)
//   kernel_isa          the kernel table Sentinel selected at run time (kernels::active_isa)
//   threads, dtype      CPU threads and compute dtype
//   git_revision        short HEAD of the source tree the binary was built from, "+dirty" appended
//                       when tracked files had changes ("unknown" outside a checkout)
//   git_dirty           the same "+dirty" as a boolean
//   command             the exact command line (record_command_line), shell-quoted
//   time                UTC, ISO 8601
nlohmann::json run_environment(const std::string& dtype);

// Records argv for run_environment's "command": main() calls it first thing. The command is one
// string a POSIX shell reads back into the same words: each word as it is when made of
// [A-Za-z0-9@%+=:,./_-] only, otherwise in single quotes (a quote in it as '"'"'), as Python's
// shlex.join writes it.
void record_command_line(int argc, const char* const* argv);

// -o/--out (required) and --resume, as every results-writing command takes them.
void add_results_options(CLI::App& app, std::string& out, bool& resume);

// Under data parallelism (torchrun) every rank reads what is on file, each runs its share of the
// cells left, and rank 0 alone writes: merge() hands it every rank's records, which it appends in
// plan order, so the file holds what a single process would have written.
class ResultsFile {
 public:
  // Opens `path` for appending (rank 0 only under a `group`). An existing file is refused unless
  // `resume` (then its cells count as done); `resume` on a missing file starts a new one.
  ResultsFile(const std::string& path, bool resume, ProcessGroup* group = nullptr);
  // Whether a record with this key (see key_of) is already on file.
  bool done(const std::string& key) const { return done_.contains(key); }
  int64_t n_done() const { return static_cast<int64_t>(done_.size()); }
  // The cells this process runs, as indices into `keys` (the plan's order): those not on file, and
  // under a group every world-th of them from its rank. Remembers the plan order for merge().
  std::vector<size_t> share(const std::vector<std::string>& keys);
  // One finished cell: written (a line, flushed) at once by a single process; held for merge()
  // under a group. `key` marks the cell done.
  void append(const std::string& key, nlohmann::json record);
  // Under a group (every rank calls it): rank 0 appends all ranks' held records in plan order.
  void merge();
  bool writes() const { return group_ == nullptr || group_->is_root(); }
  const std::string& path() const { return path_; }

 private:
  void read_done(const std::string& path);
  void open_for_append();
  void write(const std::string& key, nlohmann::json record);
  std::string path_;
  std::set<std::string> done_;
  std::ofstream out_;
  ProcessGroup* group_ = nullptr;
  std::map<std::string, size_t> plan_position_;     // key -> index in share()'s keys
  std::vector<nlohmann::json> held_;                // [position, key, record] until merge()
};

}  // namespace sentinel::cli
