// `sentinel bench`: the throughput profile (docs/method.md section 8). For each context length x
// batch size x method x ratio: prefill B prompts of exactly that many tokens under the policy
// (each sequence its own cache and policy, advanced together), then decode greedily, one token of
// every sequence per forward pass; prefill and decode tokens/s over the batch, per-step decode
// latency percentiles, the KV bytes held and the process's peak resident memory. The first
// --warmups runs of each cell (default 1) are not reported; medians and min-max spreads over
// --repeats runs are. One JSON line per cell.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

#include "common.h"
#include "eval_grid.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/profile.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/session.h"

namespace sentinel::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  ModelArgs model;
  std::string data;
  std::vector<int64_t> contexts = {512, 1024, 2048, 4096, 8192};
  std::vector<int64_t> batches = {1};
  GridArgs grid;
  int64_t decode_tokens = 32;
  int64_t repeats = 3;
  int64_t warmups = 1;
  int64_t chunk = 512;
  std::string out;
  bool resume = false;
  bool profile = false;
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

// The batch's prompts: `batch` windows of n tokens, disjoint while the text is long enough and
// evenly spread over it otherwise. The first is always the text's first n tokens.
std::vector<std::span<const int32_t>> batch_prompts(const std::vector<int32_t>& ids, int64_t n, int64_t batch) {
  const auto total = static_cast<int64_t>(ids.size());
  const int64_t stride = batch * n <= total ? n : (batch > 1 ? (total - n) / (batch - 1) : 0);
  std::vector<std::span<const int32_t>> prompts;
  for (int64_t b = 0; b < batch; ++b) prompts.emplace_back(ids.data() + b * stride, n);
  return prompts;
}

// Decode steps of one kind (those that fed <CL>/<CR>, and the rest) under --profile: how many,
// their wall times, and the exclusive time of each phase summed over them.
struct StepProfile {
  std::vector<double> step_ms;
  std::array<double, profile::kPhases> phase_ms{};

  void add(double ms, const profile::Totals& before, const profile::Totals& after) {
    step_ms.push_back(ms);
    for (size_t p = 0; p < profile::kPhases; ++p) phase_ms[p] += 1e3 * (after.seconds[p] - before.seconds[p]);
  }
};

struct Run {
  double prefill_s = 0, decode_s = 0;
  std::vector<double> step_ms;  // per decode step (one token of every sequence)
  StepProfile sentinel_steps, plain_steps;  // --profile only
  // Over the whole batch: KV bytes and entries held at the end, the most KV bytes held at once
  // (sum of the sequences' peaks), mean achieved ratio; the process's peak RSS.
  int64_t kv_bytes = 0, peak_kv_bytes = 0, kv_entries = 0, peak_rss = 0;
  double achieved_ratio = 0;
};

Run run_once(LoadedModel& loaded, const PolicyOptions& policy, const std::vector<std::span<const int32_t>>& prompts,
             const BenchArgs& a) {
  reset_peak_rss();
  // The cache starts at its default capacity and doubles as needed, as in generation: a compressing
  // policy never grows it past what it retains (plus one chunk), which is the memory it saves.
  const KvCacheOptions cache = loaded.model->cache_options(KvCacheOptions{}.capacity);
  std::vector<std::unique_ptr<Session>> owned;
  std::vector<Session*> sessions;
  for (size_t b = 0; b < prompts.size(); ++b) {
    owned.push_back(std::make_unique<Session>(loaded.model, cache, policy));
    sessions.push_back(owned.back().get());
  }
  Run run;
  c10::InferenceMode inference;
  auto start = Clock::now();
  std::vector<at::Tensor> logits = append_batch(sessions, prompts, Logits::Last, a.chunk);  // [n_vocab] each
  run.prefill_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<int32_t> next(prompts.size());
  std::vector<std::span<const int32_t>> step_tokens(prompts.size());
  const auto decode_start = Clock::now();
  auto sentinels_fed = [&] {
    int64_t fed = 0;
    for (const Session* session : sessions) fed += session->stats().sentinels_fed;
    return fed;
  };
  profile::reset();
  for (int64_t i = 0; i < a.decode_tokens; ++i) {
    const int64_t fed_before = a.profile ? sentinels_fed() : 0;
    const profile::Totals before = a.profile ? profile::totals() : profile::Totals{};
    const auto step = Clock::now();
    {
      const profile::Scope sampling(profile::Phase::Sampling);
      for (size_t b = 0; b < prompts.size(); ++b) {
        next[b] = static_cast<int32_t>(logits[b].argmax().item<int64_t>());
        step_tokens[b] = std::span<const int32_t>(&next[b], 1);
      }
    }
    logits = append_batch(sessions, step_tokens, Logits::Last);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - step).count();
    run.step_ms.push_back(ms);
    if (a.profile) (sentinels_fed() > fed_before ? run.sentinel_steps : run.plain_steps).add(ms, before, profile::totals());
  }
  run.decode_s = std::chrono::duration<double>(Clock::now() - decode_start).count();
  for (const Session* session : sessions) {
    const CompressionStats& s = session->stats();
    run.kv_entries += session->cache().size();
    run.peak_kv_bytes += s.peak_bytes;
    run.kv_bytes += session->cache().bytes_in_use();
    run.achieved_ratio += s.achieved_ratio() / static_cast<double>(sessions.size());
  }
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

// Per kind of decode step, over the measured runs: steps, wall ms (mean, p50, p99), and each
// phase's mean exclusive ms per step, with what no phase covers as "other".
nlohmann::json profile_record(const std::vector<Run>& runs) {
  nlohmann::json record = nlohmann::json::object();
  for (const auto& [name, member] : {std::pair{"sentinel_steps", &Run::sentinel_steps}, std::pair{"plain_steps", &Run::plain_steps}}) {
    StepProfile all;
    for (const Run& r : runs) {
      const StepProfile& p = r.*member;
      all.step_ms.insert(all.step_ms.end(), p.step_ms.begin(), p.step_ms.end());
      for (size_t i = 0; i < profile::kPhases; ++i) all.phase_ms[i] += p.phase_ms[i];
    }
    if (all.step_ms.empty()) continue;
    const auto steps = static_cast<double>(all.step_ms.size());
    double wall = 0, covered = 0;
    for (double ms : all.step_ms) wall += ms;
    nlohmann::json phases = nlohmann::json::object();
    for (size_t i = 0; i < profile::kPhases; ++i) {
      phases[std::string(profile::phase_name(static_cast<profile::Phase>(i)))] = all.phase_ms[i] / steps;
      covered += all.phase_ms[i];
    }
    phases["other"] = (wall - covered) / steps;
    record[name] = {{"steps", all.step_ms.size()},
                    {"wall_ms", {{"mean", wall / steps}, {"p50", percentile(all.step_ms, 0.5)},
                                 {"p99", percentile(all.step_ms, 0.99)}}},
                    {"phase_ms_per_step", phases}};
  }
  return record;
}

nlohmann::json bench_record(const GridCell& c, int64_t n, int64_t batch, const std::vector<Run>& runs,
                            const BenchArgs& a) {
  std::vector<double> prefill_tps, decode_tps, steps, peak_rss;
  for (const Run& r : runs) {
    prefill_tps.push_back(static_cast<double>(batch * n) / r.prefill_s);
    decode_tps.push_back(static_cast<double>(batch * a.decode_tokens) / r.decode_s);
    steps.insert(steps.end(), r.step_ms.begin(), r.step_ms.end());
    peak_rss.push_back(static_cast<double>(r.peak_rss));
  }
  nlohmann::json record = cell_record(c);
  if (a.profile) record["decode_profile"] = profile_record(runs);
  record.update({{"context", n},
                 {"batch", batch},
                 {"prefill_tokens_per_s", spread(prefill_tps)},
                 {"decode_tokens_per_s", spread(decode_tps)},
                 {"decode_latency_ms", {{"p50", percentile(steps, 0.5)}, {"p90", percentile(steps, 0.9)},
                                        {"p99", percentile(steps, 0.99)}}},
                 {"kv_bytes", runs.back().kv_bytes},
                 {"peak_kv_bytes", runs.back().peak_kv_bytes},
                 {"kv_entries", runs.back().kv_entries},
                 {"achieved_ratio", runs.back().achieved_ratio},
                 {"peak_rss_bytes", spread(peak_rss)}});
  return record;
}

int run_bench(BenchArgs& a) {
  // ---- validate everything before loading anything ----
  check(!a.contexts.empty(), "--contexts is empty");
  for (int64_t n : a.contexts) check(n >= 2, "--contexts: ", n, " is too short (>= 2 tokens)");
  check(!a.batches.empty(), "--batch is empty");
  for (int64_t b : a.batches) check(b >= 1 && b <= 256, "--batch: ", b, " sequences is outside 1..256");
  check(a.decode_tokens >= 1 && a.repeats >= 1, "--decode-tokens and --repeats must be >= 1");
  a.grid.no_bundled_adapter = true;  // a merged adapter runs at the base model's speed: untrained rows suffice
  const std::vector<GridCell> method_cells = plan_grid(a.grid, {"bench"}, a.model.model.empty());
  for (const GridCell& c : method_cells) grid_policy(a.grid, c);
  const std::string text = read_text_file(a.data);

  nlohmann::json config = {{"data", a.data}, {"decode_tokens", a.decode_tokens}, {"repeats", a.repeats},
                           {"chunk", a.chunk}, {"span", a.grid.span}, {"sinks", a.grid.sinks},
                           {"model", a.model.model}, {"dtype", a.model.dtype}, {"backend", a.model.backend},
                           {"kv_dtype", a.model.kv_dtype}, {"threads", a.model.threads}};
  // Only when on, so that files written without it keep their keys (a profiled cell is another cell:
  // --resume does not skip it for an unprofiled one on file).
  if (a.profile) config["profile"] = true;
  if (a.warmups != 1) config["warmups"] = a.warmups;
  profile::set_enabled(a.profile);
  const std::string config_id = sha256_bytes(config.dump()).substr(0, 8);
  ResultsFile results(a.out, a.resume);
  // Batch 1 keeps the key it had before batches existed, so older result files resume (all but
  // their fine-tuned rows, keyed now by the adapter's bytes).
  auto key = [&](int64_t n, int64_t batch, const GridCell& c) {
    return cell_key(config_id, c) + "/" + std::to_string(n) + (batch > 1 ? "/b" + std::to_string(batch) : "");
  };
  const int64_t total = static_cast<int64_t>(a.contexts.size() * a.batches.size() * method_cells.size());
  int64_t finished = 0;
  for (int64_t n : a.contexts)
    for (int64_t batch : a.batches)
      for (const GridCell& c : method_cells) finished += results.done(key(n, batch, c)) ? 1 : 0;
  std::fprintf(stderr, "bench: %lld cells (%lld on file), %lld decode tokens, %lld warm-up + %lld runs each, writing %s\n",
               static_cast<long long>(total), static_cast<long long>(finished), static_cast<long long>(a.decode_tokens),
               static_cast<long long>(a.warmups), static_cast<long long>(a.repeats), a.out.c_str());
  ProgressBar bar("bench", total, "cells", finished);
  nlohmann::json environment;
  for_each_adapter_group(method_cells, [&](const std::string& adapter, const std::vector<GridCell>& group) {
    LoadedModel loaded = open_grid_model(a.model, adapter, group.front().adapter_sha256, /*quiet=*/true);
    if (environment.is_null()) {
      environment = run_environment(dtype_name(loaded.model->dtype()));
      environment["engine"] = engine_fields(loaded);
    }
    const std::vector<int32_t> ids = loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
    for (int64_t n : a.contexts) {
      check(static_cast<int64_t>(ids.size()) >= n, "--data has ", ids.size(), " tokens, fewer than --contexts ", n);
      for (int64_t batch : a.batches) {
        const std::vector<std::span<const int32_t>> prompts = batch_prompts(ids, n, batch);
        for (const GridCell& c : group) {
          if (results.done(key(n, batch, c))) continue;
          bar.update(finished, describe_cell(c) + " ctx " + std::to_string(n) + " x" + std::to_string(batch));
          const PolicyOptions policy = cell_policy(a.grid, c, loaded);
          std::vector<Run> runs;
          for (int64_t r = 0; r < a.warmups + a.repeats; ++r) {
            Run run = run_once(loaded, policy, prompts, a);
            if (r >= a.warmups) runs.push_back(std::move(run));  // warm-ups fill caches and the allocator
          }
          nlohmann::json record = bench_record(c, n, batch, runs, a);
          record.update({{"config", config}, {"model_name", loaded.name}, {"environment", environment}});
          results.append(key(n, batch, c), record);
          ++finished;
          bar.update(finished);
        }
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
               "context length x batch size x method x ratio (one JSON line per cell)");
  add_model_options(*cmd, a->model);
  cmd->add_option("-d,--data", a->data, "Text the prompts are cut from (its first N tokens)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--contexts", a->contexts, "Prompt lengths in tokens (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  add_grid_options(*cmd, a->grid);
  cmd->add_option("--batch", a->batches,
                  "Sequences decoded together, each with its own prompt, cache and policy (comma-separated sizes)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--decode-tokens", a->decode_tokens, "Tokens decoded after the prompt")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Measured runs per cell, after the warm-up runs")->capture_default_str();
  cmd->add_option("--warmups", a->warmups,
                  "Unreported runs per cell before the measured ones (0 where one cell's prefill alone takes minutes, "
                  "as in large batches at long contexts)")
      ->check(count_at_least(0))
      ->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "Prompt tokens per forward pass")->check(count_at_least(1))->capture_default_str();
  cmd->add_flag("--profile", a->profile,
                "Also record where decode time goes: per kind of step (those that feed <CL>/<CR>, the rest), the "
                "mean ms of each phase (matrices, attention, LM head, policy plan, cache, H2O bookkeeping, surprisal, "
                "sampling) under \"decode_profile\"");
  add_results_options(*cmd, a->out, a->resume);
  return [a] { return run_bench(*a); };
}

}  // namespace sentinel::cli
