// A read-only memory map of a whole file. Model files are mapped, never read into the heap,
// so that loading a model costs page faults on the tensors actually used. Not a writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace sentinel {

class MappedFile {
 public:
  // Throws Error naming the path if it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sentinel
