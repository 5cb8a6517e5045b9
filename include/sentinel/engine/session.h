// One sequence processed incrementally: the model, its KV cache and the position counter.
// Feeds tokens in chunks (prefill) or one at a time (decode) and returns their logits.
// Compression policies (docs/method.md section 6) drive a Session; it does not decide anything.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <span>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/model/llama.h"

namespace sentinel {

enum class Logits { None, Last, All };

class Session {
 public:
  Session(LlamaModel model, const KvCacheOptions& cache_options);

  // Appends ordinary tokens with consecutive position ids, at most `chunk` per forward pass.
  // Returns float32 logits [n, n_vocab] (All), [n_vocab] of the last token (Last), or an
  // undefined tensor (None).
  at::Tensor append(std::span<const int32_t> tokens, Logits which, int64_t chunk = 512);

  // Low-level step: feeds tokens with explicit positions, cell metadata and an optional mask
  // [1, T, cache.size() + T] (see ForwardInput). Returns the final hidden states [T, n_embd].
  at::Tensor step(std::span<const int32_t> tokens, std::span<const CacheCell> cells, const at::Tensor& mask = {});

  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  LlamaModel& model() { return model_; }
  int64_t next_position() const { return next_position_; }
  void reset();

 private:
  LlamaModel model_;
  KvCache cache_;
  int64_t next_position_ = 0;  // counts ordinary tokens, docs/method.md section 4
};

}  // namespace sentinel
