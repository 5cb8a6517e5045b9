// Reads a reference fixture (safetensors written by a reference/ script) into torch tensors,
// and compares tensors with a message that says how far apart they are. Torch suites only.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sentinel/io/safetensors.h"

namespace sentinel::testing {

inline std::map<std::string, at::Tensor> load_tensor_fixture(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& t : file.tensors()) {
    at::ScalarType type = t.dtype == DType::F32 ? at::kFloat : t.dtype == DType::I64 ? at::kLong : at::kBool;
    std::vector<int64_t> shape(t.shape.begin(), t.shape.end());
    out[t.name] = at::from_blob(const_cast<uint8_t*>(t.data.data()), shape, at::TensorOptions().dtype(type)).clone();
  }
  return out;
}

// ||a - b|| / ||b|| in float64.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  return ((a64 - b64).norm() / b64.norm().clamp_min(1e-30)).item<double>();
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Stage-by-stage parity of a forward pass against a reference (llm.c style): add the stages in
// the order the data flows through them (embeddings, layer 0, layer 1, ..., logits); a failure
// names the FIRST stage whose relative error reaches the tolerance, since every later stage
// inherits its error and the first one is where to look.
class StageParity {
 public:
  explicit StageParity(double tolerance) : tolerance_(tolerance) {}

  void add(const std::string& name, const at::Tensor& ours, const at::Tensor& expected) {
    if (!ours.sizes().equals(expected.sizes())) {  // a shape mismatch diverges, and says so
      std::ostringstream shapes;
      shapes << name << "(shape " << ours.sizes() << " vs " << expected.sizes() << ")";
      stages_.push_back({shapes.str(), std::numeric_limits<double>::infinity()});
      return;
    }
    stages_.push_back({name, relative_error(ours, expected)});
  }

  // -1 when every stage is within tolerance.
  int first_diverging() const {
    for (size_t i = 0; i < stages_.size(); ++i)
      if (!(stages_[i].second < tolerance_)) return static_cast<int>(i);
    return -1;
  }
  bool ok() const { return first_diverging() < 0; }

  double max_error() const {
    double worst = 0;
    for (const auto& s : stages_) worst = std::max(worst, s.second);
    return worst;
  }

  // "first diverging stage: layer7 (relative error 3.1e-03 >= 1e-04); max 4.2e-02 at layer29"
  // followed by every stage's error, for the failure message.
  std::string describe() const {
    std::ostringstream out;
    out.precision(2);
    out << std::scientific;
    const int first = first_diverging();
    if (first < 0) {
      out << "all " << stages_.size() << " stages within " << tolerance_;
    } else {
      out << "first diverging stage: " << stages_[first].first << " (relative error " << stages_[first].second
          << " >= " << tolerance_ << ")";
    }
    const auto worst = std::max_element(stages_.begin(), stages_.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; });
    if (worst != stages_.end()) out << "; max " << worst->second << " at " << worst->first;
    out << "\nper stage:";
    for (const auto& [name, error] : stages_) out << " " << name << "=" << error;
    return out.str();
  }

 private:
  double tolerance_;
  std::vector<std::pair<std::string, double>> stages_;  // (name, relative error), in data-flow order
};

inline std::vector<int32_t> to_ids(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int32_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace sentinel::testing
