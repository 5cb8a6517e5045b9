// `sentinel serve`: the OpenAI-compatible HTTP server (docs/server.md). Loads the model once,
// installs the sentinel rows (the shipped adapter for the default model) so that any request may
// ask for sentinel compression, and serves until interrupted.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "sentinel/core/error.h"
#include "sentinel/server/http_server.h"

namespace sentinel::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  CompressionArgs compression;
  server::ServerOptions server;
  int64_t ctx = 0;
  int64_t cache_mib = 256;
  int64_t max_body_kib = 8192;
  int64_t slot_max_mib = 4096;
};

server::HttpServer* g_server = nullptr;
void on_signal(int) {
  if (g_server) g_server->stop();
}

int run_serve(ServeArgs& args) {
  // The server-wide default compression, validated like the CLI's before the model loads.
  PolicyOptions policy = parse_compression(args.compression);
  server::ServerOptions& o = args.server;
  o.defaults.compression = {args.compression.method, policy.ratio, policy.span, policy.window,
                            policy.sinks,                policy.seed,  args.compression.layout,
                            args.compression.stride_share, args.compression.older_rank};
  check(args.cache_mib >= 0, "--cache-mib must be >= 0, got ", args.cache_mib);
  check(args.max_body_kib >= 1, "--max-body-kib must be >= 1, got ", args.max_body_kib);
  check(o.defaults.max_tokens >= 1, "--n-predict must be >= 1, got ", o.defaults.max_tokens);
  check(o.defaults.timeout_s > 0, "--timeout must be > 0 seconds, got ", o.defaults.timeout_s);
  if (!o.slot_save_path.empty())
    check(std::filesystem::is_directory(o.slot_save_path), "--slot-save-path '", o.slot_save_path,
          "' is not a folder; create it first");
  o.prompt_cache_bytes = args.cache_mib << 20;
  o.max_body_bytes = args.max_body_kib << 10;
  o.slot_max_bytes = args.slot_max_mib << 20;

  check(o.api_key.find_first_of(" \t\r\n") == std::string::npos, "--api-key must not contain whitespace");
  if (o.api_key.empty() && o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
    std::fprintf(stderr, "warning: listening on %s without --api-key: anyone who reaches this address can use the "
                         "server and its slot files\n", o.host.c_str());
  LoadedModel loaded = open_model(args.model);
  // Every request may ask for sentinel compression: install the rows (and the adapter) whatever
  // the server's default method is.
  PolicyOptions sentinel_policy;
  sentinel_policy.method = Method::Sentinel;
  sentinel_policy.ratio = 0.5;
  sentinel_policy.layout = policy.layout;  // the shipped adapter of the server's --layout
  CompressionArgs install = args.compression;
  install.method = "sentinel";
  o.adapter = install_compression(sentinel_policy, install, loaded, /*quiet=*/true);
  std::fprintf(stderr, "sentinel rows: %s\n", o.adapter.empty() ? "untrained (no adapter for this model)" : o.adapter.c_str());
  const int64_t n_ctx_train = loaded.config.n_ctx_train > 0 ? loaded.config.n_ctx_train : 2048;
  o.defaults.n_ctx = args.ctx > 0 ? args.ctx : n_ctx_train;
  check(o.defaults.n_ctx >= 16, "--ctx must be >= 16, got ", o.defaults.n_ctx);
  if (o.model_id.empty()) o.model_id = std::filesystem::path(loaded.path).filename().string();
  {
    server::HttpServer http(loaded, o);
    g_server = &http;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    http.run();
    g_server = nullptr;
  }
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace

Runner register_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve the model over HTTP with an OpenAI-compatible API; each request may compress its context");
  add_model_options(*cmd, args->model);
  add_chat_template_option(*cmd, args->model);
  server::ServerOptions& o = args->server;
  cmd->add_option("--host", o.host, "Address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every interface)")
      ->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port; 0 picks a free one (printed on stderr as 'listening on ...')")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--parallel", o.scheduler.n_parallel,
                  "Slots: requests decoded together, one forward pass per step (continuous batching)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--queue", o.scheduler.queue_size,
                  "Requests that may wait for a free slot; beyond that the server answers 503 (retry later)")
      ->check(count_at_least(0))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", args->ctx,
                  "Context: positions one request may use, prompt plus generated tokens (0 = the model's training context)")
      ->check(count_at_least(0))
      ->capture_default_str();
  cmd->add_option("-n,--n-predict", o.defaults.max_tokens, "Tokens generated when a request gives no max_tokens")
      ->capture_default_str();
  cmd->add_option("--timeout", o.defaults.timeout_s,
                  "Seconds a request may take from arrival to its last token (a request's \"timeout\" may only lower it); "
                  "past it the request ends with 504")
      ->capture_default_str();
  cmd->add_option("--chunk", o.scheduler.prefill_chunk,
                  "Prompt tokens a slot reads per step: smaller keeps the other slots' tokens flowing during a long "
                  "prompt, larger reads prompts faster")
      ->check(count_at_least(1))
      ->capture_default_str();
  cmd->add_option("--batch-tokens", o.scheduler.step_tokens,
                  "Tokens one step feeds, all slots together: every decoding slot's next token, then prompt chunks "
                  "oldest request first (smaller: steadier streaming while prompts are read; larger: prompts read faster)")
      ->check(count_at_least(1))
      ->capture_default_str();
  cmd->add_option("--cache-mib", args->cache_mib,
                  "Memory for the prompt cache (compressed states of earlier prompts' prefixes, reused by later "
                  "requests that start the same way); 0 turns it off")
      ->capture_default_str();
  cmd->add_option("--cache-min-tokens", o.scheduler.min_cache_tokens, "Shortest prefix kept in the prompt cache")
      ->check(count_at_least(0))
      ->capture_default_str();
  cmd->add_option("--slot-max-files", o.slot_max_files, "Saved state files the slot folder may hold (a save past it: 507)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--slot-max-mib", args->slot_max_mib, "MiB the slot folder's state files may take in all")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--slot-save-path", o.slot_save_path,
                  "Folder for POST /slots/{id}?action=save|restore state files (unset = save/restore off)");
  cmd->add_option("--alias", o.model_id, "Model name reported by /v1/models and in responses (default: the file name)");
  cmd->add_option("--max-body-kib", args->max_body_kib, "Largest request body accepted, in KiB (larger: 413)")
      ->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads,
                  "Most HTTP connections served at once, each by a thread started when needed (idle and slow "
                  "clients hold one each; beyond this many they wait)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd->add_option("--http-read-timeout", o.read_timeout_s,
                  "Seconds a connection may send nothing (mid-header, mid-body or idle) before it is closed")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  cmd->add_option("--api-key", o.api_key,
                  "Key every request but GET /health must send as 'Authorization: Bearer KEY' (else 401); also "
                  "read from SENTINEL_API_KEY. Unset: no authentication")
      ->envname("SENTINEL_API_KEY");
  cmd->add_flag("--metrics-without-key", o.metrics_without_key,
                "With --api-key, let GET /metrics answer without the key too (for a scraper on a private network)");
  add_compression_options(*cmd, args->compression);
  // add_compression_options describes --compress for one run; here it is the default of requests
  // that send no "compression" object.
  cmd->get_option("--compress")
      ->description("Default compression of requests without a \"compression\" object (" + joined_method_names() +
                    "); each request may choose its own");
  cmd->get_option("--adapter")
      ->description("Adapter for every request (sentinel rows and LoRA): default the shipped one when it belongs to "
                    "the model, so that a request asking for sentinel compression gets trained sentinels; 'none' serves "
                    "the base model (sentinel requests then read with untrained rows)");
  return [args] { return run_serve(*args); };
}

}  // namespace sentinel::cli
