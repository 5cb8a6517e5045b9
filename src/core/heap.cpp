#include "sentinel/core/heap.h"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sentinel {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);               // large blocks come from the heap, where free keeps them
  mallopt(M_TRIM_THRESHOLD, INT_MAX);   // the heap top is given back only past 2 GiB free
  mallopt(M_ARENA_MAX, 1);              // intra-op threads free into the arena the next step reads
#endif
}

}  // namespace sentinel
