// JSON-lines result files with resume, and the environment recorded with every result.
#include "results.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string_view>
#include <thread>

#include "sentinel/core/error.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel::cli {
namespace {

// The instruction sets the kernels choose between (src/kernels/dispatch.cpp), as /proc/cpuinfo
// names them; bench/common.py (ISA_FLAGS) records the same for the Python benchmarks.
constexpr std::array<const char*, 11> kIsaFlags = {"avx2",     "fma",      "f16c",        "avx512f",
                                                   "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                                                   "amx_tile", "amx_int8", "amx_bf16"};

std::string& recorded_command_line() {
  static std::string command;
  return command;
}

std::string shell_quote(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
  });
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
  return quoted + "'";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct GitRevision {
  std::string head = "unknown";  // short hash of HEAD
  bool dirty = false;            // uncommitted changes to tracked files
};

// The source tree's HEAD; "unknown" (and not dirty) outside a git checkout.
GitRevision git_revision() {
  const std::string dir = SENTINEL_SOURCE_DIR;
  auto run = [](const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    if (!pipe) return std::string();
    std::string out;
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) out += buffer.data();
    return trim(out);
  };
  const std::string quoted_dir = shell_quote(dir);
  const std::string head = run("git -C " + quoted_dir + " rev-parse --short HEAD 2>/dev/null");
  if (head.empty()) return {};
  return {head, !run("git -C " + quoted_dir + " status --porcelain --untracked-files=no 2>/dev/null").empty()};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("model name")) return trim(line.substr(line.find(':') + 2));
  return "unknown";
}

// kIsaFlags -> whether the CPU's "flags" line lists it (all false where there is no /proc/cpuinfo).
nlohmann::json cpu_isa() {
  std::set<std::string> flags;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("flags")) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string word; words >> word;) flags.insert(word);
    break;
  }
  nlohmann::json isa = nlohmann::json::object();
  for (const char* name : kIsaFlags) isa[name] = flags.contains(name);
  return isa;
}

}  // namespace

void record_command_line(int argc, const char* const* argv) {
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i > 0 ? " " : "") + shell_quote(argv[i]);
  recorded_command_line() = command;
}

nlohmann::json run_environment(const std::string& dtype) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const GitRevision git = git_revision();
  return {{"cpu", cpu_model()},
          {"cores", std::thread::hardware_concurrency()},
          {"isa", cpu_isa()},
          {"kernel_isa", kernels::isa_name(kernels::active_isa())},
          {"threads", at::get_num_threads()},
          {"dtype", dtype},
          {"git_revision", git.head + (git.dirty ? "+dirty" : "")},
          {"git_dirty", git.dirty},
          {"command", recorded_command_line()},
          {"time", when}};
}

void add_results_options(CLI::App& app, std::string& out, bool& resume) {
  app.add_option("-o,--out", out, "Results file (JSON lines, one per cell)")->required();
  app.add_flag("--resume", resume, "Continue --out: cells already on file are skipped");
}

ResultsFile::ResultsFile(const std::string& path, bool resume, ProcessGroup* group) : path_(path), group_(group) {
  check(resume || !std::filesystem::exists(path), "'", path,
        "' already exists; pass --resume to continue it (finished cells are skipped) or choose another --out");
  read_done(path);
  if (group_ != nullptr) group_->barrier("reading " + path + " before rank 0 opens it");
  if (!writes()) return;
  open_for_append();
}

void ResultsFile::read_done(const std::string& path) {
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    int64_t line_number = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_number;
      if (line.empty()) continue;
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        // A run killed mid-write leaves a partial last line: that cell is redone.
        continue;
      }
      check(record.contains("key"), "'", path, "' line ", line_number, " is not a Sentinel result (no \"key\")");
      done_.insert(record["key"].get<std::string>());
    }
  }
}

void ResultsFile::open_for_append() {
  const std::string& path = path_;
  out_.open(path, std::ios::app);
  check(out_.good(), "cannot write '", path, "'");
  // A partial last line (a killed run) is ended, so the next record starts a line of its own.
  if (std::filesystem::exists(path) && std::filesystem::file_size(path) > 0) {
    std::ifstream last(path, std::ios::binary);
    last.seekg(-1, std::ios::end);
    if (last.get() != '\n') out_ << "\n";
  }
}

std::vector<size_t> ResultsFile::share(const std::vector<std::string>& keys) {
  std::vector<size_t> mine;
  size_t n_left = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    plan_position_[keys[i]] = i;
    if (done(keys[i])) continue;
    if (group_ == nullptr || static_cast<int>(n_left % static_cast<size_t>(group_->world())) == group_->rank())
      mine.push_back(i);
    ++n_left;
  }
  return mine;
}

void ResultsFile::append(const std::string& key, nlohmann::json record) {
  if (group_ == nullptr) return write(key, std::move(record));
  const auto position = plan_position_.find(key);
  check(position != plan_position_.end(), "results: cell '", key, "' was not in the plan given to share()");
  held_.push_back(nlohmann::json::array({position->second, key, std::move(record)}));
  done_.insert(key);
}

void ResultsFile::merge() {
  if (group_ == nullptr) return;
  const auto parts = group_->gather_to_root(nlohmann::json(held_).dump(), "results of " + path_);
  held_.clear();
  if (!writes()) return;
  std::vector<nlohmann::json> all;
  for (const std::string& part : parts)
    for (auto& item : nlohmann::json::parse(part)) all.push_back(std::move(item));
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a[0].template get<size_t>() < b[0].template get<size_t>(); });
  for (auto& item : all) write(item[1].get<std::string>(), std::move(item[2]));
}

void ResultsFile::write(const std::string& key, nlohmann::json record) {
  record["key"] = key;
  out_ << record.dump() << "\n";
  out_.flush();
  check(out_.good(), "writing '", path_, "' failed");
  done_.insert(key);
}

}  // namespace sentinel::cli
