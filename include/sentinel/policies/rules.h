// Rule-based baselines (docs/method.md section 7): local (relative or fixed window), scattered,
// strided and StreamingLLM. Each is a pure rule over positions: which older key a query sees.
#pragma once

#include "sentinel/policies/policy.h"

namespace sentinel {

class NoCompression final : public CompressionPolicy {
 public:
  Method method() const override { return Method::None; }
  at::Tensor mask(std::span<const CacheCell>, int64_t) const override { return {}; }
  std::vector<int64_t> evictions(std::span<const CacheCell>, int64_t) override { return {}; }
};

class LocalPolicy final : public CompressionPolicy {
 public:
  // window > 0: fixed window of that many tokens; else the paper's relative window.
  LocalPolicy(double ratio, int64_t window) : ratio_(ratio), window_(window) {}
  Method method() const override { return Method::Local; }
  bool sees(int64_t j, int64_t k) const override;

 private:
  double ratio_;
  int64_t window_;
};

class ScatteredPolicy final : public CompressionPolicy {
 public:
  ScatteredPolicy(double ratio, uint64_t seed) : ratio_(ratio), seed_(seed) {}
  Method method() const override { return Method::Scattered; }
  bool kept(int64_t k) const;  // the once-per-token keep decision
  bool sees(int64_t j, int64_t k) const override;

 private:
  double ratio_;
  uint64_t seed_;
};

class StridedPolicy final : public CompressionPolicy {
 public:
  explicit StridedPolicy(double ratio);
  Method method() const override { return Method::Strided; }
  double stride() const { return stride_; }  // s = (1 + r) / (1 - r), not rounded
  bool on_stride(int64_t k) const;            // k = ceil(m * s) for some integer m >= 0
  int64_t recent(int64_t n) const;            // recent window after n ordinary tokens
  bool sees(int64_t j, int64_t k) const override;

 private:
  double ratio_;
  double stride_;
};

class StreamingPolicy final : public CompressionPolicy {
 public:
  StreamingPolicy(double ratio, int64_t sinks) : ratio_(ratio), sinks_(sinks) {}
  Method method() const override { return Method::Streaming; }
  int64_t recent(int64_t n) const;  // recent window after n ordinary tokens
  bool sees(int64_t j, int64_t k) const override;

 private:
  double ratio_;
  int64_t sinks_;
};

}  // namespace sentinel
