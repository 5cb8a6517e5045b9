// `sentinel generate`: stream a continuation (or a chat reply) of a prompt to stdout, ended by a
// newline, with prompt and generation speeds on stderr; --json prints one result object instead.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "common.h"
#include "results.h"
#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/session.h"
#include "sentinel/model/adapter.h"
#include "sentinel/server/session_capture.h"
#include "sentinel/server/session_state.h"
#include "sentinel/server/state_file.h"
#include "sentinel/tokenizer/chat_template.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string prompt, prompt_file, system;
  bool chat = false, json = false, ignore_eos = false;
  GenerationOptions generation;
  CompressionArgs compression;
  std::string save_state, load_state;  // session state files (server/state_file.h)
};

int run_generate(const GenerateArgs& args) {
  args.generation.validate();
  PolicyOptions policy = parse_compression(args.compression);
  // Refused before anything is read or generated, not after: a state file holds a plan fixed by
  // token positions, which a policy that evicts by attention does not have.
  for (const auto& [option, file] : {std::pair{"--save-state", &args.save_state}, {"--load-state", &args.load_state}})
    check(file->empty() || server::resumable(policy), option, ": a ", describe(policy), " session cannot be ",
          "saved or continued: its plan depends on attention scores that a state file does not hold; add --layout ",
          "stream (sentinel), or use strided, streaming or sepllm");
  std::string prompt = args.prompt_file.empty() ? args.prompt : read_text_file(args.prompt_file);
  // As the server: a prompt is text. Invalid UTF-8 or NUL bytes mean a binary or mis-encoded file.
  const std::string source = args.prompt_file.empty() ? "--prompt" : "--prompt-file '" + args.prompt_file + "'";
  check(unicode::is_valid_utf8(prompt), source, " is not valid UTF-8 text; convert it (iconv -t UTF-8) first");
  check(prompt.find('\0') == std::string::npos, source, " holds a NUL byte at offset ", prompt.find('\0'),
        ": it is not text");
  LoadedModel loaded = open_model(args.model, args.json);
  const std::string adapter = install_compression(policy, args.compression, loaded, args.json);
  // The bytes just loaded, not just the path: adapters are retrained in place.
  const std::string adapter_sha256 = adapter.empty() ? "" : sha256_file(adapter);
  const Tokenizer& tokenizer = *loaded.tokenizer;
  bool add_bos = true;
  if (args.chat) {
    std::vector<ChatMessage> messages;
    if (!args.system.empty()) messages.push_back({"system", args.system});
    messages.push_back({"user", prompt});
    prompt = apply_chat_template(tokenizer, messages, /*add_generation_prompt=*/true);
    add_bos = chat_prompt_needs_bos(tokenizer, prompt);
  }
  const std::vector<int32_t> ids = tokenizer.encode(prompt, add_bos, SpecialTokens::Parse);
  GenerationOptions options = args.generation;
  options.stop_at_eos = !args.ignore_eos;

  c10::InferenceMode inference;
  // A full cache needs every token; a compressed one starts small and grows by doubling only as
  // far as the policy lets it, so its memory really shrinks.
  const int64_t all_tokens = static_cast<int64_t>(ids.size()) + options.max_tokens + 1;
  const int64_t capacity = policy.method == Method::None ? all_tokens : std::min<int64_t>(all_tokens, 256);
  Session session(loaded.model, loaded.model->cache_options(capacity), policy);
  // --load-state: continue a saved sequence; the prompt must start with its tokens.
  const server::StateFileInfo state_info{model_fingerprint(loaded.model), loaded.name};
  std::span<const int32_t> to_read(ids);
  if (!args.load_state.empty()) {
    const server::SessionState state = server::load_state_file(args.load_state, state_info);
    check(state.tokens.size() < ids.size() && std::equal(state.tokens.begin(), state.tokens.end(), ids.begin()),
          "--load-state: the prompt (", ids.size(), " tokens) does not continue the saved sequence (", state.tokens.size(),
          " tokens); give the saved text plus more");
    check(describe(state.policy) == describe(policy) && state.policy.spans.empty() == policy.spans.empty(),
          "--load-state: the file was compressed with ", describe(state.policy), ", this run asks for ", describe(policy),
          "; use the same --compress options");
    server::restore_state(session, state);
    to_read = to_read.subspan(state.tokens.size());
  }
  TextCallback stream;
  bool at_line_start = true;  // what was streamed so far ends a line (or nothing was)
  if (!args.json) {
    stream = [&at_line_start](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      if (!piece.empty()) at_line_start = piece.back() == '\n';
      return true;
    };
  }
  const GenerationResult r = generate(session, tokenizer, to_read, options, stream);
  // The text ends its line before anything else is written, so that neither the shell prompt nor a
  // line on stderr (2>&1 into one file or pipe) joins it: flushed, as stderr is not buffered.
  if (!args.json && !at_line_start) {
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (!args.save_state.empty()) {
    // The session has read the prompt and every generated token but (usually) the last sampled one.
    std::vector<int32_t> fed(ids);
    fed.insert(fed.end(), r.tokens.begin(), r.tokens.end());
    fed.resize(static_cast<size_t>(session.next_position()));
    server::SessionState state = server::capture_state(session, fed);
    state.policy = policy;
    const int64_t bytes = server::save_state_file(args.save_state, state, state_info);
    if (!args.json)
      std::fprintf(stderr, "saved %zu tokens (%lld KV entries, %lld bytes) to %s\n", fed.size(),
                   static_cast<long long>(state.cells.size()), static_cast<long long>(bytes), args.save_state.c_str());
  }
  const CompressionStats& stats = session.stats();
  const double prefill_tps = r.prefill_seconds > 0 ? r.n_prompt / r.prefill_seconds : 0;
  const double decode_tps = r.decode_seconds > 0 ? static_cast<double>(r.decode_steps) / r.decode_seconds : 0;
  if (args.json) {
    nlohmann::json out = {{"model", loaded.name},
                          {"dtype", dtype_name(loaded.model->dtype())},
                          {"text", r.text},
                          {"tokens", r.tokens},
                          {"stop_reason", stop_reason_name(r.stop_reason)},
                          {"prompt_tokens", r.n_prompt + static_cast<int64_t>(ids.size() - to_read.size())},
                          {"prompt_tokens_restored", ids.size() - to_read.size()},
                          {"generated_tokens", r.tokens.size()},
                          {"prefill_seconds", r.prefill_seconds},
                          {"decode_seconds", r.decode_seconds},
                          {"decode_steps", r.decode_steps},
                          {"prefill_tokens_per_s", prefill_tps},
                          {"decode_tokens_per_s", decode_tps},
                          {"compress", method_name(policy.method)},
                          {"ratio", policy.ratio},
                          {"adapter", adapter},
                          {"adapter_sha256", adapter_sha256},
                          {"achieved_ratio", stats.achieved_ratio()},
                          {"kv_entries", stats.cells_in_use},
                          {"kv_bytes", session.cache().bytes_in_use()},
                          {"kv_bytes_by_layer_type",
                           {{"global", session.cache().global_bytes_in_use()},
                            {"sliding_window", session.cache().window_bytes_in_use()}}},
                          {"peak_kv_bytes", stats.peak_bytes},
                          {"kv_bytes_allocated", session.cache().bytes_allocated()}};
    out["engine"] = engine_fields(loaded);
    out["environment"] = run_environment(dtype_name(loaded.model->dtype()));
    report_ratio_shortfall(policy, stats.achieved_ratio(), &out);
    // Invalid UTF-8 (a reply cut inside a character) is replaced rather than refused.
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::fprintf(stderr, "prompt: %lld tokens, %.1f tok/s | generated: %zu tokens, %.1f tok/s | stop: %s\n",
                 static_cast<long long>(r.n_prompt), prefill_tps, r.tokens.size(), decode_tps,
                 stop_reason_name(r.stop_reason).c_str());
    if (policy.method != Method::None)
      std::fprintf(stderr, "kv cache: %lld entries for %lld tokens (achieved ratio %.3f), %.1f MiB, peak %.1f MiB\n",
                   static_cast<long long>(stats.cells_in_use), static_cast<long long>(stats.ordinary_seen),
                   stats.achieved_ratio(), static_cast<double>(session.cache().bytes_in_use()) / (1 << 20),
                   static_cast<double>(stats.peak_bytes) / (1 << 20));
    report_ratio_shortfall(policy, stats.achieved_ratio());
  }
  return 0;
}

}  // namespace

Runner register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt, streamed to stdout");
  add_model_options(*cmd, args->model);
  add_chat_template_option(*cmd, args->model);
  auto* prompt = cmd->add_option("-p,--prompt", args->prompt, "Prompt text");
  auto* prompt_file = cmd->add_option("-f,--prompt-file", args->prompt_file, "Read the prompt from a file")
                          ->check(CLI::ExistingFile);
  prompt->excludes(prompt_file);
  cmd->add_flag("--chat", args->chat, "Wrap the prompt as a user message in the model's chat template");
  cmd->add_option("--system", args->system, "System message for --chat (default: the template's own)");
  GenerationOptions& g = args->generation;
  cmd->add_option("-n,--max-tokens", g.max_tokens, "Maximum tokens to generate")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--temperature", g.sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", g.sampling.top_k, "Sample from the k most likely tokens (0 = all)")->capture_default_str();
  cmd->add_option("--top-p", g.sampling.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", g.sampling.repetition_penalty, "Penalty for tokens already in context (1 = off)")
      ->capture_default_str();
  cmd->add_option("--seed", g.sampling.seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("--stop", g.stop_strings, "Stop before this string (repeatable)");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Do not stop at the end-of-sequence token");
  cmd->add_option("--chunk", g.prefill_chunk, "Prompt tokens per forward pass")->capture_default_str();
  add_compression_options(*cmd, args->compression);
  cmd->add_option("--save-state", args->save_state,
                  "Write the session (tokens read, compressed KV cache) to this file after generating; "
                  "--load-state or the server's /slots restore continues it");
  cmd->add_option("--load-state", args->load_state,
                  "Continue a session saved by --save-state or the server's /slots save: the prompt must start "
                  "with its tokens, and only the rest is read")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "Print one JSON object (text, tokens, counts, speeds) instead of streaming");
  cmd->callback([prompt, prompt_file] {
    if (prompt->count() == 0 && prompt_file->count() == 0)
      throw CLI::RequiredError("--prompt or --prompt-file");
  });
  return [args] { return run_generate(*args); };
}

}  // namespace sentinel::cli
