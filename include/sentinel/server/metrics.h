// Server counters and gauges, rendered as Prometheus text for GET /metrics. Names follow
// llama-server's (prompt_tokens_total, tokens_predicted_total, requests_processing, ...) under the
// "sentinel:" prefix, plus what compression achieves (KV bytes saved, entries evicted, achieved
// ratio). docs/server.md explains each. Thread-safe: the scheduler updates, HTTP threads read.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace sentinel::server {

struct MetricsValues {
  // counters
  int64_t prompt_tokens_total = 0;         // prompt tokens of finished requests, cached ones included
  int64_t prompt_tokens_evaluated_total = 0;  // prompt tokens actually read by the model
  int64_t prompt_tokens_cached_total = 0;  // prompt tokens resumed from the prompt cache
  int64_t tokens_predicted_total = 0;
  double prompt_seconds_total = 0;         // time spent in steps that read prompt tokens
  double tokens_predicted_seconds_total = 0;  // time spent in steps that decoded
  int64_t n_decode_total = 0;              // forward passes
  int64_t n_busy_slots_total = 0;          // sum over passes of the sequences in the pass
  int64_t requests_total = 0;              // finished (any outcome)
  int64_t requests_failed_total = 0;       // finished with an error (timeouts and internal errors)
  int64_t requests_cancelled_total = 0;    // client went away
  int64_t requests_rejected_total = 0;     // refused with 503 (queue full)
  int64_t kv_entries_evicted_total = 0;    // cells dropped by compression, finished requests
  int64_t kv_bytes_saved_total = 0;        // at each request's end: full-cache bytes - bytes held, summed
  int64_t compressed_tokens_total = 0;     // ordinary tokens of finished compressed requests
  int64_t compressed_cells_total = 0;      // cells those requests held at their end
  // gauges
  int64_t requests_processing = 0;         // in a slot
  int64_t requests_deferred = 0;           // queued
  int64_t kv_cache_tokens = 0;             // cells held by the busy slots
  int64_t kv_cache_bytes = 0;              // their K/V bytes
  int64_t kv_cache_full_bytes = 0;         // what full caches of the same sequences would hold
  int64_t kv_cache_capacity_tokens = 0;    // n_parallel * n_ctx
  int64_t prompt_cache_bytes = 0;
  int64_t prompt_cache_entries = 0;
};

class Metrics {
 public:
  template <typename F>
  void update(F&& f) {
    std::lock_guard lock(mutex_);
    f(values_);
  }
  MetricsValues snapshot() const {
    std::lock_guard lock(mutex_);
    return values_;
  }

 private:
  mutable std::mutex mutex_;
  MetricsValues values_;
};

// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const MetricsValues& v);

}  // namespace sentinel::server
