// The safetensors reader: header length, JSON header, then the checks of the reference
// implementation (huggingface/safetensors, Metadata::validate): known dtypes, sizes that match
// shapes, and tensors that tile the data buffer exactly. The writer is safetensors_writer.cpp.
#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/core/mapped_file.h"
#include "sentinel/io/safetensors.h"

namespace sentinel {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // MAX_HEADER_SIZE of the reference
constexpr int kMaxJsonDepth = 3;                   // {name: {"shape": [dims]}}: deeper is never valid

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

std::string supported_dtypes() {
  std::string out;
  for (const auto& d : kDTypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

std::string shape_display(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

std::string dtype_name(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "DType " + std::to_string(static_cast<int>(dtype));
}

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  fail("unknown DType ", static_cast<int>(dtype));
}

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // overflow refused when the file was parsed or the tensor added
  return n;
}

class SafetensorsParser {
 public:
  SafetensorsParser(std::span<const uint8_t> bytes, std::string name) : bytes_(bytes) {
    file_.path_ = std::move(name);
  }

  SafetensorsFile run() {
    const nlohmann::json header = read_header();
    check(header.is_object(), "safetensors '", name(), "' has a JSON header that is not an object");
    std::vector<Range> ranges;  // parallel to file_.tensors_
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
      } else {
        ranges.push_back(read_tensor(key, value));
      }
    }
    place_tensors(ranges);
    return std::move(file_);
  }

 private:
  std::span<const uint8_t> bytes_;
  SafetensorsFile file_;
  std::span<const uint8_t> buffer_;  // the data after the header

  struct Range {
    uint64_t begin, end;  // data_offsets, relative to buffer_
  };

  const std::string& name() const { return file_.path_; }

  nlohmann::json read_header() {
    check(bytes_.size() >= 8, "'", name(), "' is not a safetensors file: it has ", bytes_.size(),
          " bytes, fewer than the 8-byte header length");
    uint64_t n_header = 0;
    std::memcpy(&n_header, bytes_.data(), 8);  // little-endian on every supported host
    check(n_header <= kMaxHeaderBytes, "safetensors '", name(), "' declares a header of ", n_header,
          " bytes, over the 100 MB limit: the file is corrupt or not a safetensors file");
    check(n_header <= bytes_.size() - 8, "safetensors '", name(), "' is truncated: the header length says ",
          n_header, " bytes but only ", bytes_.size() - 8, " follow (re-download the file)");
    const auto text = bytes_.subspan(8, static_cast<size_t>(n_header));
    buffer_ = bytes_.subspan(8 + static_cast<size_t>(n_header));
    check(!text.empty() && text[0] == '{', "safetensors '", name(),
          "' has a header that does not start with '{': the file is corrupt or not a safetensors file");

    // The callback refuses duplicate tensor names (a plain parse keeps the last silently) and
    // drops anything nested deeper than a valid header ever is, which bounds memory and depth.
    std::set<std::string> top_keys;
    std::string duplicate;
    bool too_deep = false;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      using Event = nlohmann::json::parse_event_t;
      if (event == Event::key && depth == 1 && !top_keys.insert(parsed.get<std::string>()).second)
        duplicate = parsed.get<std::string>();
      if ((event == Event::object_start || event == Event::array_start) && depth > kMaxJsonDepth) {
        too_deep = true;
        return false;
      }
      return true;
    };
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text.begin(), text.end(), callback);
    } catch (const nlohmann::json::exception& e) {
      fail("safetensors '", name(), "' has a malformed JSON header (", e.what(), "); the file is corrupt");
    }
    check(duplicate.empty(), "safetensors '", name(), "' names tensor '", duplicate, "' twice in its header");
    check(!too_deep, "safetensors '", name(), "' has a JSON header nested deeper than ", kMaxJsonDepth,
          " levels; the file is corrupt");
    return header;
  }

  void read_metadata(const nlohmann::json& value) {
    check(value.is_object(), "safetensors '", name(), "': __metadata__ must be an object of strings");
    for (const auto& [key, v] : value.items()) {
      check(v.is_string(), "safetensors '", name(), "': __metadata__ value '", key,
            "' is not a string (", v.type_name(), ")");
      file_.metadata_[key] = v.get<std::string>();
    }
  }

  DType parse_dtype(const std::string& tensor, const nlohmann::json& entry) {
    const auto it = entry.find("dtype");
    check(it != entry.end() && it->is_string(), "safetensors '", name(), "': tensor '", tensor,
          "' has no string \"dtype\"");
    const auto text = it->get<std::string>();
    for (const auto& d : kDTypes)
      if (text == d.name) return d.dtype;
    fail("safetensors '", name(), "': tensor '", tensor, "' has dtype '", text,
         "', which Sentinel does not read; supported: ", supported_dtypes());
  }

  std::vector<uint64_t> parse_unsigned_array(const std::string& tensor, const nlohmann::json& entry,
                                             const char* field) {
    const auto it = entry.find(field);
    check(it != entry.end() && it->is_array(), "safetensors '", name(), "': tensor '", tensor, "' has no \"",
          field, "\" array");
    std::vector<uint64_t> out;
    for (const auto& v : *it) {
      check(v.is_number_unsigned(), "safetensors '", name(), "': tensor '", tensor, "' has ", field,
            " entry ", v.dump(), ", which is not a non-negative integer");
      out.push_back(v.get<uint64_t>());
    }
    return out;
  }

  // Reads one tensor entry and returns its data_offsets (the span is set by place_tensors).
  Range read_tensor(const std::string& tensor_name, const nlohmann::json& entry) {
    check(entry.is_object(), "safetensors '", name(), "': entry '", tensor_name, "' is not an object");
    SafetensorsTensor tensor;
    tensor.name = tensor_name;
    tensor.dtype = parse_dtype(tensor_name, entry);
    int64_t n_elements = 1;
    for (uint64_t dim : parse_unsigned_array(tensor_name, entry, "shape")) {
      const bool fits = dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                        !__builtin_mul_overflow(n_elements, static_cast<int64_t>(dim), &n_elements);
      check(fits, "safetensors '", name(), "': tensor '", tensor_name, "' has a shape whose element count overflows");
      tensor.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto offsets = parse_unsigned_array(tensor_name, entry, "data_offsets");
    check(offsets.size() == 2, "safetensors '", name(), "': tensor '", tensor_name,
          "' has data_offsets of length ", offsets.size(), "; it must be [begin, end]");
    const uint64_t begin = offsets[0], end = offsets[1];
    check(begin <= end, "safetensors '", name(), "': tensor '", tensor_name, "' has data_offsets [", begin, ", ",
          end, "] that end before they begin");
    uint64_t n_bytes = 0;
    const bool size_fits =
        !__builtin_mul_overflow(static_cast<uint64_t>(n_elements), dtype_size(tensor.dtype), &n_bytes);
    check(size_fits && n_bytes == end - begin, "safetensors '", name(), "': tensor '", tensor_name, "' (",
          dtype_name(tensor.dtype), " ", shape_display(tensor.shape), ") needs ", n_elements, " x ",
          dtype_size(tensor.dtype), " bytes, but its data_offsets [", begin, ", ", end, "] span ", end - begin);
    check(end <= buffer_.size(), "safetensors '", name(), "' is truncated: tensor '", tensor_name,
          "' ends at data offset ", end, " but the data buffer holds only ", buffer_.size(),
          " bytes (re-download the file)");
    file_.tensors_.push_back(std::move(tensor));
    return {begin, end};
  }

  // Like the reference, the tensors sorted by offset must tile the buffer: no overlap, no hole,
  // nothing after the last one.
  void place_tensors(const std::vector<Range>& ranges) {
    std::vector<size_t> order(ranges.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto& tensors = file_.tensors_;
    // By (begin, end) like the reference, so an empty tensor sorts before one starting at its offset.
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (ranges[a].begin != ranges[b].begin) return ranges[a].begin < ranges[b].begin;
      if (ranges[a].end != ranges[b].end) return ranges[a].end < ranges[b].end;
      return tensors[a].name < tensors[b].name;
    });
    std::vector<SafetensorsTensor> sorted;
    sorted.reserve(order.size());
    uint64_t expected_begin = 0;
    const SafetensorsTensor* previous = nullptr;
    for (size_t i : order) {
      SafetensorsTensor& t = tensors[i];
      const auto [begin, end] = ranges[i];
      if (begin < expected_begin)
        fail("safetensors '", name(), "': tensors '", previous->name, "' and '", t.name,
             "' overlap in the data buffer; the file is corrupt");
      check(begin == expected_begin, "safetensors '", name(), "': bytes [", expected_begin, ", ", begin,
            ") of the data buffer belong to no tensor; the file is corrupt");
      t.data = buffer_.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin));
      expected_begin = end;
      sorted.push_back(std::move(t));
      previous = &sorted.back();
    }
    check(expected_begin == buffer_.size(), "safetensors '", name(), "': the data buffer holds ", buffer_.size(),
          " bytes but the tensors end at ", expected_begin, "; the file is corrupt or has trailing bytes");
    tensors = std::move(sorted);
    for (size_t i = 0; i < tensors.size(); ++i) file_.index_.emplace(tensors[i].name, i);
  }
};

SafetensorsFile SafetensorsFile::parse(std::span<const uint8_t> bytes, std::string name) {
  return SafetensorsParser(bytes, std::move(name)).run();
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_shared<const MappedFile>(path);
  SafetensorsFile file = parse(mapping->bytes(), path);
  file.mapping_ = std::move(mapping);
  return file;
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsTensor& SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsTensor* t = find(name);
  check(t != nullptr, "safetensors '", path_, "' has no tensor named '", name, "' (it has ", tensors_.size(),
        " tensors)");
  return *t;
}

}  // namespace sentinel
