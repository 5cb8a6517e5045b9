// keep_freed_memory_for_reuse: a large block freed and allocated again must not fault its pages in
// a second time (what made every training step zero its buffers afresh, docs/training.md).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>

#include "sentinel/core/heap.h"

namespace sentinel {
namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Allocates `bytes`, writes one byte per page (volatile: the stores must happen), frees it.
void touch_and_free(size_t bytes) {
  auto* p = static_cast<volatile char*>(std::malloc(bytes));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  std::free(const_cast<char*>(p));
}

TEST(Heap, FreedLargeBlocksAreReusedWithoutFaultingAgain) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "the setting is glibc's (mallopt); other allocators keep their own policy";
#else
  keep_freed_memory_for_reuse();
  constexpr size_t kBytes = size_t{96} << 20;  // above glibc's largest mmap threshold (32 MiB)
  constexpr long kPages = static_cast<long>(kBytes / 4096);
  touch_and_free(kBytes);  // the first use faults its pages in
  const long before = minor_faults();
  touch_and_free(kBytes);
  touch_and_free(kBytes);
  const long faults = minor_faults() - before;
  // Unmapped and mapped again, each use would fault in every page (2 x 24,576 here).
  EXPECT_LT(faults, kPages / 20) << faults << " page faults reusing " << kPages << " pages twice";
#endif
}

}  // namespace
}  // namespace sentinel
