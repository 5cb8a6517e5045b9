// End-to-end test of `sentinel eval recall` on the default model, on a workload of seconds: the
// passkey task at one short context, one JSON line per cell (method, whether each key was
// recalled, the achieved ratio, the run's environment) and --resume running only the cells not on
// file. How well each method recalls at real lengths is docs/training_runs.md's, not this test's.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <map>

#include "support/run_environment.h"
#include "support/subprocess.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::ProcessResult;
using testing::describe;

class EvalRecallCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::default_model();  // fails naming scripts/setup.sh when the model is not installed
    dir_ = testing::make_temp_dir("sentinel-eval-recall");
  }
  static void TearDownTestSuite() {
    ::unlink(path("recall.jsonl").c_str());
    ::rmdir(dir_.c_str());
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  // Two passkeys (at depths 1/4 and 3/4) in 256 tokens; chunks of 64, one thread.
  static std::vector<std::string> recall_args(const std::string& methods) {
    return {"eval", "recall", "--task", "passkey", "--ctx", "256", "--cases", "2", "--methods", methods, "--ratios",
            "0.5", "--chunk", "64", "-t", "1", "-o", path("recall.jsonl")};
  }
  static std::vector<std::string> lines(const std::string& file) {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  static inline std::string dir_;
};

TEST_F(EvalRecallCli, PasskeyRecordsPerMethodAndResumeRunsOnlyNewCells) {
  const std::vector<std::string> args = recall_args("full,local");
  const ProcessResult r = testing::run_process(testing::cli_path(), args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::vector<std::string> first = lines(path("recall.jsonl"));
  ASSERT_EQ(first.size(), 2u) << describe(r);
  std::map<std::string, nlohmann::json> by_method;
  std::vector<std::string> argv = {testing::cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const std::string& line : first) {
    const nlohmann::json row = nlohmann::json::parse(line);
    SCOPED_TRACE(line);
    by_method[row.at("method").get<std::string>()] = row;
    EXPECT_EQ(row.at("task"), "passkey");
    EXPECT_EQ(row.at("ctx"), 256);
    EXPECT_EQ(row.at("cases"), 2);
    const int64_t exact = row.at("exact").get<int64_t>();
    EXPECT_TRUE(exact >= 0 && exact <= 2);
    EXPECT_DOUBLE_EQ(row.at("exact_rate").get<double>(), exact / 2.0);
    EXPECT_TRUE(std::isfinite(row.at("target_ppl").get<double>()) && row.at("target_ppl").get<double>() >= 1.0);
    EXPECT_GT(row.at("mean_distance").get<double>(), 0.0);
    testing::expect_run_environment(row.at("environment"), argv, 1);
  }
  ASSERT_TRUE(by_method.contains("full") && by_method.contains("local")) << first[0] << "\n" << first[1];
  const nlohmann::json& full = by_method["full"];
  EXPECT_EQ(full.at("variant"), "base");
  EXPECT_EQ(full.at("achieved_ratio").get<double>(), 0.0);
  EXPECT_EQ(full.at("exact"), 2) << "with every token cached, both keys are found";
  const nlohmann::json& local = by_method["local"];
  EXPECT_EQ(local.at("ratio").get<double>(), 0.5);
  EXPECT_NEAR(local.at("achieved_ratio").get<double>(), 0.5, 0.05);
  EXPECT_LT(local.at("kv_entries_retained").get<double>(), full.at("kv_entries_retained").get<double>());
  EXPECT_NE(r.out.find("| 256 | full | base |"), std::string::npos) << r.out;

  // The file is not overwritten without --resume ...
  const ProcessResult again = testing::run_process(testing::cli_path(), args);
  EXPECT_EQ(again.exit_code, 1) << describe(again);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  // ... and --resume with a method more runs that cell alone, after the records on file.
  std::vector<std::string> resumed_args = recall_args("full,local,streaming");
  resumed_args.push_back("--resume");
  const ProcessResult resumed = testing::run_process(testing::cli_path(), resumed_args);
  ASSERT_EQ(resumed.exit_code, 0) << describe(resumed);
  EXPECT_NE(resumed.err.find("3 cells (2 on file)"), std::string::npos) << resumed.err;
  const std::vector<std::string> after = lines(path("recall.jsonl"));
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0], first[0]);
  EXPECT_EQ(after[1], first[1]);
  EXPECT_EQ(nlohmann::json::parse(after[2]).at("method"), "streaming");
}

}  // namespace
}  // namespace sentinel
