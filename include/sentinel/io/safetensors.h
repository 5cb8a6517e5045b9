// Safetensors files (Hugging Face weights, LoRA adapters): a validating memory-mapped reader
// and an atomic writer, compatible with the reference implementation (huggingface/safetensors).
// Tensors are exposed as raw little-endian bytes; no dtype conversion here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sentinel {

class MappedFile;

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::string dtype_name(DType dtype);  // the header's spelling: "F32", "BF16", "BOOL", ...
size_t dtype_size(DType dtype);       // bytes per element

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;     // row-major (torch order); empty for a scalar
  std::span<const uint8_t> data;  // exactly n_elements() * dtype_size(dtype) bytes inside the file; files
                                  // from other writers may leave it unaligned, so copy rather than cast
  int64_t n_elements() const;     // product of shape (1 for a scalar); overflow was refused at parse time
};

class SafetensorsFile {
 public:
  // Maps the file and parses it; the result owns the mapping (copies share it). Throws Error.
  static SafetensorsFile open(const std::string& path);
  // Parses bytes owned by the caller, who keeps them alive while the result is used.
  static SafetensorsFile parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by data offset
  const SafetensorsTensor* find(const std::string& name) const;              // nullptr if absent
  const SafetensorsTensor& tensor(const std::string& name) const;            // throws naming file and tensor
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  const std::string& path() const { return path_; }

 private:
  friend class SafetensorsParser;
  std::shared_ptr<const MappedFile> mapping_;  // null for parse()
  std::string path_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Collects tensors, then writes them as one safetensors file. Tensors are laid out by falling
// element size, then name (as the reference writer does), so every tensor is naturally aligned.
class SafetensorsWriter {
 public:
  // Copies the bytes. Throws Error on a duplicate or empty name, a negative dim, or a byte count
  // that is not product(shape) * dtype_size(dtype).
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::span<const uint8_t> data);
  void set_metadata(const std::string& key, const std::string& value);

  // The whole file: u64 header length, JSON header padded with spaces to a multiple of 8, data.
  std::string serialize() const;
  // Writes atomically: "<path>.tmp-<pid>", fsync, rename over path, fsync the folder.
  void write(const std::string& path) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace sentinel
