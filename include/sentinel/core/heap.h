// Process-wide heap settings for the phases that allocate and free the same large buffers over and
// over (training: logits of [tokens, vocab] floats, activations and their gradients per micro-batch).
#pragma once

namespace sentinel {

// Keeps freed memory in the process for reuse instead of handing it back to the kernel. glibc
// serves allocations above its mmap threshold with fresh mappings and trims the heap top on free,
// so every training step faulted its buffers in again: a run of 1,024-token sequences spent about
// half its time in the kernel (perf's top symbol: clear_page, zeroing new pages), and a bfloat16
// step took 6-7 s instead of 9.4 s without it. Resident memory then stays at the peak of a step,
// which training reaches anyway. No effect outside glibc.
void keep_freed_memory_for_reuse();

}  // namespace sentinel
