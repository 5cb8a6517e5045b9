// The CLI on every model family Sentinel runs: the tiny random-weight models of
// tests/data/families (transformers' code, converted and quantized by llama.cpp's own tools), as
// a user of each family would call them: `generate --chat` through the model's own template,
// `ppl` under every compression method, and `train` then `ppl --adapter`. The weights are random,
// so what is checked is that each command does what was asked (token counts, achieved ratios,
// KV bytes by layer type), not the text.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "support/subprocess.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::ProcessResult;
using testing::describe;

struct FamilyCase {
  std::string family, file;
};

void PrintTo(const FamilyCase& c, std::ostream* os) { *os << c.family << "/" << c.file; }

class FamilyCli : public ::testing::TestWithParam<FamilyCase> {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::make_temp_dir("sentinel-family-cli");
    std::string text;
    for (int r = 0; r < 30; ++r) {
      for (int w = 0; w < 30; ++w) text += (w ? " " : "") + std::string(w % 3 ? "the river" : "a stone") + std::to_string((r * 7 + w) % 11);
      text += "\n";
    }
    std::ofstream(path("text.txt")) << text;
  }
  // Plain unlink/rmdir (std::filesystem binds to libtorch's broken exported copies).
  static void TearDownTestSuite() {
    for (const std::string& name : created_) ::unlink(path(name).c_str());
    ::unlink(path("text.txt").c_str());
    ::rmdir(dir_.c_str());
  }
  static std::string path(const std::string& name) { return dir_ + "/" + name; }
  static std::string model() {
    return testing::source_path("tests/data/families/" + GetParam().family + "/" + GetParam().file);
  }
  static ProcessResult sentinel(const std::vector<std::string>& args) {
    return testing::run_process(testing::cli_path(), args);
  }
  static nlohmann::json json_of(const ProcessResult& r) {
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not one JSON object (" << e.what() << ")\n" << describe(r);
      return nlohmann::json::object();
    }
  }
  static inline std::string dir_;
  static inline std::vector<std::string> created_;
};

// The chat prompt is the template's rendering of the conversation, as transformers renders it
// (expected.json, from reference/make_family_fixtures.py), with one BOS: Llama 3's and Gemma's
// templates write it, Qwen's tokenizers add none. So `tokenize --no-bos` of that text counts the
// tokens `generate --chat` feeds.
TEST_P(FamilyCli, ChatGeneratesThroughTheModelsOwnTemplate) {
  std::ifstream in(testing::source_path("tests/data/families/" + GetParam().family + "/expected.json"));
  const nlohmann::json expected = nlohmann::json::parse(in);
  const nlohmann::json* rendering = nullptr;
  for (const auto& r : expected.at("chat_template_renderings"))
    if (r.at("name") == "two_messages") rendering = &r;
  ASSERT_NE(rendering, nullptr);
  const std::string system = rendering->at("messages")[0].at("content"), user = rendering->at("messages")[1].at("content");
  const ProcessResult r = sentinel({"generate", "-m", model(), "--chat", "--system", system, "-p", user, "-n", "6",
                                    "--temperature", "0", "--json", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = json_of(r);
  const ProcessResult tok = sentinel({"tokenize", "-m", model(), "--text", rendering->at("rendered"), "--no-bos", "--json"});
  ASSERT_EQ(tok.exit_code, 0) << describe(tok);
  EXPECT_EQ(out.at("prompt_tokens"), json_of(tok).at("ids").size()) << describe(r);
  EXPECT_GE(out.at("generated_tokens").get<int64_t>(), 1) << describe(r);
}

// Every method reads the text with the budget it was given, and the cache it reports splits into
// the global layers and, on Gemma 3, the sliding-window ones.
TEST_P(FamilyCli, PplUnderEveryCompressionMethodKeepsTheBudget) {
  for (const std::string method : {"none", "sentinel", "local", "scattered", "strided", "streaming", "h2o"}) {
    SCOPED_TRACE(method);
    std::vector<std::string> args = {"ppl", "-m", model(), "-d", path("text.txt"), "--ctx", "128", "--stride", "128",
                                     "--max-tokens", "256", "--json", "-t", "1", "--compress", method};
    if (method != "none") args.insert(args.end(), {"--ratio", "0.5"});
    if (method == "sentinel") args.insert(args.end(), {"--span", "8"});
    const ProcessResult r = sentinel(args);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    const nlohmann::json out = json_of(r);
    EXPECT_TRUE(std::isfinite(out.at("ppl").get<double>())) << describe(r);
    if (method != "none") EXPECT_GT(out.at("achieved_ratio").get<double>(), 0.3) << describe(r);
  }
}

TEST_P(FamilyCli, GenerateReportsKvBytesByLayerType) {
  const ProcessResult r = sentinel({"generate", "-m", model(), "-f", path("text.txt"), "-n", "4", "--json", "-t", "1",
                                    "--compress", "sentinel", "--ratio", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = json_of(r);
  const auto& by_type = out.at("kv_bytes_by_layer_type");
  EXPECT_EQ(by_type.at("global").get<int64_t>() + by_type.at("sliding_window").get<int64_t>(), out.at("kv_bytes"));
  EXPECT_EQ(by_type.at("sliding_window").get<int64_t>() > 0, GetParam().family == "gemma3") << out.dump();
  EXPECT_LT(out.at("kv_entries").get<int64_t>(), out.at("prompt_tokens").get<int64_t>()) << out.dump();
}

// Training reads the family's blocks (dense, from the GGUF) and writes an adapter ppl accepts.
TEST_P(FamilyCli, TrainsAnAdapterThatPplReads) {
  const std::string adapter = GetParam().family + ".st";
  created_.insert(created_.end(), {adapter, adapter + ".checkpoint", adapter + ".log.jsonl"});
  const ProcessResult r = sentinel({"train", path("text.txt"), "-m", model(), "--layout", "blocks", "--block", "48",
                                    "--batch", "2", "--accum", "1", "--steps", "2", "--lr", "1e-3", "--lora-rank", "4",
                                    "--seed", "3", "-t", "1", "-o", path(adapter)});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const ProcessResult ppl = sentinel({"ppl", "-m", model(), "-d", path("text.txt"), "--ctx", "128", "--stride", "128",
                                      "--max-tokens", "256", "--compress", "sentinel", "--ratio", "0.5", "--span", "8",
                                      "--adapter", path(adapter), "--json", "-t", "1"});
  ASSERT_EQ(ppl.exit_code, 0) << describe(ppl);
  EXPECT_TRUE(std::isfinite(json_of(ppl).at("ppl").get<double>())) << describe(ppl);
}

// --chat-template-file replaces the model's template (llama.cpp's option of that name): the chat
// prompt is the file's rendering; a template that does not parse is refused at load, by file name.
TEST(ChatTemplateFile, ReplacesTheModelsTemplateAndBrokenOnesAreRefused) {
  const std::string dir = testing::make_temp_dir("sentinel-chat-template");
  const std::string good = dir + "/plain.jinja", broken = dir + "/broken.jinja";
  std::ofstream(good) << "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                         "{% if add_generation_prompt %}[assistant] {% endif %}";
  std::ofstream(broken) << "{% for m in messages %}{{ m.content }";
  const std::string model = testing::source_path("tests/data/families/qwen2/model.q4_k_m.gguf");  // adds no BOS
  auto sentinel = [](const std::vector<std::string>& args) { return testing::run_process(testing::cli_path(), args); };
  const ProcessResult r = sentinel({"generate", "-m", model, "--chat", "-p", "hello there", "--chat-template-file", good,
                                    "-n", "2", "--json", "-t", "1"});
  const ProcessResult tok = sentinel({"tokenize", "-m", model, "--text", "[user] hello there\n[assistant] ", "--json"});
  const ProcessResult bad = sentinel({"generate", "-m", model, "--chat", "-p", "hi", "--chat-template-file", broken});
  ::unlink(good.c_str());
  ::unlink(broken.c_str());
  ::rmdir(dir.c_str());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_EQ(tok.exit_code, 0) << describe(tok);
  EXPECT_EQ(nlohmann::json::parse(r.out).at("prompt_tokens"), nlohmann::json::parse(tok.out).at("ids").size());
  EXPECT_EQ(bad.exit_code, 1) << describe(bad);
  EXPECT_NE(bad.err.find("broken.jinja"), std::string::npos) << describe(bad);
}

// Speeds count the work they name: decode tok/s is the fed decode steps over their own time (the
// last sampled token is never fed; streaming the text out is not decoding), and ppl's tok/s under
// --kl-divergence leaves out the reference model's passes.
TEST(CliTimings, DecodeAndPplSpeedsCountTheirOwnWork) {
  const std::string model = testing::source_path("tests/data/families/qwen2/model.q4_k_m.gguf");
  auto sentinel = [](const std::vector<std::string>& args) { return testing::run_process(testing::cli_path(), args); };
  const ProcessResult g = sentinel({"generate", "-m", model, "-p", "hello there", "-n", "8", "--ignore-eos", "--json",
                                    "-t", "1"});
  ASSERT_EQ(g.exit_code, 0) << describe(g);
  const nlohmann::json out = nlohmann::json::parse(g.out);
  EXPECT_EQ(out.at("generated_tokens"), 8);
  EXPECT_EQ(out.at("decode_steps"), 7);
  EXPECT_NEAR(out.at("decode_tokens_per_s").get<double>(), 7.0 / out.at("decode_seconds").get<double>(), 1e-6);

  const std::string dir = testing::make_temp_dir("sentinel-timings");
  const std::string text = dir + "/text.txt";
  std::ofstream(text) << std::string(3000, 'a') + " the end\n";
  const ProcessResult p = sentinel({"ppl", "-m", model, "-d", text, "--ctx", "64", "--stride", "64", "--max-tokens", "256",
                                    "--kl-divergence", "--json", "-t", "1"});
  ::unlink(text.c_str());
  ::rmdir(dir.c_str());
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  const nlohmann::json ppl = nlohmann::json::parse(p.out);
  const double own = ppl.at("seconds").get<double>() - ppl.at("reference_seconds").get<double>();
  EXPECT_GT(ppl.at("reference_seconds").get<double>(), 0.0);
  EXPECT_NEAR(ppl.at("tokens_per_s").get<double>(), ppl.at("scored").get<double>() / own, 1e-6 * ppl.at("tokens_per_s").get<double>());
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyCli,
                         ::testing::Values(FamilyCase{"llama3", "model.q4_k_m.gguf"}, FamilyCase{"qwen2", "model.q4_k_m.gguf"},
                                           FamilyCase{"qwen3", "model.q4_k_m.gguf"}, FamilyCase{"gemma3", "model.q4_k_m.gguf"}),
                         [](const auto& info) { return info.param.family; });

}  // namespace
}  // namespace sentinel
