// The session state file: a SessionState on disk, versioned and tied to the model it was
// computed with. Layout (little-endian):
//   "SNTLSTATE\0" (10 bytes), u32 version (2), u64 header length, header JSON (model
//   fingerprint and name, compression options and spans, stats, sizes, the cells each layer
//   holds, SHA-256 of the payload), payload: tokens i32[n_tokens], cells (i64 position, u8 kind,
//   i32 reserved: 0, once a sequence id nothing read; i32 span)[n_cells], then per layer the K
//   rows and the V rows (n_head_kv * layer_cells[layer] * row_bytes bytes each; a sliding-window
//   layer holds its window only).
// A file of another model, format or version, a truncated or altered one is refused with a
// message saying which.
#pragma once

#include <string>

#include "sentinel/server/session_state.h"

namespace sentinel::server {

inline constexpr uint32_t kStateFileVersion = 2;  // 2: sliding-window layers hold their window only

struct StateFileInfo {
  std::string model_fingerprint;  // model/adapter.h model_fingerprint() of the weights in use
  std::string model_name;         // for messages
};

// Writes atomically (a temporary file renamed over `path`). Returns the bytes written.
int64_t save_state_file(const std::string& path, const SessionState& state, const StateFileInfo& info);

// Reads and checks a file; `expected.model_fingerprint` must match the file's.
SessionState load_state_file(const std::string& path, const StateFileInfo& expected);

}  // namespace sentinel::server
