// End-to-end tests of the built `sentinel` executable, run as a child process on the default
// model: each subcommand's output against the library (and the greedy fixture), the exit-code
// convention of tools/sentinel/main.cpp (0 ok, 2 usage error, 1 runtime error, one line on
// stderr), and --help everywhere. Not a test of the library itself (see parity/model/).
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <span>

#include "sentinel/core/sha256.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "support/run_environment.h"
#include "support/subprocess.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::ProcessResult;
using testing::describe;
using testing::split_lines;

class SentinelCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = std::make_unique<LoadedModel>(load_model(testing::default_model()));
    temp_dir_ = testing::make_temp_dir("sentinel-cli");
  }
  // Plain unlink/rmdir: std::filesystem calls here would bind to the copies that libtorch.so
  // exports, which crash (remove_all jumps to a null pointer).
  static void TearDownTestSuite() {
    model_.reset();
    for (const auto& path : temp_files_) ::unlink(path.c_str());
    ::rmdir(temp_dir_.c_str());
  }

  static ProcessResult sentinel(const std::vector<std::string>& args) {
    return testing::run_process(testing::cli_path(), args);
  }
  static nlohmann::json parse_json(const ProcessResult& r) {
    try {
      return nlohmann::json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not one JSON object (" << e.what() << ")\n" << describe(r);
      return nlohmann::json::object();
    }
  }
  static std::string write_temp_file(const std::string& name, const std::string& bytes) {
    const std::string path = temp_path(name);
    std::ofstream(path, std::ios::binary) << bytes;
    temp_files_.push_back(path);
    return path;
  }
  // Both sides use the same thread count, so their float reductions split the same way.
  static std::string threads() { return std::to_string(at::get_num_threads()); }

  static inline std::unique_ptr<LoadedModel> model_;
  static std::string temp_path(const std::string& name) { return temp_dir_ + "/" + name; }

  static inline std::string temp_dir_;
  static inline std::vector<std::string> temp_files_;
};

// A failed command: the expected exit code, nothing on stdout, exactly one line on stderr that
// contains `needle` (the option or file at fault).
void expect_one_line_error(const ProcessResult& r, int exit_code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, exit_code) << describe(r);
  EXPECT_EQ(r.out, "") << describe(r);
  const auto lines = split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << describe(r);
  EXPECT_TRUE(r.err.ends_with("\n")) << describe(r);
  EXPECT_TRUE(lines[0].starts_with("sentinel: error: ")) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << "'" << lines[0] << "' does not mention '" << needle << "'";
}

TEST_F(SentinelCli, TokenizeJsonGivesTheLibraryTokenizersIds) {
  const std::string text = "Hello world! <|im_start|>user\nCaf\xC3\xA9 \xF0\x9F\x91\x8B 3.14 --  x<|im_end|>\n";
  const ProcessResult r = sentinel({"tokenize", "--text", text, "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = parse_json(r);
  const std::vector<int32_t> expected = model_->tokenizer->encode(text);
  EXPECT_EQ(out.at("ids").get<std::vector<int32_t>>(), expected);
  EXPECT_EQ(out.at("n_tokens").get<size_t>(), expected.size());
}

TEST_F(SentinelCli, GenerateJsonGivesTheGreedyFixtureTokensAndStreamsTheSameText) {
  const auto reference =
      nlohmann::json::parse(testing::read_file(testing::source_path("tests/data/model/smollm2-reference.json")));
  const auto& run = reference.at("greedy").at(0);
  ASSERT_EQ(run.at("prompt").get<std::string>(), "Once upon a time, in a small village by the sea,");
  auto expected = run.at("greedy_ids").get<std::vector<int32_t>>();
  expected.resize(16);
  // The dense float32 path is the one with exact transformers parity (the quantized default is
  // checked against it by DefaultQuantizedBackendStaysCloseToDense).
  const std::vector<std::string> args = {"generate", "-p", run.at("prompt").get<std::string>(), "--max-tokens", "16",
                                         "--ignore-eos", "--backend", "dense", "-t", threads()};
  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const ProcessResult r = sentinel(json_args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "") << "--json keeps stderr quiet";
  const nlohmann::json out = parse_json(r);
  EXPECT_EQ(out.at("tokens").get<std::vector<int32_t>>(), expected);
  EXPECT_EQ(out.at("generated_tokens").get<int64_t>(), 16);
  EXPECT_EQ(out.at("prompt_tokens").get<size_t>(), run.at("prompt_ids").size());
  EXPECT_EQ(out.at("stop_reason").get<std::string>(), "max_tokens");
  EXPECT_EQ(out.at("text").get<std::string>(), model_->tokenizer->decode(expected));

  const ProcessResult streamed = sentinel(args);  // streams the text, then one '\n'
  ASSERT_EQ(streamed.exit_code, 0) << describe(streamed);
  EXPECT_EQ(streamed.out, out.at("text").get<std::string>() + "\n");
}

TEST_F(SentinelCli, ChatAnswersTheCapitalOfFrance) {
  const ProcessResult r =
      sentinel({"generate", "--chat", "-p", "What is the capital of France?", "--max-tokens", "24", "-t", threads()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << describe(r);
}

// The streamed text ends its line, once: what follows it (the shell prompt, or a line on stderr
// when 2>&1 sends both into one pipe) starts a line of its own, and text that ends in a newline
// gets no second one. The same for a chat reply.
TEST_F(SentinelCli, GenerateEndsTheStreamedTextWithOneNewline) {
  auto generate = [&](const std::vector<std::string>& more) {
    std::vector<std::string> args = {"generate", "-p", "Three fruits, one per line:\n1. Apple\n2.", "--ignore-eos",
                                     "-t", threads()};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const ProcessResult json = sentinel(generate({"--max-tokens", "24", "--json"}));
  ASSERT_EQ(json.exit_code, 0) << describe(json);
  const auto tokens = parse_json(json).at("tokens").get<std::vector<int32_t>>();
  auto text_of = [&](size_t n) { return model_->tokenizer->decode(std::span(tokens).first(n)); };
  size_t n_line = 0;  // the first continuation that ends a line
  for (size_t n = 1; n <= tokens.size() && n_line == 0; ++n)
    if (text_of(n).ends_with("\n")) n_line = n;
  ASSERT_GE(n_line, 2u) << "the greedy continuation should end a line after a token or more: " << json.out;

  const ProcessResult ends_line = sentinel(generate({"--max-tokens", std::to_string(n_line)}));
  ASSERT_EQ(ends_line.exit_code, 0) << describe(ends_line);
  EXPECT_EQ(ends_line.out, text_of(n_line)) << "no second newline";

  const std::string state = temp_path("newline.state");
  temp_files_.push_back(state);
  const ProcessResult mixed = testing::run_process(
      testing::cli_path(), generate({"--max-tokens", std::to_string(n_line - 1), "--save-state", state}),
      testing::Stderr::IntoStdout);
  ASSERT_EQ(mixed.exit_code, 0) << describe(mixed);
  EXPECT_NE(mixed.out.find(text_of(n_line - 1) + "\nsaved "), std::string::npos) << mixed.out;
  EXPECT_NE(mixed.out.find("\nprompt: "), std::string::npos) << mixed.out;

  const std::vector<std::string> chat = {"generate", "--chat", "-p", "Say hello.", "--max-tokens", "12", "-t", threads()};
  std::vector<std::string> chat_json = chat;
  chat_json.push_back("--json");
  const std::string reply = parse_json(sentinel(chat_json)).at("text").get<std::string>();
  const ProcessResult streamed = sentinel(chat);
  ASSERT_EQ(streamed.exit_code, 0) << describe(streamed);
  EXPECT_EQ(streamed.out, reply.ends_with("\n") ? reply : reply + "\n");
}

TEST_F(SentinelCli, PplJsonMatchesLibraryOnTheSameIds) {
  // A 16 KiB excerpt (cut at a line end) holds ~4k tokens, more than --max-tokens keeps.
  std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw")).substr(0, 16384);
  text.resize(text.rfind('\n') + 1);
  const std::string path = write_temp_file("wiki-excerpt.txt", text);
  const ProcessResult r = sentinel({"ppl", "--data", path, "--ctx", "256", "--stride", "128", "--max-tokens", "1024",
                                    "--backend", "dense", "--json", "-t", threads()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = parse_json(r);
  ASSERT_TRUE(out.contains("ppl") && out.contains("tokens")) << describe(r);

  // The CLI's documented tokenization: the whole file, special-token text as plain text.
  std::vector<int32_t> ids = model_->tokenizer->encode(text, /*add_bos=*/true, SpecialTokens::Ignore);
  ASSERT_GT(ids.size(), 1024u);
  ids.resize(1024);
  const PerplexityResult expected = strided_perplexity(model_->model, ids, PerplexityOptions{256, 128});
  EXPECT_EQ(out.at("tokens").get<int64_t>(), 1024);
  EXPECT_EQ(out.at("scored").get<int64_t>(), expected.n_scored);
  EXPECT_NEAR(out.at("ppl").get<double>(), expected.ppl, 1e-9 * expected.ppl);
  EXPECT_EQ(out.at("engine").at("backend"), "dense");
}

// The default backend reads the GGUF's blocks in place (issue targets on 8,192 tokens: perplexity
// within 1%, mean KL <= 0.01, same top token >= 97%; measured on this excerpt's 1,024 tokens:
// ratio 1.006, KL 0.003, top-1 97%). Bounds here are looser, for other CPUs' rounding.
TEST_F(SentinelCli, DefaultQuantizedBackendStaysCloseToDense) {
  const std::string path = write_temp_file("wiki-quantized.txt", testing::read_file(testing::shared_data_path(
                                                                      "wikitext-2-raw/wiki.test.raw")).substr(0, 8192));
  const ProcessResult r = sentinel({"ppl", "--data", path, "--ctx", "512", "--stride", "512", "--max-tokens", "1024",
                                    "--chunk", "16", "--kl-divergence", "--json", "-t", threads()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = parse_json(r);
  EXPECT_EQ(out.at("engine").at("backend"), "quantized");
  EXPECT_EQ(out.at("engine").at("kv_dtype"), "f16");
  const nlohmann::json& ref = out.at("reference");
  // 16-bit activations: on the first 8,192 tokens ppl ratio 1.0000, KL < 1e-5, top token 99.96%.
  EXPECT_NEAR(ref.at("ppl_ratio").get<double>(), 1.0, 0.002);
  EXPECT_LT(ref.at("mean_kl_divergence").get<double>(), 5e-4);
  EXPECT_GT(ref.at("mean_kl_divergence").get<double>(), 0.0) << "the quantized path computes differently";
  EXPECT_GT(ref.at("top1_agreement").get<double>(), 0.99);
}

TEST_F(SentinelCli, InfoDescribesTheDefaultModel) {
  const ProcessResult r = sentinel({"info"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const char* needle : {"llama", "30 layers", "Q4_1"})
    EXPECT_NE(r.out.find(needle), std::string::npos) << "no '" << needle << "' in\n" << r.out;
}

// The subcommands a --help page lists: the first word of each item under "Subcommands:".
std::vector<std::string> listed_subcommands(const std::string& help) {
  std::vector<std::string> names;
  bool in_list = false;
  for (const std::string& line : split_lines(help)) {
    if (line.starts_with("Subcommands:")) {
      in_list = true;
    } else if (in_list && !line.empty() && line[0] != ' ') {
      in_list = false;  // the next section
    } else if (in_list && line.starts_with("  ") && line.size() > 2 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

// Every subcommand and nested subcommand, as the CLI's own --help pages list them, so that one
// added later is covered without editing this test.
TEST_F(SentinelCli, HelpOnEverySubcommandExitsZeroWithUsage) {
  std::vector<std::vector<std::string>> to_visit = {{}};
  std::set<std::string> visited;
  while (!to_visit.empty()) {
    const std::vector<std::string> path = to_visit.back();
    to_visit.pop_back();
    std::string command;
    for (const std::string& word : path) command += (command.empty() ? "" : " ") + word;
    std::vector<std::string> args = path;
    args.push_back("--help");
    const ProcessResult r = sentinel(args);
    EXPECT_EQ(r.exit_code, 0) << "'" << command << " --help': " << describe(r);
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << "'" << command << " --help': " << describe(r);
    EXPECT_NE(r.out.find(command + " [OPTIONS]"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err, "") << "'" << command << " --help'";
    ASSERT_TRUE(visited.insert(command).second) << "'" << command << "' listed twice";
    for (const std::string& name : listed_subcommands(r.out)) {
      to_visit.push_back(path);
      to_visit.back().push_back(name);
    }
  }
  // The pages' list is what is walked; these must be on it, or the pages' format has changed.
  for (const char* command : {"generate", "tokenize", "ppl", "info", "train", "eval", "eval lm", "eval gen",
                              "eval recall", "bench", "serve", "export"})
    EXPECT_TRUE(visited.contains(command)) << "'" << command << "' is not listed by any --help page";
}

// Mistakes in the command line itself: CLI11 rejects them before anything loads.
TEST_F(SentinelCli, UsageErrorsExitTwoWithOneLine) {
  const std::string prompt_file = write_temp_file("prompt.txt", "Hello");
  const std::string missing = temp_path("no-such-file.txt");
  expect_one_line_error(sentinel({"generate", "-p", "hi", "--no-such-option"}), 2, "--no-such-option");
  expect_one_line_error(sentinel({"generate", "--max-tokens", "4"}), 2, "--prompt");
  expect_one_line_error(sentinel({"generate", "-p", "hi", "--prompt-file", prompt_file}), 2, "--prompt-file");
  expect_one_line_error(sentinel({"ppl", "--data", missing}), 2, missing);
  expect_one_line_error(sentinel({"frobnicate"}), 2, "unknown subcommand 'frobnicate'");
  expect_one_line_error(sentinel({}), 2, "subcommand");
}

// Well-formed commands that fail while running: a model that is not there or not whole.
TEST_F(SentinelCli, RuntimeErrorsExitOneWithOneLine) {
  const std::string missing_model = temp_path("missing/model.gguf");
  expect_one_line_error(sentinel({"info", "-m", missing_model}), 1, missing_model);
  expect_one_line_error(sentinel({"generate", "-m", missing_model, "-p", "hi"}), 1, missing_model);

  std::string head(1000, '\0');  // the real model's first 1000 bytes: a valid start, cut in the metadata
  std::ifstream(testing::default_model(), std::ios::binary).read(head.data(), static_cast<std::streamsize>(head.size()));
  const std::string truncated = write_temp_file("truncated.gguf", head);
  const ProcessResult r = sentinel({"generate", "-m", truncated, "-p", "hi"});
  expect_one_line_error(r, 1, truncated);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << describe(r);
}

// --- compression (--compress, --ratio, --span, --adapter, --chunk) ---

// The first 8 KiB of WikiText-2 test, cut at a line end (~1.9k tokens).
std::string wiki_excerpt() {
  std::string text = testing::read_file(testing::shared_data_path("wikitext-2-raw/wiki.test.raw")).substr(0, 8192);
  return text.substr(0, text.rfind('\n') + 1);
}

// method.md section 6: reading token by token with eviction gives the logits of one pass with
// the dense mask, so the perplexity cannot depend on the chunk size (the stream layout: the default
// heavy one evicts between passes, so its plan depends on them by design).
// Checked on the dense path, where chunking changes only how float sums are blocked. On the
// quantized path a different summation order can flip an 8-bit rounding of the next layer's
// activations, and compaction after eviction reorders the cells, so compressed runs agree there
// only to the quantization noise (~1%); uncompressed, decode steps and chunks of up to 16 tokens
// share the native step with a per-query arithmetic that does not depend on the chunk.
TEST_F(SentinelCli, CompressedPplAgreesBetweenDecodingAndChunkedPrefill) {
  const std::string path = write_temp_file("wiki-compress.txt", wiki_excerpt());
  auto run = [&](const std::string& chunk, const std::string& backend, const std::string& method) {
    const ProcessResult r = sentinel({"ppl", "--data", path, "--max-tokens", "160", "--ctx", "160", "--stride", "160",
                                      "--compress", method, "--ratio", method == "none" ? "0" : "0.5", "--span", "8",
                                      "--layout", "stream", "--chunk", chunk, "--backend", backend, "--json", "-t",
                                      threads()});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    return parse_json(r);
  };
  const double q1 = run("1", "quantized", "none").at("ppl").get<double>();
  EXPECT_NEAR(q1, run("8", "quantized", "none").at("ppl").get<double>(), 5e-5 * q1);
  const double qs1 = run("1", "quantized", "sentinel").at("ppl").get<double>();
  EXPECT_NEAR(qs1, run("8", "quantized", "sentinel").at("ppl").get<double>(), 0.02 * qs1);
  const nlohmann::json decode = run("1", "dense", "sentinel"), prefill = run("512", "dense", "sentinel");
  const double ppl_decode = decode.at("ppl").get<double>(), ppl_prefill = prefill.at("ppl").get<double>();
  EXPECT_NEAR(ppl_decode, ppl_prefill, 5e-5 * ppl_prefill);  // four significant digits, with room to spare
  for (const nlohmann::json& out : {decode, prefill}) {
    EXPECT_EQ(out.at("compress"), "sentinel");
    // Stream layout: 4 sinks, then spans of 8 compressed as the budget needs: 12 by the last
    // token (the next query may see kv_budget(0.5, 161) = 81: 161 - 12 * 7 = 77), one <CR> each.
    EXPECT_EQ(out.at("kv_entries_retained").get<int64_t>(), 160 - 12 * 7);
    EXPECT_NEAR(out.at("achieved_ratio").get<double>(), 84.0 / 160.0, 1e-12);
    EXPECT_GT(out.at("peak_kv_bytes").get<int64_t>(), 0);
  }
  // Decoding holds at most one token beyond the retained entries; a 512-token chunk holds it all.
  EXPECT_LT(decode.at("peak_kv_bytes").get<int64_t>(), prefill.at("peak_kv_bytes").get<int64_t>());
}

// --compress sentinel without --layout reads the heavy layout (the default, chosen on the
// validation text) with the adapter trained on it, at the span it was validated at, ranking older
// tokens by both attention and surprisal, 16 tokens per pass (as eval lm reads it); it evicts by
// attention to exactly the budget (as H2O), and its trained <CR>s read better than untrained ones
// (the first 512 tokens of WikiText-2 test, windows of 256). An adapter trained on another layout
// is read as asked, with a warning that names the layout it was trained with.
TEST_F(SentinelCli, DefaultSentinelIsTheHeavyLayoutWithItsShippedAdapterAndKeepsTheBudget) {
  const std::string path = write_temp_file("wiki-heavy.txt", wiki_excerpt());
  auto run = [&](const std::vector<std::string>& method) {
    std::vector<std::string> args = {"ppl", "--data", path, "--max-tokens", "512", "--ctx", "256", "--stride", "256",
                                     "--ratio", "0.5", "--json", "-t", threads()};
    args.insert(args.end(), method.begin(), method.end());
    const ProcessResult r = sentinel(args);
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    return std::make_pair(parse_json(r), r.err);
  };
  const nlohmann::json heavy = run({"--compress", "sentinel"}).first;
  EXPECT_EQ(heavy.at("layout"), "heavy");
  EXPECT_EQ(heavy.at("span"), 48) << "without --span, the span the heavy adapter was validated at";
  EXPECT_EQ(heavy.at("older_rank"), "both");
  EXPECT_EQ(heavy.at("chunk"), 16) << "without --chunk, a policy that reads attention is read 16 tokens per pass";
  EXPECT_TRUE(heavy.at("adapter").get<std::string>().ends_with(kBundledHeavyAdapter)) << heavy.dump();
  EXPECT_EQ(heavy.at("adapter_sha256"), sha256_file(heavy.at("adapter").get<std::string>())) << "the bytes read";
  // Each 256-token window ends holding kv_budget(0.5, 257) - 1 = 128 cells.
  EXPECT_EQ(heavy.at("kv_entries_retained").get<int64_t>(), 2 * 128);
  EXPECT_DOUBLE_EQ(heavy.at("achieved_ratio").get<double>(), 0.5);
  const nlohmann::json untrained = run({"--compress", "sentinel", "--adapter", "none"}).first;
  EXPECT_EQ(untrained.at("adapter"), "");
  EXPECT_EQ(untrained.at("adapter_sha256"), "");
  EXPECT_LT(heavy.at("ppl").get<double>(), untrained.at("ppl").get<double>()) << "the trained <CR>s read better";

  const std::string stream_adapter = testing::source_path(std::string("adapters/") + kBundledSentinelAdapter);
  const auto [crossed, warning] = run({"--compress", "sentinel", "--adapter", stream_adapter});
  EXPECT_EQ(crossed.at("layout"), "heavy");
  EXPECT_NE(warning.find("was trained with --layout stream but is read with --layout heavy"), std::string::npos)
      << warning;
  EXPECT_EQ(run({"--compress", "sentinel", "--layout", "stream"}).second.find("warning"), std::string::npos)
      << "the stream layout reads its own shipped adapter without a word";
}

TEST_F(SentinelCli, CompressedGenerateReportsTheCacheItKept) {
  const ProcessResult r = sentinel({"generate", "-p", wiki_excerpt().substr(0, 2000), "--max-tokens", "8",
                                    "--ignore-eos", "--compress", "streaming", "--ratio", "0.75", "--json", "-t",
                                    threads()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json out = parse_json(r);
  const int64_t seen = out.at("prompt_tokens").get<int64_t>() + out.at("generated_tokens").get<int64_t>();
  // The last sampled token is never fed. Between steps the cache holds one entry less than the
  // budget of the next query, which adds itself.
  const int64_t fed = seen - 1;
  EXPECT_EQ(out.at("kv_entries").get<int64_t>(), kv_budget(0.75, fed + 1) - 1);
  EXPECT_GT(out.at("achieved_ratio").get<double>(), 0.74);
  EXPECT_LT(out.at("kv_bytes").get<int64_t>(), out.at("peak_kv_bytes").get<int64_t>());
}

// ppl and generate results say where and how they were made, as eval and bench records do, and
// the adapter read (by its bytes): the command line in them is the one run, quotes and all.
TEST_F(SentinelCli, JsonResultsNameTheirEnvironmentAndCommand) {
  const std::string path = write_temp_file("wiki-environment.txt", wiki_excerpt());
  const std::vector<std::string> ppl = {"ppl", "--data", path, "--max-tokens", "64", "--ctx", "64", "--stride", "64",
                                        "--json", "-t", threads()};
  const ProcessResult p = sentinel(ppl);
  ASSERT_EQ(p.exit_code, 0) << describe(p);
  std::vector<std::string> argv = {testing::cli_path()};
  argv.insert(argv.end(), ppl.begin(), ppl.end());
  testing::expect_run_environment(parse_json(p).at("environment"), argv, std::stoi(threads()));

  const std::vector<std::string> generate = {"generate", "-p", "It's a \"quoted\" $HOME prompt; with * and\ttabs",
                                             "--max-tokens", "2", "--compress", "sentinel", "--ratio", "0.5",
                                             "--json", "-t", threads()};
  const ProcessResult g = sentinel(generate);
  ASSERT_EQ(g.exit_code, 0) << describe(g);
  const nlohmann::json out = parse_json(g);
  argv = {testing::cli_path()};
  argv.insert(argv.end(), generate.begin(), generate.end());
  testing::expect_run_environment(out.at("environment"), argv, std::stoi(threads()));
  EXPECT_TRUE(out.at("adapter").get<std::string>().ends_with(kBundledHeavyAdapter)) << out.dump();
  EXPECT_EQ(out.at("adapter_sha256"), sha256_file(out.at("adapter").get<std::string>())) << "the bytes read";
}

TEST_F(SentinelCli, ImpossibleCompressionRequestsAreRefused) {
  const std::string path = write_temp_file("wiki-refuse.txt", wiki_excerpt());
  const std::vector<std::string> ppl = {"ppl", "--data", path, "--max-tokens", "64", "--ctx", "64", "--stride", "64"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = ppl;
    args.insert(args.end(), extra.begin(), extra.end());
    return sentinel(args);
  };
  expect_one_line_error(with({"--compress", "local", "--ratio", "1"}), 1, "ratio must be in [0, 0.999], got 1");
  expect_one_line_error(with({"--compress", "local", "--ratio", "-0.5"}), 1, "got -0.5");
  expect_one_line_error(with({"--compress", "sentinel", "--ratio", "0.9", "--span", "4"}), 1, "spans of 4 tokens");
  expect_one_line_error(with({"--compress", "sentinel", "--ratio", "0.5", "--span", "100"}), 1, "--span 100");
  expect_one_line_error(with({"--compress", "local"}), 1, "--ratio");
  expect_one_line_error(with({"--ratio", "0.5"}), 1, "--compress");
  expect_one_line_error(with({"--compress", "lsh", "--ratio", "0.5"}), 2, "lsh");
  // Values that leave nothing to compress are refused as the server refuses them (one table).
  expect_one_line_error(with({"--compress", "sentinel", "--ratio", "0.5", "--span", "1000000000"}), 1,
                        "span must be in [2, 4096]");
  expect_one_line_error(with({"--compress", "streaming", "--ratio", "0.5", "--sinks", "1000000000"}), 1,
                        "sinks must be in [0, 1048576]");
  // A state file cannot hold the default heavy layout's plan: refused before generating, naming the layout that can.
  const std::string state = temp_path("heavy.state");
  expect_one_line_error(sentinel({"generate", "-p", "hello", "--max-tokens", "1", "--compress", "sentinel", "--ratio",
                                  "0.5", "--save-state", state}),
                        1, "--save-state: a sentinel ratio 0.5 span 48 layout heavy sinks 4 session cannot be saved");
  EXPECT_NE(::access(state.c_str(), F_OK), 0) << "nothing written";
}

// A run that removes clearly less than asked says so, on stderr and in its JSON.
TEST_F(SentinelCli, RatioShortOfTheAskedIsReported) {
  const std::string path = write_temp_file("wiki-short.txt", wiki_excerpt());
  const ProcessResult r = sentinel({"ppl", "--data", path, "--max-tokens", "64", "--ctx", "64", "--stride", "64",
                                    "--compress", "streaming", "--ratio", "0.5", "--sinks", "60", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(parse_json(r).at("ratio_short_of_asked").get<bool>()) << describe(r);
  EXPECT_NE(r.err.find("asked to remove 0.500 of the context"), std::string::npos) << describe(r);
  const ProcessResult ok = sentinel({"ppl", "--data", path, "--max-tokens", "64", "--ctx", "64", "--stride", "64",
                                     "--compress", "streaming", "--ratio", "0.5", "--sinks", "2", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << describe(ok);
  EXPECT_FALSE(parse_json(ok).at("ratio_short_of_asked").get<bool>()) << describe(ok);
}

// Limits the CLI shares with the server, and inputs that are not what they claim.
TEST_F(SentinelCli, OutOfRangeCountsAndNonTextPromptsAreRefused) {
  expect_one_line_error(sentinel({"generate", "-p", "hi", "-t", "100000"}), 2, "100000");
  expect_one_line_error(sentinel({"generate", "-p", "hi", "-n", "1000000000000"}), 2, "1000000000000");
  const std::string latin1 = write_temp_file("latin1.txt", std::string("caf\xe9 au lait"));
  expect_one_line_error(sentinel({"generate", "-f", latin1, "-n", "1"}), 1, "not valid UTF-8");
  const std::string binary = write_temp_file("nul.txt", std::string("abc\0def", 7));
  expect_one_line_error(sentinel({"generate", "-f", binary, "-n", "1"}), 1, "NUL byte at offset 3");
}

// Backend and KV-dtype requests that cannot run are refused before anything is generated.
TEST_F(SentinelCli, ImpossibleBackendRequestsAreRefused) {
  const std::string hf = testing::source_path("tests/data/tiny/hf"), gguf = testing::source_path("tests/data/tiny/tiny.gguf");
  expect_one_line_error(sentinel({"generate", "-m", hf, "-p", "hi", "--backend", "quantized"}), 1, "Hugging Face folder");
  expect_one_line_error(sentinel({"generate", "-m", gguf, "-p", "hi", "--backend", "quantized", "--dtype", "bfloat16"}), 1,
                        "float32");
  expect_one_line_error(sentinel({"generate", "-m", gguf, "-p", "hi", "--kv-dtype", "q8_0"}), 1, "multiple of 32");
  expect_one_line_error(sentinel({"generate", "-m", gguf, "-p", "hi", "--backend", "int3"}), 2, "int3");
}

// Sentinel rows only mean something beside the embeddings they were trained with.
TEST_F(SentinelCli, AdapterForAnotherModelIsRefused) {
  LoadedModel tiny = load_model(testing::source_path("tests/data/tiny/hf"));
  const std::string adapter_path = temp_path("tiny-adapter.safetensors");
  temp_files_.push_back(adapter_path);
  save_adapter(adapter_path, Adapter{initial_sentinel_embeddings(tiny.model), {}, ""}, tiny.model, tiny.name);

  const ProcessResult r = sentinel({"generate", "-p", "hi", "--max-tokens", "1", "--compress", "sentinel", "--ratio",
                                    "0.5", "--adapter", adapter_path});
  // The model loads (its identity is what is checked), so the error is the last of two lines.
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  const auto lines = split_lines(r.err);
  ASSERT_FALSE(lines.empty()) << describe(r);
  EXPECT_TRUE(lines.back().starts_with("sentinel: error: adapter ")) << describe(r);
  for (const std::string& needle : {std::string("was trained on \"") + tiny.name, std::string("not on this model")})
    EXPECT_NE(lines.back().find(needle), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace sentinel
