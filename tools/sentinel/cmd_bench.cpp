// `sentinel bench`: the throughput profile (docs/method.md section 8). For each context length x
// method x ratio: prefill a prompt of exactly that many tokens under the policy, then decode
// greedily; prefill and decode tokens/s, per-token decode latency percentiles, the KV bytes held
// and the process's peak resident memory. The first run of each cell is a warm-up and is not
// reported; medians and min-max spreads over --repeats runs are. One JSON line per cell.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "common.h"
#include "eval_grid.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/session.h"

namespace sentinel::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  ModelArgs model;
  std::string data;
  std::vector<int64_t> contexts = {512, 1024, 2048, 4096, 8192};
  GridArgs grid;
  int64_t decode_tokens = 32;
  int64_t repeats = 3;
  int64_t chunk = 512;
  std::string out;
  bool resume = false;
};

// Resident-memory high-water mark of this process (VmHWM), in bytes.
int64_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6)) * 1024;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// Starts a new high-water mark at the current resident size (Linux: clear_refs 5), so each run's
// peak is its own.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct Run {
  double prefill_s = 0, decode_s = 0;
  std::vector<double> step_ms;  // per decoded token
  int64_t kv_bytes = 0, peak_kv_bytes = 0, kv_entries = 0, peak_rss = 0;
  double achieved_ratio = 0;
};

Run run_once(LoadedModel& loaded, const PolicyOptions& policy, std::span<const int32_t> prompt, const BenchArgs& a) {
  reset_peak_rss();
  // The cache starts at its default capacity and doubles as needed, as in generation: a compressing
  // policy never grows it past what it retains (plus one chunk), which is the memory it saves.
  KvCacheOptions cache;
  cache.dtype = loaded.model->dtype();
  cache.device = loaded.model->embed_tokens->weight.device();
  Session session(loaded.model, cache, policy);
  Run run;
  c10::InferenceMode inference;
  auto start = Clock::now();
  at::Tensor logits = session.append(prompt, Logits::Last, a.chunk);  // [n_vocab]
  run.prefill_s = std::chrono::duration<double>(Clock::now() - start).count();
  const auto decode_start = Clock::now();
  for (int64_t i = 0; i < a.decode_tokens; ++i) {
    const auto step = Clock::now();
    const int32_t next = static_cast<int32_t>(logits.argmax().item<int64_t>());
    logits = session.append(std::span<const int32_t>(&next, 1), Logits::Last);
    run.step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - step).count());
  }
  run.decode_s = std::chrono::duration<double>(Clock::now() - decode_start).count();
  const CompressionStats& s = session.stats();
  run.kv_entries = session.cache().size();
  run.peak_kv_bytes = s.peak_bytes;
  run.kv_bytes = s.peak_cells > 0 ? s.peak_bytes / s.peak_cells * run.kv_entries : 0;
  run.achieved_ratio = s.achieved_ratio();
  run.peak_rss = peak_rss_bytes();
  return run;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double at = p * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

// {"median": m, "min": a, "max": b} of a measurement over the repeats.
nlohmann::json spread(const std::vector<double>& v) {
  return {{"median", percentile(v, 0.5)}, {"min", *std::min_element(v.begin(), v.end())},
          {"max", *std::max_element(v.begin(), v.end())}};
}

int run_bench(BenchArgs& a) {
  // ---- validate everything before loading anything ----
  check(!a.contexts.empty(), "--contexts is empty");
  for (int64_t n : a.contexts) check(n >= 2, "--contexts: ", n, " is too short (>= 2 tokens)");
  check(a.decode_tokens >= 1 && a.repeats >= 1, "--decode-tokens and --repeats must be >= 1");
  a.grid.no_bundled_adapter = true;  // a merged adapter runs at the base model's speed: untrained rows suffice
  const std::vector<GridCell> method_cells = plan_grid(a.grid, {"bench"}, a.model.model.empty());
  for (const GridCell& c : method_cells) grid_policy(a.grid, c);
  const std::string text = read_text_file(a.data);

  const nlohmann::json config = {{"data", a.data}, {"decode_tokens", a.decode_tokens}, {"repeats", a.repeats},
                                 {"chunk", a.chunk}, {"span", a.grid.span}, {"sinks", a.grid.sinks},
                                 {"model", a.model.model}, {"dtype", a.model.dtype}, {"threads", a.model.threads}};
  const std::string config_id = sha256_bytes(config.dump()).substr(0, 8);
  ResultsFile results(a.out, a.resume);
  auto key = [&](int64_t n, const GridCell& c) { return cell_key(config_id, c) + "/" + std::to_string(n); };
  const int64_t total = static_cast<int64_t>(a.contexts.size() * method_cells.size());
  int64_t finished = 0;
  for (int64_t n : a.contexts)
    for (const GridCell& c : method_cells) finished += results.done(key(n, c)) ? 1 : 0;
  std::fprintf(stderr, "bench: %lld cells (%lld on file), %lld decode tokens, 1 warm-up + %lld runs each, writing %s\n",
               static_cast<long long>(total), static_cast<long long>(finished),
               static_cast<long long>(a.decode_tokens), static_cast<long long>(a.repeats), a.out.c_str());
  ProgressBar bar("bench", total, "cells", finished);
  nlohmann::json environment;
  for_each_adapter_group(method_cells, [&](const std::string& adapter, const std::vector<GridCell>& group) {
    LoadedModel loaded = open_grid_model(a.model, adapter, /*quiet=*/true);
    if (environment.is_null()) environment = run_environment(dtype_name(loaded.model->dtype()));
    const std::vector<int32_t> ids = loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
    for (int64_t n : a.contexts) {
      check(static_cast<int64_t>(ids.size()) >= n, "--data has ", ids.size(), " tokens, fewer than --contexts ", n);
      const std::span<const int32_t> prompt(ids.data(), n);
      for (const GridCell& c : group) {
        if (results.done(key(n, c))) continue;
        bar.update(finished, describe_cell(c) + " ctx " + std::to_string(n));
        const PolicyOptions policy = cell_policy(a.grid, c, loaded);
        std::vector<Run> runs;
        for (int64_t r = 0; r <= a.repeats; ++r) {
          Run run = run_once(loaded, policy, prompt, a);
          if (r > 0) runs.push_back(std::move(run));  // run 0 warms caches and the allocator up
        }
        std::vector<double> prefill_tps, decode_tps, steps, peak_rss;
        for (const Run& r : runs) {
          prefill_tps.push_back(static_cast<double>(n) / r.prefill_s);
          decode_tps.push_back(static_cast<double>(a.decode_tokens) / r.decode_s);
          steps.insert(steps.end(), r.step_ms.begin(), r.step_ms.end());
          peak_rss.push_back(static_cast<double>(r.peak_rss));
        }
        nlohmann::json record = cell_record(c);
        record.update({{"context", n},
                       {"batch", 1},
                       {"prefill_tokens_per_s", spread(prefill_tps)},
                       {"decode_tokens_per_s", spread(decode_tps)},
                       {"decode_latency_ms", {{"p50", percentile(steps, 0.5)}, {"p90", percentile(steps, 0.9)},
                                              {"p99", percentile(steps, 0.99)}}},
                       {"kv_bytes", runs.back().kv_bytes},
                       {"peak_kv_bytes", runs.back().peak_kv_bytes},
                       {"kv_entries", runs.back().kv_entries},
                       {"achieved_ratio", runs.back().achieved_ratio},
                       {"peak_rss_bytes", spread(peak_rss)},
                       {"config", config},
                       {"model_name", loaded.name},
                       {"environment", environment}});
        results.append(key(n, c), record);
        ++finished;
        bar.update(finished);
      }
    }
  });
  bar.finish();
  return 0;
}

}  // namespace

Runner register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Throughput profile: prefill/decode tokens/s, decode latency percentiles, KV bytes and peak memory over "
               "context length x method x ratio (one JSON line per cell)");
  add_model_options(*cmd, a->model);
  cmd->add_option("-d,--data", a->data, "Text the prompts are cut from (its first N tokens)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--contexts", a->contexts, "Prompt lengths in tokens (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  add_grid_options(*cmd, a->grid);
  cmd->add_option("--decode-tokens", a->decode_tokens, "Tokens decoded after the prompt")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Measured runs per cell, after one warm-up run")->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "Prompt tokens per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
  add_results_options(*cmd, a->out, a->resume);
  return [a] { return run_bench(*a); };
}

}  // namespace sentinel::cli
