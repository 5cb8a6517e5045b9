// Gradient buckets over a real Gloo process group of two ranks (two threads of this process, a
// TCPStore on a loopback port): each rank's gradients become their sum, buckets go out while
// backward still runs, a tensor one rank leaves unused still gets the other's gradient, and
// accumulation micro-batches stay local.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "sentinel/distributed/gradient_buckets.h"

namespace sentinel {
namespace {

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

struct RankOutcome {
  std::vector<at::Tensor> grads;
  int64_t n_buckets = 0, n_overlapped = 0;
  std::string error;
};

// Five tensors of odd sizes; rank r's loss is sum_k (r + 1) * (k + 1) * sum(p_k * x_k), except that
// rank 1 leaves tensor 2 unused. Two micro-batches: the first accumulates locally.
RankOutcome run_rank(int rank, uint16_t port) {
  RankOutcome out;
  try {
    LaunchEnv env;
    env.rank = rank;
    env.world = 2;
    env.master_addr = "127.0.0.1";
    env.master_port = port;
    ProcessGroupOptions options;
    options.timeout = std::chrono::seconds(30);
    const auto group = ProcessGroup::join(env, options);
    std::vector<at::Tensor> params;
    for (int64_t n : {7, 33, 5, 129, 3}) params.push_back(at::ones({n}, at::kFloat).requires_grad_(true));
    GradientBuckets buckets(*group, params, BucketOptions{100, 16});  // 3 buckets: {3, 129}, {5, 33}, {7} floats
    out.n_buckets = buckets.n_buckets();
    for (int micro = 0; micro < 2; ++micro) {
      if (micro == 1) buckets.arm("the test update");
      at::Tensor loss = at::zeros({}, at::kFloat);
      for (size_t k = 0; k < params.size(); ++k) {
        if (rank == 1 && k == 2) continue;
        const at::Tensor x = at::arange(params[k].numel(), at::kFloat);
        loss = loss + (params[k] * x).sum() * static_cast<double>((rank + 1) * (k + 1));
      }
      loss.backward();
    }
    buckets.finish();
    out.n_overlapped = buckets.n_overlapped();
    for (auto& p : params) out.grads.push_back(p.grad().clone());
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

TEST(GradientBuckets, SumsEveryRanksGradientsBucketByBucketDuringBackward) {
  const uint16_t port = free_port();
  RankOutcome outcomes[2];
  std::thread other([&] { outcomes[1] = run_rank(1, port); });
  outcomes[0] = run_rank(0, port);
  other.join();
  for (const auto& o : outcomes) ASSERT_EQ(o.error, "");
  EXPECT_GE(outcomes[0].n_buckets, 3);
  EXPECT_GT(outcomes[0].n_overlapped, 0) << "no bucket was sent while backward was running";
  const std::vector<int64_t> sizes = {7, 33, 5, 129, 3};
  for (size_t k = 0; k < sizes.size(); ++k) {
    // Two micro-batches per rank, rank 0 weighs (k+1), rank 1 2(k+1) (nothing for tensor 2).
    const double weight = 2.0 * (k + 1) * (k == 2 ? 1.0 : 3.0);
    const at::Tensor expected = at::arange(sizes[k], at::kFloat) * weight;
    for (int rank = 0; rank < 2; ++rank)
      EXPECT_TRUE(at::allclose(outcomes[rank].grads[k], expected)) << "tensor " << k << " on rank " << rank;
  }
}

TEST(GradientBuckets, ARendezvousNobodyJoinsTimesOutNamingTheRank) {
  LaunchEnv env;
  env.rank = 0;
  env.world = 2;  // rank 1 never comes
  env.master_addr = "127.0.0.1";
  env.master_port = free_port();
  ProcessGroupOptions options;
  options.timeout = std::chrono::seconds(2);
  try {
    ProcessGroup::join(env, options);
    FAIL() << "joined a world whose other rank never started";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("rank 0 of 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sentinel
