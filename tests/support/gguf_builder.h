// Writes small GGUF v3 files in memory (metadata and F32 tensors), for tests that need a file the
// fixtures do not have: a model with one key too many, a tensor of the wrong size, an unknown
// architecture. Follows gguf-py's GGUFWriter layout (32-byte alignment, offsets from the data
// section); the files it makes are read back by GgufFile::parse like any other.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sentinel::testing {

class GgufBuilder {
 public:
  using Value = std::variant<uint32_t, float, std::string>;

  GgufBuilder& set(const std::string& key, Value value) {
    metadata_[key] = std::move(value);
    return *this;
  }
  GgufBuilder& erase(const std::string& key) {
    metadata_.erase(key);
    return *this;
  }
  // An F32 tensor of the given ggml dims (dims[0] fastest), values 0.01 * (i % 7) - 0.03.
  GgufBuilder& tensor(const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = 0.01f * static_cast<float>(i % 7) - 0.03f;
    return tensor(name, std::move(dims), std::move(values));
  }
  GgufBuilder& tensor(const std::string& name, std::vector<int64_t> dims, std::vector<float> values) {
    tensors_[name] = {std::move(dims), std::move(values)};
    return *this;
  }
  GgufBuilder& erase_tensor(const std::string& name) {
    tensors_.erase(name);
    return *this;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto raw = [&](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    auto u32 = [&](uint32_t v) { raw(&v, 4); };
    auto u64 = [&](uint64_t v) { raw(&v, 8); };
    auto str = [&](const std::string& s) {
      u64(s.size());
      raw(s.data(), s.size());
    };
    raw("GGUF", 4);
    u32(3);
    u64(tensors_.size());
    u64(metadata_.size());
    for (const auto& [key, value] : metadata_) {
      str(key);
      if (const auto* v = std::get_if<uint32_t>(&value)) {
        u32(4);  // UINT32
        u32(*v);
      } else if (const auto* f = std::get_if<float>(&value)) {
        u32(6);  // FLOAT32
        raw(f, 4);
      } else {
        u32(8);  // STRING
        str(std::get<std::string>(value));
      }
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors_) {
      str(name);
      u32(static_cast<uint32_t>(t.first.size()));
      for (int64_t d : t.first) u64(static_cast<uint64_t>(d));
      u32(0);  // F32
      u64(offset);
      offset += aligned(t.second.size() * sizeof(float));
    }
    out.resize(aligned(out.size()), 0);
    for (const auto& [name, t] : tensors_) {
      raw(t.second.data(), t.second.size() * sizeof(float));
      out.resize(aligned(out.size()), 0);
    }
    return out;
  }

 private:
  static size_t aligned(size_t n) { return (n + 31) / 32 * 32; }
  std::map<std::string, Value> metadata_;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> tensors_;
};

}  // namespace sentinel::testing
