// Reads a reference fixture (safetensors written by a reference/ script) into torch tensors,
// and compares tensors with a message that says how far apart they are. Torch suites only.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

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

inline std::vector<int32_t> to_ids(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int32_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace sentinel::testing
