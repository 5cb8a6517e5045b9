// `sentinel eval recall`: recall beyond the window (eval/recall.h) over methods x ratios x
// context lengths. repeat: perplexity of a passage's recurrence after a gap longer than the raw
// window; passkey: a 5-digit key asked for at the end of filler text. One JSON line per cell.
#include <cstdio>
#include <sstream>

#include "common.h"
#include "eval_grid.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/eval/recall.h"

namespace sentinel::cli {
namespace {

struct EvalRecallArgs {
  ModelArgs model;
  std::string task = "repeat";
  std::string data;
  std::vector<int64_t> ctx = {1024, 2048, 4096};
  int64_t cases = 8;
  int64_t passage = 64;
  int64_t lead = 32;
  int64_t chunk = 256;
  int64_t h2o_chunk = kAttentionReadChunk;
  GridArgs grid;
  std::string out;
  bool resume = false;
};

nlohmann::json run_config(const EvalRecallArgs& a) {
  return with_later_grid_options({{"task", a.task},       {"data", a.data},         {"cases", a.cases},     {"passage", a.passage},
          {"lead", a.lead},       {"chunk", a.chunk},       {"h2o_chunk", a.h2o_chunk}, {"span", a.grid.span},
          {"window", a.grid.window}, {"sinks", a.grid.sinks}, {"layout", a.grid.layout}, {"seed", a.grid.seed},
          {"model", a.model.model}, {"dtype", a.model.dtype}, {"backend", a.model.backend},
          {"kv_dtype", a.model.kv_dtype}}, a.grid);
}

int64_t setting_ctx(const GridCell& c) { return std::stoll(c.setting.substr(c.setting.find('@') + 1)); }

void print_recall_table(const std::string& path, const std::string& config_id) {
  std::printf("| ctx | method | variant | ratio | achieved | target ppl | exact |\n");
  std::printf("| ---: | --- | --- | ---: | ---: | ---: | ---: |\n");
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json r = nlohmann::json::parse(line, nullptr, false);
    if (r.is_discarded() || !r.value("key", "").starts_with(config_id + "/")) continue;
    std::printf("| %lld | %s | %s | %.2f | %.3f | %.3f | %lld/%lld |\n", static_cast<long long>(r["ctx"].get<int64_t>()),
                r["method"].get<std::string>().c_str(), variant_label(r).c_str(),
                r["ratio"].get<double>(), r["achieved_ratio"].get<double>(), r["target_ppl"].get<double>(),
                static_cast<long long>(r["exact"].get<int64_t>()), static_cast<long long>(r["cases"].get<int64_t>()));
  }
}

int run_eval_recall(EvalRecallArgs& a) {
  // ---- validate everything before loading anything ----
  check(a.task == "repeat" || a.task == "passkey", "--task must be repeat or passkey, got '", a.task, "'");
  check(a.task != "repeat" || !a.data.empty(), "--task repeat needs --data FILE (the text passages are cut from)");
  check(a.cases >= 1, "--cases must be >= 1, got ", a.cases);
  check(!a.ctx.empty(), "--ctx is empty");
  std::vector<std::string> settings;
  for (int64_t ctx : a.ctx) {
    check(ctx >= 64, "--ctx ", ctx, " is too short for a recall probe (use >= 64)");
    if (a.task == "repeat")
      check(a.lead + 2 * a.passage < ctx, "--passage ", a.passage, " and --lead ", a.lead, " leave no gap in --ctx ", ctx);
    settings.push_back(a.task + "@" + std::to_string(ctx));
  }
  const std::vector<GridCell> cells = plan_grid(a.grid, settings, a.model.model.empty());
  for (const GridCell& c : cells) grid_policy(a.grid, c);
  const std::string text = a.data.empty() ? "" : read_text_file(a.data);
  const std::string config_id = sha256_bytes(run_config(a).dump()).substr(0, 8);
  ResultsFile results(a.out, a.resume);
  int64_t todo = 0;
  for (const GridCell& c : cells) todo += results.done(cell_key(config_id, c)) ? 0 : 1;
  std::fprintf(stderr, "eval recall (%s): %zu cells (%lld on file), writing %s\n", a.task.c_str(), cells.size(),
               static_cast<long long>(cells.size() - todo), a.out.c_str());
  ProgressBar bar("eval recall", static_cast<int64_t>(cells.size()), "cells", static_cast<int64_t>(cells.size()) - todo);
  int64_t finished = static_cast<int64_t>(cells.size()) - todo;
  nlohmann::json environment;
  for_each_adapter_group(cells, [&](const std::string& adapter, const std::vector<GridCell>& group) {
    std::vector<GridCell> pending;
    for (const GridCell& c : group)
      if (!results.done(cell_key(config_id, c))) pending.push_back(c);
    if (pending.empty()) return;
    LoadedModel loaded = open_grid_model(a.model, adapter, group.front().adapter_sha256, /*quiet=*/true);
    if (environment.is_null()) {
      environment = run_environment(dtype_name(loaded.model->dtype()));
      environment["engine"] = engine_fields(loaded);
    }
    const std::vector<int32_t> ids =
        text.empty() ? std::vector<int32_t>{} : loaded.tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
    for (const GridCell& c : pending) {
      const int64_t ctx = setting_ctx(c);
      const std::vector<RecallCase> cases = a.task == "repeat"
                                                ? repeat_cases(ids, ctx, a.passage, a.lead, a.cases)
                                                : passkey_cases(*loaded.tokenizer, ctx, a.cases, a.grid.seed);
      const PolicyOptions policy = cell_policy(a.grid, c, loaded);
      const int64_t chunk = reads_attention(policy) ? std::min(a.chunk, a.h2o_chunk) : a.chunk;
      const std::string label = describe_cell(c);
      const RecallScore s = score_recall(loaded.model, cases, policy, chunk, [&](int64_t done, int64_t total) {
        std::ostringstream extra;
        extra << label << " " << done << "/" << total;
        bar.update(finished, extra.str());
      });
      int64_t distance = 0;
      for (const RecallCase& rc : cases) distance += rc.distance;
      nlohmann::json record = cell_record(c);
      record.update({{"task", a.task},
                     {"ctx", ctx},
                     {"cases", s.n_cases},
                     {"exact", s.exact},
                     {"exact_rate", s.exact_rate()},
                     {"target_tokens", s.n_target},
                     {"target_nll", s.nll_sum},
                     {"target_ppl", s.ppl()},
                     {"mean_distance", static_cast<double>(distance) / static_cast<double>(cases.size())},
                     {"achieved_ratio", s.achieved_ratio()},
                     {"kv_entries_retained", static_cast<double>(s.cells_retained) / s.n_cases},
                     {"chunk", chunk},
                     {"seconds", s.seconds},
                     {"config", run_config(a)},
                     {"model_name", loaded.name},
                     {"environment", environment}});
      results.append(cell_key(config_id, c), record);
      ++finished;
      bar.update(finished, label + " ppl " + std::to_string(s.ppl()));
    }
  });
  bar.finish();
  print_recall_table(results.path(), config_id);
  return 0;
}

}  // namespace

CLI::App* register_eval_recall(CLI::App& eval, Runner& runner) {
  auto a = std::make_shared<EvalRecallArgs>();
  CLI::App* cmd = eval.add_subcommand(
      "recall", "Recall beyond the window over methods x ratios x context lengths: a passage's recurrence after a "
                "long gap (repeat) or a passkey asked for at the end (passkey); one JSON line per cell");
  add_model_options(*cmd, a->model);
  cmd->add_option("--task", a->task,
                  "repeat: perplexity of a passage recurring after a gap longer than the raw window; passkey: a "
                  "5-digit key stated at some depth of filler text, scored on the key's tokens")
      ->check(CLI::IsMember({"repeat", "passkey"}))
      ->capture_default_str();
  cmd->add_option("-d,--data", a->data, "repeat: text the passages and gaps are cut from (e.g. wiki.test.raw)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ctx", a->ctx, "Context lengths (tokens, comma-separated)")->delimiter(',')->capture_default_str();
  cmd->add_option("--cases", a->cases, "Cases per context length")->capture_default_str();
  cmd->add_option("--passage", a->passage, "repeat: tokens of the passage that recurs")->capture_default_str();
  cmd->add_option("--lead", a->lead, "repeat: tokens of text before the passage (after the sinks)")->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "Tokens per forward pass while reading")
      ->check(count_at_least(1))
      ->capture_default_str();
  cmd->add_option("--h2o-chunk", a->h2o_chunk, "h2o: tokens per forward pass (it evicts between passes only)")
      ->check(count_at_least(1))
      ->capture_default_str();
  add_grid_options(*cmd, a->grid);
  add_results_options(*cmd, a->out, a->resume);
  runner = [a] { return run_eval_recall(*a); };
  return cmd;
}

}  // namespace sentinel::cli
