// The options every data-parallel subcommand (train, eval lm, eval gen) shares, and joining the job
// torchrun launched. Not the collectives themselves (sentinel/distributed/).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "sentinel/distributed/process_group.h"

namespace sentinel::cli {

struct DistArgs {
  std::string backend = "auto";  // auto: gloo on CPU, nccl on CUDA
  double timeout_s = 1800;       // every collective and the rendezvous (torch's default, 30 min)
};

void add_dist_options(CLI::App& app, DistArgs& args);

// The process group of the job when the launcher set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT
// (torchrun --nproc-per-node N --no-python build/sentinel ...); nullptr for a single process.
std::unique_ptr<ProcessGroup> join_launched_job(const DistArgs& args, bool cuda);

}  // namespace sentinel::cli
