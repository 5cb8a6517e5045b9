// One sequence processed incrementally: the model, its KV cache, the position counter and the
// compression policy. Feeds ordinary tokens in chunks (prefill) or one at a time (decode) and
// returns their logits; the policy plans sentinels, masks and evictions (docs/method.md
// section 6) and the session applies each plan to the cache. Sessions over one model can advance
// together in one forward pass per step (append_batch), each with its own cache and policy.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/model/decoder.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

enum class Logits { None, Last, All };

class Session;

// One forward pass of a session as its policy planned it: what was fed, what each fed element
// could see, what left the cache afterwards. A session's records replay its whole reading as one
// masked pass (masked_forward.h: replayed_sequence), which is how policies that decide from
// attention while they read (reads_attention) are trained on their own schedule.
struct StepRecord {
  std::vector<Element> elements;  // [T] fed in this pass, in feeding order
  at::Tensor mask;                // [1, T, cached cells before the pass + T] bool on the CPU; undefined: causal over all
  std::vector<int64_t> evicted;   // indices into the cache after the pass (its cells, then the T new ones)
};

// Appends tokens[i] to *sessions[i] for every i, as Session::append does, but in lock-step: each
// forward pass carries the next chunk of every session that still has tokens, so the weights are
// read once per pass for the whole batch (decode: one token of every sequence per pass). The
// sessions must share one model and be distinct. Returns what append returns, per session.
std::vector<at::Tensor> append_batch(std::span<Session* const> sessions,
                                     std::span<const std::span<const int32_t>> tokens, Logits which,
                                     int64_t chunk = 512);

class Session {
 public:
  Session(DecoderModel model, const KvCacheOptions& cache_options, const PolicyOptions& policy = {});
  // The policy holds a pointer to the cache (CompressionPolicy::attach): a session stays where it was made.
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends ordinary tokens (position ids = their ordinary index), at most `chunk` per forward
  // pass, plus whatever sentinels the policy inserts. Returns float32 logits of the ordinary
  // tokens: [n, n_vocab] (All), [n_vocab] of the last one (Last), or undefined (None).
  at::Tensor append(std::span<const int32_t> tokens, Logits which, int64_t chunk = 512);

  // Low-level step that bypasses the policy: feeds tokens with explicit cells and an optional
  // mask [1, T, cache.size() + T] (see ForwardInput). Returns the final hidden states [T, n_embd].
  at::Tensor step(std::span<const int32_t> tokens, std::span<const CacheCell> cells, const at::Tensor& mask = {});

  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  DecoderModel& model() { return model_; }
  const CompressionPolicy& policy() const { return *policy_; }
  const CompressionStats& stats() const { return stats_; }
  int64_t next_position() const { return next_position_; }
  void reset();  // empty cache, fresh policy state

  // Continues a sequence whose cache was refilled from saved rows (server/session_state.h): the
  // cache must already hold the cells the saved session held after `ordinary_tokens`. Sets the
  // position counter and stats, and rebuilds the policy's state by replaying its expansion over
  // the token indices (every policy but H2O plans from indices alone; H2O's accumulated attention
  // is not in the cache, so it is refused).
  void resume(std::span<const int32_t> ordinary_tokens, const CompressionStats& stats);

  // From now on, appends a StepRecord to *sink after every forward pass (nullptr stops).
  void record_steps(std::vector<StepRecord>* sink) { record_ = sink; }

 private:
  friend std::vector<at::Tensor> append_batch(std::span<Session* const>, std::span<const std::span<const int32_t>>,
                                              Logits, int64_t);

  // The policy's plan for the next chunk of ordinary tokens, ready for forward_cached.
  struct Chunk {
    std::vector<Element> elements;  // the tokens plus inserted sentinels, in feeding order
    int64_t n_ordinary = 0;
    CachedInput input;
  };
  Chunk plan(std::span<const int32_t> tokens);
  std::unique_ptr<CompressionPolicy> fresh_policy() const;  // made from policy_options_, attached to cache_
  // What a fed chunk left for its caller: the hidden states [n, n_embd] of its ordinary tokens, and
  // their logits [n, n_vocab] when the policy ranks by surprisal (computed before the evictions,
  // and the caller's output then); undefined otherwise.
  struct Completed {
    at::Tensor hidden;
    at::Tensor logits;
  };
  // Applies a fed chunk: commits its cells, shows the policy the attention (and the surprisal),
  // evicts, updates the stats.
  Completed complete(const Chunk& chunk, const CachedOutput& out);
  // Shows a surprisal-ranking policy the surprisal of the chunk just read: `ids` are its ordinary
  // tokens, the first at ordinary index `first`, `logits` [n, n_vocab] theirs.
  void observe_surprisal(const at::Tensor& logits, std::span<const int32_t> ids, int64_t first);

  DecoderModel model_;
  KvCache cache_;
  PolicyOptions policy_options_;
  std::unique_ptr<CompressionPolicy> policy_;
  CompressionStats stats_;
  int64_t next_position_ = 0;  // counts ordinary tokens, docs/method.md section 4
  std::vector<StepRecord>* record_ = nullptr;  // record_steps()
  // Policies that rank by surprisal: the last chunk's last row of logits [n_vocab], which predicts
  // the next chunk's first token. Undefined otherwise.
  at::Tensor last_prediction_;
};

}  // namespace sentinel
