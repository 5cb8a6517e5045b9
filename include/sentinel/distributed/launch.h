// Where this process sits in a data-parallel job, as the launcher says: torchrun (or any launcher
// speaking its contract: SLURM wrappers, mpirun scripts) sets RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR and MASTER_PORT in every process it starts. No variable set: a single process.
// Not the process group itself (process_group.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace sentinel {

struct LaunchEnv {
  int rank = 0;                     // this process, 0 .. world - 1 (RANK)
  int world = 1;                    // processes in the job (WORLD_SIZE)
  int local_rank = 0;               // this process on its machine (LOCAL_RANK): picks the GPU
  std::string master_addr;          // host of the rendezvous store (MASTER_ADDR)
  uint16_t master_port = 0;         // its port (MASTER_PORT)
  bool agent_store = false;         // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True)
  int restart = 0;                  // torchrun's TORCHELASTIC_RESTART_COUNT: keeps keys of attempts apart
  bool launched() const { return world > 1 || !master_addr.empty(); }
};

// Reads the launcher's variables through `lookup` (std::getenv by default). Throws Error naming the
// variable when some are set but not all, or a value is out of range (RANK >= WORLD_SIZE, ...).
LaunchEnv launch_env(const std::function<const char*(const char*)>& lookup = {});

enum class DistBackend { Gloo, Nccl };
// "auto" -> Gloo on CPU, NCCL on CUDA (what PyTorch users get from init_process_group); "gloo" | "nccl".
DistBackend parse_dist_backend(const std::string& name, bool cuda);
const char* dist_backend_name(DistBackend backend);

struct ProcessGroupOptions {
  DistBackend backend = DistBackend::Gloo;
  // Every collective and the rendezvous give up after this long and throw naming the rank and the
  // collective, so a job whose peer died or hung ends instead of waiting forever. torch's default.
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
};

}  // namespace sentinel
