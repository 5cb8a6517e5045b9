// The GGUF parser: header, metadata, tensor infos, then the data section's layout, every
// count and length checked against the bytes that remain before anything is allocated.
// Layout reference: ggml/docs/gguf.md and ggml/src/gguf.cpp. Values are in gguf_value.cpp.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>

#include "sentinel/core/error.h"
#include "sentinel/core/mapped_file.h"
#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"

namespace sentinel {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields straight into host integers");

namespace {

constexpr size_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
constexpr int kMaxArrayDepth = 16;        // arrays of arrays: real files nest at most once
constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS

// Smallest encoding of a value of the type, used to bound element counts before allocating.
size_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: return 8;        // u64 length
    case GgufValueType::ARRAY: return 4 + 8;     // element type, count
  }
  return 1;
}

bool is_known_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

// The first bytes of a non-GGUF file, printable, for the "not a GGUF file" message.
std::string escaped_magic(std::span<const uint8_t> bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < 4; ++i) {
    const uint8_t c = bytes[i];
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string dims_display(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + "]";
}

}  // namespace

class GgufParser {
 public:
  GgufParser(std::span<const uint8_t> bytes, std::string name) : bytes_(bytes) { file_.path_ = std::move(name); }

  GgufFile run() {
    read_header();
    read_metadata();
    read_alignment();
    read_tensor_infos();
    place_tensor_data();
    return std::move(file_);
  }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  GgufFile file_;
  uint64_t n_tensors_ = 0;           // from the header; the infos follow the metadata
  std::string item_ = "the header";  // what is being read, for truncation messages

  const std::string& name() const { return file_.path_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  void need(uint64_t n) {
    if (n <= remaining()) return;
    fail("GGUF '", name(), "' is truncated: ", item_, " needs ", n, " bytes at offset ", pos_,
         " but the file ends at ", bytes_.size(), " (re-download the file)");
  }

  template <typename T>
  T read() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string() {
    const uint64_t length = read<uint64_t>();
    need(length);  // before allocating: a length of 2^63 must fail here
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(length));
    pos_ += static_cast<size_t>(length);
    return s;
  }

  // Refuses a count whose smallest encoding could not fit in the rest of the file.
  void check_count(uint64_t count, size_t min_each, const char* what) {
    if (count <= remaining() / min_each) return;
    fail("GGUF '", name(), "' is truncated or corrupt: ", item_, " declares ", count, " ", what,
         ", which need at least ", min_each, " bytes each, but only ", remaining(),
         " bytes remain (re-download the file)");
  }

  void read_header() {
    const auto magic = bytes_.first(std::min<size_t>(4, bytes_.size()));
    if (magic.size() < 4 || std::memcmp(magic.data(), "GGUF", 4) != 0)
      fail("'", name(), "' is not a GGUF file (magic '", escaped_magic(magic),
           "'); pass a .gguf file or a Hugging Face model folder");
    pos_ = 4;
    const auto version = read<uint32_t>();
    const uint32_t swapped = __builtin_bswap32(version);
    if ((version & 0xffff) == 0 && swapped >= 1 && swapped <= 3)
      fail("GGUF '", name(), "' is big-endian (version ", swapped,
           " stored byte-swapped); Sentinel reads little-endian GGUF files only: convert the model again "
           "without --bigendian");
    if (version == 1)
      fail("GGUF '", name(), "' is version 1, an obsolete layout with 32-bit counts that Sentinel does "
           "not read; convert the model again with a current llama.cpp");
    check(version == 2 || version == 3, "GGUF '", name(), "' has version ", version,
          "; Sentinel reads versions 2 and 3 (is the file corrupt, or from a newer llama.cpp?)");
    file_.version_ = version;
  }

  void read_metadata() {
    const auto n_tensors = read<uint64_t>();
    const auto n_kv = read<uint64_t>();
    n_tensors_ = n_tensors;
    check_count(n_kv, 8 + 4 + 1, "metadata entries");
    for (uint64_t i = 0; i < n_kv; ++i) {
      item_ = "metadata entry " + std::to_string(i) + " of " + std::to_string(n_kv);
      std::string key = read_string();
      check(!key.empty(), "GGUF '", name(), "' has an empty metadata key (", item_, "); the file is corrupt");
      item_ += " ('" + key + "')";
      const auto type = read<uint32_t>();
      GgufValue value = read_value(type, 0);
      check(!file_.metadata_.contains(key), "GGUF '", name(), "' has the metadata key '", key,
            "' twice; the file is corrupt");
      file_.metadata_keys_.push_back(key);
      file_.metadata_.emplace(std::move(key), std::move(value));
    }
  }

  GgufValue read_value(uint32_t raw_type, int depth) {
    check(is_known_value_type(raw_type), "GGUF '", name(), "': ", item_, " has unknown value type ", raw_type,
          " (known: 0..12); the file is corrupt or from a newer GGUF version");
    const auto type = static_cast<GgufValueType>(raw_type);
    switch (type) {
      case GgufValueType::UINT8: return GgufValue::make_uint(type, read<uint8_t>());
      case GgufValueType::UINT16: return GgufValue::make_uint(type, read<uint16_t>());
      case GgufValueType::UINT32: return GgufValue::make_uint(type, read<uint32_t>());
      case GgufValueType::UINT64: return GgufValue::make_uint(type, read<uint64_t>());
      case GgufValueType::INT8: return GgufValue::make_int(type, read<int8_t>());
      case GgufValueType::INT16: return GgufValue::make_int(type, read<int16_t>());
      case GgufValueType::INT32: return GgufValue::make_int(type, read<int32_t>());
      case GgufValueType::INT64: return GgufValue::make_int(type, read<int64_t>());
      case GgufValueType::FLOAT32: return GgufValue::make_float(type, read<float>());
      case GgufValueType::FLOAT64: return GgufValue::make_float(type, read<double>());
      case GgufValueType::BOOL: return GgufValue::make_bool(read<uint8_t>() != 0);
      case GgufValueType::STRING: return GgufValue::make_string(read_string());
      case GgufValueType::ARRAY: break;
    }
    check(depth < kMaxArrayDepth, "GGUF '", name(), "': ", item_, " nests arrays more than ", kMaxArrayDepth,
          " deep; the file is corrupt");
    const auto raw_element_type = read<uint32_t>();
    check(is_known_value_type(raw_element_type), "GGUF '", name(), "': ", item_,
          " is an array of unknown value type ", raw_element_type, " (known: 0..12); the file is corrupt");
    const auto element_type = static_cast<GgufValueType>(raw_element_type);
    const auto count = read<uint64_t>();
    check_count(count, min_encoded_size(element_type), "array elements");
    std::vector<GgufValue> elements;
    elements.reserve(static_cast<size_t>(count));
    for (uint64_t j = 0; j < count; ++j) elements.push_back(read_value(raw_element_type, depth + 1));
    return GgufValue::make_array(element_type, std::move(elements));
  }

  void read_alignment() {
    file_.alignment_ = kDefaultAlignment;
    const GgufValue* value = file_.find("general.alignment");
    if (value == nullptr) return;
    check(value->is_integer(), "GGUF '", name(), "' has general.alignment = ", value->to_display(),
          " of type ", gguf_value_type_name(value->type()), "; it must be an integer");
    const int64_t alignment = value->as_int();
    check(alignment > 0 && std::has_single_bit(static_cast<uint64_t>(alignment)) && alignment <= (1 << 30),
          "GGUF '", name(), "' has general.alignment = ", alignment,
          "; it must be a power of two (32 by default); the file is corrupt");
    file_.alignment_ = static_cast<size_t>(alignment);
  }

  void read_tensor_infos() {
    item_ = "the header";
    check_count(n_tensors_, 8 + 4 + 4 + 8, "tensors");
    file_.tensors_.reserve(static_cast<size_t>(n_tensors_));
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      item_ = "tensor info " + std::to_string(i) + " of " + std::to_string(n_tensors_);
      GgufTensorInfo info;
      info.name = read_string();
      check(!info.name.empty(), "GGUF '", name(), "': ", item_, " has an empty name; the file is corrupt");
      item_ += " ('" + info.name + "')";
      read_dims(info);
      read_type(info);
      info.offset = read<uint64_t>();
      check(info.offset % file_.alignment_ == 0, "GGUF '", name(), "': tensor '", info.name, "' starts at offset ",
            info.offset, " of the data section, which is not a multiple of the alignment ", file_.alignment_,
            "; the file is corrupt");
      check(!file_.tensor_index_.contains(info.name), "GGUF '", name(), "' has two tensors named '", info.name,
            "'; the file is corrupt");
      file_.tensor_index_.emplace(info.name, file_.tensors_.size());
      file_.tensors_.push_back(std::move(info));
    }
  }

  void read_dims(GgufTensorInfo& info) {
    const auto n_dims = read<uint32_t>();
    check(n_dims <= kMaxDims, "GGUF '", name(), "': tensor '", info.name, "' has ", n_dims,
          " dims; GGUF allows at most ", kMaxDims, "; the file is corrupt");
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = read<uint64_t>();
      check(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "GGUF '", name(), "': tensor '",
            info.name, "' has dims[", d, "] = ", dim, ", which is negative as int64; the file is corrupt");
      const auto dim64 = static_cast<int64_t>(dim);
      check(!__builtin_mul_overflow(n_elements, dim64, &n_elements), "GGUF '", name(), "': tensor '", info.name,
            "' has dims whose element count overflows int64; the file is corrupt");
      info.dims.push_back(dim64);
    }
  }

  void read_type(GgufTensorInfo& info) {
    const auto raw_type = read<uint32_t>();
    info.type = static_cast<GgmlType>(raw_type);
    check(ggml_type_is_known(info.type), "GGUF '", name(), "': tensor '", info.name,
          "' has unknown ggml type ", raw_type, "; the file is corrupt or needs a newer Sentinel");
    const int64_t block = ggml_block_size(info.type);
    const int64_t row = info.dims.empty() ? 1 : info.dims[0];
    check(row % block == 0, "GGUF '", name(), "': tensor '", info.name, "' of type ", ggml_type_name(info.type),
          " has dims[0] = ", row, ", not a multiple of the type's block size ", block, "; the file is corrupt");
  }

  // The data section starts at the next multiple of the alignment after the tensor infos;
  // every tensor must lie inside the file, and no two may overlap.
  void place_tensor_data() {
    if (file_.tensors_.empty()) return;  // writers may omit the padding of an empty data section
    const size_t alignment = file_.alignment_;
    const size_t data_start = (pos_ + alignment - 1) / alignment * alignment;  // pos_ <= file size: no overflow
    check(data_start <= bytes_.size(), "GGUF '", name(), "' is truncated: the data section should start at offset ",
          data_start, " but the file ends at ", bytes_.size(), " (re-download the file)");
    const uint64_t data_size = bytes_.size() - data_start;
    std::vector<size_t> by_offset;
    for (GgufTensorInfo& info : file_.tensors_) {
      // n_elements() is a whole number of blocks: read_type() checked dims[0].
      const int64_t n_blocks = info.n_elements() / ggml_block_size(info.type);
      int64_t n_bytes = 0;
      check(!__builtin_mul_overflow(n_blocks, ggml_type_size(info.type), &n_bytes), "GGUF '", name(),
            "': tensor '", info.name, "' has dims ", dims_display(info.dims), " whose byte count overflows int64");
      const bool inside = info.offset <= data_size && static_cast<uint64_t>(n_bytes) <= data_size - info.offset;
      if (!inside)
        fail("GGUF '", name(), "' is truncated: tensor '", info.name, "' (", ggml_type_name(info.type), " ",
             dims_display(info.dims), ", ", n_bytes, " bytes at data offset ", info.offset,
             ") ends past the end of the file at ", bytes_.size(), " (re-download the file)");
      info.data = bytes_.subspan(data_start + info.offset, static_cast<size_t>(n_bytes));
      by_offset.push_back(by_offset.size());
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [&](size_t a, size_t b) { return file_.tensors_[a].offset < file_.tensors_[b].offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
      const GgufTensorInfo& before = file_.tensors_[by_offset[k - 1]];
      const GgufTensorInfo& after = file_.tensors_[by_offset[k]];
      check(after.offset >= before.offset + before.data.size(), "GGUF '", name(), "': tensors '", before.name,
            "' and '", after.name, "' overlap in the data section; the file is corrupt");
    }
  }
};

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // overflow refused when the file was parsed
  return n;
}

GgufFile GgufFile::parse(std::span<const uint8_t> bytes, std::string name) {
  return GgufParser(bytes, std::move(name)).run();
}

GgufFile GgufFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  GgufFile file = parse(mapping->bytes(), path);
  file.mapping_ = std::move(mapping);
  return file;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* value = find(key);
  check(value != nullptr, "GGUF '", path_, "' has no metadata key '", key, "'");
  return *value;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* info = find_tensor(name);
  check(info != nullptr, "GGUF '", path_, "' has no tensor named '", name, "' (it has ", tensors_.size(),
        " tensors)");
  return *info;
}

}  // namespace sentinel
