// libFuzzer target: the session state file reader (server/state_file.h) on hostile bytes. The fuzz
// build defines FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so the payload's SHA-256 is not compared
// and mutations reach the size, cell and policy checks behind it. sentinel::Error is the expected
// outcome for a bad file; anything else (a crash, a sanitizer report, another exception) is a bug.
// A file that parses is written again and must read back to the same records.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/server/session_state.h"
#include "sentinel/server/state_file.h"

namespace {

bool same(const sentinel::server::SessionState& a, const sentinel::server::SessionState& b) {
  if (a.tokens != b.tokens || a.cells.size() != b.cells.size() || a.keys != b.keys || a.values != b.values ||
      a.n_head_kv != b.n_head_kv || a.row_bytes != b.row_bytes || a.row_type != b.row_type ||
      a.window_begin != b.window_begin || a.policy.method != b.policy.method || a.policy.layout != b.policy.layout ||
      a.policy.spans.size() != b.policy.spans.size())
    return false;
  for (size_t i = 0; i < a.cells.size(); ++i)
    if (a.cells[i].position != b.cells[i].position || a.cells[i].kind != b.cells[i].kind || a.cells[i].span != b.cells[i].span)
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const sentinel::server::StateFileInfo info{"fuzz", "the fuzz model"};  // fuzz/make_state_seeds.py writes this fingerprint
  std::vector<sentinel::server::SessionState> records;
  try {
    records = sentinel::server::parse_state_file({reinterpret_cast<const char*>(data), size}, "fuzz.state", info);
  } catch (const sentinel::Error&) {
    return 0;
  }
  // What was accepted is written again and must read back, unrefused, to the same records.
  std::vector<sentinel::server::SessionState> reread;
  try {
    reread = sentinel::server::parse_state_file(sentinel::server::state_file_bytes(records, info), "again.state", info);
  } catch (const sentinel::Error&) {
    __builtin_trap();
  }
  if (reread.size() != records.size()) __builtin_trap();
  for (size_t i = 0; i < records.size(); ++i)
    if (!same(records[i], reread[i])) __builtin_trap();
  return 0;
}
