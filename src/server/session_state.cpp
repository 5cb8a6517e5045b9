// What a saved state holds and what can be cut out of it.
#include "sentinel/server/session_state.h"

#include <cstring>

#include "sentinel/core/error.h"

namespace sentinel::server {

int64_t SessionState::bytes() const {
  int64_t total = static_cast<int64_t>(tokens.size() * sizeof(int32_t) + cells.size() * sizeof(CacheCell));
  for (const auto& k : keys) total += static_cast<int64_t>(k.size());
  for (const auto& v : values) total += static_cast<int64_t>(v.size());
  return total;
}

bool resumable(const PolicyOptions& policy) { return !reads_attention(policy); }

std::optional<SessionState> truncated_state(const SessionState& state, int64_t n_tokens) {
  const auto n_cells = static_cast<int64_t>(state.cells.size());
  if (state.policy.method != Method::None || n_cells != static_cast<int64_t>(state.tokens.size()) ||
      state.window_begin != 0 || n_tokens <= 0 || n_tokens >= n_cells)
    return std::nullopt;
  for (int64_t i = 0; i < n_cells; ++i)
    if (state.cells[i].position != i || state.cells[i].kind != CellKind::Ordinary) return std::nullopt;
  const int64_t full_run = n_cells * state.row_bytes, run = n_tokens * state.row_bytes;  // one head's rows
  SessionState out;
  out.tokens.assign(state.tokens.begin(), state.tokens.begin() + n_tokens);
  out.policy = state.policy;
  out.cells.assign(state.cells.begin(), state.cells.begin() + n_tokens);
  out.row_type = state.row_type;
  out.n_head_kv = state.n_head_kv;
  out.row_bytes = state.row_bytes;
  for (int64_t layer = 0; layer < state.n_layer(); ++layer) {
    if (static_cast<int64_t>(state.keys[layer].size()) != state.n_head_kv * full_run) return std::nullopt;
    std::vector<uint8_t> k(static_cast<size_t>(state.n_head_kv * run)), v(k.size());
    for (int64_t h = 0; h < state.n_head_kv; ++h) {
      std::memcpy(k.data() + h * run, state.keys[layer].data() + h * full_run, static_cast<size_t>(run));
      std::memcpy(v.data() + h * run, state.values[layer].data() + h * full_run, static_cast<size_t>(run));
    }
    out.keys.push_back(std::move(k));
    out.values.push_back(std::move(v));
  }
  out.stats.ordinary_seen = out.stats.cells_in_use = out.stats.peak_cells = n_tokens;
  out.stats.peak_bytes = state.stats.peak_cells > 0 ? state.stats.peak_bytes / state.stats.peak_cells * n_tokens : 0;
  return out;
}

}  // namespace sentinel::server
