// The scheduler thread: admit queued jobs into free slots, build one batch of every busy slot's
// next tokens (a prompt chunk, or the last sampled token), advance them in one append_batch pass,
// then sample, stream and retire. Errors inside a pass fail only the requests of that pass.
#include "sentinel/server/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "sentinel/core/error.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/sampler.h"
#include "sentinel/engine/session.h"
#include "sentinel/server/session_capture.h"

namespace sentinel::server {
namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}


// logits: [n_vocab] float32 -> the token's log-probability and the `top` most likely tokens.
TokenLogprob score_token(const at::Tensor& logits, int32_t id, int64_t top, const Tokenizer& tokenizer) {
  const at::Tensor log_p = logits.to(at::kFloat).log_softmax(-1);  // [n_vocab]
  TokenLogprob out;
  out.id = id;
  out.bytes = tokenizer.token_bytes(id);
  out.logprob = log_p[id].item<double>();
  if (top > 0) {
    const auto [values, indices] = log_p.topk(top);
    const float* v = values.data_ptr<float>();
    const int64_t* ix = indices.data_ptr<int64_t>();
    for (int64_t i = 0; i < top; ++i) out.top.emplace_back(static_cast<int32_t>(ix[i]), v[i]);
  }
  return out;
}

}  // namespace

// ---- Channel ----

void Channel::push(Delta delta) {
  {
    std::lock_guard lock(mutex_);
    deltas_.push_back(std::move(delta));
  }
  ready_.notify_all();
}

void Channel::finish(Outcome outcome) {
  {
    std::lock_guard lock(mutex_);
    outcome_ = std::move(outcome);
  }
  ready_.notify_all();
}

bool Channel::pop(std::vector<Delta>& deltas, std::optional<Outcome>& outcome, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, wait, [&] { return !deltas_.empty() || outcome_.has_value(); });
  while (!deltas_.empty()) {
    deltas.push_back(std::move(deltas_.front()));
    deltas_.pop_front();
  }
  if (outcome_) {
    outcome = std::move(outcome_);
    outcome_.reset();
    return true;
  }
  return false;
}

// ---- Slots ----

struct Scheduler::Slot {
  int id = 0;
  enum class Phase { Idle, Prefill, Decode } phase = Phase::Idle;
  std::optional<Job> job;
  std::unique_ptr<Session> session;  // kept after the request ends, for /slots/{id}?action=save
  PolicyOptions policy;              // what compresses `session` (explicit spans included)
  std::vector<int32_t> fed;          // tokens the session has read
  // A compressed sequence cannot be cut back to a shorter prefix (it has evicted what the prefix
  // would hold), so its state after all but the prompt's last token is kept whole: saved beside
  // the session, it lets the same question asked again after a restore reuse the whole prompt.
  std::shared_ptr<const SessionState> checkpoint;
  std::optional<Sampler> sampler;
  std::optional<StreamDecoder> decoder;
  std::vector<int32_t> history;      // prompt + generated: the repetition penalty's context
  std::string pending;               // decoded text held back (may start a stop string)
  std::vector<TokenLogprob> pending_logprobs;
  int32_t next_token = -1;           // sampled, fed at the next step
  Outcome outcome;
  Clock::time_point started, prompt_done;
  bool busy() const { return phase != Phase::Idle; }
};

Scheduler::Scheduler(LoadedModel& model, const SchedulerOptions& options, PromptCache& cache, Metrics& metrics)
    : loaded_(model), options_(options), cache_(cache), metrics_(metrics), stop_ids_(model.tokenizer->stop_ids()) {
  check(options.n_parallel >= 1 && options.n_parallel <= 256, "--parallel must be in [1, 256], got ", options.n_parallel);
  check(options.queue_size >= 0, "--queue must be >= 0, got ", options.queue_size);
  check(options.prefill_chunk >= 1, "--chunk must be >= 1, got ", options.prefill_chunk);
  check(options.step_tokens >= 1, "--batch-tokens must be >= 1, got ", options.step_tokens);
  for (int i = 0; i < options.n_parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->id = i;
  }
  metrics_.update([&](MetricsValues& v) { v.kv_cache_capacity_tokens = options.n_parallel * options.n_ctx; });
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<Channel> Scheduler::submit(Job job) {
  auto channel = std::make_shared<Channel>();
  job.channel = channel;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw HttpError(503, "the server is shutting down");
    // Free slots take jobs at the next step; beyond them, --queue jobs may wait.
    const int64_t waiting = static_cast<int64_t>(queue_.size()) + n_busy_.load();
    if (waiting >= options_.n_parallel + options_.queue_size) {
      metrics_.update([](MetricsValues& v) { ++v.requests_rejected_total; });
      throw HttpError(503, "the server is busy: all " + std::to_string(options_.n_parallel) + " slots are in use and " +
                               std::to_string(queue_.size()) + " requests are queued (--queue " +
                               std::to_string(options_.queue_size) + "); retry later");
    }
    queue_.push_back(std::move(job));
  }
  wake_.notify_all();
  return channel;
}

nlohmann::json Scheduler::run_on_scheduler(std::function<nlohmann::json()> task) {
  auto promise = std::make_shared<std::promise<nlohmann::json>>();
  auto result = promise->get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw HttpError(503, "the server is shutting down");
    tasks_.push_back([task = std::move(task), promise] {
      try {
        promise->set_value(task());
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
  }
  wake_.notify_all();
  return result.get();
}

nlohmann::json Scheduler::slots_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : slots_) {
    out.push_back({{"id", s->id},
                   {"is_processing", s->busy()},
                   {"n_tokens", s->fed.size()},
                   {"kv_entries", s->session ? s->session->cache().size() : 0},
                   {"compression", s->session ? method_name(s->session->policy().method()) : "none"}});
  }
  return out;
}

int64_t Scheduler::checkpoint_at(const GenerationRequest& request, const PreparedPrompt& prompt) const {
  const int64_t at = static_cast<int64_t>(prompt.tokens.size()) - 1;  // one token left: it gives the logits
  // Only where it can be used: by a later request through the prompt cache, or by a slot save.
  const bool kept = cache_.max_bytes() > 0 || options_.saves_slots;
  const bool wanted = kept && request.cache_prompt && prompt.policy.method != Method::None &&
                      at >= options_.min_cache_tokens && !policy_key(prompt.policy, at).empty();
  return wanted ? at : -1;
}

std::vector<SessionState> Scheduler::capture_slot(int id) {
  if (id < 0 || id >= options_.n_parallel)
    throw HttpError(400, "slot " + std::to_string(id) + " does not exist; slots are 0.." +
                             std::to_string(options_.n_parallel - 1));
  Slot& slot = *slots_[id];
  if (slot.busy()) throw HttpError(409, "slot " + std::to_string(id) + " is processing a request; save it when idle");
  if (!slot.session || slot.fed.empty())
    throw HttpError(400, "slot " + std::to_string(id) + " holds no sequence yet; send it a request first");
  if (!resumable(slot.policy))
    throw HttpError(400, "slot " + std::to_string(id) + " used " + method_name(slot.policy.method) +
                             " compression that evicts by attention, whose state cannot be saved; a slot to be saved "
                             "needs a plan fixed by token positions: compression {\"method\": \"sentinel\", "
                             "\"layout\": \"stream\"}, or strided, streaming, sepllm");
  std::vector<SessionState> states{capture_state(*slot.session, slot.fed)};
  states[0].policy = slot.policy;
  const auto& c = slot.checkpoint;
  if (c && c->tokens.size() < slot.fed.size() && std::equal(c->tokens.begin(), c->tokens.end(), slot.fed.begin()))
    states.push_back(*c);
  return states;
}

void Scheduler::loop() {
  c10::InferenceMode inference;
  while (true) {
    std::vector<std::function<void()>> tasks;
    {
      std::unique_lock lock(mutex_);
      const auto any_busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->busy(); });
      };
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !tasks_.empty() || any_busy(); });
      if (stopping_) break;
      tasks.assign(std::make_move_iterator(tasks_.begin()), std::make_move_iterator(tasks_.end()));
      tasks_.clear();
    }
    for (auto& task : tasks) task();
    // Admit queued jobs into free slots, oldest first.
    for (auto& slot : slots_) {
      if (slot->busy()) continue;
      std::optional<Job> job;
      {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) break;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      admit(*slot, std::move(*job));
    }
    publish_gauges();
    step();
    publish_gauges();
  }
  // Shutting down: every waiting client gets an answer.
  for (auto& slot : slots_)
    if (slot->busy()) finish(*slot, error_reply(503, "the server is shutting down"));
  std::lock_guard lock(mutex_);
  for (auto& job : queue_) {
    Outcome o;
    o.error = error_reply(503, "the server is shutting down");
    job.channel->finish(std::move(o));
  }
  queue_.clear();
}

void Scheduler::admit(Slot& slot, Job job) {
  const auto now = Clock::now();
  slot.outcome = Outcome{};
  slot.outcome.slot = slot.id;
  slot.outcome.queued_ms = ms_between(job.arrival, now);
  slot.outcome.n_prompt = static_cast<int64_t>(job.prompt.tokens.size());
  slot.outcome.policy = job.prompt.policy;
  slot.outcome.n_spans = static_cast<int64_t>(job.prompt.policy.spans.size());
  slot.job = std::move(job);
  slot.phase = Slot::Phase::Prefill;
  ++n_busy_;
  slot.started = now;
  if (slot.job->channel->cancelled()) return finish(slot, std::nullopt, "cancelled");
  if (now >= slot.job->deadline) return finish(slot, error_reply(504, "the request timed out while queued"));
  try {
    const GenerationRequest& r = slot.job->request;
    const PreparedPrompt& p = slot.job->prompt;
    const int64_t n_prompt = static_cast<int64_t>(p.tokens.size());
    // A full cache needs every token; a compressed one starts small and grows only as far as its
    // policy lets it (KvCache grows by 1.5x), so its memory really shrinks.
    const int64_t all_tokens = std::min(n_prompt + r.max_tokens + 1, options_.n_ctx + 1);
    const int64_t capacity = p.policy.method == Method::None ? all_tokens : std::min<int64_t>(all_tokens, 256);
    slot.session.reset();  // the previous sequence's memory goes before the next one's comes
    slot.session = std::make_unique<Session>(loaded_.model, loaded_.model->cache_options(capacity), p.policy);
    slot.fed.clear();
    slot.checkpoint.reset();
    slot.policy = p.policy;
    const bool wants_prompt_logprobs = r.echo && r.logprobs;
    if (r.cache_prompt && !wants_prompt_logprobs) {
      if (auto state = cache_.lookup(p.tokens, p.policy)) {
        try {
          restore_state(*slot.session, *state);
          slot.fed = state->tokens;
          slot.outcome.n_cached = static_cast<int64_t>(state->tokens.size());
          if (slot.outcome.n_cached == checkpoint_at(slot.job->request, p)) slot.checkpoint = state;
        } catch (const Error& e) {
          // A restored file whose cells its plan would not keep (altered, or saved by another
          // build): drop it, so that it fails no later request, and read the prompt in full.
          std::fprintf(stderr, "serve: a cached state was refused and dropped from the prompt cache: %s\n", e.what());
          cache_.erase(state.get());
          slot.session = std::make_unique<Session>(loaded_.model, loaded_.model->cache_options(capacity), p.policy);
        }
      }
    }
    if (wants_prompt_logprobs) {
      TokenLogprob first;
      first.id = p.tokens[0];
      first.bytes = loaded_.tokenizer->token_bytes(first.id);
      first.has_logprob = false;
      slot.outcome.prompt_logprobs.push_back(std::move(first));
    }
    slot.sampler.emplace(r.sampling);
    slot.decoder.emplace(*loaded_.tokenizer);
    slot.history = p.tokens;
    slot.pending.clear();
    slot.pending_logprobs.clear();
    slot.next_token = -1;
  } catch (...) {
    finish(slot, map_exception(std::current_exception()));
  }
}

void Scheduler::finish(Slot& slot, std::optional<ErrorReply> error, const std::string& reason) {
  Outcome& o = slot.outcome;
  if (!reason.empty()) o.finish_reason = reason;
  o.error = std::move(error);
  const auto now = Clock::now();
  if (slot.session) {
    o.stats = slot.session->stats();
    const KvCache& cache = slot.session->cache();
    o.kv_bytes = cache.bytes_in_use();
    o.kv_bytes_global = cache.global_bytes_in_use();
    o.kv_bytes_window = cache.window_bytes_in_use();
    o.kv_bytes_full = cache.bytes_uncompressed(o.stats.ordinary_seen);
  }
  if (o.prompt_ms == 0 && slot.phase == Slot::Phase::Prefill) o.prompt_ms = ms_between(slot.started, now);
  if (slot.phase == Slot::Phase::Decode) o.predicted_ms = ms_between(slot.prompt_done, now);
  metrics_.update([&](MetricsValues& v) {
    ++v.requests_total;
    if (o.error) ++v.requests_failed_total;
    if (o.finish_reason == "cancelled") ++v.requests_cancelled_total;
    v.prompt_tokens_total += o.n_prompt;
    v.prompt_tokens_cached_total += o.n_cached;
    v.kv_entries_evicted_total += o.stats.cells_evicted;
    v.kv_bytes_saved_total += std::max<int64_t>(0, o.kv_bytes_full - o.kv_bytes);
    if (o.policy.method != Method::None) {
      v.compressed_tokens_total += o.stats.ordinary_seen;
      v.compressed_cells_total += o.stats.cells_in_use;
    }
  });
  if (o.error && slot.session) {
    // A pass that threw may have left the cache half-written: drop the sequence.
    slot.session.reset();
    slot.fed.clear();
  }
  if (slot.job) slot.job->channel->finish(std::move(o));
  slot.job.reset();
  if (slot.phase != Slot::Phase::Idle) --n_busy_;
  slot.phase = Slot::Phase::Idle;
}

void Scheduler::publish_gauges() {
  int64_t processing = 0, tokens = 0, bytes = 0, full = 0;
  for (const auto& s : slots_) {
    if (!s->busy() || !s->session) continue;
    ++processing;
    const KvCache& cache = s->session->cache();
    tokens += cache.size();
    bytes += cache.bytes_in_use();
    full += cache.bytes_uncompressed(s->session->stats().ordinary_seen);
  }
  int64_t deferred;
  {
    std::lock_guard lock(mutex_);
    deferred = static_cast<int64_t>(queue_.size());
  }
  const int64_t cache_bytes = cache_.bytes(), cache_entries = cache_.size();
  metrics_.update([&](MetricsValues& v) {
    v.requests_processing = processing;
    v.requests_deferred = deferred;
    v.kv_cache_tokens = tokens;
    v.kv_cache_bytes = bytes;
    v.kv_cache_full_bytes = full;
    v.prompt_cache_bytes = cache_bytes;
    v.prompt_cache_entries = cache_entries;
  });
}

void Scheduler::step() {
  const auto now = Clock::now();
  // Retire what no longer needs a pass: gone clients, passed deadlines.
  for (auto& slot : slots_) {
    if (!slot->busy()) continue;
    if (slot->job->channel->cancelled()) {
      finish(*slot, std::nullopt, "cancelled");
    } else if (now >= slot->job->deadline) {
      finish(*slot, error_reply(504, "the request ran past its timeout of " +
                                         std::to_string(static_cast<int64_t>(slot->job->request.timeout_s)) +
                                         " s; raise \"timeout\" (up to the server's --timeout) or ask for fewer tokens"));
    }
  }
  // The next tokens of every busy slot, in two groups: prompts whose every logit is wanted (echo
  // with logprobs) and the rest, which need the last position's only.
  struct Work {
    Slot* slot;
    std::vector<int32_t> tokens;
    bool prefill;
  };
  std::vector<Work> groups[2];  // [0]: Logits::Last, [1]: Logits::All
  // Decoding slots go first, one token each; prompts share what is left of the step's token
  // budget oldest first, so that one request's long prompt delays the others' next token by a
  // bounded pass, and the oldest prompt finishes first (its time to first token does not wait
  // for every other prompt). One prompt chunk always runs, so prompts progress whatever the budget.
  int64_t budget = options_.step_tokens;
  std::vector<Slot*> prefilling;
  for (auto& s : slots_) {
    Slot& slot = *s;
    if (!slot.busy()) continue;
    if (slot.phase == Slot::Phase::Decode) {
      groups[0].push_back({&slot, {slot.next_token}, false});
      --budget;
    } else {
      prefilling.push_back(&slot);
    }
  }
  std::sort(prefilling.begin(), prefilling.end(),
            [](const Slot* a, const Slot* b) { return a->job->arrival < b->job->arrival; });
  bool any_prompt = false;
  for (Slot* slot_ptr : prefilling) {
    Slot& slot = *slot_ptr;
    const Job& job = *slot.job;
    const int64_t n_prompt = static_cast<int64_t>(job.prompt.tokens.size());
    const int64_t fed = static_cast<int64_t>(slot.fed.size());
    int64_t end = n_prompt;
    // Stop at the cacheable prefix's end, to keep its state for later requests.
    const int64_t boundary = job.prompt.cache_boundary;
    if (job.request.cache_prompt && boundary > fed && boundary >= options_.min_cache_tokens &&
        !policy_key(job.prompt.policy, boundary).empty())
      end = boundary;
    // And at the checkpoint, to keep the state before the prompt's last token (Slot::checkpoint).
    if (const int64_t at = checkpoint_at(job.request, job.prompt); at > fed) end = std::min(end, at);
    end = std::min(end, fed + options_.prefill_chunk);
    if (any_prompt) end = std::min(end, fed + budget);
    if (end <= fed) break;
    budget -= end - fed;
    any_prompt = true;
    const bool all = job.request.echo && job.request.logprobs;
    groups[all ? 1 : 0].push_back({&slot, std::vector<int32_t>(job.prompt.tokens.begin() + fed, job.prompt.tokens.begin() + end), true});
  }
  for (int g = 0; g < 2; ++g) {
    std::vector<Work>& work = groups[g];
    if (work.empty()) continue;
    std::vector<Session*> sessions;
    std::vector<std::span<const int32_t>> spans;
    bool any_prefill = false;
    int64_t n_prefill_tokens = 0;
    for (auto& w : work) {
      sessions.push_back(w.slot->session.get());
      spans.emplace_back(w.tokens);
      any_prefill = any_prefill || w.prefill;
      if (w.prefill) n_prefill_tokens += static_cast<int64_t>(w.tokens.size());
    }
    const auto t0 = Clock::now();
    std::vector<at::Tensor> logits;
    try {
      logits = append_batch(sessions, spans, g == 1 ? Logits::All : Logits::Last, options_.prefill_chunk);
    } catch (...) {
      const ErrorReply reply = map_exception(std::current_exception());
      std::fprintf(stderr, "serve: a forward pass failed: %s\n", reply.body["error"]["message"].get<std::string>().c_str());
      for (auto& w : work) finish(*w.slot, error_reply(500, reply.body["error"]["message"].get<std::string>()));
      continue;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    int64_t n_decoded = 0;
    for (auto& w : work) n_decoded += w.prefill ? 0 : 1;
    metrics_.update([&](MetricsValues& v) {
      ++v.n_decode_total;
      v.n_busy_slots_total += static_cast<int64_t>(work.size());
      v.prompt_tokens_evaluated_total += n_prefill_tokens;
      (any_prefill ? v.prompt_seconds_total : v.tokens_predicted_seconds_total) += seconds;
    });
    for (size_t i = 0; i < work.size(); ++i) {
      Slot& slot = *work[i].slot;
      if (!slot.busy()) continue;
      const Job& job = *slot.job;
      const GenerationRequest& r = job.request;
      try {
        slot.fed.insert(slot.fed.end(), work[i].tokens.begin(), work[i].tokens.end());
        at::Tensor last;  // [n_vocab]
        if (g == 1) {
          const at::Tensor& all = logits[i];  // [n_piece, n_vocab]: row j predicts token fed_before + j + 1
          const int64_t fed_before = static_cast<int64_t>(slot.fed.size() - work[i].tokens.size());
          const int64_t n_prompt = static_cast<int64_t>(job.prompt.tokens.size());
          for (int64_t j = 0; j < all.size(0); ++j) {
            const int64_t target = fed_before + j + 1;
            if (target < n_prompt)
              slot.outcome.prompt_logprobs.push_back(
                  score_token(all[j], job.prompt.tokens[target], r.top_logprobs, *loaded_.tokenizer));
          }
          last = all[all.size(0) - 1];
        } else {
          last = logits[i];
        }
        if (work[i].prefill) {
          const int64_t n_fed = static_cast<int64_t>(slot.fed.size());
          const bool boundary = r.cache_prompt && n_fed == job.prompt.cache_boundary &&
                                n_fed < static_cast<int64_t>(job.prompt.tokens.size()) && n_fed >= options_.min_cache_tokens;
          const bool checkpoint = n_fed == checkpoint_at(r, job.prompt);
          if ((boundary || checkpoint) && slot.outcome.n_cached < n_fed) {  // one capture serves both
            auto state = std::make_shared<SessionState>(capture_state(*slot.session, slot.fed));
            state->policy = job.prompt.policy;
            if (checkpoint) slot.checkpoint = state;
            cache_.insert(std::move(state));
          }
          if (n_fed < static_cast<int64_t>(job.prompt.tokens.size())) continue;
          slot.phase = Slot::Phase::Decode;
          slot.prompt_done = Clock::now();
          slot.outcome.prompt_ms = ms_between(slot.started, slot.prompt_done);
          if (r.max_tokens == 0) {
            finish(slot, std::nullopt, "length");
            continue;
          }
        }
        // Sample the next token and stream what became final.
        const int32_t next = slot.sampler->sample(last, slot.history);
        if (!r.ignore_eos && std::find(stop_ids_.begin(), stop_ids_.end(), next) != stop_ids_.end()) {
          Delta tail{slot.pending + slot.decoder->flush(), std::move(slot.pending_logprobs)};
          if (!tail.text.empty() || !tail.logprobs.empty()) slot.job->channel->push(std::move(tail));
          finish(slot, std::nullopt, "stop");
          continue;
        }
        ++slot.outcome.n_generated;
        metrics_.update([](MetricsValues& v) { ++v.tokens_predicted_total; });
        slot.history.push_back(next);
        if (r.logprobs) slot.pending_logprobs.push_back(score_token(last, next, r.top_logprobs, *loaded_.tokenizer));
        slot.pending += slot.decoder->push(next);
        bool stopped = false;
        for (const auto& stop : r.stop) {
          if (size_t at = slot.pending.find(stop); at != std::string::npos) {
            slot.pending.resize(at);
            stopped = true;
          }
        }
        const bool out_of_tokens = slot.outcome.n_generated >= r.max_tokens ||
                                   static_cast<int64_t>(slot.fed.size()) + 1 >= options_.n_ctx;
        if (stopped || out_of_tokens) {
          if (!stopped) slot.pending += slot.decoder->flush();
          if (!slot.pending.empty() || !slot.pending_logprobs.empty())
            slot.job->channel->push({std::move(slot.pending), std::move(slot.pending_logprobs)});
          slot.pending.clear();
          slot.pending_logprobs.clear();
          finish(slot, std::nullopt, stopped ? "stop" : "length");
          continue;
        }
        const size_t hold = held_back_length(slot.pending, r.stop);
        if (slot.pending.size() > hold) {
          slot.job->channel->push({slot.pending.substr(0, slot.pending.size() - hold), std::move(slot.pending_logprobs)});
          slot.pending.erase(0, slot.pending.size() - hold);
          slot.pending_logprobs.clear();
        }
        slot.next_token = next;
      } catch (...) {
        finish(slot, map_exception(std::current_exception()));
      }
    }
  }
}

}  // namespace sentinel::server
