// `sentinel eval`: the paper's experiments (docs/method.md section 8), one subcommand each.
#include <memory>
#include <utility>
#include <vector>

#include "common.h"

namespace sentinel::cli {

Runner register_eval(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "Evaluate compression quality: lm (perplexity grid), gen (open-ended generation), recall (beyond the window)");
  eval->require_subcommand(1);
  auto subcommands = std::make_shared<std::vector<std::pair<CLI::App*, Runner>>>();
  Runner lm;
  CLI::App* lm_cmd = register_eval_lm(*eval, lm);
  subcommands->emplace_back(lm_cmd, std::move(lm));
  Runner gen;
  CLI::App* gen_cmd = register_eval_gen(*eval, gen);
  subcommands->emplace_back(gen_cmd, std::move(gen));
  Runner recall;
  CLI::App* recall_cmd = register_eval_recall(*eval, recall);
  subcommands->emplace_back(recall_cmd, std::move(recall));
  return [subcommands] {
    for (auto& [cmd, run] : *subcommands)
      if (cmd->parsed()) return run();
    return 2;
  };
}

}  // namespace sentinel::cli
