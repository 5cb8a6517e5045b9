// Prometheus text rendering of the server metrics (# HELP, # TYPE, value per line).
#include "sentinel/server/metrics.h"

#include <sstream>

namespace sentinel::server {
namespace {

void metric(std::ostringstream& out, const char* name, const char* type, const char* help, double value) {
  out << "# HELP sentinel:" << name << ' ' << help << "\n# TYPE sentinel:" << name << ' ' << type << "\nsentinel:" << name
      << ' ' << value << '\n';
}

}  // namespace

std::string render_prometheus(const MetricsValues& v) {
  std::ostringstream out;
  out.precision(10);
  metric(out, "prompt_tokens_total", "counter", "Prompt tokens of finished requests (cached ones included).",
         static_cast<double>(v.prompt_tokens_total));
  metric(out, "prompt_tokens_evaluated_total", "counter", "Prompt tokens read by the model.",
         static_cast<double>(v.prompt_tokens_evaluated_total));
  metric(out, "prompt_tokens_cached_total", "counter", "Prompt tokens resumed from the prompt cache.",
         static_cast<double>(v.prompt_tokens_cached_total));
  metric(out, "prompt_seconds_total", "counter", "Prompt processing time.", v.prompt_seconds_total);
  metric(out, "tokens_predicted_total", "counter", "Generated tokens.", static_cast<double>(v.tokens_predicted_total));
  metric(out, "tokens_predicted_seconds_total", "counter", "Generation time.", v.tokens_predicted_seconds_total);
  metric(out, "prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.",
         v.prompt_seconds_total > 0 ? static_cast<double>(v.prompt_tokens_evaluated_total) / v.prompt_seconds_total : 0);
  metric(out, "predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.",
         v.tokens_predicted_seconds_total > 0 ? static_cast<double>(v.tokens_predicted_total) / v.tokens_predicted_seconds_total
                                              : 0);
  metric(out, "n_decode_total", "counter", "Forward passes (one per scheduler step).", static_cast<double>(v.n_decode_total));
  metric(out, "n_busy_slots_per_decode", "gauge", "Average sequences per forward pass.",
         v.n_decode_total > 0 ? static_cast<double>(v.n_busy_slots_total) / static_cast<double>(v.n_decode_total) : 0);
  metric(out, "requests_total", "counter", "Finished requests, any outcome.", static_cast<double>(v.requests_total));
  metric(out, "requests_failed_total", "counter", "Requests ended by an error or a timeout.",
         static_cast<double>(v.requests_failed_total));
  metric(out, "requests_cancelled_total", "counter", "Requests whose client disconnected.",
         static_cast<double>(v.requests_cancelled_total));
  metric(out, "requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.",
         static_cast<double>(v.requests_rejected_total));
  metric(out, "requests_processing", "gauge", "Requests in a slot.", static_cast<double>(v.requests_processing));
  metric(out, "requests_deferred", "gauge", "Requests waiting in the queue.", static_cast<double>(v.requests_deferred));
  metric(out, "kv_cache_tokens", "gauge", "KV cells held by the busy slots.", static_cast<double>(v.kv_cache_tokens));
  metric(out, "kv_cache_usage_ratio", "gauge", "KV cells held / (parallel slots x context).",
         v.kv_cache_capacity_tokens > 0 ? static_cast<double>(v.kv_cache_tokens) / static_cast<double>(v.kv_cache_capacity_tokens)
                                        : 0);
  metric(out, "kv_cache_bytes", "gauge", "K/V bytes held by the busy slots.", static_cast<double>(v.kv_cache_bytes));
  metric(out, "kv_bytes_saved", "gauge", "K/V bytes the busy slots do not hold thanks to compression.",
         static_cast<double>(v.kv_cache_full_bytes - v.kv_cache_bytes));
  metric(out, "kv_bytes_saved_total", "counter",
         "Sum over finished requests of the K/V bytes compression saved at their end.",
         static_cast<double>(v.kv_bytes_saved_total));
  metric(out, "kv_entries_evicted_total", "counter", "KV cells evicted by compression in finished requests.",
         static_cast<double>(v.kv_entries_evicted_total));
  metric(out, "achieved_ratio", "gauge",
         "1 - cells held / tokens read, over all finished compressed requests (the fraction of the cache removed).",
         v.compressed_tokens_total > 0
             ? 1.0 - static_cast<double>(v.compressed_cells_total) / static_cast<double>(v.compressed_tokens_total)
             : 0);
  metric(out, "prompt_cache_bytes", "gauge", "Bytes held by the prompt cache.", static_cast<double>(v.prompt_cache_bytes));
  metric(out, "prompt_cache_entries", "gauge", "States held by the prompt cache.",
         static_cast<double>(v.prompt_cache_entries));
  return out.str();
}

}  // namespace sentinel::server
