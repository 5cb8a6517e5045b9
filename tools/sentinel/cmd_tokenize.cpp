// `sentinel tokenize`: token ids of a text, as the model's tokenizer produces them.
// Loads only the tokenizer (no weights), so it is instant even for large models.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

#include "common.h"
#include "sentinel/core/paths.h"
#include "sentinel/io/gguf.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel::cli {
namespace {

struct TokenizeArgs {
  std::string model, text, file;
  bool json = false, no_bos = false, no_special = false, pieces = false;
};

Tokenizer open_tokenizer(const std::string& model_arg) {
  const std::string path = model_arg.empty() ? default_model_path() : model_arg;
  if (std::filesystem::is_directory(path)) return Tokenizer::from_json_file(path + "/tokenizer.json");
  return Tokenizer::from_gguf(GgufFile::open(path));
}

int run_tokenize(const TokenizeArgs& args) {
  const std::string text = args.file.empty() ? args.text : read_text_file(args.file);
  const Tokenizer tokenizer = open_tokenizer(args.model);
  const std::vector<int32_t> ids =
      tokenizer.encode(text, !args.no_bos, args.no_special ? SpecialTokens::Ignore : SpecialTokens::Parse);
  if (args.json) {
    nlohmann::json out = {{"ids", ids}, {"n_tokens", ids.size()}};
    if (args.pieces) {
      std::vector<std::string> pieces;
      for (int32_t id : ids) pieces.push_back(tokenizer.token_text(id));
      out["pieces"] = pieces;
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    if (args.pieces) {
      std::cout << ids[i] << "\t" << tokenizer.token_text(ids[i]) << "\n";
    } else {
      std::cout << (i ? " " : "") << ids[i];
    }
  }
  if (!args.pieces) std::cout << "\n";
  return 0;
}

}  // namespace

Runner register_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", args->model, "Model whose tokenizer to use (.gguf or HF folder); default model if omitted");
  auto* text = cmd->add_option("--text", args->text, "Text to tokenize");
  auto* file = cmd->add_option("-f,--file", args->file, "Tokenize the contents of a file")->check(CLI::ExistingFile);
  text->excludes(file);
  cmd->add_flag("--json", args->json, "Print {\"ids\": [...], \"n_tokens\": N}");
  cmd->add_flag("--pieces", args->pieces, "Also show each token's vocabulary spelling");
  cmd->add_flag("--no-bos", args->no_bos, "Never prepend BOS (by default it is added when the model asks for it)");
  cmd->add_flag("--no-special", args->no_special, "Treat special-token text like <|im_start|> as ordinary text");
  cmd->callback([text, file] {
    if (text->count() == 0 && file->count() == 0) throw CLI::RequiredError("--text or --file");
  });
  return [args] { return run_tokenize(*args); };
}

}  // namespace sentinel::cli
