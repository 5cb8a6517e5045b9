// `sentinel eval lm`: language-modelling quality over a grid of methods x ratios x settings
// (docs/method.md sections 7-8). Two settings:
//   paper:  the text laid out in fixed blocks with random spans (sentinel) or the baseline's mask,
//           one masked forward pass per block, as the authors evaluate (block_perplexity.h);
//   stream: the text read incrementally in windows by a Session that really evicts, as a user of
//           the policy decodes (compressed_perplexity).
// Each finished cell is one JSON line with the nominal ratio, the achieved ratio and the KV
// entries retained; --resume skips the cells already on file.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "common.h"
#include "eval_grid.h"
#include "distributed_args.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/eval/block_perplexity.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/data.h"

namespace sentinel::cli {
namespace {

struct EvalLmArgs {
  ModelArgs model;
  std::string data;
  GridArgs grid;
  std::vector<std::string> settings = {"paper", "stream"};
  int64_t max_tokens = 16384;
  // paper setting
  int64_t block = 256;
  int64_t batch = 4;
  SpanSamplerOptions spans;
  std::string span_unit = "word";
  std::string rows = "line";
  // stream setting
  int64_t ctx = 1024;
  int64_t stride = 0;  // 0 = ctx (disjoint windows)
  int64_t chunk = 512;
  int64_t h2o_chunk = kAttentionReadChunk;  // h2o evicts between forward passes only: tokens of one chunk see each other in full
  bool kl = true;  // stream: KL divergence from the uncompressed base model per token
  std::string out;
  bool resume = false;
  DistArgs dist;
};

// The options that decide every cell's number: part of each cell's key, so a resumed run with
// other options recomputes rather than mixes.
nlohmann::json run_config(const EvalLmArgs& a) {
  return with_later_grid_options({{"data", a.data},           {"max_tokens", a.max_tokens}, {"block", a.block},
          {"max_span", a.spans.max_length}, {"span_unit", a.span_unit}, {"rows", a.rows},
          {"ctx", a.ctx},             {"stride", a.stride},         {"chunk", a.chunk}, {"h2o_chunk", a.h2o_chunk},
          {"span", a.grid.span},      {"window", a.grid.window},    {"sinks", a.grid.sinks}, {"layout", a.grid.layout}, {"kl", a.kl},
          {"seed", a.grid.seed},      {"model", a.model.model},     {"dtype", a.model.dtype}, {"backend", a.model.backend}, {"kv_dtype", a.model.kv_dtype}}, a.grid);
}

// Tokens per forward pass when reading a window in the stream setting.
int64_t stream_chunk(const EvalLmArgs& a, const GridCell& cell) {
  return reads_attention(grid_policy(a.grid, cell)) ? std::min(a.chunk, a.h2o_chunk) : a.chunk;
}

struct CellResult {
  double ppl = 0, nll = 0, achieved_ratio = 0, kv_entries = 0, seconds = 0;
  int64_t scored = 0;
  double span_ratio = -1;  // paper sentinel: the sampled spans' own ratio
  double kl = -1, top1 = -1;  // stream with a reference: mean KL(base || cell) per token, top-1 agreement
};

CellResult run_paper(const EvalLmArgs& a, const GridCell& cell, LoadedModel& loaded, const std::string& text,
                     const ProgressCallback& progress) {
  const SentinelTokens st = sentinel_tokens(loaded.config);
  SpanSamplerOptions sampler = a.spans;
  sampler.ratio = cell.ratio;
  const bool sentinel = cell.method == Method::Sentinel;
  TrainCorpus corpus = build_corpus(*loaded.tokenizer, text, sentinel ? &sampler : nullptr, a.grid.seed,
                                    parse_row_split(a.rows));
  corpus.truncate(a.max_tokens);
  TrainDataOptions d;
  d.method = cell.method;
  d.ratio = cell.ratio;
  d.block = a.block;
  d.seed = a.grid.seed;
  d.cl_id = st.cl;
  d.cr_id = st.cr;
  const TrainData data(std::move(corpus), d);
  const BlockPerplexityResult r = block_perplexity(loaded.model, data, a.batch, progress);
  CellResult c{r.ppl, r.nll_sum, r.achieved_ratio(), r.mean_entries_visible(), r.seconds, r.n_scored};
  if (sentinel) c.span_ratio = data.corpus().achieved_ratio();
  return c;
}

// `reference`: the base model without adapter (nullptr = no KL). The full cache reads through a
// session too when there is a reference, so that its KL row measures the engine, not a definition.
CellResult run_stream(const EvalLmArgs& a, const GridCell& cell, LoadedModel& loaded, std::span<const int32_t> ids,
                      const ProgressCallback& progress, DecoderModel* reference) {
  const PerplexityOptions window{a.ctx, a.stride > 0 ? a.stride : a.ctx};
  if (cell.method == Method::None && reference == nullptr) {
    const PerplexityResult r = strided_perplexity(loaded.model, ids, window, progress);
    return {r.ppl, r.nll_sum, 0.0, static_cast<double>(r.cells_retained) / r.n_windows, r.seconds, r.n_scored};
  }
  PolicyOptions policy = cell_policy(a.grid, cell, loaded);
  const PerplexityResult r =
      compressed_perplexity(loaded.model, ids, window, policy, stream_chunk(a, cell), progress, reference);
  CellResult c{r.ppl, r.nll_sum, r.achieved_ratio(), static_cast<double>(r.cells_retained) / r.n_windows, r.seconds,
               r.n_scored};
  if (r.has_reference) {
    c.kl = r.mean_kl();
    c.top1 = r.top1_agreement();
  }
  return c;
}

int run_eval_lm(EvalLmArgs& a) {
  // ---- validate everything before loading anything ----
  for (const auto& s : a.settings) check(s == "paper" || s == "stream", "unknown --settings '", s, "'; use paper, stream");
  a.spans.unit = parse_span_unit(a.span_unit);
  a.spans.validate();
  parse_row_split(a.rows);
  check(a.max_tokens >= 2, "--max-tokens must be >= 2, got ", a.max_tokens);
  check(a.block >= 2, "--block must be >= 2, got ", a.block);
  const std::vector<GridCell> all_cells = plan_grid(a.grid, a.settings, a.model.model.empty());
  std::vector<GridCell> cells;
  for (const GridCell& c : all_cells) {
    // No fixed mask, no paper cell: h2o and tova (sentinel's paper cells are random spans whatever its --layout).
    if (c.setting == "paper" && c.method != Method::Sentinel && reads_attention(grid_policy(a.grid, c))) continue;
    if (c.setting == "stream") {
      PolicyOptions p = grid_policy(a.grid, c);
      validate_compressed_perplexity(PerplexityOptions{a.ctx, a.stride > 0 ? a.stride : a.ctx}, p, stream_chunk(a, c));
    }
    cells.push_back(c);
  }
  for (const char* method : {"h2o", "tova"})
    if (std::find(a.grid.methods.begin(), a.grid.methods.end(), method) != a.grid.methods.end() &&
        std::find(a.settings.begin(), a.settings.end(), "paper") != a.settings.end())
      std::fprintf(stderr, "note: %s has no fixed mask, so it is evaluated in the stream setting only\n", method);
  const std::string text = read_text_file(a.data);
  const std::string config_id = sha256_bytes(run_config(a).dump()).substr(0, 8);
  const std::unique_ptr<ProcessGroup> group = join_launched_job(a.dist, /*cuda=*/false);
  ResultsFile results(a.out, a.resume, group.get());
  int64_t n_on_file = 0;
  const std::vector<GridCell> mine = cells_to_run(results, cells, config_id, n_on_file);

  const auto todo = static_cast<int64_t>(mine.size());
  std::fprintf(stderr, "eval lm: %zu cells (%lld on file)%s, writing %s\n", cells.size(),
               static_cast<long long>(n_on_file),
               group ? (", " + group->who() + " runs " + std::to_string(todo)).c_str() : "", a.out.c_str());
  ProgressBar bar("eval lm", todo, "cells");
  int64_t finished = 0;
  nlohmann::json environment;
  // The uncompressed base model every stream cell is compared with, token by token.
  std::optional<LoadedModel> reference;
  const bool any_stream = std::any_of(mine.begin(), mine.end(), [](const GridCell& c) { return c.setting == "stream"; });
  if (a.kl && any_stream) reference.emplace(open_grid_model(a.model, "", "", /*quiet=*/true));
  for_each_adapter_group(mine, [&](const std::string& adapter, const std::vector<GridCell>& pending) {
    LoadedModel loaded = open_grid_model(a.model, adapter, pending.front().adapter_sha256, /*quiet=*/true);
    if (environment.is_null()) {
      environment = run_environment(dtype_name(loaded.model->dtype()));
      environment["engine"] = engine_fields(loaded);
    }
    std::vector<int32_t> ids = loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
    if (static_cast<int64_t>(ids.size()) > a.max_tokens) ids.resize(a.max_tokens);
    for (const GridCell& c : pending) {
      const std::string label = describe_cell(c);
      auto progress = [&](int64_t done, int64_t total) {
        std::ostringstream extra;
        extra << label << " " << done << "/" << total;
        bar.update(finished, extra.str());
      };
      const CellResult r = c.setting == "paper" ? run_paper(a, c, loaded, text, progress)
                                                : run_stream(a, c, loaded, ids, progress,
                                                             reference ? &reference->model : nullptr);
      nlohmann::json record = cell_record(c);
      record.update({{"ppl", r.ppl},
                     {"nll", r.nll},
                     {"scored_tokens", r.scored},
                     {"achieved_ratio", r.achieved_ratio},
                     {"kv_entries_retained", r.kv_entries},
                     {"seconds", r.seconds},
                     {"config", run_config(a)},
                     {"model_name", loaded.name},
                     {"environment", environment}});
      if (r.span_ratio >= 0) record["span_ratio"] = r.span_ratio;
      if (r.kl >= 0) record.update({{"kl", r.kl}, {"top1_agreement", r.top1}});
      if (c.setting == "stream") record["chunk"] = stream_chunk(a, c);
      results.append(cell_key(config_id, c), record);
      ++finished;
      bar.update(finished, label + " ppl " + std::to_string(r.ppl));
    }
  });
  bar.finish();
  results.merge();  // under torchrun: every rank's cells reach rank 0's file, in plan order
  if (results.writes()) print_ppl_table(results.path(), config_id);
  return 0;
}

}  // namespace

CLI::App* register_eval_lm(CLI::App& eval, Runner& runner) {
  auto a = std::make_shared<EvalLmArgs>();
  CLI::App* cmd = eval.add_subcommand(
      "lm", "Perplexity over methods x ratios, in the paper's setting (masked blocks, random spans) and streaming "
            "(incremental compression with eviction); one JSON line per cell");
  add_model_options(*cmd, a->model);
  cmd->add_option("-d,--data", a->data, "Held-out text (e.g. wikitext-2-raw/wiki.test.raw)")
      ->required()
      ->check(CLI::ExistingFile);
  add_grid_options(*cmd, a->grid);
  cmd->add_option("--settings", a->settings, "paper (masked blocks, random spans) and/or stream (incremental, evicting)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens, "Evaluate the first N tokens of the text")->capture_default_str();
  cmd->add_option("--block", a->block, "paper: elements per block, sentinels included")->capture_default_str();
  cmd->add_option("--batch", a->batch, "paper: blocks per forward pass")->capture_default_str();
  cmd->add_option("--max-span", a->spans.max_length, "paper, sentinel: longest random span (lengths uniform in [2, N])")
      ->capture_default_str();
  cmd->add_option("--span-unit", a->span_unit, "paper, sentinel: spans over whitespace words (the authors') or tokens")
      ->check(CLI::IsMember({"word", "token"}))
      ->capture_default_str();
  cmd->add_option("--rows", a->rows, "paper, sentinel: rows spans are sampled in: line or paragraph")
      ->check(CLI::IsMember({"line", "paragraph"}))
      ->capture_default_str();
  cmd->add_option("--ctx", a->ctx, "stream: tokens per window")->capture_default_str();
  cmd->add_option("--stride", a->stride, "stream: tokens between window starts (0 = ctx, disjoint windows)")
      ->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "stream: tokens per forward pass while reading a window")
      ->check(count_at_least(1))
      ->capture_default_str();
  cmd->add_option("--h2o-chunk", a->h2o_chunk,
                  "stream, h2o: tokens per forward pass (h2o evicts between passes, so the tokens of one pass see "
                  "each other uncompressed; 1 = exact decoding, slow)")
      ->check(count_at_least(1))
      ->capture_default_str();
  cmd->add_flag("!--no-kl", a->kl,
                "stream: skip the KL divergence from the uncompressed base model (no adapter, full cache), which "
                "costs one plain pass per window");
  add_results_options(*cmd, a->out, a->resume);
  add_dist_options(*cmd, a->dist);
  cmd->footer("Under torchrun --nproc-per-node N --no-python build/sentinel eval lm ...: the cells are split over the "
              "ranks and rank 0 writes --out, the file one process writes.");
  runner = [a] { return run_eval_lm(*a); };
  return cmd;
}

}  // namespace sentinel::cli
