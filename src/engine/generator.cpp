// Generation loop. Stop strings are matched on the decoded text; text that might be the start
// of a stop string is held back so a stop string is never streamed.
#include "sentinel/engine/generator.h"

#include <algorithm>
#include <chrono>

#include "sentinel/core/error.h"
#include "sentinel/engine/session.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

size_t held_back_length(std::string_view text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& stop : stops) {
    for (size_t n = std::min(stop.size() - 1, text.size()); n > hold; --n) {
      if (text.substr(text.size() - n) == std::string_view(stop).substr(0, n)) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

void GenerationOptions::validate() const {
  check(max_tokens >= 0, "max_tokens must be >= 0, got ", max_tokens);
  check(prefill_chunk > 0, "prefill chunk must be > 0, got ", prefill_chunk);
  for (const auto& s : stop_strings) check(!s.empty(), "stop strings must not be empty");
  sampling.validate();
}

std::string stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Eos: return "eos";
    case StopReason::StopString: return "stop_string";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::Cancelled: return "cancelled";
  }
  return "unknown";
}

GenerationResult generate(Session& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TextCallback& on_text) {
  options.validate();
  check(!prompt.empty(), "the prompt is empty: give at least one token");
  GenerationResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  const std::vector<int32_t> stop_ids = options.stop_at_eos ? tokenizer.stop_ids() : std::vector<int32_t>{};
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  Sampler sampler(options.sampling);
  StreamDecoder decoder(tokenizer);
  std::string pending;  // decoded but not yet emitted (could start a stop string)
  auto emit = [&](std::string_view piece) {
    result.text += piece;
    return !on_text || piece.empty() || on_text(piece);
  };

  const auto t0 = Clock::now();
  at::Tensor logits = session.append(prompt, Logits::Last, options.prefill_chunk);
  result.prefill_seconds = seconds_since(t0);
  bool done = options.max_tokens == 0;
  while (!done) {
    const auto step_start = Clock::now();  // a step: sample, then feed what was sampled
    const int32_t next = sampler.sample(logits, history);
    const double sampling_seconds = seconds_since(step_start);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
      result.stop_reason = StopReason::Eos;
      break;
    }
    result.tokens.push_back(next);
    history.push_back(next);
    pending += decoder.push(next);
    // A stop string may now be complete.
    for (const auto& stop : options.stop_strings) {
      if (size_t at = pending.find(stop); at != std::string::npos) {
        pending.resize(at);
        result.stop_reason = StopReason::StopString;
        done = true;
      }
    }
    if (done) break;
    const size_t hold = held_back_length(pending, options.stop_strings);
    if (!emit(std::string_view(pending).substr(0, pending.size() - hold))) {
      pending.clear();
      result.stop_reason = StopReason::Cancelled;
      break;
    }
    pending.erase(0, pending.size() - hold);
    if (static_cast<int64_t>(result.tokens.size()) >= options.max_tokens) {
      result.stop_reason = StopReason::MaxTokens;
      break;
    }
    const int32_t one[] = {next};
    const auto feed_start = Clock::now();
    logits = session.append(one, Logits::Last);
    result.decode_seconds += sampling_seconds + seconds_since(feed_start);
    ++result.decode_steps;
  }
  if (result.stop_reason != StopReason::Cancelled) {
    if (result.stop_reason != StopReason::StopString) pending += decoder.flush();
    emit(pending);
  }
  return result;
}

}  // namespace sentinel
