// End-to-end tests of `sentinel train` on the tiny model (tests/data/tiny/hf): every option in
// --help, a run that writes an adapter usable by `ppl --adapter`, the JSON-lines log, a run stopped
// as Ctrl-C stops it and resumed with --resume giving the uninterrupted losses, and refusals.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "support/subprocess.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::ProcessResult;
using testing::describe;

class TrainCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("sentinel-train-cli");
    std::string text;
    for (int r = 0; r < 40; ++r) {
      for (int w = 0; w < 35; ++w) text += (w ? " " : "") + std::string(w % 4 ? "the fox" : "a dog") + std::to_string((r + w) % 9);
      text += "\n";
    }
    std::ofstream(path("train.txt")) << text;
    std::ofstream(path("val.txt")) << text.substr(0, 4000);
  }
  // Plain unlink/rmdir (std::filesystem binds to libtorch's broken exported copies).
  static void TearDownTestSuite() {
    for (const char* name : {"train.txt", "val.txt", "a.st", "a.st.checkpoint", "a.st.log.jsonl", "b.st",
                             "b.st.checkpoint", "b.st.log.jsonl", "c.st", "c.st.checkpoint", "c.st.log.jsonl", "d.st",
                             "d.st.checkpoint", "d.st.log.jsonl", "e.st", "e.st.checkpoint", "e.st.log.jsonl",
                             "f.st", "f.st.checkpoint", "f.st.log.jsonl", "g.st", "g.st.checkpoint", "g.st.log.jsonl"})
      ::unlink(path(name).c_str());
    ::rmdir(dir_.c_str());
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static ProcessResult sentinel(std::vector<std::string> args) { return testing::run_process(testing::cli_path(), args); }
  static std::vector<std::string> train_args(const std::string& out) {
    return {"train", path("train.txt"), "-m", testing::source_path("tests/data/tiny/hf"), "--layout", "blocks", "--block", "48", "--batch", "2",
            "--accum", "2", "--steps", "6", "--lr", "2e-3", "--warmup", "1", "--lora-rank", "4", "--lora-alpha", "8",
            "--seed", "5", "-t", "1", "-o", path(out)};
  }
  // The log's records that carry `field` ("loss" and "kl": updates; "val_ppl": validations).
  static std::vector<nlohmann::json> records(const std::string& log, const std::string& field) {
    std::vector<nlohmann::json> out;
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.contains(field)) out.push_back(std::move(j));
    }
    return out;
  }
  static std::vector<double> losses(const std::string& log) {
    std::vector<double> out;
    for (const auto& j : records(log, "loss")) out.push_back(j["loss"].get<double>());
    return out;
  }
  static inline std::string dir_;
};

TEST_F(TrainCli, HelpExplainsEveryOption) {
  const ProcessResult r = sentinel({"train", "--help"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const char* option : {"--method", "--ratio", "--max-span", "--span-unit", "--block", "--batch", "--accum", "--lr",
                             "--warmup", "--schedule", "--steps", "--epochs", "--lora-rank", "--lora-alpha",
                             "--lora-dropout", "--lora-targets", "--full", "--dtype", "--val-data", "--val-every",
                             "--save-every", "--out", "--resume", "--seed", "--layout", "--seq-len", "--ratio-range",
                             "--span-range", "--sinks", "--distill", "--sentinel-lr", "--init-adapter", "--copy-rate",
                             "--copy-len"})
    EXPECT_NE(r.out.find(option), std::string::npos) << option << " missing from --help";
}

TEST_F(TrainCli, TrainsAnAdapterThatPplAcceptsAndLogsEveryUpdate) {
  auto args = train_args("a.st");
  args.insert(args.end(), {"--val-data", path("val.txt"), "--val-every", "3", "--val-ctx", "64", "--val-tokens", "256"});
  const ProcessResult r = sentinel(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("compression ratio: nominal 0.500, achieved"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("validation ppl"), std::string::npos) << describe(r);
  EXPECT_EQ(losses(path("a.st.log.jsonl")).size(), 6u);
  const auto validations = records(path("a.st.log.jsonl"), "val_ppl");
  EXPECT_EQ(validations.size(), 2u) << "--val-every 3 over 6 updates";
  for (const auto& j : validations) EXPECT_EQ(j["val_span"], 16) << "without --val-span, inference's default: " << j;
  const Adapter adapter = load_adapter(path("a.st"));
  EXPECT_EQ(adapter.metadata.at("method"), "sentinel");
  EXPECT_EQ(adapter.metadata.at("steps"), "6");
  EXPECT_EQ(adapter.lora_rank, 4);
  EXPECT_TRUE(adapter.lora.count("base_model.model.model.layers.1.self_attn.o_proj.lora_B.weight"));
  const ProcessResult ppl = sentinel({"ppl", "-m", testing::source_path("tests/data/tiny/hf"), "--data", path("val.txt"),
                                      "--ctx", "64", "--stride", "64", "--compress", "sentinel", "--ratio", "0.5",
                                      "--span", "8", "--adapter", path("a.st"), "--json"});
  ASSERT_EQ(ppl.exit_code, 0) << describe(ppl);
  EXPECT_NE(ppl.out.find("\"ppl\""), std::string::npos) << describe(ppl);
}

// The inference schedule with distillation: every update logs its KL from the base model, the
// adapter records the layout, and a second run continues from it (--init-adapter).
TEST_F(TrainCli, StreamLayoutWithDistillationAndContinuedTraining) {
  auto stream_args = [&](const std::string& out) {
    auto args = train_args(out);
    *(std::find(args.begin(), args.end(), "--layout") + 1) = "stream";
    args.insert(args.end(), {"--seq-len", "64", "--span-range", "4:8", "--sinks", "2", "--distill", "0.5",
                             "--sentinel-lr", "5e-3"});
    return args;
  };
  const ProcessResult r = sentinel(stream_args("d.st"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("read with the inference schedule"), std::string::npos) << describe(r);
  std::ifstream log(path("d.st.log.jsonl"));
  int updates = 0;
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("kl")) continue;
    ++updates;
    EXPECT_GT(j["kl"].get<double>(), 0.0) << line;
    EXPECT_NEAR(j["loss"].get<double>(), 0.5 * j["ce"].get<double>() + 0.5 * j["kl"].get<double>(), 1e-4) << line;
  }
  EXPECT_EQ(updates, 6);
  const Adapter adapter = load_adapter(path("d.st"));
  EXPECT_EQ(adapter.metadata.at("layout"), "stream");
  EXPECT_EQ(adapter.metadata.at("distill"), "0.500000");

  auto continued = stream_args("e.st");
  continued.insert(continued.end(), {"--init-adapter", path("d.st")});
  *(std::find(continued.begin(), continued.end(), "--steps") + 1) = "1";
  const ProcessResult again = sentinel(continued);
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_NE(again.err.find("starting from"), std::string::npos) << describe(again);

  // The same start, LoRA at the sentinels only: recorded in the adapter, which then loads unmerged.
  auto gated = continued;
  *std::find(gated.begin(), gated.end(), path("e.st")) = path("f.st");
  gated.insert(gated.end(), {"--lora-positions", "sentinels"});
  const ProcessResult at_sentinels = sentinel(gated);
  ASSERT_EQ(at_sentinels.exit_code, 0) << describe(at_sentinels);
  EXPECT_EQ(load_adapter(path("f.st")).lora_positions, LoraPositions::Sentinels);
  EXPECT_EQ(load_adapter(path("e.st")).lora_positions, LoraPositions::All);
}

// The heavy layout evicts by attention: each sequence is read by the model in training, trained on
// as its replay, validated as ppl reads it; the adapter records the layout and ppl uses it.
TEST_F(TrainCli, HeavyLayoutTrainsOnItsOwnSchedule) {
  auto args = train_args("g.st");
  *(std::find(args.begin(), args.end(), "--layout") + 1) = "heavy";
  args.insert(args.end(), {"--seq-len", "64", "--span-range", "4:8", "--sinks", "2", "--distill", "1",
                           "--lora-positions", "sentinels", "--val-data", path("val.txt"), "--val-every", "3",
                           "--val-ctx", "64", "--val-span", "4", "--val-tokens", "256"});
  args.insert(args.end(), {"--copy-rate", "0.5", "--copy-len", "8"});  // recurrences, recorded in the adapter
  const ProcessResult r = sentinel(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("layout heavy"), std::string::npos) << "validation reads with the heavy layout: " << describe(r);
  EXPECT_NE(r.err.find("50% of the sequences end with 8 tokens copied"), std::string::npos) << describe(r);
  std::ifstream log(path("g.st.log.jsonl"));
  int updates = 0, validations = 0;
  for (std::string line; std::getline(log, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("val_ppl")) {
      ++validations;
      EXPECT_DOUBLE_EQ(j["val_achieved_ratio"].get<double>(), 0.5) << "heavy keeps exactly the budget: " << line;
      EXPECT_EQ(j["val_span"], 4) << "--val-span as given: " << line;
    }
    if (!j.contains("kl")) continue;
    ++updates;
    EXPECT_NEAR(j["loss"].get<double>(), j["kl"].get<double>(), 1e-6) << "--distill 1 is the KL alone: " << line;
  }
  EXPECT_EQ(updates, 6);
  EXPECT_EQ(validations, 2);
  EXPECT_EQ(load_adapter(path("g.st")).metadata.at("layout"), "heavy");
  EXPECT_EQ(load_adapter(path("g.st")).metadata.at("copy_rate"), "0.500000");

  const ProcessResult ppl = sentinel({"ppl", "-m", testing::source_path("tests/data/tiny/hf"), "--data",
                                      path("val.txt"), "--ctx", "64", "--stride", "64", "--compress", "sentinel", "--layout", "heavy",
                                      "--ratio", "0.5", "--span", "4", "--sinks", "2", "--adapter", path("g.st"),
                                      "--json", "-t", "1"});
  ASSERT_EQ(ppl.exit_code, 0) << describe(ppl);
  const auto j = nlohmann::json::parse(ppl.out);
  EXPECT_EQ(j["layout"], "heavy");
  EXPECT_EQ(j["chunk"], 16) << "without --chunk, ppl reads heavy 16 tokens per pass, as eval lm and training do";
  EXPECT_GT(j["ppl"].get<double>(), 1.0);
}

TEST_F(TrainCli, StoppedAndResumedGivesTheUninterruptedLosses) {
  ASSERT_EQ(sentinel(train_args("b.st")).exit_code, 0);
  const auto expected = losses(path("b.st.log.jsonl"));
  auto first = train_args("c.st");
  first.insert(first.end(), {"--stop-after", "2"});
  const ProcessResult stopped = sentinel(first);
  ASSERT_EQ(stopped.exit_code, 130) << describe(stopped);
  EXPECT_NE(stopped.err.find("--resume"), std::string::npos) << describe(stopped);
  auto second = train_args("c.st");
  second.push_back("--resume");
  const ProcessResult resumed = sentinel(second);
  ASSERT_EQ(resumed.exit_code, 0) << describe(resumed);
  EXPECT_EQ(losses(path("c.st.log.jsonl")), expected);

  auto changed = train_args("c.st");
  *(std::find(changed.begin(), changed.end(), "--lr") + 1) = "3e-3";
  changed.push_back("--resume");
  const ProcessResult refused = sentinel(changed);
  EXPECT_EQ(refused.exit_code, 1) << describe(refused);
  EXPECT_NE(refused.err.find("option 'lr'"), std::string::npos) << describe(refused);
}

TEST_F(TrainCli, BadRequestsAreRefusedBeforeLoading) {
  for (const auto& [extra, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--method", "h2o"}, "--method h2o"},
           {{"--lora-targets", "q_proj,wq"}, "wq"},
           {{"--max-span", "1"}, "--max-span"},
           {{"--val-every", "5"}, "--val-data"},
           {{"--val-span", "-1"}, "--val-span must be >= 0"},
           {{"--distill", "0.5"}, "--layout stream"},
           {{"heavy", "--method", "local"}, "--layout heavy schedules sentinel spans"},
           {{"stream", "--ratio-range", "0.9:0.2"}, "--ratio-range"},
           {{"stream", "--seq-len", "8"}, "--seq-len"},
           {{"stream", "--span-range", "a:b"}, "LO:HI"},
           {{"stream", "--copy-rate", "2"}, "--copy-rate must be in [0, 1]"},
           {{"stream", "--copy-rate", "0.5", "--copy-len", "4096"}, "--copy-len 4096"},
           {{"--copy-rate", "0.5"}, "use --layout stream or heavy"},
           {{"--lora-positions", "sentinels", "--method", "local"}, "--lora-positions sentinels needs --method sentinel"},
           {{"--lora-positions", "sentinels", "--peft-dir", "never.peft"}, "peft applies LoRA at every token"},
           {{"--lora-positions", "sentinels", "--full"}, "--full trains every weight"}}) {
    auto args = train_args("never.st");
    auto tail = extra.begin();
    if (*tail == "stream" || *tail == "heavy")
      *(std::find(args.begin(), args.end(), "--layout") + 1) = *tail++;  // the layout under test
    args.insert(args.end(), tail, extra.end());
    const ProcessResult r = sentinel(args);
    EXPECT_EQ(r.exit_code, 1) << describe(r);
    EXPECT_NE(r.err.find(needle), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("loaded"), std::string::npos) << "validated only after loading: " << describe(r);
  }
}

}  // namespace
}  // namespace sentinel
