// The scheduler: --parallel slots decoded together, one forward pass per step (continuous
// batching: a request joins a free slot and leaves it between steps), a bounded queue behind
// them, prompt-cache reuse, cancellation and deadlines. The model runs on this class's one
// thread only (the engine is not re-entrant); HTTP threads submit jobs and read their Channel.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sentinel/engine/model_loader.h"
#include "sentinel/server/errors.h"
#include "sentinel/server/metrics.h"
#include "sentinel/server/prompt_cache.h"
#include "sentinel/server/request.h"

namespace sentinel::server {

using Clock = std::chrono::steady_clock;

// One token's log-probability and the most likely alternatives (OpenAI logprobs).
struct TokenLogprob {
  int32_t id = 0;
  std::string bytes;   // the token's raw bytes
  double logprob = 0;  // natural log, under the model's distribution (before temperature)
  std::vector<std::pair<int32_t, double>> top;  // [top_logprobs] (id, logprob), most likely first
  bool has_logprob = true;  // false for the first prompt token (nothing predicts it)
};

// A piece of the answer as it is produced.
struct Delta {
  std::string text;
  std::vector<TokenLogprob> logprobs;  // the tokens behind `text` when logprobs were asked
};

// How a request ended.
struct Outcome {
  std::string finish_reason = "stop";  // stop, length, cancelled
  int64_t n_prompt = 0;
  int64_t n_cached = 0;     // prompt tokens resumed from the prompt cache
  int64_t n_generated = 0;
  CompressionStats stats;
  PolicyOptions policy;
  int64_t kv_bytes = 0;      // K/V bytes held at the end: in the global layers + the sliding-window ones
  int64_t kv_bytes_global = 0, kv_bytes_window = 0;
  int64_t kv_bytes_full = 0; // what a full cache of the same tokens would hold
  int64_t n_spans = 0;       // explicit spans (caller-marked) compressed
  std::vector<TokenLogprob> prompt_logprobs;  // echo with logprobs: one per prompt token
  double queued_ms = 0, prompt_ms = 0, predicted_ms = 0;
  int slot = -1;
  std::optional<ErrorReply> error;  // set when the request failed
};

// The per-request link between the scheduler thread and the HTTP thread serving it.
class Channel {
 public:
  void push(Delta delta);
  void finish(Outcome outcome);
  // Waits up to `wait` for deltas or the outcome; moves out what arrived. Returns true once the
  // outcome is there (after the last delta).
  bool pop(std::vector<Delta>& deltas, std::optional<Outcome>& outcome, std::chrono::milliseconds wait);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Delta> deltas_;
  std::optional<Outcome> outcome_;
  std::atomic<bool> cancelled_{false};
};

struct Job {
  GenerationRequest request;
  PreparedPrompt prompt;
  std::shared_ptr<Channel> channel;
  Clock::time_point arrival;
  Clock::time_point deadline;
};

struct SchedulerOptions {
  int n_parallel = 4;             // slots decoded together
  int64_t queue_size = 64;        // jobs waiting for a slot; more -> 503
  int64_t prefill_chunk = 256;    // prompt tokens one slot reads per step at most
  int64_t step_tokens = 512;      // tokens of one step, all slots together (decode tokens first); bounds a step's latency
  int64_t min_cache_tokens = 32;  // shortest prefix worth keeping in the prompt cache
  bool saves_slots = false;       // /slots saves are enabled: compressed prompts keep a checkpoint for them
  int64_t n_ctx = 8192;
};

class Scheduler {
 public:
  Scheduler(LoadedModel& model, const SchedulerOptions& options, PromptCache& cache, Metrics& metrics);
  ~Scheduler();  // stops the thread; queued and running jobs end with 503
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a validated job; throws HttpError 503 when the queue is full.
  std::shared_ptr<Channel> submit(Job job);
  // Runs `task` on the scheduler thread between steps (it may touch the slots' sessions) and
  // waits for its result; exceptions travel back to the caller.
  nlohmann::json run_on_scheduler(std::function<nlohmann::json()> task);

  // For /slots: each slot's state. Call through run_on_scheduler.
  nlohmann::json slots_json() const;
  // The state of slot `id`'s last sequence (tokens read, cache), for /slots/{id}?action=save, then
  // its checkpoint when it has one (state_file.h). Throws HttpError 400 when the slot is busy or
  // has none. Call through run_on_scheduler.
  std::vector<SessionState> capture_slot(int id);
  int n_parallel() const { return options_.n_parallel; }

 private:
  struct Slot;
  void loop();
  void admit(Slot& slot, Job job);
  // Where a request's prefill stops to capture its checkpoint (Slot::checkpoint): all but the
  // prompt's last token, for a compressed prompt worth caching; -1 for none.
  int64_t checkpoint_at(const GenerationRequest& request, const PreparedPrompt& prompt) const;
  void step();
  void finish(Slot& slot, std::optional<ErrorReply> error = std::nullopt, const std::string& reason = "");
  void publish_gauges();

  LoadedModel& loaded_;
  SchedulerOptions options_;
  PromptCache& cache_;
  Metrics& metrics_;
  std::vector<int32_t> stop_ids_;
  std::vector<std::unique_ptr<Slot>> slots_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::atomic<int> n_busy_{0};  // slots processing a request (read by submit's admission check)
  std::thread thread_;
};

}  // namespace sentinel::server
