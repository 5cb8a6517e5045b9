// The launcher's environment (torchrun's contract) and the backend names.
#include "sentinel/distributed/launch.h"

#include <cstdlib>
#include <limits>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

int64_t integer_variable(const char* name, const char* value, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(value, &end, 10);
  check(end != value && *end == '\0' && v >= lo && v <= hi, "environment variable ", name, "='", value,
        "' is not an integer in [", lo, ", ", hi, "]; the launcher (torchrun) sets it, or unset every one of RANK, ",
        "WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT for a single process");
  return v;
}

}  // namespace

LaunchEnv launch_env(const std::function<const char*(const char*)>& lookup_in) {
  const auto lookup = lookup_in ? lookup_in : [](const char* name) -> const char* { return std::getenv(name); };
  const char* rank = lookup("RANK");
  const char* world = lookup("WORLD_SIZE");
  const char* addr = lookup("MASTER_ADDR");
  const char* port = lookup("MASTER_PORT");
  LaunchEnv env;
  if (rank == nullptr && world == nullptr) return env;  // not launched: one process, no store
  for (const auto& [name, value] : {std::pair<const char*, const char*>{"RANK", rank},
                                    {"WORLD_SIZE", world}, {"MASTER_ADDR", addr}, {"MASTER_PORT", port}})
    check(value != nullptr && *value != '\0', "environment variable ", name, " is not set, but ",
          rank != nullptr ? "RANK" : "WORLD_SIZE", " is: a data-parallel launch needs RANK, WORLD_SIZE, MASTER_ADDR ",
          "and MASTER_PORT (torchrun sets them all); unset RANK and WORLD_SIZE to run a single process");
  env.world = static_cast<int>(integer_variable("WORLD_SIZE", world, 1, std::numeric_limits<int>::max()));
  env.rank = static_cast<int>(integer_variable("RANK", rank, 0, env.world - 1));
  if (const char* local = lookup("LOCAL_RANK"); local != nullptr && *local != '\0')
    env.local_rank = static_cast<int>(integer_variable("LOCAL_RANK", local, 0, env.world - 1));
  env.master_addr = addr;
  env.master_port = static_cast<uint16_t>(integer_variable("MASTER_PORT", port, 1, 65535));
  const char* agent = lookup("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent != nullptr && std::string(agent) == "True";  // torch compares with str(True)
  if (const char* restart = lookup("TORCHELASTIC_RESTART_COUNT"); restart != nullptr && *restart != '\0')
    env.restart = static_cast<int>(integer_variable("TORCHELASTIC_RESTART_COUNT", restart, 0, 1 << 20));
  return env;
}

DistBackend parse_dist_backend(const std::string& name, bool cuda) {
  if (name == "auto") return cuda ? DistBackend::Nccl : DistBackend::Gloo;
  if (name == "gloo") return DistBackend::Gloo;
  if (name == "nccl") {
    check(cuda, "--dist-backend nccl needs CUDA tensors (--device cuda); on CPU use gloo");
    return DistBackend::Nccl;
  }
  fail("unknown --dist-backend '", name, "'; use auto (gloo on CPU, nccl on CUDA), gloo or nccl");
}

const char* dist_backend_name(DistBackend backend) { return backend == DistBackend::Nccl ? "nccl" : "gloo"; }

}  // namespace sentinel
