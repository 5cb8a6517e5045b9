// The HTTP front: cpp-httplib routes for the OpenAI-compatible API (docs/server.md). Handler
// threads parse and validate, submit to the Scheduler and answer from the request's Channel
// (JSON, or server-sent events while streaming); they never touch the model.
#pragma once

#include <memory>
#include <string>

#include "sentinel/engine/model_loader.h"
#include "sentinel/server/metrics.h"
#include "sentinel/server/prompt_cache.h"
#include "sentinel/server/request.h"
#include "sentinel/server/scheduler.h"

namespace sentinel::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0 = any free port (printed on stderr)
  std::string model_id;            // the "model" name clients see; default: the file's name
  std::string adapter;             // applied adapter, reported by /v1/models ("" = none)
  std::string slot_save_path;      // folder of /slots save/restore files; "" = disabled
  int64_t slot_max_files = 64;     // state files the folder may hold; a save past it is refused (507)
  int64_t slot_max_bytes = int64_t{4} << 30;  // and bytes
  int64_t max_body_bytes = 8 << 20;
  int http_threads = 512;          // most connections served at once (connection_pool.h)
  int read_timeout_s = 15;         // longest wait for a client's next bytes (header or body)
  std::string api_key;             // "" = open; else every route but /health needs "Bearer <key>"
  bool metrics_without_key = false;  // /metrics answers without the key too (for scrapers)
  int64_t prompt_cache_bytes = 256 << 20;
  ServerDefaults defaults;
  SchedulerOptions scheduler;
};

class HttpServer {
 public:
  // `loaded` must already carry the sentinel rows (and adapter) it serves with.
  HttpServer(LoadedModel& loaded, const ServerOptions& options);
  ~HttpServer();
  // Binds and serves until stop(); prints "listening on http://HOST:PORT" once bound.
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sentinel::server
