// End-to-end tests of `sentinel eval lm` on the tiny model (tests/data/tiny/hf): one JSON line per
// cell of the grid with its achieved ratio and KV entries, --resume skipping finished cells (but
// not those of an adapter retrained at the same path), and refusals that name the fix. The numbers
// themselves are checked in unit/model/test_block_perplexity.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <map>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "support/subprocess.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::ProcessResult;
using testing::describe;

class EvalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("sentinel-eval-cli");
    std::string text;
    for (int r = 0; r < 30; ++r) {
      for (int w = 0; w < 36; ++w) text += (w ? " " : "") + std::string(w % 3 ? "the fox" : "a dog") + std::to_string((r * 5 + w) % 13);
      text += "\n";
    }
    std::ofstream(path("text.txt")) << text;
  }
  // Plain unlink/rmdir (std::filesystem binds to libtorch's broken exported copies).
  static void TearDownTestSuite() {
    for (const char* name : {"text.txt", "a.jsonl", "b.jsonl", "d.jsonl", "tiny.adapter", "bench.jsonl", "batch.jsonl", "gen.jsonl"})
      ::unlink(path(name).c_str());
    ::rmdir(dir_.c_str());
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static ProcessResult sentinel(std::vector<std::string> args) { return testing::run_process(testing::cli_path(), args); }
  static std::vector<std::string> eval_args(const std::string& out) {
    return {"eval", "lm", "-m", testing::source_path("tests/data/tiny/hf"), "-d", path("text.txt"), "--methods",
            "full,sentinel,local,scattered,h2o", "--ratios", "0.5", "--max-tokens", "400", "--block", "64", "--ctx",
            "128", "--chunk", "32", "--span", "8", "-t", "1", "-o", path(out)};
  }
  static std::vector<nlohmann::json> records(const std::string& file) {
    std::vector<nlohmann::json> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  static inline std::string dir_;
};

TEST_F(EvalCli, LmWritesOneRecordPerCellWithItsAchievedRatio) {
  const ProcessResult r = sentinel(eval_args("a.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto rows = records(path("a.jsonl"));
  // full, sentinel, local, scattered in both settings; h2o streaming only (no fixed mask).
  ASSERT_EQ(rows.size(), 9u) << describe(r);
  std::map<std::string, nlohmann::json> by_cell;
  for (const auto& row : rows) {
    by_cell[row["setting"].get<std::string>() + "/" + row["method"].get<std::string>()] = row;
    EXPECT_TRUE(std::isfinite(row["ppl"].get<double>()) && row["ppl"].get<double>() > 1.0) << row.dump();
    EXPECT_EQ(row["environment"]["threads"], 1) << row.dump();
    EXPECT_FALSE(row["environment"]["git_revision"].get<std::string>().empty());
  }
  EXPECT_FALSE(by_cell.contains("paper/h2o"));
  EXPECT_EQ(by_cell["paper/full"]["achieved_ratio"], 0.0);
  for (const char* cell : {"paper/local", "paper/scattered", "stream/local", "stream/scattered", "stream/sentinel",
                           "stream/h2o"})
    EXPECT_NEAR(by_cell[cell]["achieved_ratio"].get<double>(), 0.5, 0.12) << cell;
  // The paper setting's random spans measure their own ratio, as training prints it.
  EXPECT_GT(by_cell["paper/sentinel"]["span_ratio"].get<double>(), 0.2);
  EXPECT_LT(by_cell["stream/local"]["kv_entries_retained"].get<double>(),
            by_cell["stream/full"]["kv_entries_retained"].get<double>());
  EXPECT_EQ(by_cell["stream/h2o"]["chunk"], 16);  // h2o reads in small passes, --h2o-chunk
  EXPECT_NE(r.out.find("| paper | sentinel | untrained | 0.50 |"), std::string::npos) << r.out;
}

TEST_F(EvalCli, ResumeSkipsFinishedCellsAndAnExistingFileIsNotOverwritten) {
  auto args = eval_args("b.jsonl");
  args[7] = "full,local";  // --methods
  ASSERT_EQ(sentinel(args).exit_code, 0);
  const auto first = records(path("b.jsonl"));
  ASSERT_EQ(first.size(), 4u);

  const ProcessResult again = sentinel(args);
  EXPECT_EQ(again.exit_code, 1) << describe(again);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;

  // A run killed mid-write leaves a partial line: resume ends it and redoes only what is missing.
  { std::ofstream(path("b.jsonl"), std::ios::app) << "{\"key\": \"trunc"; }
  args[7] = "full,local,scattered";
  args.push_back("--resume");
  const ProcessResult resumed = sentinel(args);
  ASSERT_EQ(resumed.exit_code, 0) << describe(resumed);
  EXPECT_NE(resumed.err.find("6 cells (4 on file)"), std::string::npos) << resumed.err;
  int parsed = 0;
  std::ifstream in(path("b.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("{\"key\": \"trunc")) continue; else parsed += nlohmann::json::parse(line).contains("ppl");
  EXPECT_EQ(parsed, 6);
}

// Adapters are retrained in place: a fine-tuned cell is named by the adapter's bytes, so --resume
// runs it again for new bytes at the old path, and keeps it for the same bytes.
TEST_F(EvalCli, ResumeRunsTheCellsOfARetrainedAdapterAgain) {
  LoadedModel tiny = load_model(testing::source_path("tests/data/tiny/hf"));
  const at::Tensor rows = initial_sentinel_embeddings(tiny.model);  // [2, n_embd]
  auto write_adapter = [&](double scale) {
    save_adapter(path("tiny.adapter"), Adapter{rows * scale, {}, ""}, tiny.model, tiny.name);
    return sha256_file(path("tiny.adapter"));
  };
  auto args = eval_args("d.jsonl");
  args[7] = "sentinel";  // --methods: untrained and fine-tuned, in both settings
  args.insert(args.end(), {"--adapter", "sentinel=" + path("tiny.adapter")});
  auto fine_tuned = [&] {
    std::vector<std::string> digests;
    for (const auto& row : records(path("d.jsonl")))
      if (row["variant"] == "fine-tuned") digests.push_back(row.at("adapter_sha256").get<std::string>());
    return digests;
  };

  const std::string first = write_adapter(1.0);
  ASSERT_EQ(sentinel(args).exit_code, 0);
  EXPECT_EQ(fine_tuned(), (std::vector<std::string>{first, first}));

  args.push_back("--resume");
  ProcessResult r = sentinel(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("4 cells (4 on file)"), std::string::npos) << "same bytes: nothing to run\n" << r.err;

  const std::string second = write_adapter(0.5);
  ASSERT_NE(second, first);
  r = sentinel(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("4 cells (2 on file)"), std::string::npos) << "new bytes: the fine-tuned cells again\n" << r.err;
  EXPECT_EQ(fine_tuned(), (std::vector<std::string>{first, first, second, second}));
  EXPECT_EQ(records(path("d.jsonl")).size(), 6u) << "the untrained cells are not run again";
  // The table tells the two adapters' rows apart by their digests.
  for (const std::string& digest : {first, second})
    EXPECT_NE(r.out.find("| fine-tuned (" + digest.substr(0, 8) + ") | 0.50 |"), std::string::npos) << r.out;
}

TEST_F(EvalCli, BadGridsAreRefusedBeforeLoading) {
  auto args = eval_args("c.jsonl");
  args[7] = "full,lokal";
  ProcessResult r = sentinel(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown method 'lokal'"), std::string::npos) << r.err;
  args[7] = "sentinel";
  args[9] = "1.5";  // --ratios
  r = sentinel(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ratios: 1.5"), std::string::npos) << r.err;
  args[9] = "0.5";
  args.insert(args.end(), {"--adapter", "sentinel"});
  r = sentinel(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("METHOD=FILE"), std::string::npos) << r.err;
  EXPECT_EQ(::access(path("c.jsonl").c_str(), F_OK), -1) << "a refused run must not create its --out";
}

TEST_F(EvalCli, BenchProfilesEveryContextAndMethodWithMediansAndMemory) {
  const ProcessResult r = sentinel({"bench", "-m", testing::source_path("tests/data/tiny/hf"), "-d", path("text.txt"),
                                    "--contexts", "64,200", "--methods", "full,local,sentinel", "--ratios", "0.5",
                                    "--span", "8", "--decode-tokens", "4", "--repeats", "2", "-t", "1", "-o",
                                    path("bench.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto rows = records(path("bench.jsonl"));
  ASSERT_EQ(rows.size(), 6u);  // 2 contexts x (full, local, sentinel untrained): no adapter rows
  std::map<std::string, nlohmann::json> by_cell;
  for (const auto& row : rows) {
    by_cell[row["method"].get<std::string>() + "/" + std::to_string(row["context"].get<int64_t>())] = row;
    for (const char* measure : {"prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_bytes"}) {
      EXPECT_GT(row[measure]["median"].get<double>(), 0.0) << measure << " " << row.dump();
      EXPECT_LE(row[measure]["min"].get<double>(), row[measure]["median"].get<double>()) << measure;
      EXPECT_GE(row[measure]["max"].get<double>(), row[measure]["median"].get<double>()) << measure;
    }
    EXPECT_LE(row["decode_latency_ms"]["p50"].get<double>(), row["decode_latency_ms"]["p99"].get<double>());
    EXPECT_EQ(row["batch"], 1);
  }
  EXPECT_EQ(by_cell["full/200"]["kv_entries"], 204);  // prompt + decoded tokens, nothing evicted
  EXPECT_NEAR(by_cell["local/200"]["kv_entries"].get<double>(), 102, 2);
  EXPECT_LT(by_cell["local/200"]["kv_bytes"].get<int64_t>(), by_cell["full/200"]["kv_bytes"].get<int64_t>() * 0.6);
  EXPECT_NEAR(by_cell["sentinel/200"]["achieved_ratio"].get<double>(), 0.5, 0.15);
}

// --profile splits the decode steps into those that fed <CL>/<CR> and the rest, and its phases
// (exclusive times) never add up to more than the steps' wall time.
TEST_F(EvalCli, BenchProfileSplitsSentinelStepsFromPlainOnes) {
  const ProcessResult r = sentinel({"bench", "-m", testing::source_path("tests/data/tiny/hf"), "-d", path("text.txt"),
                                    "--contexts", "64", "--methods", "full,sentinel", "--ratios", "0.5", "--span", "8",
                                    "--decode-tokens", "24", "--repeats", "1", "-t", "1", "--profile", "-o",
                                    path("profile.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const auto& row : records(path("profile.jsonl"))) {
    const bool compressed = row["method"] == "sentinel";
    const nlohmann::json& profile = row.at("decode_profile");
    ASSERT_EQ(profile.contains("sentinel_steps"), compressed) << profile.dump();
    int64_t steps = 0;
    for (const auto& [kind, p] : profile.items()) {
      steps += p["steps"].get<int64_t>();
      double covered = 0;
      for (const auto& [phase, ms] : p["phase_ms_per_step"].items())
        if (phase != "other") {
          EXPECT_GE(ms.get<double>(), 0.0) << kind << " " << phase;
          covered += ms.get<double>();
        }
      EXPECT_LE(covered, p["wall_ms"]["mean"].get<double>() * 1.001) << kind << " " << p.dump();
      EXPECT_GT(p["phase_ms_per_step"]["plan"].get<double>(), 0.0) << kind;
      if (kind == "sentinel_steps") EXPECT_GT(p["phase_ms_per_step"]["cache"].get<double>(), 0.0) << p.dump();
    }
    EXPECT_EQ(steps, 24) << profile.dump();
  }
}

TEST_F(EvalCli, BenchDecodesBatchesOfSequencesTogether) {
  std::vector<std::string> args = {"bench", "-m", testing::source_path("tests/data/tiny/hf"), "-d", path("text.txt"),
                                   "--contexts", "64", "--batch", "1,3", "--methods", "full,streaming", "--ratios",
                                   "0.5", "--decode-tokens", "4", "--repeats", "1", "--warmups", "0", "-t", "1",
                                   "-o", path("batch.jsonl")};
  ProcessResult r = sentinel(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("0 warm-up + 1 runs each"), std::string::npos) << r.err;
  const auto rows = records(path("batch.jsonl"));
  ASSERT_EQ(rows.size(), 4u);  // 2 batch sizes x (full, streaming)
  for (const auto& row : rows) EXPECT_EQ(row["config"]["warmups"], 0) << "a cell's config names its warm-ups";
  std::map<std::string, nlohmann::json> by_cell;
  for (const auto& row : rows)
    by_cell[row["method"].get<std::string>() + "/" + std::to_string(row["batch"].get<int64_t>())] = row;
  // Every sequence of a batch holds its own cache: KV entries and bytes add up over the batch.
  EXPECT_EQ(by_cell["full/1"]["kv_entries"], 68);
  EXPECT_EQ(by_cell["full/3"]["kv_entries"], 3 * 68);
  EXPECT_EQ(by_cell["full/3"]["kv_bytes"].get<int64_t>(), 3 * by_cell["full/1"]["kv_bytes"].get<int64_t>());
  EXPECT_EQ(by_cell["streaming/3"]["kv_entries"], 3 * by_cell["streaming/1"]["kv_entries"].get<int64_t>());
  EXPECT_NEAR(by_cell["streaming/3"]["achieved_ratio"].get<double>(), 0.5, 0.05);

  args[8] = "0";  // --batch 0
  args.back() = path("refused.jsonl");
  r = sentinel(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--batch: 0"), std::string::npos) << r.err;
  EXPECT_EQ(::access(path("refused.jsonl").c_str(), F_OK), -1) << "a refused run must not create its --out";
}

// Generation scoring on the tiny model (its text is noise; the scores' plumbing is what is checked
// here, the metrics themselves against sacrebleu, rouge-score and sentence-transformers elsewhere).
TEST_F(EvalCli, GenScoresEveryCellAndKeepsItsGenerations) {
  const ProcessResult r = sentinel({"eval", "gen", "-m", testing::source_path("tests/data/tiny/hf"), "-d",
                                    testing::shared_data_path("wikitext-2-raw/wiki.test.raw"), "--docs-per-file", "3",
                                    "--prefix", "48", "--new-tokens", "12", "--methods", "full,sentinel,local",
                                    "--ratios", "0.5", "--span", "8", "-t", "1", "-o", path("gen.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto rows = records(path("gen.jsonl"));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& row : rows) {
    ASSERT_EQ(row["documents"].size(), 3u) << row.dump();
    double rouge = 0;
    for (const auto& doc : row["documents"]) {
      rouge += doc["rouge_l"].get<double>() / 3;
      EXPECT_NE(doc["source"].get<std::string>().find("#article "), std::string::npos);
      EXPECT_LE(std::abs(doc["similarity"].get<double>()), 1.0 + 1e-6);
    }
    EXPECT_NEAR(row["rouge_l"].get<double>(), rouge, 1e-9);  // the cell's ROUGE-L is the mean over documents
    EXPECT_EQ(row["generated_tokens"], 36);                    // every method writes N tokens per document
    EXPECT_TRUE(std::isfinite(row["fluency_ppl"].get<double>()));
    for (const char* d : {"distinct_1", "distinct_2", "distinct_3", "distinct_4"}) {
      EXPECT_GE(row[d].get<double>(), 0.0);
      EXPECT_LE(row[d].get<double>(), 1.0);
    }
    EXPECT_GE(row["bleu"].get<double>(), 0.0);
  }
  EXPECT_EQ(rows[0]["method"], "full");
  EXPECT_EQ(rows[0]["achieved_ratio"], 0.0);
  EXPECT_GT(rows[2]["achieved_ratio"].get<double>(), 0.3);
}

}  // namespace
}  // namespace sentinel
