// Rendezvous, backend and collectives with errors that name the rank (process_group.h).
#include "sentinel/distributed/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <csignal>
#include <sstream>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// What a collective's failure means to the user, whatever the backend's own words.
// The first line of a c10 error (the rest is its C++ backtrace).
std::string first_line(const std::exception& e) {
  const std::string message = e.what();
  return message.substr(0, message.find('\n'));
}

[[noreturn]] void collective_failed(const std::string& who, const std::string& peers, const std::string& what,
                                    const std::exception& e) {
  fail(who, ": ", what, " failed: ", first_line(e), "\n", peers, " exited or stopped responding ",
       "(its own output says why; torchrun names the rank that failed first); every rank stops. Collectives give up ",
       "after --dist-timeout seconds.");
}

std::string seconds(std::chrono::milliseconds ms) {
  std::ostringstream out;
  out << ms.count() / 1000.0 << " s";  // "1800 s", "2.5 s"
  return out.str();
}

}  // namespace

PendingCollective::PendingCollective(c10::intrusive_ptr<c10d::Work> work, std::string what, std::string who,
                                     std::string peers, std::chrono::milliseconds timeout)
    : work_(std::move(work)), what_(std::move(what)), who_(std::move(who)), peers_(std::move(peers)), timeout_(timeout) {}
PendingCollective::PendingCollective(PendingCollective&&) noexcept = default;
PendingCollective& PendingCollective::operator=(PendingCollective&&) noexcept = default;
PendingCollective::~PendingCollective() = default;

bool PendingCollective::pending() const { return work_.defined(); }

void PendingCollective::wait() {
  if (!work_.defined()) return;
  const auto work = std::move(work_);
  try {
    work->wait(timeout_);
  } catch (const std::exception& e) {
    collective_failed(who_, peers_, what_, e);
  }
}

ProcessGroup::ProcessGroup(LaunchEnv env, ProcessGroupOptions options)
    : env_(std::move(env)), options_(options) {}
ProcessGroup::~ProcessGroup() = default;

std::string ProcessGroup::who() const {
  return "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world);
}

std::string ProcessGroup::peers() const {
  if (env_.world == 2) return "Rank " + std::to_string(1 - env_.rank) + ", the other process of the job,";
  return "Another process of the job";
}

std::unique_ptr<ProcessGroup> ProcessGroup::join(const LaunchEnv& env, const ProcessGroupOptions& options) {
  check(env.launched(), "no data-parallel launch: RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are not set (torchrun sets them)");
  std::unique_ptr<ProcessGroup> group(new ProcessGroup(env, options));
  // A rank whose peer died must see the broken connection as an error, which names the rank, not
  // die of SIGPIPE with no word: Python ignores SIGPIPE at start, so torch's own ranks always did.
  std::signal(SIGPIPE, SIG_IGN);
  // As torch.distributed's env:// rendezvous: rank 0 hosts the store unless torchrun's agent does.
  c10d::TCPStoreOptions store_options;
  store_options.port = env.master_port;
  store_options.isServer = !env.agent_store && env.rank == 0;
  store_options.numWorkers = static_cast<size_t>(env.world);
  store_options.waitWorkers = true;
  store_options.timeout = options.timeout;
  store_options.multiTenant = !env.agent_store;
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_options);
  } catch (const std::exception& e) {
    fail(group->who(), ": rendezvous at ", env.master_addr, ":", env.master_port, " failed (", first_line(e),
         "). Every rank must start within --dist-timeout (", seconds(options.timeout), ") and reach MASTER_ADDR:MASTER_PORT; ",
         store_options.isServer ? "is the port already in use? Pick another MASTER_PORT" : "is rank 0 running?");
  }
  // Our keys apart from the launcher's and from earlier attempts of an elastic restart.
  group->store_ = c10::make_intrusive<c10d::PrefixStore>("sentinel/" + std::to_string(env.restart), tcp);
  try {
    group->backend_ = options.backend == DistBackend::Nccl
                          ? make_nccl_backend(group->store_, env.rank, env.world, options.timeout)
                          : make_gloo_backend(group->store_, env.rank, env.world, options.timeout);
  } catch (const std::exception& e) {
    fail(group->who(), ": connecting the ", dist_backend_name(options.backend), " backend failed: ", first_line(e),
         " (GLOO_SOCKET_IFNAME names the network interface gloo should use)");
  }
  check(group->backend_.defined(), "this build of sentinel has no ", dist_backend_name(options.backend),
        " backend: ", options.backend == DistBackend::Nccl
                          ? "it was built without NCCL's header (the nvidia-nccl wheel beside torch); rebuild, or use gloo"
                          : "it was built without Gloo's headers; install libgloo-dev (scripts/setup.sh does) and rebuild");
  return group;
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  all_reduce_sum_async(tensors, what).wait();
}

PendingCollective ProcessGroup::all_reduce_sum_async(std::vector<at::Tensor>& tensors, const std::string& what) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  options.timeout = options_.timeout;
  try {
    return PendingCollective(backend_->allreduce(tensors, options), what, who(), peers(), options_.timeout);
  } catch (const std::exception& e) {
    collective_failed(who(), peers(), what, e);
  }
}

void ProcessGroup::broadcast(at::Tensor& tensor, int root, const std::string& what) {
  std::vector<at::Tensor> tensors{tensor};
  c10d::BroadcastOptions options;
  options.rootRank = root;
  options.timeout = options_.timeout;
  try {
    PendingCollective(backend_->broadcast(tensors, options), what, who(), peers(), options_.timeout).wait();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(who(), peers(), what, e);
  }
}

void ProcessGroup::barrier(const std::string& what) {
  c10d::BarrierOptions options;
  options.timeout = options_.timeout;
  try {
    PendingCollective(backend_->barrier(options), what, who(), peers(), options_.timeout).wait();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(who(), peers(), what, e);
  }
}

std::vector<std::string> ProcessGroup::gather_to_root(const std::string& mine, const std::string& tag) {
  const std::string key = "gather/" + tag + "/";
  try {
    store_->set(key + std::to_string(env_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    std::vector<std::string> all;
    if (is_root()) {
      for (int r = 0; r < env_.world; ++r) {
        const std::vector<uint8_t> bytes = store_->get(key + std::to_string(r));  // waits up to the timeout
        all.emplace_back(bytes.begin(), bytes.end());
      }
    }
    // The store outlives a rank that leaves early only while rank 0 hosts it: nobody leaves before rank 0 has read.
    barrier("gathering " + tag);
    if (is_root())
      for (int r = 0; r < env_.world; ++r) store_->deleteKey(key + std::to_string(r));
    return all;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(who(), peers(), "gathering " + tag, e);
  }
}

}  // namespace sentinel
