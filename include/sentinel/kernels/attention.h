// Attention over a compacted KV cache, for the quantized CPU path. Each cached K/V row is read
// once per KV head for all the query heads of its group (GQA), keys are split into chunks that
// run in parallel with their own softmax maximum and sum, and the chunks are merged exactly
// (the flash-attention merge). Any visibility mask works, so every rule of docs/method.md
// (a token inside an open span sees its span but never <CL>, evicted-later cells, ...) holds.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sentinel/kernels/kernels.h"
#include "sentinel/kernels/thread_pool.h"

namespace sentinel::kernels {

struct AttentionShape {
  int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
};

// One sequence's queries against one layer of its cache.
struct AttentionJob {
  RowType kv_type = RowType::F32;
  const uint8_t* keys = nullptr;    // row (kv head h, cell c) at keys + h * head_stride + c * row_stride
  const uint8_t* values = nullptr;  // same layout as keys
  int64_t head_stride = 0, row_stride = 0;  // bytes
  int64_t n_keys = 0;                       // S: cached cells plus the new ones, already written
  const float* q = nullptr;                 // [T, n_head * head_dim], rotated
  int64_t n_queries = 0;                    // T
  // [T, S] bytes, nonzero = may attend; null = causal (query t sees keys [0, S - T + t]).
  const uint8_t* mask = nullptr;
  float* out = nullptr;   // [T, n_head * head_dim]
  float* mass = nullptr;  // optional [S]: += softmax probabilities summed over heads and queries (H2O)
  // Optional [T] bytes with mass: nonzero = the query's probabilities count toward mass; null = all.
  const uint8_t* mass_queries = nullptr;
};

// Reusable buffers of attention(); one per model keeps the decode step free of allocation.
struct AttentionScratch {
  struct Item {  // keys [begin, end) of one KV head for one query of one job
    int64_t job, query, kv_head, begin, end;
  };
  std::vector<Item> items;
  std::vector<int64_t> first_item;  // per (job, query, kv head): its first item; one past the end last
  std::vector<int64_t> prob_offset; // per job: offset of its [T, n_head, S] probabilities
  std::vector<int64_t> chunk_begins; // the current query's chunks of keys, while items are listed
  std::vector<float> probabilities, partials, merged, block_max;
};

// Runs every job in one parallel region. scale = 1 / sqrt(head_dim) for Llama.
void attention(const AttentionShape& shape, std::span<const AttentionJob> jobs, float scale, ThreadPool& pool,
               AttentionScratch& scratch, const KernelTable& k = kernels());

// The same result computed the plain way, one query head at a time in double precision:
// the twin attention() is tested against.
void attention_reference(const AttentionShape& shape, const AttentionJob& job, float scale);

}  // namespace sentinel::kernels
