// ProcessGroupGloo, libtorch's CPU collectives. Its header needs Gloo's declarations, which the
// torch wheel does not ship: the build takes them from Debian's libgloo-dev (CMakeLists.txt), and
// only for declarations; the Gloo code that runs is the copy inside libtorch_cpu.
#include "sentinel/distributed/process_group.h"

#ifdef SENTINEL_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <cstdlib>
#endif

namespace sentinel {

c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                                    std::chrono::milliseconds timeout) {
#ifdef SENTINEL_WITH_GLOO
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // As torch.distributed picks the transport: GLOO_SOCKET_IFNAME names the interface, otherwise
  // this machine's hostname (loopback when it does not resolve).
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(interface != nullptr && *interface != '\0'
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
#else
  (void)store, (void)rank, (void)world, (void)timeout;
  return {};
#endif
}

}  // namespace sentinel
