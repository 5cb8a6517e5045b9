// A session's compressed state as plain data: the ordinary tokens it has read, the compression
// options, the cache cells with every layer's K/V rows, and the stats. The prompt cache keeps
// these in memory and the state file (state_file.h) writes them to disk; restoring one into a
// fresh Session continues the sequence exactly where it was, without re-reading the tokens
// (session_capture.h). Plain data: the state file reads and writes it without a tensor library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/cache/cache_cell.h"
#include "sentinel/kernels/kernels.h"
#include "sentinel/policies/policy_options.h"

namespace sentinel::server {

struct SessionState {
  std::vector<int32_t> tokens;  // [n_tokens] ordinary tokens fed, in order
  PolicyOptions policy;         // what compressed them (explicit spans included)
  CompressionStats stats;
  std::vector<CacheCell> cells; // [n_cells] metadata of the cells held
  kernels::RowType row_type = kernels::RowType::F16;  // storage type of one K or V row
  int64_t n_head_kv = 0;
  int64_t row_bytes = 0;        // bytes of one stored row of head_dim values
  int64_t window_begin = 0;     // first cell the sliding-window layers hold (KvCache::window_begin)
  // [n_layer][n_head_kv * layer cells * row_bytes] raw rows, head-major (head h's cells
  // contiguous); a layer's cells: all n_cells, or n_cells - window_begin in a sliding-window layer
  std::vector<std::vector<uint8_t>> keys, values;

  int64_t n_layer() const { return static_cast<int64_t>(keys.size()); }
  int64_t bytes() const;  // memory held (rows, tokens, cells)
};

// Can a session of this method be saved and resumed? Every method whose plan depends on token
// indices alone (all but h2o, whose attention scores are not in the cache).
bool resumable(const PolicyOptions& policy);

// The state after the first n_tokens of `state`'s tokens (0 < n_tokens < its tokens), when that can
// be cut out exactly: an uncompressed state, where every token has its cell, in order, and every
// layer still holds them all (a sliding-window model's state shorter than its window). Else nullopt:
// a compressed state has already evicted cells the shorter one would hold.
std::optional<SessionState> truncated_state(const SessionState& state, int64_t n_tokens);

}  // namespace sentinel::server
