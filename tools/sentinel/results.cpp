// JSON-lines result files with resume, and the environment recorded with every result.
#include "results.h"

#include <ATen/Parallel.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <thread>

#include "sentinel/core/error.h"

namespace sentinel::cli {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The short hash of the source tree's HEAD, "+dirty" when it has uncommitted changes to tracked
// files; "unknown" outside a git checkout.
std::string git_revision() {
  const std::string dir = SENTINEL_SOURCE_DIR;
  auto run = [](const std::string& command) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    if (!pipe) return std::string();
    std::string out;
    std::array<char, 256> buffer{};
    while (std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) out += buffer.data();
    return trim(out);
  };
  const std::string head = run("git -C '" + dir + "' rev-parse --short HEAD 2>/dev/null");
  if (head.empty()) return "unknown";
  const bool dirty = !run("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty();
  return head + (dirty ? "+dirty" : "");
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("model name")) return trim(line.substr(line.find(':') + 2));
  return "unknown";
}

}  // namespace

nlohmann::json run_environment(const std::string& dtype) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return {{"cpu", cpu_model()},
          {"cores", std::thread::hardware_concurrency()},
          {"threads", at::get_num_threads()},
          {"dtype", dtype},
          {"git_revision", git_revision()},
          {"time", when}};
}

void add_results_options(CLI::App& app, std::string& out, bool& resume) {
  app.add_option("-o,--out", out, "Results file (JSON lines, one per cell)")->required();
  app.add_flag("--resume", resume, "Continue --out: cells already on file are skipped");
}

ResultsFile::ResultsFile(const std::string& path, bool resume) : path_(path) {
  check(resume || !std::filesystem::exists(path), "'", path,
        "' already exists; pass --resume to continue it (finished cells are skipped) or choose another --out");
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
  out_.open(path, std::ios::app);
  check(out_.good(), "cannot write '", path, "'");
  // A partial last line (a killed run) is ended, so the next record starts a line of its own.
  if (std::filesystem::exists(path) && std::filesystem::file_size(path) > 0) {
    std::ifstream last(path, std::ios::binary);
    last.seekg(-1, std::ios::end);
    if (last.get() != '\n') out_ << "\n";
  }
}

void ResultsFile::append(const std::string& key, nlohmann::json record) {
  record["key"] = key;
  out_ << record.dump() << "\n";
  out_.flush();
  check(out_.good(), "writing '", path_, "' failed");
  done_.insert(key);
}

}  // namespace sentinel::cli
