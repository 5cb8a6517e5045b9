// ThreadPool: generation-counted regions, an atomic chunk counter, spin-then-sleep workers.
#include "sentinel/kernels/thread_pool.h"

#include <sched.h>

#include <chrono>
#include <memory>
#include <mutex>

#include "sentinel/core/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SENTINEL_PAUSE() _mm_pause()
#else
#define SENTINEL_PAUSE() std::this_thread::yield()
#endif

namespace sentinel::kernels {
namespace {

// How long an idle worker spins before it sleeps: longer than the gap between the parallel
// regions of one decode step, far shorter than a human-visible pause. Past kYieldAfter an idle
// worker yields between checks, so that another process on the same cores (a second test, a
// build) still runs. The caller waiting for a region's last chunk yields only after kCallerYield:
// yielding after 20 us there cost about a quarter of decode speed on a 2-thread decode.
constexpr auto kSpinFor = std::chrono::microseconds(200);
constexpr auto kYieldAfter = std::chrono::microseconds(100);
constexpr auto kCallerYield = std::chrono::microseconds(1000);

// Waits until ready() holds: spinning, then yielding the core.
template <typename Ready>
void spin_until(Ready ready) {
  const auto start = std::chrono::steady_clock::now();
  for (int spins = 1; !ready(); ++spins) {
    SENTINEL_PAUSE();
    if (spins % 64 == 0 && std::chrono::steady_clock::now() - start > kCallerYield) sched_yield();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  check(n_threads >= 1, "a thread pool needs at least 1 thread, got ", n_threads);
  for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work(int thread) {
  for (;;) {
    const int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (begin >= n_) break;
    task_(context_, begin, std::min(n_, begin + grain_), thread);
  }
}

void ThreadPool::worker_loop(int thread) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t now = generation_.load(std::memory_order_acquire);
    if (now == seen) {
      const auto start = std::chrono::steady_clock::now();
      int spins = 0;
      while ((now = generation_.load(std::memory_order_acquire)) == seen) {
        SENTINEL_PAUSE();
        if (++spins % 64 != 0) continue;
        const auto waited = std::chrono::steady_clock::now() - start;
        if (waited > kSpinFor) {
          sleepers_.fetch_add(1);
          generation_.wait(seen);
          sleepers_.fetch_sub(1);
        } else if (waited > kYieldAfter) {
          sched_yield();
        }
      }
    }
    seen = now;
    if (stop_.load()) return;
    work(thread);
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, Task task, void* context) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {
    for (int64_t b = 0; b < n; b += grain) task(context, b, std::min(n, b + grain), 0);
    return;
  }
  task_ = task;
  context_ = context;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (sleepers_.load() > 0) generation_.notify_all();
  work(0);
  spin_until([&] { return finished_.load(std::memory_order_acquire) >= n_threads_ - 1; });
}

int default_thread_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool& shared_pool(int threads) {
  static std::mutex mutex;
  static std::unique_ptr<ThreadPool> pool;
  std::lock_guard lock(mutex);
  const int wanted = threads > 0 ? threads : default_thread_count();
  // A new count replaces the pool; regions run from one thread at a time, so none is in flight.
  if (!pool || pool->size() != wanted) {
    pool.reset();
    pool = std::make_unique<ThreadPool>(wanted);
  }
  return *pool;
}

}  // namespace sentinel::kernels
