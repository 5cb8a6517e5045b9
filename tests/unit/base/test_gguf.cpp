// GGUF reader tests: the gguf-py fixtures read back exactly (every metadata type, tensor infos,
// v2 and v3), and every malformed file, truncated or hand-corrupted, refused with an Error that
// says what is wrong. Dequantized values are test_dequant.cpp's concern.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"
#include "unit/base/io_test_support.h"

namespace sentinel {
namespace {

using testing::bytes_of;
using testing::expect_error_containing;
using testing::read_io_fixture;
using testing::read_io_json;

// Little-endian GGUF bytes built field by field, for files gguf-py would never write.
class GgufBytes {
 public:
  template <typename T>
  GgufBytes& put(T value) {
    bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
    return *this;
  }
  GgufBytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes += s;
    return *this;
  }
  GgufBytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    bytes += "GGUF";
    return put(version).put(n_tensors).put(n_kv);
  }
  GgufBytes& kv_u32(const std::string& key, uint32_t value) {
    return str(key).put(static_cast<uint32_t>(GgufValueType::UINT32)).put(value);
  }
  GgufBytes& kv_string(const std::string& key, const std::string& value) {
    return str(key).put(static_cast<uint32_t>(GgufValueType::STRING)).str(value);
  }
  GgufBytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) put(d);
    return put(type).put(offset);
  }
  GgufBytes& pad(size_t alignment) {
    bytes.append((alignment - bytes.size() % alignment) % alignment, '\0');
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    bytes.append(n, '\0');
    return *this;
  }
  std::string bytes;
};

GgufFile parse(const std::string& bytes) { return GgufFile::parse(bytes_of(bytes), "x.gguf"); }

// One F32 tensor of 4 elements: the smallest valid file with data, the base of the corruptions.
std::string minimal_file() {
  return GgufBytes()
      .header(1, 1)
      .kv_string("general.architecture", "llama")
      .tensor("w", {4}, 0, 0)
      .pad(32)
      .zeros(16)
      .bytes;
}

// ---- the gguf-py fixtures ----

class GgufFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = read_io_fixture("all_types_v3.gguf");
    expected_ = read_io_json("all_types_v3.expected.json");
  }
  std::string bytes_;
  nlohmann::json expected_;
};

// Compares a parsed value with the fixture's {"type", "value"} / {"type": "ARRAY", ...} form.
void expect_value_equals(const GgufValue& value, const nlohmann::json& expected, const std::string& where) {
  ASSERT_EQ(gguf_value_type_name(value.type()), expected["type"].get<std::string>()) << where;
  switch (value.type()) {
    case GgufValueType::ARRAY: {
      ASSERT_EQ(gguf_value_type_name(value.array_type()), expected["element_type"].get<std::string>()) << where;
      const auto& items = value.as_array();
      ASSERT_EQ(items.size(), expected["items"].size()) << where;
      for (size_t i = 0; i < items.size(); ++i)
        expect_value_equals(items[i], expected["items"][i], where + "[" + std::to_string(i) + "]");
      break;
    }
    case GgufValueType::STRING:
      EXPECT_EQ(value.as_string(), expected["value"].get<std::string>()) << where;
      break;
    case GgufValueType::BOOL:
      EXPECT_EQ(value.as_bool(), expected["value"].get<bool>()) << where;
      break;
    case GgufValueType::FLOAT32:
    case GgufValueType::FLOAT64:
      EXPECT_EQ(value.as_float(), expected["value"].get<double>()) << where;
      break;
    case GgufValueType::UINT64:
      EXPECT_EQ(value.as_uint(), expected["value"].get<uint64_t>()) << where;
      break;
    default:
      EXPECT_EQ(value.as_int(), expected["value"].get<int64_t>()) << where;
      break;
  }
}

TEST_F(GgufFixture, ReadsEveryMetadataValueExactly) {
  const GgufFile file = parse(bytes_);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 64u);
  EXPECT_EQ(file.metadata_keys(), expected_["keys_in_order"].get<std::vector<std::string>>());
  ASSERT_EQ(file.metadata().size(), expected_["metadata"].size());
  for (const auto& [key, expected] : expected_["metadata"].items()) {
    const GgufValue* value = file.find(key);
    ASSERT_NE(value, nullptr) << key;
    expect_value_equals(*value, expected, key);
  }
}

TEST_F(GgufFixture, ConvertsAndRefusesConversionsByType) {
  const GgufFile file = parse(bytes_);
  EXPECT_EQ(file.get("test.uint8").as_int(), 200);
  EXPECT_EQ(file.get("test.int8").as_float(), -100.0);
  EXPECT_EQ(file.get("test.float32").as_float(), static_cast<double>(0.1f));
  EXPECT_EQ(file.get("test.string").as_string(), "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82");
  EXPECT_EQ(file.get("test.int64_min").as_int(), INT64_MIN);
  EXPECT_TRUE(file.get("test.uint32").is_integer());
  EXPECT_TRUE(file.get("test.float64").is_float());
  EXPECT_EQ(file.get("test.array_int32").as_int_array(), (std::vector<int64_t>{1, -2, 3, 2147483647}));
  EXPECT_EQ(file.get("test.array_float32").as_float_array(),
            (std::vector<double>{0.5, -1.25, static_cast<double>(1e-5f)}));
  EXPECT_EQ(file.get("test.array_string").as_string_array()[0], "<|endoftext|>");
  EXPECT_TRUE(file.get("test.array_empty").as_int_array().empty());
  EXPECT_EQ(file.get("test.array_nested").as_array()[2].as_int_array(), (std::vector<int64_t>{5, 6}));

  expect_error_containing([&] { file.get("test.uint64_max").as_int(); }, "does not fit in int64");
  expect_error_containing([&] { file.get("test.string").as_int(); }, "is STRING, not an integer");
  expect_error_containing([&] { file.get("test.float32").as_int(); }, "is FLOAT32, not an integer");
  expect_error_containing([&] { file.get("test.uint8").as_string(); }, "is UINT8, not STRING");
  expect_error_containing([&] { file.get("test.int8").as_bool(); }, "is INT8, not BOOL");
  expect_error_containing([&] { file.get("test.int8").as_array(); }, "not ARRAY");
  expect_error_containing([&] { file.get("test.int64_min").as_uint(); }, "negative");
  expect_error_containing([&] { file.get("test.array_string").as_int_array(); }, "not an array of integers");
  expect_error_containing([&] { file.get("test.array_int32").as_string_array(); }, "not an array of strings");
  expect_error_containing([&] { file.get("no.such.key"); }, "GGUF 'x.gguf' has no metadata key 'no.such.key'");
  EXPECT_EQ(file.find("no.such.key"), nullptr);
}

TEST_F(GgufFixture, DisplaysValuesShortly) {
  const GgufFile file = parse(bytes_);
  EXPECT_EQ(file.get("test.uint32").to_display(), "4000000000");
  EXPECT_EQ(file.get("test.bool_true").to_display(), "true");
  EXPECT_EQ(file.get("test.float64").to_display(), "0.33333333333333331");
  EXPECT_EQ(file.get("general.architecture").to_display(), "'testarch'");
  EXPECT_EQ(file.get("test.array_string").to_display(2), "[5 strings: '<|endoftext|>', '\xc4\xa0the', ...]");
  EXPECT_EQ(file.get("test.array_string").to_display().find("'a\\'b\\\\c\\n'") != std::string::npos, true);
  EXPECT_EQ(file.get("test.array_int32").to_display(), "[4 int32: 1, -2, 3, 2147483647]");
  EXPECT_EQ(file.get("test.array_nested").to_display(1), "[3 arrays: [3 int32: 1, ...], ...]");
  EXPECT_EQ(file.get("test.array_empty").to_display(), "[0 uint32]");
}

TEST_F(GgufFixture, ReadsTensorInfosAndPlacesTheirBytes) {
  const GgufFile file = parse(bytes_);
  const auto& expected = expected_["tensors"];
  ASSERT_EQ(file.tensors().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const GgufTensorInfo& t = file.tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, expected[i]["name"].get<std::string>());
    EXPECT_EQ(ggml_type_name(t.type), expected[i]["type"].get<std::string>());
    EXPECT_EQ(t.dims, expected[i]["dims"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.offset, expected[i]["offset"].get<uint64_t>());
    EXPECT_EQ(t.offset % 64, 0u);
    EXPECT_EQ(t.n_elements(), expected[i]["n_values"].get<int64_t>());
    EXPECT_EQ(static_cast<int64_t>(t.data.size()), ggml_row_bytes(t.type, t.n_elements()));
    EXPECT_GE(t.data.data(), reinterpret_cast<const uint8_t*>(bytes_.data()));
    EXPECT_LE(t.data.data() + t.data.size(), reinterpret_cast<const uint8_t*>(bytes_.data()) + bytes_.size());
    EXPECT_EQ(&file.tensor(t.name), &t);
  }
  EXPECT_EQ(file.tensor("f32_4d").dims, (std::vector<int64_t>{4, 1, 3, 2}));
  EXPECT_EQ(file.find_tensor("missing"), nullptr);
  expect_error_containing([&] { file.tensor("missing"); }, "GGUF 'x.gguf' has no tensor named 'missing'");
}

TEST(Gguf, OpensFromDiskAndKeepsTheMappingAliveInCopies) {
  const std::string path = testing::io_fixture_path("all_types_v3.gguf");
  GgufFile copy = [&] {
    const GgufFile file = GgufFile::open(path);
    EXPECT_EQ(file.path(), path);
    return file;  // the copy must keep the mapping alive after `file` is gone
  }();
  const GgufTensorInfo& f32 = copy.tensor("f32");
  float first = 0;
  std::memcpy(&first, f32.data.data(), 4);
  EXPECT_TRUE(std::isinf(first));
}

TEST(Gguf, ReadsVersion2) {
  const std::string bytes = read_io_fixture("small_v2.gguf");  // parse() does not copy: keep the bytes alive
  const GgufFile file = parse(bytes);
  EXPECT_EQ(file.version(), 2u);
  EXPECT_EQ(file.get("llama.block_count").as_int(), 2);
  EXPECT_EQ(file.get("general.name").as_string(), "v2 fixture");
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.tensor("weight").dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(dequantize(file.tensor("weight")), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Gguf, ParsesTheMinimalHandMadeFile) {
  const std::string bytes = minimal_file();
  const GgufFile file = parse(bytes);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.tensor("w").data.size(), 16u);
  // No tensors: the data section's padding may be absent.
  EXPECT_NO_THROW(parse(GgufBytes().header(0, 1).kv_u32("a", 1).bytes));
}

// ---- refusals ----

// Every prefix of a valid file is refused with an Error (never a crash), until the prefix holds
// all tensor data; only trailing padding may be cut.
void expect_every_truncation_refused(const std::string& bytes) {
  const GgufFile whole = parse(bytes);
  size_t data_end = 0;
  for (const auto& t : whole.tensors())
    data_end = std::max(
        data_end, static_cast<size_t>(t.data.data() + t.data.size() - reinterpret_cast<const uint8_t*>(bytes.data())));
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string prefix = bytes.substr(0, n);  // own allocation: ASan sees any over-read
    if (n < data_end) {
      EXPECT_THROW(parse(prefix), Error) << "prefix of " << n << " bytes";
    } else {
      EXPECT_NO_THROW(parse(prefix)) << "prefix of " << n << " bytes";
    }
  }
}

TEST(GgufRefusal, EveryTruncationOfEveryFixture) {
  expect_every_truncation_refused(read_io_fixture("all_types_v3.gguf"));
  expect_every_truncation_refused(read_io_fixture("small_v2.gguf"));
  expect_every_truncation_refused(minimal_file());
}

TEST(GgufRefusal, TruncationMessageSaysWhereAndWhat) {
  const std::string bytes = read_io_fixture("all_types_v3.gguf");
  expect_error_containing([&] { parse(bytes.substr(0, 40)); },
                          "GGUF 'x.gguf' is truncated or corrupt: the header declares 23 metadata entries");
  expect_error_containing([&] { parse(bytes.substr(0, 400)); }, "GGUF 'x.gguf' is truncated: metadata entry ");
  expect_error_containing([&] { parse(bytes.substr(0, 400)); }, "but the file ends at 400 (re-download the file)");
  expect_error_containing([&] { parse(bytes.substr(0, bytes.size() - 200)); }, "ends past the end of the file");
}

TEST(GgufRefusal, BadMagicNamesWhatItSaw) {
  expect_error_containing(
      [] { parse(std::string("PK\x03\x04rest of a zip", 16)); },
      "'x.gguf' is not a GGUF file (magic 'PK\\x03\\x04'); pass a .gguf file or a Hugging Face model folder");
  expect_error_containing([] { parse("GG"); }, "is not a GGUF file (magic 'GG')");
  expect_error_containing([] { parse(""); }, "is not a GGUF file");
}

TEST(GgufRefusal, VersionsOtherThan2And3) {
  expect_error_containing([] { parse(GgufBytes().header(0, 0, 1).bytes); }, "version 1, an obsolete layout");
  expect_error_containing([] { parse(GgufBytes().header(0, 0, 4).bytes); },
                          "has version 4; Sentinel reads versions 2 and 3");
  expect_error_containing([] { parse(GgufBytes().header(0, 0, 0x03000000).bytes); }, "is big-endian");
}

TEST(GgufRefusal, HugeCountsAndLengthsFailBeforeAllocating) {
  expect_error_containing([] { parse(GgufBytes().header(0, 1).put<uint64_t>(1ull << 63).zeros(16).bytes); },
                          "needs 9223372036854775808 bytes");
  expect_error_containing([] { parse(GgufBytes().header(0, UINT64_MAX).bytes); }, "metadata entries");
  expect_error_containing([] { parse(GgufBytes().header(UINT64_MAX, 0).bytes); }, "tensors, which need at least");
  expect_error_containing(
      [] {
        parse(GgufBytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1ull << 61).bytes);
      },
      "declares 2305843009213693952 array elements");
}

TEST(GgufRefusal, BadMetadata) {
  expect_error_containing([] { parse(GgufBytes().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).bytes); },
                          "has the metadata key 'k' twice");
  expect_error_containing([] { parse(GgufBytes().header(0, 1).str("k").put<uint32_t>(13).bytes); },
                          "unknown value type 13");
  expect_error_containing([] { parse(GgufBytes().header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).bytes); },
                          "array of unknown value type 77");
  expect_error_containing([] { parse(GgufBytes().header(0, 1).kv_u32("", 1).bytes); }, "empty metadata key");
  GgufBytes deep;
  deep.header(0, 1).str("deep").put<uint32_t>(9);
  for (int i = 0; i < 40; ++i) deep.put<uint32_t>(9).put<uint64_t>(1);  // arrays of one array, 40 deep
  deep.put<uint32_t>(0).put<uint64_t>(0);
  expect_error_containing([&] { parse(deep.bytes); }, "nests arrays more than 16 deep");
}

TEST(GgufRefusal, BadAlignment) {
  expect_error_containing([] { parse(GgufBytes().header(0, 1).kv_u32("general.alignment", 48).bytes); },
                          "general.alignment = 48; it must be a power of two");
  expect_error_containing([] { parse(GgufBytes().header(0, 1).kv_u32("general.alignment", 0).bytes); }, "power of two");
  expect_error_containing([] { parse(GgufBytes().header(0, 1).kv_string("general.alignment", "32").bytes); },
                          "it must be an integer");
}

TEST(GgufRefusal, BadTensorInfos) {
  auto one_tensor = [](std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data_bytes = 64) {
    return GgufBytes().header(1, 0).tensor("t", std::move(dims), type, offset).pad(32).zeros(data_bytes).bytes;
  };
  expect_error_containing([&] { parse(one_tensor({1, 1, 1, 1, 1}, 0, 0)); }, "has 5 dims; GGUF allows at most 4");
  expect_error_containing([&] { parse(one_tensor({4}, 99, 0)); }, "unknown ggml type 99");
  expect_error_containing([&] { parse(one_tensor({4}, 4, 0)); }, "unknown ggml type 4");  // removed Q4_2
  expect_error_containing([&] { parse(one_tensor({4}, 0, 16)); },
                          "starts at offset 16 of the data section, which is not a multiple of the alignment 32");
  expect_error_containing([&] { parse(one_tensor({32}, 0, 0)); }, "ends past the end of the file");
  expect_error_containing([&] { parse(one_tensor({4}, 0, 1ull << 63)); }, "ends past the end of the file");
  expect_error_containing([&] { parse(one_tensor({1ull << 32, 1ull << 32}, 0, 0)); }, "overflows int64");
  expect_error_containing([&] { parse(one_tensor({1ull << 61, 2}, 0, 0)); }, "byte count overflows int64");
  expect_error_containing([&] { parse(one_tensor({1ull << 63}, 0, 0)); }, "negative as int64");
  expect_error_containing(
      [&] {
        parse(one_tensor({33, 1}, 2, 0));
      },
      "of type Q4_0 has dims[0] = 33, not a multiple of the type's block size 32");
  expect_error_containing([&] { parse(GgufBytes().header(1, 0).tensor("", {4}, 0, 0).pad(32).zeros(16).bytes); },
                          "has an empty name");
  expect_error_containing(
      [] { parse(GgufBytes().header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad(32).zeros(64).bytes); },
      "has two tensors named 'a'");
  expect_error_containing(
      [] { parse(GgufBytes().header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad(32).zeros(64).bytes); },
      "tensors 'a' and 'b' overlap");
  // The data section would start past the end of the file.
  expect_error_containing([] { parse(GgufBytes().header(1, 0).tensor("t", {0}, 0, 0).bytes + "x"); },
                          "the data section should start at offset");
}

TEST(GgufRefusal, OpenNamesThePath) {
  expect_error_containing([] { GgufFile::open("/nonexistent/model.gguf"); }, "/nonexistent/model.gguf");
  const std::string st = testing::io_fixture_path("python.safetensors");
  expect_error_containing([&] { GgufFile::open(st); }, "'" + st + "' is not a GGUF file");
}

}  // namespace
}  // namespace sentinel
