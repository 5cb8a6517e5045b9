// One cached entry's metadata: what the token is and the rotary position its key was computed
// with. Plain data, without the tensors, so that readers of saved states need no tensor library.
#pragma once

#include <cstdint>

namespace sentinel {

// What a cached token is. Sentinels are the compression tokens of docs/method.md section 2.
enum class CellKind : uint8_t { Ordinary, CompressLeft /* <CL> */, CompressRight /* <CR> */ };

struct CacheCell {
  int64_t position = 0;  // rotary position id the key was computed with (never changes)
  CellKind kind = CellKind::Ordinary;
  int32_t span = -1;     // compression span the token belongs to (sentinels: the span they open/close)
};

}  // namespace sentinel
