// make_policy: the one place that maps PolicyOptions to a policy object.
#include "sentinel/core/error.h"
#include "sentinel/policies/h2o.h"
#include "sentinel/policies/policy.h"
#include "sentinel/policies/rules.h"
#include "sentinel/policies/scored.h"
#include "sentinel/policies/sentinel.h"
#include "sentinel/policies/sepllm.h"

namespace sentinel {

std::unique_ptr<CompressionPolicy> make_policy(const PolicyOptions& options) {
  options.validate();
  switch (options.method) {
    case Method::None: return std::make_unique<NoCompression>();
    case Method::Sentinel: return std::make_unique<SentinelPolicy>(options);
    case Method::Local: return std::make_unique<LocalPolicy>(options.ratio, options.window);
    case Method::Scattered: return std::make_unique<ScatteredPolicy>(options.ratio, options.seed);
    case Method::Strided: return std::make_unique<StridedPolicy>(options.ratio);
    case Method::Streaming: return std::make_unique<StreamingPolicy>(options.ratio, options.sinks);
    case Method::H2O: return std::make_unique<H2OPolicy>(options.ratio, options.older_rank);
    case Method::Tova: return make_tova_policy(options.ratio);
    case Method::SepLLM: return std::make_unique<SepLLMPolicy>(options.ratio, options.sinks, options.separators);
    case Method::Custom: return (*options.custom)();
  }
  fail("unhandled compression method");
}

}  // namespace sentinel
