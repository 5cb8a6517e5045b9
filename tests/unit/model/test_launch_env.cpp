// The launcher's environment (torchrun's contract) as sentinel reads it: absent means one process,
// partial or out-of-range settings are refused naming the variable, and the backend follows the device.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "sentinel/core/error.h"
#include "sentinel/distributed/launch.h"

namespace sentinel {
namespace {

LaunchEnv parse(const std::map<std::string, std::string>& vars) {
  return launch_env([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    parse(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, NoVariablesMeansOneProcess) {
  const LaunchEnv env = parse({});
  EXPECT_FALSE(env.launched());
  EXPECT_EQ(env.world, 1);
  EXPECT_EQ(env.rank, 0);
}

TEST(LaunchEnv, ReadsWhatTorchrunSets) {
  const LaunchEnv env = parse({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"},
                               {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                               {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(env.launched());
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node0");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.restart, 2);
  EXPECT_FALSE(parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"},
                      {"TORCHELASTIC_USE_AGENT_STORE", "true"}})
                   .agent_store);  // torch compares with str(True)
}

TEST(LaunchEnv, RefusesPartialOrOutOfRangeSettingsNamingTheVariable) {
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}}).find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).find("RANK is not set"),
            std::string::npos);
  const std::map<std::string, std::string> ok = {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"},
                                                 {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& name, const std::string& value) {
    auto vars = ok;
    vars[name] = value;
    return error_of(vars);
  };
  EXPECT_NE(with("RANK", "2").find("RANK='2'"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "0").find("WORLD_SIZE='0'"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "70000").find("MASTER_PORT='70000'"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "29x").find("MASTER_PORT"), std::string::npos);
  EXPECT_EQ(with("RANK", "1"), "");
}

TEST(LaunchEnv, BackendFollowsTheDevice) {
  EXPECT_EQ(parse_dist_backend("auto", false), DistBackend::Gloo);
  EXPECT_EQ(parse_dist_backend("auto", true), DistBackend::Nccl);
  EXPECT_EQ(parse_dist_backend("gloo", true), DistBackend::Gloo);
  EXPECT_THROW(parse_dist_backend("nccl", false), Error);
  EXPECT_THROW(parse_dist_backend("mpi", false), Error);
}

}  // namespace
}  // namespace sentinel
