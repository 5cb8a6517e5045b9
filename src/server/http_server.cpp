// Routes. Every handler runs inside answer(), which turns any exception into the one error shape
// (errors.h); generation handlers validate everything before submitting, then wait on the
// request's Channel. A streaming client that goes away cancels its slot at the next write.
#include "sentinel/server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/policies/separators.h"
#include "sentinel/server/connection_pool.h"
#include "sentinel/server/errors.h"
#include "sentinel/server/responses.h"
#include "sentinel/server/state_file.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::server {
namespace {

using nlohmann::json;

// JSON out: bytes that are not UTF-8 (never expected, since text is decoded with replacement) are
// replaced rather than thrown on mid-response.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ErrorReply& e) { send_json(res, e.status, e.body); }

template <typename F>
void answer(httplib::Response& res, F&& handler) {
  try {
    handler();
  } catch (...) {
    send_error(res, map_exception(std::current_exception()));
  }
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%s-%llx%06llx", prefix, static_cast<unsigned long long>(unix_now()),
                static_cast<unsigned long long>(++counter));
  return buffer;
}

}  // namespace

struct HttpServer::Impl {
  LoadedModel& loaded;
  ServerOptions options;
  Metrics metrics;
  PromptCache prompt_cache;
  std::string fingerprint;
  int32_t cl_id = -1, cr_id = -1;
  std::vector<int32_t> separators;  // sepllm's, from the tokenizer (separators.h)
  std::unique_ptr<Scheduler> scheduler;
  httplib::Server http;

  Impl(LoadedModel& model, const ServerOptions& o)
      : loaded(model), options(o), prompt_cache(o.prompt_cache_bytes), fingerprint(model_fingerprint(model.model)) {
    if (model.model->n_extra_tokens() > 0) {
      const SentinelTokens t = sentinel_tokens(model.config);
      cl_id = t.cl;
      cr_id = t.cr;
    }
    separators = separator_ids(*model.tokenizer);
    options.scheduler.n_ctx = options.defaults.n_ctx;
    options.scheduler.saves_slots = !options.slot_save_path.empty();
    scheduler = std::make_unique<Scheduler>(loaded, options.scheduler, prompt_cache, metrics);
    routes();
  }

  std::string model_id() const { return options.model_id.empty() ? loaded.name : options.model_id; }

  // Parses, validates, tokenizes and queues; throws before queueing on any bad input.
  std::pair<Job, std::shared_ptr<Channel>> submit(Endpoint endpoint, const httplib::Request& req) {
    const json body = parse_json_body(req.body);
    GenerationRequest r = parse_generation_request(endpoint, body, options.defaults);
    if (r.compression.method == "sentinel" && cl_id < 0)
      throw HttpError(400, "sentinel compression is not available: the server runs without sentinel rows");
    Job job;
    job.prompt = prepare_prompt(r, *loaded.tokenizer, options.defaults, cl_id, cr_id);
    if (job.prompt.policy.method == Method::SepLLM) job.prompt.policy.separators = separators;
    const int64_t room = options.defaults.n_ctx - static_cast<int64_t>(job.prompt.tokens.size());
    if (r.max_tokens > room) {
      check(!r.max_tokens_given, "max_tokens ", r.max_tokens, " does not fit: the prompt has ", job.prompt.tokens.size(),
            " tokens and the context holds ", options.defaults.n_ctx, "; ask for at most ", room);
      r.max_tokens = room;
    }
    job.request = std::move(r);
    job.arrival = Clock::now();
    job.deadline = job.arrival + std::chrono::microseconds(static_cast<int64_t>(job.request.timeout_s * 1e6));
    Job copy_for_reply;
    copy_for_reply.request = job.request;
    copy_for_reply.prompt.tokens = job.prompt.tokens;
    auto channel = scheduler->submit(std::move(job));
    return {std::move(copy_for_reply), channel};
  }

  std::string prompt_text(const Job& job) const {
    std::string text;
    for (const auto& s : job.request.segments) text += s.ids.empty() ? s.text : loaded.tokenizer->decode(s.ids);
    return text;
  }

  void generate(Endpoint endpoint, const httplib::Request& req, httplib::Response& res) {
    auto [job, channel] = submit(endpoint, req);
    ResponseContext ctx{new_id(endpoint == Endpoint::Chat ? "chatcmpl" : "cmpl"), model_id(), unix_now(),
                        loaded.tokenizer.get()};
    const GenerationRequest& r = job.request;
    if (!r.stream) {
      std::string text;
      std::vector<TokenLogprob> logprobs;
      std::vector<Delta> deltas;
      std::optional<Outcome> outcome;
      while (!channel->pop(deltas, outcome, std::chrono::milliseconds(1000))) {}
      for (auto& d : deltas) {
        text += d.text;
        logprobs.insert(logprobs.end(), d.logprobs.begin(), d.logprobs.end());
      }
      if (outcome->error) return send_error(res, *outcome->error);
      send_json(res, 200,
                endpoint == Endpoint::Chat ? chat_response(ctx, r, text, logprobs, *outcome)
                                           : completion_response(ctx, r, prompt_text(job), text, logprobs, *outcome));
      return;
    }
    // Server-sent events: "data: {json}\n\n" per chunk, "data: [DONE]\n\n" at the end.
    struct StreamState {
      bool first = true;
      bool done = false;
    };
    auto state = std::make_shared<StreamState>();
    const std::string echo = endpoint == Endpoint::Completion && r.echo ? prompt_text(job) : "";
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, endpoint, ctx, r, channel, state, echo](size_t, httplib::DataSink& sink) {
          auto send = [&](const json& chunk) {
            const std::string line = "data: " + dump(chunk) + "\n\n";
            return sink.write(line.data(), line.size());
          };
          std::vector<Delta> deltas;
          std::optional<Outcome> outcome;
          const bool finished = channel->pop(deltas, outcome, std::chrono::milliseconds(200));
          if (state->first && endpoint == Endpoint::Chat && (deltas.size() > 0 || finished)) {
            if (!finished || !outcome->error) {
              if (!send(chat_chunk(ctx, r, nullptr, true, nullptr))) return channel->cancel(), false;
            }
            state->first = false;
          }
          if (state->first && endpoint == Endpoint::Completion && !echo.empty() && (deltas.size() > 0 || finished)) {
            // The echoed prompt arrives with the first chunk (its logprobs once prefill is done).
            if (!finished || !outcome->error) {
              const std::vector<TokenLogprob> none;
              if (!send(completion_chunk(ctx, r, echo, finished ? outcome->prompt_logprobs : none, nullptr)))
                return channel->cancel(), false;
            }
            state->first = false;
          }
          for (const auto& d : deltas) {
            const json chunk = endpoint == Endpoint::Chat ? chat_chunk(ctx, r, &d, false, nullptr)
                                                          : completion_chunk(ctx, r, d.text, d.logprobs, nullptr);
            if (!send(chunk)) return channel->cancel(), false;  // the client went away
          }
          if (!finished) {
            // Nothing new: an SSE comment keeps the connection checked, so a client that left is
            // noticed (the write fails) even while its prompt is still being read.
            static const std::string ping = ": ping\n\n";
            if (deltas.empty() && !sink.write(ping.data(), ping.size())) return channel->cancel(), false;
            return true;
          }
          if (outcome->error) {
            send(outcome->error->body);
          } else {
            const json last = endpoint == Endpoint::Chat ? chat_chunk(ctx, r, nullptr, false, &*outcome)
                                                         : completion_chunk(ctx, r, "", {}, &*outcome);
            send(last);
            if (r.include_usage) send(usage_chunk(ctx, r, *outcome));
          }
          static const std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          state->done = true;
          return true;
        },
        [channel, state](bool success) {
          if (!success || !state->done) channel->cancel();
        });
  }

  std::string slot_file(const json& body) const {
    if (options.slot_save_path.empty())
      throw HttpError(400, "slot save/restore is off; start the server with --slot-save-path FOLDER");
    check(body.contains("filename") && body["filename"].is_string(),
          "field 'filename' is required: a file name inside --slot-save-path");
    const std::string name = body["filename"].get<std::string>();
    check(!name.empty() && name.size() <= 255 && name.find('/') == std::string::npos && name.find('\\') == std::string::npos &&
              name != "." && name != "..",
          "field 'filename' must be a plain file name (no folders), got '", name, "'");
    const std::filesystem::path path = std::filesystem::path(options.slot_save_path) / name;
    // A link in the folder could point anywhere on the server: neither read nor replaced.
    check(!std::filesystem::is_symlink(std::filesystem::symlink_status(path)), "'", name,
          "' in --slot-save-path is a symbolic link; slot files are plain files");
    return path.string();
  }

  // A save may add at most what the quota leaves: files and bytes in the folder (the file it
  // replaces does not count).
  void check_slot_quota(const std::string& path, int64_t new_bytes) const {
    int64_t files = 0, bytes = 0;
    for (const auto& entry : std::filesystem::directory_iterator(options.slot_save_path)) {
      if (entry.is_symlink() || !entry.is_regular_file() || entry.path() == path) continue;
      ++files;
      bytes += static_cast<int64_t>(entry.file_size());
    }
    if (files + 1 > options.slot_max_files || bytes + new_bytes > options.slot_max_bytes)
      throw HttpError(507, "the slot folder is full (" + std::to_string(files) + " files, " +
                               std::to_string(bytes >> 20) + " MiB; this save needs " + std::to_string(new_bytes >> 20) +
                               " MiB more): delete saved states, or raise --slot-max-files / --slot-max-mib");
  }

  void routes() {
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] { generate(Endpoint::Chat, q, s); });
    });
    http.Post("/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] { generate(Endpoint::Chat, q, s); });
    });
    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] { generate(Endpoint::Completion, q, s); });
    });
    http.Post("/completions", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] { generate(Endpoint::Completion, q, s); });
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& s) { send_json(s, 200, {{"status", "ok"}}); });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& s) {
      json meta = {{"n_ctx", options.defaults.n_ctx},
                   {"n_vocab", loaded.config.n_vocab},
                   {"n_parallel", options.scheduler.n_parallel},
                   {"fingerprint", fingerprint},
                   {"adapter", std::filesystem::path(options.adapter).filename().string()},  // no server paths
                   {"sentinel_compression", cl_id >= 0},
                   {"engine", loaded.model->backend_description()}};
      send_json(s, 200,
                {{"object", "list"},
                 {"data", json::array({{{"id", model_id()}, {"object", "model"}, {"created", unix_now()},
                                        {"owned_by", "sentinel"}, {"meta", meta}}})}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& s) {
      s.set_content(render_prometheus(metrics.snapshot()), "text/plain; version=0.0.4");
    });
    http.Post("/tokenize", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] {
        const json body = parse_json_body(q.body);
        check(body.contains("content") && body["content"].is_string(), "field 'content' is required: the text to tokenize");
        for (const auto& [key, value] : body.items())
          check(key == "content" || key == "add_special" || key == "with_pieces", "unknown field '", key,
                "' (accepted: content, add_special, with_pieces)");
        const bool add_special = body.value("add_special", false);
        const bool with_pieces = body.value("with_pieces", false);
        const auto ids = loaded.tokenizer->encode(body["content"].get<std::string>(), add_special, SpecialTokens::Parse);
        json tokens = json::array();
        for (int32_t id : ids) {
          if (with_pieces)
            tokens.push_back({{"id", id}, {"piece", unicode::replace_invalid_utf8(loaded.tokenizer->token_bytes(id))}});
          else
            tokens.push_back(id);
        }
        send_json(s, 200, {{"tokens", tokens}});
      });
    });
    http.Post("/detokenize", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] {
        const json body = parse_json_body(q.body);
        check(body.contains("tokens") && body["tokens"].is_array(), "field 'tokens' is required: an array of token ids");
        std::vector<int32_t> ids;
        for (const auto& t : body["tokens"]) {
          check(t.is_number_integer() && t.get<int64_t>() >= 0 && t.get<int64_t>() < loaded.tokenizer->n_vocab(),
                "field 'tokens' holds ", t.dump(), "; token ids are integers in [0, ", loaded.tokenizer->n_vocab(), ")");
          ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
        }
        send_json(s, 200, {{"content", unicode::replace_invalid_utf8(loaded.tokenizer->decode(ids))}});
      });
    });
    http.Get("/slots", [this](const httplib::Request&, httplib::Response& s) {
      answer(s, [&] { send_json(s, 200, scheduler->run_on_scheduler([this] { return scheduler->slots_json(); })); });
    });
    http.Post(R"(/slots/([^/]+))", [this](const httplib::Request& q, httplib::Response& s) {
      answer(s, [&] { slot_action(q, s); });
    });
    http.set_pre_routing_handler([this](const httplib::Request& q, httplib::Response& s) {
      if (authorized(q)) return httplib::Server::HandlerResponse::Unhandled;
      send_error(s, error_reply(401, "this server needs an API key: send the header 'Authorization: Bearer <key>' "
                                     "with the key it was started with (--api-key or SENTINEL_API_KEY)"));
      return httplib::Server::HandlerResponse::Handled;
    });
    http.set_error_handler([this](const httplib::Request& q, httplib::Response& s) {
      if (!s.body.empty()) return;
      if (s.status == 413)
        send_error(s, error_reply(413, "the request body is larger than the server's limit of " +
                                           std::to_string(options.max_body_bytes) + " bytes (--max-body-kib)"));
      else if (s.status == 404)
        send_error(s, error_reply(404, "no route " + q.method + " " + q.path +
                                           "; see docs/server.md for the endpoints"));
      else
        send_error(s, error_reply(s.status, "HTTP error " + std::to_string(s.status)));
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& s, std::exception_ptr e) {
      send_error(s, map_exception(e));
    });
  }

  // Every route but /health (and /metrics when configured) needs the key, as llama-server's
  // --api-key. Compared in constant time: the time to refuse says nothing about the key.
  bool authorized(const httplib::Request& q) const {
    if (options.api_key.empty() || q.path == "/health") return true;
    if (q.path == "/metrics" && options.metrics_without_key) return true;
    const std::string expected = "Bearer " + options.api_key;
    const std::string given = q.get_header_value("Authorization");
    unsigned char differ = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) differ |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
    return differ == 0;
  }

  void slot_action(const httplib::Request& q, httplib::Response& s) {
    const std::string id_text = q.matches[1];
    int id = -1;
    try {
      size_t used = 0;
      id = std::stoi(id_text, &used);
      check(used == id_text.size(), "");
    } catch (...) {
      throw HttpError(400, "slot id '" + id_text + "' is not a number");
    }
    check(q.has_param("action"), "query parameter 'action' is required: ?action=save or ?action=restore");
    const std::string action = q.get_param_value("action");
    const json body = parse_json_body(q.body);
    const std::string path = slot_file(body);
    try {
      save_or_restore(id, action, body, path, s);
    } catch (const HttpError&) {
      throw;
    } catch (const Error& e) {
      // State-file messages name the file by its path on the server: answer with its name only.
      std::string message = e.what();
      for (size_t at; (at = message.find(path)) != std::string::npos;)
        message.replace(at, path.size(), body["filename"].get<std::string>());
      throw Error(message);
    }
  }

  void save_or_restore(int id, const std::string& action, const json& body, const std::string& path,
                       httplib::Response& s) {
    const StateFileInfo info{fingerprint, loaded.name};
    const auto t0 = Clock::now();
    if (action == "save") {
      std::vector<SessionState> states;  // the session, then its checkpoint (state_file.h)
      scheduler->run_on_scheduler([&] {
        states = scheduler->capture_slot(id);
        return json();
      });
      int64_t state_bytes = 0;
      for (const SessionState& state : states) state_bytes += state.bytes();
      check_slot_quota(path, state_bytes);
      const int64_t bytes = save_state_file(path, states, info);
      send_json(s, 200, {{"id_slot", id}, {"filename", body["filename"]}, {"n_saved", states[0].tokens.size()},
                         {"n_checkpoints", states.size() - 1}, {"n_written", bytes},
                         {"kv_entries", states[0].cells.size()},
                         {"timings", {{"save_ms", std::chrono::duration<double, std::milli>(Clock::now() - t0).count()}}}});
    } else if (action == "restore") {
      if (id < 0 || id >= scheduler->n_parallel())
        throw HttpError(400, "slot " + std::to_string(id) + " does not exist; slots are 0.." +
                                 std::to_string(scheduler->n_parallel() - 1));
      check(std::filesystem::exists(path), "no saved state '", body["filename"].get<std::string>(), "' in --slot-save-path");
      std::vector<SessionState> states = load_state_records(path, info);
      const auto n_tokens = states[0].tokens.size();
      const auto n_cells = states[0].cells.size();
      const auto n_checkpoints = states.size() - 1;
      // The restored states join the prompt cache: the next request whose prompt starts with the
      // tokens of one (under the same compression) continues from the longest, whatever slot serves it.
      for (SessionState& state : states) prompt_cache.insert(std::make_shared<SessionState>(std::move(state)));
      send_json(s, 200, {{"id_slot", id}, {"filename", body["filename"]}, {"n_restored", n_tokens},
                         {"n_checkpoints", n_checkpoints}, {"n_read", std::filesystem::file_size(path)},
                         {"kv_entries", n_cells},
                         {"timings", {{"restore_ms", std::chrono::duration<double, std::milli>(Clock::now() - t0).count()}}}});
    } else {
      throw HttpError(400, "action '" + action + "' is not supported; use save or restore");
    }
  }
};

HttpServer::HttpServer(LoadedModel& loaded, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(loaded, options)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::run() {
  auto& http = impl_->http;
  const ServerOptions& o = impl_->options;
  http.set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
  http.set_read_timeout(o.read_timeout_s, 0);
  http.set_write_timeout(30, 0);
  // Threads grow with the connections, so clients that connect and go quiet hold a thread each
  // (for at most the read timeout), not the service of everyone else.
  const auto max_threads = static_cast<size_t>(o.http_threads);
  http.new_task_queue = [max_threads] {
    return new ConnectionPool(std::min<size_t>(8, max_threads), max_threads, std::chrono::seconds(10));
  };
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second server on the
  // same port starts and the kernel splits the connections between the two.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int port = o.port;
  if (port == 0) {
    port = http.bind_to_any_port(o.host);
    check(port > 0, "cannot bind to any port on ", o.host);
  } else {
    check(http.bind_to_port(o.host, port), "cannot listen on ", o.host, ":", port,
          " (in use? pick another --port, or 0 for any free one)");
  }
  std::fprintf(stderr, "listening on http://%s:%d (%d slots, queue %lld, context %lld)\n", o.host.c_str(), port,
               o.scheduler.n_parallel, static_cast<long long>(o.scheduler.queue_size),
               static_cast<long long>(o.defaults.n_ctx));
  std::fflush(stderr);
  check(http.listen_after_bind(), "the HTTP server stopped with an error");
}

void HttpServer::stop() {
  if (impl_) impl_->http.stop();
}

}  // namespace sentinel::server
