// GGUF model files (versions 2 and 3, little-endian): metadata key/values and tensor infos,
// validated up front and memory-mapped so that tensor bytes are read in place.
// Not a writer, and no dequantization here (see dequant.h); no big-endian or v1 files.
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

// The on-disk type tag of a metadata value (gguf_type in ggml's gguf.h).
enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
};

// "UINT32", "STRING", ...; "type 99" for a tag outside the enum.
std::string gguf_value_type_name(GgufValueType type);

// One metadata value: a scalar, a string, or an array of values of one element type (arrays of
// arrays are allowed). The accessors convert only where nothing is lost and otherwise throw
// Error naming the value's actual type.
class GgufValue {
 public:
  static GgufValue make_uint(GgufValueType type, uint64_t value);   // UINT8/16/32/64
  static GgufValue make_int(GgufValueType type, int64_t value);     // INT8/16/32/64
  static GgufValue make_float(GgufValueType type, double value);    // FLOAT32/FLOAT64
  static GgufValue make_bool(bool value);
  static GgufValue make_string(std::string value);
  static GgufValue make_array(GgufValueType element_type, std::vector<GgufValue> elements);

  GgufValueType type() const { return type_; }
  bool is_integer() const;
  bool is_float() const;

  int64_t as_int() const;     // any integer type; a UINT64 above INT64_MAX throws
  uint64_t as_uint() const;   // any integer type; a negative value throws
  double as_float() const;    // FLOAT32/FLOAT64 (a FLOAT32 widened exactly), and integers
  bool as_bool() const;
  const std::string& as_string() const;
  GgufValueType array_type() const;  // element type; throws if not an array
  const std::vector<GgufValue>& as_array() const;
  std::vector<std::string> as_string_array() const;
  std::vector<int64_t> as_int_array() const;
  std::vector<double> as_float_array() const;

  // Short human form for `info` displays and error messages: 30, 1e-05, 'llama',
  // "[49152 strings: '<|endoftext|>', '<|im_start|>', ...]". Non-printable bytes are escaped.
  std::string to_display(size_t max_items = 8) const;

 private:
  GgufValueType type_ = GgufValueType::UINT8;
  GgufValueType element_type_ = GgufValueType::UINT8;  // only meaningful for ARRAY
  union {
    uint64_t u;  // UINT*, BOOL (0/1)
    int64_t i;   // INT*
    double f;    // FLOAT*
  } scalar_{0};
  std::string string_;
  std::vector<GgufValue> array_;
};

// Tensor element types (ggml_type). Only the values below have names in the enum, but a parsed
// file may carry any type ggml knows (IQ2_XXS = 16, ...): ggml_type_name() names those too.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30
};

// "Q4_1"; "type 99" for a value ggml does not know.
std::string ggml_type_name(GgmlType type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;      // ggml order: dims[0] is the contiguous (fastest) axis; torch shape is reversed
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;            // relative to the data section, a multiple of the alignment
  std::span<const uint8_t> data;  // the tensor's bytes inside the file, exactly ggml_row_bytes(type, n_elements())
  int64_t n_elements() const;     // product of dims (1 for zero dims); overflow was refused at parse time
};

class GgufFile {
 public:
  // Maps the file and parses it; the returned object owns the mapping (copies share it), so
  // the tensors' data spans live as long as any copy. Throws Error naming the path.
  static GgufFile open(const std::string& path);
  // Parses bytes owned by the caller, who keeps them alive while the result is used.
  static GgufFile parse(std::span<const uint8_t> bytes, std::string name = "<memory>");

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }

  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  std::vector<std::string> metadata_keys() const { return metadata_keys_; }  // in file order
  const GgufValue* find(const std::string& key) const;                        // nullptr if absent
  const GgufValue& get(const std::string& key) const;                         // throws naming key and file

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }     // in file order
  const GgufTensorInfo* find_tensor(const std::string& name) const;           // nullptr if absent
  const GgufTensorInfo& tensor(const std::string& name) const;                // throws naming tensor and file

 private:
  friend class GgufParser;
  std::shared_ptr<const MappedFile> mapping_;  // null for parse()
  std::string path_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::vector<std::string> metadata_keys_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;  // name -> position in tensors_
};

}  // namespace sentinel
