// Connection threads that grow with the connections (connection_pool.h). Threads are detached and
// counted; shutdown() waits for the count to reach zero, so no thread outlives the pool.
#include "sentinel/server/connection_pool.h"

namespace sentinel::server {

ConnectionPool::ConnectionPool(size_t min_threads, size_t max_threads, std::chrono::milliseconds idle_exit)
    : min_threads_(min_threads), max_threads_(std::max(max_threads, min_threads)), idle_exit_(idle_exit) {}

ConnectionPool::~ConnectionPool() { shutdown(); }

void ConnectionPool::enqueue(std::function<void()> task) {
  bool start = false;
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
    // A new thread when every running one is busy: a waiting connection is never stuck behind
    // quiet ones while there is room for another thread.
    if (idle_ < tasks_.size() && running_ < max_threads_) {
      ++running_;
      start = true;
    }
  }
  if (start) {
    std::thread([this] { work(); }).detach();
  } else {
    wake_.notify_one();
  }
}

void ConnectionPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    const bool woken = wake_.wait_for(lock, idle_exit_, [&] { return shutdown_ || !tasks_.empty(); });
    --idle_;
    if (tasks_.empty() && (shutdown_ || (!woken && running_ > min_threads_))) break;
    if (tasks_.empty()) continue;
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();  // reads the request, answers, keeps the connection alive: seconds to minutes
    lock.lock();
  }
  --running_;
  if (running_ == 0) all_done_.notify_all();
}

void ConnectionPool::shutdown() {
  std::unique_lock lock(mutex_);
  shutdown_ = true;
  wake_.notify_all();
  all_done_.wait(lock, [&] { return running_ == 0; });
}

size_t ConnectionPool::threads() const {
  std::lock_guard lock(mutex_);
  return running_;
}

}  // namespace sentinel::server
