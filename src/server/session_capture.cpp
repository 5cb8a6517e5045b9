// Capture and restore of a session's cache rows through KvCache's raw row accessors.
#include "sentinel/server/session_capture.h"

#include <cstring>

#include "sentinel/core/error.h"

namespace sentinel::server {

SessionState capture_state(Session& session, std::span<const int32_t> tokens_fed) {
  KvCache& cache = session.cache();
  check(static_cast<int64_t>(tokens_fed.size()) == session.next_position(), "capture_state: ", tokens_fed.size(),
        " tokens given but the session has read ", session.next_position());
  SessionState s;
  s.tokens.assign(tokens_fed.begin(), tokens_fed.end());
  s.stats = session.stats();
  s.cells = cache.cells();
  s.row_type = cache.row_type();
  s.row_bytes = cache.row_stride();
  s.n_head_kv = session.model()->config().n_head_kv;
  s.window_begin = cache.window_begin();
  for (int64_t layer = 0; layer < cache.n_layer(); ++layer) {
    // One head's rows of the cells the layer holds: all, or the window's in a sliding-window layer.
    const int64_t run = (cache.size() - cache.first_cell(layer)) * s.row_bytes;
    std::vector<uint8_t> k(static_cast<size_t>(s.n_head_kv * run)), v(k.size());
    for (int64_t h = 0; h < s.n_head_kv; ++h) {
      std::memcpy(k.data() + h * run, cache.key_data(layer) + h * cache.head_stride(layer), static_cast<size_t>(run));
      std::memcpy(v.data() + h * run, cache.value_data(layer) + h * cache.head_stride(layer), static_cast<size_t>(run));
    }
    s.keys.push_back(std::move(k));
    s.values.push_back(std::move(v));
  }
  return s;
}

void restore_state(Session& fresh, const SessionState& state) {
  KvCache& cache = fresh.cache();
  check(cache.size() == 0 && fresh.next_position() == 0, "restore_state needs an empty session");
  check(state.n_layer() == cache.n_layer(), "saved state has ", state.n_layer(), " layers, the model ", cache.n_layer());
  check(state.row_type == cache.row_type() && state.row_bytes == cache.row_stride(), "saved state stores K/V as ",
        kernels::row_type_name(state.row_type), " and this server as ", kernels::row_type_name(cache.row_type()),
        "; restart the server with the --kv-dtype it was saved with");
  check(state.n_head_kv == fresh.model()->config().n_head_kv, "saved state has ", state.n_head_kv,
        " KV heads, the model ", fresh.model()->config().n_head_kv);
  cache.prepare_restore(state.cells, state.window_begin);
  for (int64_t layer = 0; layer < cache.n_layer(); ++layer) {
    const int64_t run = (cache.size() - cache.first_cell(layer)) * state.row_bytes;
    check(static_cast<int64_t>(state.keys[layer].size()) == state.n_head_kv * run &&
              state.values[layer].size() == state.keys[layer].size(),
          "saved state layer ", layer, " has ", state.keys[layer].size(), " key bytes, expected ", state.n_head_kv * run);
    for (int64_t h = 0; h < state.n_head_kv; ++h) {
      std::memcpy(cache.key_data(layer) + h * cache.head_stride(layer), state.keys[layer].data() + h * run,
                  static_cast<size_t>(run));
      std::memcpy(cache.value_data(layer) + h * cache.head_stride(layer), state.values[layer].data() + h * run,
                  static_cast<size_t>(run));
    }
  }
  fresh.resume(state.tokens, state.stats);
}

}  // namespace sentinel::server
