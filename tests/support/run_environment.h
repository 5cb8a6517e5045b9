// The "environment" object every JSON result of the CLI carries (tools/sentinel/results.h:
// run_environment), checked the same way by each end-to-end suite that reads one.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sentinel/kernels/kernels.h"
#include "support/subprocess.h"

namespace sentinel::testing {

// `env` names the machine, its instruction sets and the kernels this build picks on it, `threads`,
// the revision with a dirty flag that agrees with it, and a command line that a shell reads back
// as `argv` (the program first).
inline void expect_run_environment(const nlohmann::json& env, const std::vector<std::string>& argv, int threads) {
  SCOPED_TRACE("environment " + env.dump());
  for (const char* key : {"cpu", "cores", "isa", "kernel_isa", "threads", "dtype", "git_revision", "git_dirty",
                          "command", "time"})
    ASSERT_TRUE(env.contains(key)) << "no \"" << key << "\"";
  EXPECT_FALSE(env.at("cpu").get<std::string>().empty());
  EXPECT_EQ(env.at("threads").get<int>(), threads);
  for (const char* flag : {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                           "amx_tile", "amx_int8", "amx_bf16"})
    EXPECT_TRUE(env.at("isa").contains(flag) && env.at("isa").at(flag).is_boolean()) << flag;
  // The kernels the child chose are the ones this process chooses on the same CPU and environment.
  EXPECT_EQ(env.at("kernel_isa").get<std::string>(), kernels::isa_name(kernels::active_isa()));
  if (env.at("kernel_isa") == "avx512") EXPECT_TRUE(env.at("isa").at("avx512_vnni").get<bool>());
  if (env.at("kernel_isa") == "avx2") EXPECT_TRUE(env.at("isa").at("avx2").get<bool>());
  ASSERT_TRUE(env.at("git_dirty").is_boolean());
  const std::string revision = env.at("git_revision").get<std::string>();
  EXPECT_FALSE(revision.empty());
  EXPECT_EQ(revision.ends_with("+dirty"), env.at("git_dirty").get<bool>());
  EXPECT_EQ(shell_words(env.at("command").get<std::string>()), argv) << env.at("command");
}

}  // namespace sentinel::testing
