// `sentinel eval gen`: zero-shot open-ended document generation (docs/method.md section 8). Each
// method x ratio continues the same document prefixes with compressed context; the continuations
// are scored against what really follows: BLEU-4 (sacrebleu), ROUGE-L (rouge-score), MiniLM
// cosine similarity (sentence-transformers), fluency (perplexity under the uncompressed base
// model, given the prefix) and distinct-n. One JSON line per cell, generations included.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "common.h"
#include "eval_grid.h"
#include "distributed_args.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/session.h"
#include "sentinel/eval/documents.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/eval/sentence_encoder.h"
#include "sentinel/metrics/bleu.h"
#include "sentinel/metrics/distinct.h"
#include "sentinel/metrics/rouge.h"

namespace sentinel::cli {
namespace {

struct EvalGenArgs {
  ModelArgs model;
  std::vector<std::string> data;
  GridArgs grid;
  int64_t prefix = 512;
  int64_t new_tokens = 64;
  int64_t per_file = 4;
  int64_t chunk = 512;
  SamplingOptions sampling;  // greedy unless --temperature > 0
  std::string encoder;       // MiniLM folder; "" = the installed one
  std::string out;
  bool resume = false;
  DistArgs dist;
};

nlohmann::json run_config(const EvalGenArgs& a, int64_t n_docs) {
  return with_later_grid_options({{"data", a.data},          {"prefix", a.prefix},       {"new_tokens", a.new_tokens},
          {"docs_per_file", a.per_file}, {"documents", n_docs},  {"chunk", a.chunk},
          {"span", a.grid.span},     {"window", a.grid.window},  {"sinks", a.grid.sinks}, {"layout", a.grid.layout},
          {"seed", a.grid.seed},     {"model", a.model.model},   {"dtype", a.model.dtype}, {"backend", a.model.backend}, {"kv_dtype", a.model.kv_dtype},
          {"sampling", a.sampling.temperature > 0 ? "temperature " + std::to_string(a.sampling.temperature) +
                                                        " top-p " + std::to_string(a.sampling.top_p) + " seed " +
                                                        std::to_string(a.sampling.seed)
                                                  : "greedy"}}, a.grid);
}

struct Generations {
  std::vector<std::string> texts;               // decoded continuations
  std::vector<std::vector<int32_t>> tokens;     // their ids
  double achieved_ratio = 0;                    // mean over documents, at the end of generation
  double kv_entries = 0;                        // mean cells in the cache at the end
  double seconds = 0;
};

Generations generate_all(const EvalGenArgs& a, const GridCell& cell, LoadedModel& loaded,
                         const std::vector<Excerpt>& excerpts, const std::function<void(int64_t)>& progress) {
  const PolicyOptions policy = cell_policy(a.grid, cell, loaded);
  GenerationOptions g;
  g.max_tokens = a.new_tokens;
  g.sampling = a.sampling;
  g.stop_at_eos = false;  // every method writes N tokens, so the scores compare like with like
  g.prefill_chunk = a.chunk;
  Generations out;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < excerpts.size(); ++i) {
    Session session(loaded.model, loaded.model->cache_options(a.prefix + a.new_tokens + 64), policy);
    GenerationResult r = generate(session, *loaded.tokenizer, excerpts[i].prefix, g);
    out.texts.push_back(r.text);
    out.tokens.push_back(r.tokens);
    const CompressionStats& s = session.stats();
    out.achieved_ratio += s.achieved_ratio() / static_cast<double>(excerpts.size());
    out.kv_entries += static_cast<double>(session.cache().size()) / static_cast<double>(excerpts.size());
    progress(static_cast<int64_t>(i) + 1);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

int run_eval_gen(EvalGenArgs& a) {
  // ---- validate everything before loading anything ----
  check(!a.data.empty(), "give at least one --data file");
  check(a.prefix >= 2 && a.new_tokens >= 1, "--prefix must be >= 2 and --new-tokens >= 1");
  a.sampling.validate();
  std::vector<GridCell> cells = plan_grid(a.grid, {"gen"}, a.model.model.empty());
  for (const GridCell& c : cells) grid_policy(a.grid, c);
  const std::string encoder_path = a.encoder.empty() ? minilm_model_path() : a.encoder;

  LoadedModel base = open_model(a.model, /*quiet=*/true);  // the judge of fluency: never adapted
  std::vector<Excerpt> excerpts;
  for (const auto& path : a.data) {
    auto more = make_excerpts(*base.tokenizer, path, read_text_file(path), a.prefix, a.new_tokens, a.per_file);
    excerpts.insert(excerpts.end(), more.begin(), more.end());
  }
  std::vector<std::string> references;
  for (const Excerpt& e : excerpts) references.push_back(base.tokenizer->decode(e.continuation));
  const SentenceEncoder encoder = SentenceEncoder::load(encoder_path);
  const at::Tensor reference_embeddings = encoder.encode(references);  // [D, 384]

  const nlohmann::json config = run_config(a, static_cast<int64_t>(excerpts.size()));
  const std::string config_id = sha256_bytes(config.dump()).substr(0, 8);
  const std::unique_ptr<ProcessGroup> process_group = join_launched_job(a.dist, /*cuda=*/false);
  ResultsFile results(a.out, a.resume, process_group.get());
  int64_t n_on_file = 0;
  const std::vector<GridCell> mine = cells_to_run(results, cells, config_id, n_on_file);
  int64_t finished = 0;
  std::fprintf(stderr, "eval gen: %zu documents x %zu cells (%lld on file)%s, %lld-token prefixes, %lld new tokens, "
               "writing %s\n", excerpts.size(), cells.size(), static_cast<long long>(n_on_file),
               process_group ? (", " + process_group->who() + " runs " + std::to_string(mine.size())).c_str() : "",
               static_cast<long long>(a.prefix), static_cast<long long>(a.new_tokens), a.out.c_str());
  nlohmann::json environment = run_environment(dtype_name(base.model->dtype()));
  environment["engine"] = engine_fields(base);
  ProgressBar bar("eval gen", static_cast<int64_t>(mine.size() * excerpts.size()), "docs");
  for_each_adapter_group(mine, [&](const std::string& adapter, const std::vector<GridCell>& pending) {
    LoadedModel loaded = open_grid_model(a.model, adapter, pending.front().adapter_sha256, /*quiet=*/true);
    for (const GridCell& c : pending) {
      const std::string label = describe_cell(c);
      const int64_t before = finished * static_cast<int64_t>(excerpts.size());
      const Generations gen =
          generate_all(a, c, loaded, excerpts, [&](int64_t done) { bar.update(before + done, label); });
      // Fluency: the uncompressed base model's perplexity of each continuation, given its prefix.
      double nll = 0;
      int64_t n_generated = 0;
      for (size_t i = 0; i < excerpts.size(); ++i) {
        if (gen.tokens[i].empty()) continue;
        nll += continuation_nll(base.model, excerpts[i].prefix, gen.tokens[i]);
        n_generated += static_cast<int64_t>(gen.tokens[i].size());
      }
      const metrics::BleuScore bleu = metrics::corpus_bleu(gen.texts, references);
      const auto rouge = metrics::rouge_l(gen.texts, references);
      const at::Tensor similarity = pairwise_cosine_similarity(encoder.encode(gen.texts), reference_embeddings);  // [D]
      nlohmann::json record = cell_record(c);
      record.update({{"bleu", bleu.score},
                     {"bleu_precisions", bleu.precisions},
                     {"bleu_bp", bleu.bp},
                     {"rouge_l", metrics::mean_rouge(rouge).fmeasure},
                     {"similarity", similarity.mean().item<double>()},
                     {"fluency_ppl", n_generated > 0 ? std::exp(nll / static_cast<double>(n_generated)) : NAN},
                     {"generated_tokens", n_generated},
                     {"achieved_ratio", gen.achieved_ratio},
                     {"kv_entries_retained", gen.kv_entries},
                     {"seconds", gen.seconds},
                     {"config", config},
                     {"model_name", base.name},
                     {"environment", environment}});
      for (int n = 1; n <= 4; ++n)
        record["distinct_" + std::to_string(n)] = metrics::distinct_n_words(gen.texts, n).value;
      nlohmann::json docs = nlohmann::json::array();
      for (size_t i = 0; i < excerpts.size(); ++i)
        docs.push_back({{"source", excerpts[i].source},
                        {"generation", gen.texts[i]},
                        {"similarity", similarity[static_cast<int64_t>(i)].item<double>()},
                        {"rouge_l", rouge[i].fmeasure}});
      record["documents"] = docs;
      results.append(cell_key(config_id, c), record);
      ++finished;
    }
  });
  bar.finish();
  results.merge();  // under torchrun: every rank's cells reach rank 0's file, in plan order
  if (results.writes()) print_gen_table(results.path(), config_id);
  return 0;
}

}  // namespace

CLI::App* register_eval_gen(CLI::App& eval, Runner& runner) {
  auto a = std::make_shared<EvalGenArgs>();
  CLI::App* cmd = eval.add_subcommand(
      "gen", "Open-ended generation: continue document prefixes under each method x ratio and score against the "
             "real continuation (BLEU-4, ROUGE-L, MiniLM similarity, fluency, distinct-n)");
  add_model_options(*cmd, a->model);
  cmd->add_option("-d,--data", a->data,
                  "Documents: WikiText files (split into articles) and/or books (excerpts at even offsets)")
      ->required()
      ->check(CLI::ExistingFile);
  add_grid_options(*cmd, a->grid);
  cmd->add_option("--prefix", a->prefix, "Tokens of document given to the model (BOS included)")->capture_default_str();
  cmd->add_option("--new-tokens", a->new_tokens, "Tokens generated and compared with the real continuation")
      ->capture_default_str();
  cmd->add_option("--docs-per-file", a->per_file, "Excerpts taken from each --data file")->capture_default_str();
  cmd->add_option("--chunk", a->chunk, "Prefix tokens per forward pass")->check(count_at_least(1))->capture_default_str();
  cmd->add_option("--temperature", a->sampling.temperature, "Sampling temperature (0 = greedy, the default)")
      ->capture_default_str();
  cmd->add_option("--top-p", a->sampling.top_p, "Nucleus sampling: keep the smallest set with this probability")
      ->capture_default_str();
  cmd->add_option("--sample-seed", a->sampling.seed, "Seed of sampling")->capture_default_str();
  cmd->add_option("--encoder", a->encoder,
                  "all-MiniLM-L6-v2 folder for the similarity (default: the one scripts/setup.sh installs)");
  add_results_options(*cmd, a->out, a->resume);
  add_dist_options(*cmd, a->dist);
  cmd->footer("Under torchrun --nproc-per-node N --no-python build/sentinel eval gen ...: the cells are split over the "
              "ranks and rank 0 writes --out, the file one process writes.");
  runner = [a] { return run_eval_gen(*a); };
  return cmd;
}

}  // namespace sentinel::cli
