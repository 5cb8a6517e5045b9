// --dist-backend, --dist-timeout and joining a torchrun job (distributed_args.h).
#include "distributed_args.h"

#include <cstdio>

#include "sentinel/core/error.h"

namespace sentinel::cli {

void add_dist_options(CLI::App& app, DistArgs& args) {
  app.add_option("--dist-backend", args.backend,
                 "Under torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set): the c10d backend, auto = gloo on "
                 "CPU, nccl on CUDA")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->capture_default_str();
  app.add_option("--dist-timeout", args.timeout_s,
                 "Under torchrun: seconds the rendezvous and each collective wait for the other ranks before the job "
                 "fails with an error naming the rank and the collective")
      ->capture_default_str();
}

std::unique_ptr<ProcessGroup> join_launched_job(const DistArgs& args, bool cuda) {
  check(args.timeout_s > 0, "--dist-timeout must be > 0 seconds, got ", args.timeout_s);
  const LaunchEnv env = launch_env();
  if (!env.launched()) return nullptr;
  ProcessGroupOptions options;
  options.backend = parse_dist_backend(args.backend, cuda);
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout_s * 1000));
  auto group = ProcessGroup::join(env, options);
  if (group->is_root())
    std::fprintf(stderr, "data parallel: %d processes, %s backend, rendezvous at %s:%u\n", group->world(),
                 group->backend_name(), env.master_addr.c_str(), static_cast<unsigned>(env.master_port));
  return group;
}

}  // namespace sentinel::cli
