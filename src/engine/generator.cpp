// Generation loop. Stop strings are matched on the decoded text; text that might be the start
// of a stop string is held back so a stop string is never streamed.
#include "sentinel/engine/generator.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "sentinel/core/error.h"
#include "sentinel/engine/session.h"

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

namespace {
const GenerationOptions& validated(const GenerationOptions& options) {
  options.validate();
  return options;
}
}  // namespace

Generation::Generation(const Tokenizer& tokenizer, std::span<const int32_t> prompt, const GenerationOptions& options)
    : options_(validated(options)),
      stop_ids_(options.stop_at_eos ? tokenizer.stop_ids() : std::vector<int32_t>{}),
      history_(prompt.begin(), prompt.end()),
      sampler_(options.sampling),
      decoder_(tokenizer) {
  check(!prompt.empty(), "the prompt is empty: give at least one token");
  result_.n_prompt = static_cast<int64_t>(prompt.size());
  done_ = options.max_tokens == 0;
}

void Generation::finish(StopReason reason, bool flush) {
  result_.stop_reason = reason;
  if (flush) pending_ += decoder_.flush();
  result_.text += pending_;
  ready_ += pending_;
  pending_.clear();
  done_ = true;
}

std::optional<int32_t> Generation::next_token(const at::Tensor& logits) {
  check(!done_, "the generation has ended (", stop_reason_name(result_.stop_reason), "); start a new one");
  const int32_t next = sampler_.sample(logits, history_);
  if (std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end()) {
    finish(StopReason::Eos, /*flush=*/true);
    return std::nullopt;
  }
  result_.tokens.push_back(next);
  if (options_.logprobs) result_.logprobs.push_back(logits.to(at::kFloat).log_softmax(-1)[next].item<float>());
  history_.push_back(next);
  pending_ += decoder_.push(next);
  // A stop string may now be complete: the text ends before it.
  bool stopped = false;
  for (const auto& stop : options_.stop_strings) {
    if (size_t at = pending_.find(stop); at != std::string::npos) {
      pending_.resize(at);
      stopped = true;
    }
  }
  if (stopped) {
    finish(StopReason::StopString, /*flush=*/false);
    return std::nullopt;
  }
  const size_t hold = held_back_length(pending_, options_.stop_strings);
  const std::string_view final_text = std::string_view(pending_).substr(0, pending_.size() - hold);
  result_.text += final_text;
  ready_ += final_text;
  pending_.erase(0, pending_.size() - hold);
  if (static_cast<int64_t>(result_.tokens.size()) >= options_.max_tokens) {
    finish(StopReason::MaxTokens, /*flush=*/true);
    return std::nullopt;
  }
  return next;
}

std::string Generation::take_text() { return std::exchange(ready_, std::string()); }

void Generation::cancel() {
  result_.stop_reason = StopReason::Cancelled;
  pending_.clear();
  ready_.clear();
  done_ = true;
}

GenerationResult generate(Session& session, const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TextCallback& on_text) {
  Generation generation(tokenizer, prompt, options);
  GenerationResult& result = generation.result();
  const auto t0 = Clock::now();
  at::Tensor logits = session.append(prompt, Logits::Last, options.prefill_chunk);
  result.prefill_seconds = seconds_since(t0);
  while (!generation.done()) {
    const auto step_start = Clock::now();  // a step: sample, then feed what was sampled
    const std::optional<int32_t> next = generation.next_token(logits);
    const double sampling_seconds = seconds_since(step_start);
    // The text of a step that ended the generation is its last: the caller can no longer stop it.
    if (const std::string text = generation.take_text(); !text.empty() && on_text && !on_text(text) && next) {
      generation.cancel();
      break;
    }
    if (!next) break;
    const int32_t one[] = {*next};
    const auto feed_start = Clock::now();
    logits = session.append(one, Logits::Last);
    result.decode_seconds += sampling_seconds + seconds_since(feed_start);
    ++result.decode_steps;
  }
  return std::move(result);
}

}  // namespace sentinel
