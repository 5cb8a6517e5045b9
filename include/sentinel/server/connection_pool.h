// The threads that serve HTTP connections, apart from the inference slots. cpp-httplib gives each
// accepted connection one task that reads its request, runs the handler and keeps the connection
// alive; a fixed pool therefore stalls as soon as as many clients as it has threads connect and
// go quiet (half-sent headers, idle keep-alives): /health stops answering. This pool starts a new
// thread whenever a connection arrives and none is idle, up to `max_threads`, and lets threads
// beyond `min_threads` go after `idle_exit` without work, so slow clients cost a thread each (and
// at most the read timeout) instead of everyone's service. Past max_threads connections wait in
// a queue, as in cpp-httplib's own pool.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sentinel::server {

class ConnectionPool final : public httplib::TaskQueue {
 public:
  ConnectionPool(size_t min_threads, size_t max_threads, std::chrono::milliseconds idle_exit);
  ~ConnectionPool() override;

  void enqueue(std::function<void()> task) override;
  void shutdown() override;

  size_t threads() const;  // running now

 private:
  void work();

  const size_t min_threads_, max_threads_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_, all_done_;
  std::deque<std::function<void()>> tasks_;
  size_t running_ = 0, idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace sentinel::server
