// The session state file: a SessionState on disk, versioned and tied to the model it was
// computed with, optionally with earlier points of the same sequence (checkpoints) beside it.
// Layout (little-endian):
//   "SNTLSTATE\0" (10 bytes), u32 version (3), u32 record count (version 3 only; version 2 files
//   hold one record), then per record: u64 header length, header JSON (model fingerprint and name,
//   compression options and spans, stats, sizes, the cells each layer holds, SHA-256 of the
//   payload), payload: tokens i32[n_tokens], cells (i64 position, u8 kind, i32 reserved: 0, once a
//   sequence id nothing read; i32 span)[n_cells], then per layer the K rows and the V rows
//   (n_head_kv * layer_cells[layer] * row_bytes bytes each; a sliding-window layer holds its window
//   only).
// Record 0 is the session as saved. Later records are checkpoints: the same session after a prefix
// of its tokens (a compressed state cannot be cut back to a shorter prefix, so the point after
// the prompt is kept whole, and a restored slot answers the same question again without reading it).
// A file of another model, format or version, a truncated or altered one is refused with a
// message saying which.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/server/session_state.h"

namespace sentinel::server {

inline constexpr uint32_t kStateFileVersion = 3;  // 3: checkpoints; 2: sliding-window layers hold their window only
inline constexpr uint32_t kOldestStateFileVersion = 2;

struct StateFileInfo {
  std::string model_fingerprint;  // model/adapter.h model_fingerprint() of the weights in use
  std::string model_name;         // for messages
};

// Writes atomically (a temporary file renamed over `path`). states[0] is the session; the others,
// checkpoints, hold proper prefixes of its tokens. Returns the bytes written.
int64_t save_state_file(const std::string& path, std::span<const SessionState> states, const StateFileInfo& info);
inline int64_t save_state_file(const std::string& path, const SessionState& state, const StateFileInfo& info) {
  return save_state_file(path, std::span(&state, 1), info);
}

// The bytes save_state_file writes.
std::string state_file_bytes(std::span<const SessionState> states, const StateFileInfo& info);

// Reads and checks a file; `expected.model_fingerprint` must match the file's. The session first,
// then its checkpoints.
std::vector<SessionState> load_state_records(const std::string& path, const StateFileInfo& expected);
// The session alone (record 0).
SessionState load_state_file(const std::string& path, const StateFileInfo& expected);

// The same check on a file's bytes; `name` names it in messages. Every malformed input throws
// Error (the fuzz target, fuzz/fuzz_state_file.cpp, holds it to that).
std::vector<SessionState> parse_state_file(std::string_view data, const std::string& name, const StateFileInfo& expected);

}  // namespace sentinel::server
