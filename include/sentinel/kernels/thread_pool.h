// One persistent pool of worker threads for the quantized CPU path. A parallel region hands out
// chunks of an index range through an atomic counter (llama.cpp's scheme); workers spin briefly
// between regions, so the ~150 regions of a decode step cost microseconds, and then sleep, so an
// idle pool never competes with libtorch's or MKL's threads for the cores. The caller's thread
// takes part in every region. Not reentrant: one region at a time per pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace sentinel::kernels {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);  // threads in a region, the caller's included; >= 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread) over [0, n) in chunks of `grain` (the last may be shorter), on
  // every thread of the pool, and returns when all chunks are done. thread is in [0, size()).
  template <typename Fn>
  void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
    run(n, grain, [](void* f, int64_t b, int64_t e, int t) { (*static_cast<Fn*>(f))(b, e, t); }, &fn);
  }

 private:
  using Task = void (*)(void*, int64_t, int64_t, int);
  void run(int64_t n, int64_t grain, Task task, void* context);
  void work(int thread);
  void worker_loop(int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The region being run; written by the caller before generation_ is bumped.
  Task task_ = nullptr;
  void* context_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  alignas(64) std::atomic<int64_t> next_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> finished_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// The process-wide pool of the quantized path with `threads` threads (<= 0: every core the
// process may use). A call with another count than the pool's replaces it; never call it while
// a region runs.
ThreadPool& shared_pool(int threads = 0);
int default_thread_count();  // hardware cores the process may use

}  // namespace sentinel::kernels
