// A live Session to and from its SessionState: the rows are copied byte for byte in the cache's
// storage type, so a restored session computes exactly what the original would have.
#pragma once

#include <cstdint>
#include <span>

#include "sentinel/engine/session.h"
#include "sentinel/server/session_state.h"

namespace sentinel::server {

// Copies the session's tokens (given: the session does not keep them), cells and rows.
SessionState capture_state(Session& session, std::span<const int32_t> tokens_fed);

// Fills `fresh` (an empty session of the same model) with `state` and resumes it: its next
// append continues after state.tokens. `fresh`'s own policy options are kept; they must agree
// with the state's over its tokens (the caller matches them, see prompt_cache.h policy_key).
void restore_state(Session& fresh, const SessionState& state);

}  // namespace sentinel::server
