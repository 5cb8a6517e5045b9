#include "sentinel/engine/sampling_options.h"

#include <string>

#include "sentinel/core/error.h"

namespace sentinel {

void SamplingOptions::validate() const {
  std::string problems;
  if (!(temperature >= 0)) problems += " temperature must be >= 0;";
  if (top_k < 0) problems += " top_k must be >= 0;";
  if (!(top_p > 0 && top_p <= 1)) problems += " top_p must be in (0, 1];";
  if (!(repetition_penalty > 0)) problems += " repetition_penalty must be > 0;";
  check(problems.empty(), "invalid sampling options:", problems);
}

}  // namespace sentinel
