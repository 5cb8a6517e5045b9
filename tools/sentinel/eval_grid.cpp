// The evaluation grid: methods, ratios, adapters and settings, planned and validated up front.
#include "eval_grid.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/policies/separators.h"

namespace sentinel::cli {
namespace {

Method grid_method(const std::string& name) { return name == "full" ? Method::None : parse_method(name); }

std::string grid_method_name(Method m) { return m == Method::None ? "full" : method_name(m); }

}  // namespace

void add_grid_options(CLI::App& app, GridArgs& args) {
  app.add_option("--methods", args.methods,
                 "Methods to compare: " + joined_method_names("full") + " (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--ratios", args.ratios, "Nominal compression ratios, in (0, 1) (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--adapter", args.adapters,
                 "METHOD=FILE: also evaluate METHOD fine-tuned with this adapter (repeatable). sentinel uses the "
                 "shipped adapter of the default model unless given one");
  app.add_flag("--no-bundled-adapter", args.no_bundled_adapter,
               "Do not add the shipped sentinel adapter (untrained sentinel rows only)");
  add_span_option(app, args.span, args.layout, "sentinel (stream, gen)");
  app.add_option("--window", args.window, "sentinel (stream, gen): most recent tokens never compressed (a floor)")
      ->capture_default_str();
  add_layout_option(app, args.layout, "sentinel (stream, gen)");
  app.add_option("--sinks", args.sinks, "streaming, sepllm, sentinel (stream layout): initial tokens always kept")
      ->capture_default_str();
  add_stride_share_option(app, args.stride_share, default_stride_shares_help());
  add_older_rank_option(app, args.older_rank, default_older_ranks_help());
  app.add_option("--seed", args.seed, "Seed of random spans and scattered patterns")->capture_default_str();
}

nlohmann::json with_later_grid_options(nlohmann::json config, const GridArgs& args) {
  const SpanLayout layout = parse_span_layout(args.layout);
  const double share = resolve_stride_share(args.stride_share, Method::Sentinel);
  if (share > 0) config["stride_share"] = share;
  // "sentinel's rank/h2o's rank", once either is not the attention both had before the option.
  const OlderRank sentinel_rank =
      layout == SpanLayout::Heavy ? resolve_older_rank(args.older_rank, Method::Sentinel, layout) : OlderRank::Attention;
  const OlderRank h2o_rank = resolve_older_rank(args.older_rank, Method::H2O, layout);
  if (sentinel_rank != OlderRank::Attention || h2o_rank != OlderRank::Attention)
    config["older_rank"] = older_rank_name(sentinel_rank) + "/" + older_rank_name(h2o_rank);
  return config;
}

std::vector<GridCell> plan_grid(const GridArgs& args, const std::vector<std::string>& settings, bool default_model) {
  check(!args.methods.empty(), "--methods is empty");
  for (double r : args.ratios) check(r > 0.0 && r < 1.0, "--ratios: ", r, " is not in (0, 1)");
  std::vector<Method> methods;
  for (const auto& name : args.methods) {
    try {
      methods.push_back(grid_method(name));
    } catch (const Error&) {
      fail("--methods: unknown method '", name, "'; use one of: ", joined_method_names("full"));
    }
  }
  const bool compressing = std::any_of(methods.begin(), methods.end(), [](Method m) { return m != Method::None; });
  check(!compressing || !args.ratios.empty(), "--ratios is empty");

  // Fine-tuned variants: METHOD=FILE, plus the shipped sentinel adapter.
  std::vector<std::pair<Method, std::string>> tuned;
  for (const auto& spec : args.adapters) {
    const size_t eq = spec.find('=');
    check(eq != std::string::npos, "--adapter '", spec, "': expected METHOD=FILE, e.g. sentinel=my.adapter");
    const Method m = grid_method(spec.substr(0, eq));
    const std::string file = spec.substr(eq + 1);
    check(m != Method::None && m != Method::H2O && m != Method::Tova && m != Method::SepLLM, "--adapter '", spec,
          "': only trained methods take an adapter");
    check(std::filesystem::exists(file), "--adapter '", spec, "': file '", file, "' does not exist");
    tuned.emplace_back(m, file);
  }
  const bool sentinel_given = std::any_of(tuned.begin(), tuned.end(), [](auto& t) { return t.first == Method::Sentinel; });
  if (default_model && !sentinel_given && !args.no_bundled_adapter && std::find(methods.begin(), methods.end(), Method::Sentinel) != methods.end())
    if (const std::string bundled = bundled_sentinel_adapter_path(parse_span_layout(args.layout)); !bundled.empty())
      tuned.emplace_back(Method::Sentinel, bundled);

  std::vector<GridCell> cells;
  auto add = [&](Method m, const std::string& variant, const std::string& adapter) {
    const std::string digest = adapter.empty() ? "" : sha256_file(adapter);
    for (const auto& setting : settings) {
      if (m == Method::None) {
        cells.push_back(GridCell{setting, m, variant, adapter, 0.0, digest});
        continue;
      }
      for (double r : args.ratios) cells.push_back(GridCell{setting, m, variant, adapter, r, digest});
    }
  };
  for (Method m : methods) add(m, m == Method::None ? "base" : "untrained", "");
  for (const auto& [m, file] : tuned)
    if (std::find(methods.begin(), methods.end(), m) != methods.end()) add(m, "fine-tuned", file);
  return cells;
}

PolicyOptions grid_policy(const GridArgs& args, const GridCell& cell) {
  PolicyOptions p;
  p.method = cell.method;
  p.ratio = cell.ratio;
  p.span = args.span;
  p.window = cell.method == Method::Sentinel ? args.window : 0;
  p.layout = parse_span_layout(args.layout);
  p.sinks = args.sinks;
  p.seed = args.seed;
  // The ranking applies to the rows that keep older tokens by score, not to the grid's other methods.
  if (reads_attention(p)) p.older_rank = resolve_older_rank(args.older_rank, cell.method, p.layout);
  if (cell.method == Method::Sentinel) {
    p.stride_share = resolve_stride_share(args.stride_share, Method::Sentinel);
    p.cl_id = 0;  // placeholders until a model is loaded
    p.cr_id = 1;
  }
  p.validate();
  return p;
}

PolicyOptions cell_policy(const GridArgs& args, const GridCell& cell, const LoadedModel& loaded) {
  PolicyOptions p = grid_policy(args, cell);
  if (cell.method == Method::Sentinel) {
    const SentinelTokens st = sentinel_tokens(loaded.config);
    p.cl_id = st.cl;
    p.cr_id = st.cr;
  }
  if (cell.method == Method::SepLLM) p.separators = separator_ids(*loaded.tokenizer);
  return p;
}

std::string describe_cell(const GridCell& cell) {
  std::ostringstream out;
  out << cell.setting << " " << grid_method_name(cell.method);
  if (cell.method != Method::None) out << " " << cell.variant << " " << cell.ratio;
  return out.str();
}

std::string cell_key(const std::string& config_id, const GridCell& cell) {
  std::ostringstream out;
  out << config_id << "/" << cell.setting << "/" << grid_method_name(cell.method) << "/" << cell.variant << "/"
      << cell.ratio;
  // 64 bits of the digest tell apart every adapter a results file will ever hold.
  if (!cell.adapter_sha256.empty()) out << "/" << cell.adapter_sha256.substr(0, 16);
  return out.str();
}

nlohmann::json cell_record(const GridCell& cell) {
  // The shipped adapter is named by its place in the source tree, not this machine's absolute path.
  std::string adapter = cell.adapter;
  for (SpanLayout layout : {SpanLayout::Stream, SpanLayout::Heavy})
    if (!cell.adapter.empty() && cell.adapter == bundled_sentinel_adapter_path(layout))
      adapter = std::string("adapters/") + bundled_sentinel_adapter(layout);
  return {{"setting", cell.setting}, {"method", grid_method_name(cell.method)}, {"variant", cell.variant},
          {"adapter", adapter}, {"adapter_sha256", cell.adapter_sha256}, {"ratio", cell.ratio}};
}

std::string variant_label(const nlohmann::json& record) {
  const std::string variant = record.at("variant").get<std::string>();
  const std::string digest = record.value("adapter_sha256", "");
  return digest.empty() ? variant : variant + " (" + digest.substr(0, 8) + ")";
}

void for_each_adapter_group(const std::vector<GridCell>& cells,
                            const std::function<void(const std::string&, const std::vector<GridCell>&)>& fn) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<GridCell>> groups;
  for (const GridCell& c : cells) {
    if (!groups.contains(c.adapter)) order.push_back(c.adapter);
    groups[c.adapter].push_back(c);
  }
  for (const auto& adapter : order) fn(adapter, groups[adapter]);
}

std::vector<GridCell> cells_to_run(ResultsFile& results, const std::vector<GridCell>& cells,
                                   const std::string& config_id, int64_t& n_on_file) {
  std::vector<GridCell> ordered;  // what a single process writes, in its order, which a merge must keep
  for_each_adapter_group(cells, [&](const std::string&, const std::vector<GridCell>& group) {
    ordered.insert(ordered.end(), group.begin(), group.end());
  });
  std::vector<std::string> keys;
  n_on_file = 0;
  for (const GridCell& c : ordered) {
    keys.push_back(cell_key(config_id, c));
    n_on_file += results.done(keys.back()) ? 1 : 0;
  }
  std::vector<GridCell> mine;
  for (const size_t i : results.share(keys)) mine.push_back(ordered[i]);
  return mine;
}

LoadedModel open_grid_model(const ModelArgs& model, const std::string& adapter, const std::string& adapter_sha256,
                            bool quiet) {
  LoadedModel loaded = open_model(model, quiet);
  if (!adapter.empty()) {
    // A group can start hours after the plan; a training run finishing in between would have its
    // adapter scored under the digest of the one it replaced.
    check(sha256_file(adapter) == adapter_sha256, "adapter '", adapter,
          "' changed on disk after this run was planned (rewritten by a training run?); run the same command with "
          "--resume to score the file as it is now");
    apply_adapter(loaded.model, loaded.name, load_adapter(adapter));
  }
  if (loaded.model->n_extra_tokens() == 0) install_sentinels(loaded.model);
  return loaded;
}

namespace {

// The records of `path` written under `config_id` (partial lines skipped).
std::vector<nlohmann::json> config_records(const std::string& path, const std::string& config_id) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    try {
      nlohmann::json r = nlohmann::json::parse(line);
      if (r.value("key", "").starts_with(config_id + "/")) records.push_back(std::move(r));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return records;
}

}  // namespace

void print_ppl_table(const std::string& path, const std::string& config_id) {
  std::printf("| setting | method | variant | ratio | achieved | KV entries | ppl | KL |\n");
  std::printf("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const nlohmann::json& r : config_records(path, config_id)) {
    const std::string kl = r.contains("kl") ? std::to_string(r["kl"].get<double>()).substr(0, 6) : "-";
    std::printf("| %s | %s | %s | %.2f | %.3f | %.0f | %.3f | %s |\n", r["setting"].get<std::string>().c_str(),
                r["method"].get<std::string>().c_str(), variant_label(r).c_str(),
                r["ratio"].get<double>(), r["achieved_ratio"].get<double>(), r["kv_entries_retained"].get<double>(),
                r["ppl"].get<double>(), kl.c_str());
  }
}

void print_gen_table(const std::string& path, const std::string& config_id) {
  std::printf("| method | variant | ratio | achieved | BLEU-4 | ROUGE-L | similarity | fluency ppl | distinct-2 |\n");
  std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const nlohmann::json& r : config_records(path, config_id))
    std::printf("| %s | %s | %.2f | %.3f | %.2f | %.4f | %.4f | %.2f | %.3f |\n", r["method"].get<std::string>().c_str(),
                variant_label(r).c_str(), r["ratio"].get<double>(), r["achieved_ratio"].get<double>(),
                r["bleu"].get<double>(), r["rouge_l"].get<double>(), r["similarity"].get<double>(),
                r["fluency_ppl"].get<double>(), r["distinct_2"].get<double>());
}

}  // namespace sentinel::cli
