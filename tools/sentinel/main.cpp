// `sentinel`: the command-line entry point. Parses the subcommand, runs it, and maps every
// error to one line on stderr and a non-zero exit code (2 for usage errors, 1 otherwise).
#include <cstdio>
#include <exception>
#include <string>

#include "common.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/engine/cuda_runtime.h"

int main(int argc, char** argv) {
  sentinel::cli::record_command_line(argc, argv);  // every JSON result's environment names the command
  sentinel::ensure_cuda_runtime();  // before anything asks libtorch for devices; a no-op without a GPU driver
  CLI::App app{"Sentinel: long-context LLM inference with KV-cache compression by sentinel tokens."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sentinel 0.1.0");
  std::vector<std::pair<CLI::App*, sentinel::cli::Runner>> commands;
  auto add = [&](auto register_fn) {
    const size_t before = app.get_subcommands({}).size();
    sentinel::cli::Runner runner = register_fn(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(runner));
  };
  add(sentinel::cli::register_generate);
  add(sentinel::cli::register_tokenize);
  add(sentinel::cli::register_ppl);
  add(sentinel::cli::register_info);
  add(sentinel::cli::register_train);
  add(sentinel::cli::register_eval);
  add(sentinel::cli::register_bench);
  add(sentinel::cli::register_serve);
  add(sentinel::cli::register_export);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports a misspelt subcommand only as "A subcommand is required": name the word.
    if (app.get_subcommands().empty() && argc > 1 && argv[1][0] != '-') {
      std::string expected;  // "generate, tokenize, ... or export", as registered
      for (size_t i = 0; i < commands.size(); ++i)
        expected += (i == 0 ? "" : i + 1 == commands.size() ? " or " : ", ") + commands[i].first->get_name();
      std::fprintf(stderr, "sentinel: error: unknown subcommand '%s'; expected %s\n", argv[1], expected.c_str());
      return 2;
    }
    std::fprintf(stderr, "sentinel: error: %s (see sentinel --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& [command, runner] : commands) {
      if (command->parsed()) return runner();
    }
  } catch (const sentinel::Error& e) {
    std::fprintf(stderr, "sentinel: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Errors from libtorch carry a multi-line backtrace: keep the first line.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    std::fprintf(stderr, "sentinel: internal error: %s\n", message.c_str());
    return 1;
  }
  return 0;
}
