// Safetensors tests: the file written by Python `safetensors` read back value by value, our
// writer round-tripped through our reader (and written atomically to disk), and every truncated
// or corrupted file refused with an Error that names the problem.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "sentinel/io/dequant.h"
#include "sentinel/io/safetensors.h"
#include "unit/base/io_test_support.h"

namespace sentinel {
namespace {

using testing::bytes_of;
using testing::expect_error_containing;

SafetensorsFile parse(const std::string& bytes) { return SafetensorsFile::parse(bytes_of(bytes), "x.safetensors"); }

// A file from a header text and a data buffer, for corruptions no writer would produce.
std::string make_file(const std::string& header, const std::string& buffer = "") {
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + buffer;
}

// Element i of a tensor as double, whatever its dtype.
double element(const SafetensorsTensor& t, size_t i) {
  const uint8_t* p = t.data.data() + i * dtype_size(t.dtype);
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (t.dtype) {
    case DType::F64:
      return load(double{});
    case DType::F32:
      return load(float{});
    case DType::F16:
      return f16_to_f32(load(uint16_t{}));
    case DType::BF16:
      return bf16_to_f32(load(uint16_t{}));
    case DType::I64:
      return static_cast<double>(load(int64_t{}));
    case DType::I32:
      return load(int32_t{});
    case DType::I16:
      return load(int16_t{});
    case DType::I8:
      return load(int8_t{});
    case DType::U8:
      return load(uint8_t{});
    case DType::BOOL:
      return load(uint8_t{});
  }
  return 0;
}

TEST(Safetensors, ReadsThePythonWrittenFile) {
  const std::string bytes = testing::read_io_fixture("python.safetensors");
  const SafetensorsFile file = parse(bytes);
  const auto expected = testing::read_io_json("python.safetensors.expected.json");
  using StringMap = std::map<std::string, std::string>;
  EXPECT_EQ(file.metadata(), expected["metadata"].get<StringMap>());
  ASSERT_EQ(file.tensors().size(), expected["tensors"].size());
  for (const auto& [name, want] : expected["tensors"].items()) {
    SCOPED_TRACE(name);
    const SafetensorsTensor& t = file.tensor(name);
    EXPECT_EQ(dtype_name(t.dtype), want["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, want["shape"].get<std::vector<int64_t>>());
    const auto values = want["values"];
    ASSERT_EQ(static_cast<size_t>(t.n_elements()), values.size());
    ASSERT_EQ(t.data.size(), values.size() * dtype_size(t.dtype));
    for (size_t i = 0; i < values.size(); ++i) {
      if (t.dtype == DType::I64) {
        int64_t v;
        std::memcpy(&v, t.data.data() + 8 * i, 8);
        EXPECT_EQ(v, values[i].get<int64_t>()) << i;
      } else {
        EXPECT_EQ(element(t, i), values[i].get<double>()) << i;
      }
    }
  }
  // Sorted by data offset, tiling the buffer.
  for (size_t i = 1; i < file.tensors().size(); ++i)
    EXPECT_EQ(file.tensors()[i - 1].data.data() + file.tensors()[i - 1].data.size(), file.tensors()[i].data.data());
  EXPECT_EQ(file.tensor("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(file.tensor("scalar").n_elements(), 1);
  EXPECT_EQ(file.tensor("empty").n_elements(), 0);
  EXPECT_EQ(file.find("nope"), nullptr);
  expect_error_containing([&] { file.tensor("nope"); }, "safetensors 'x.safetensors' has no tensor named 'nope'");
}

SafetensorsWriter sample_writer() {
  SafetensorsWriter writer;
  const float f32[6] = {1, 2, 3, 4, 5, 6};
  const double f64[1] = {0.1};
  const uint8_t u8[3] = {1, 2, 3};
  const uint16_t bf16[2] = {0x3f80, 0x4000};
  writer.add("b.weight", DType::F32, {2, 3}, {reinterpret_cast<const uint8_t*>(f32), sizeof f32});
  writer.add("a.bias", DType::U8, {3}, {u8, 3});
  writer.add("c", DType::F64, {}, {reinterpret_cast<const uint8_t*>(f64), 8});
  writer.add("d", DType::BF16, {2}, {reinterpret_cast<const uint8_t*>(bf16), 4});
  writer.add("e.empty", DType::I32, {0, 4}, {});
  writer.set_metadata("base_model_sha256", "b179c952");
  writer.set_metadata("rank", "8");
  return writer;
}

TEST(SafetensorsWriter, RoundTripsThroughTheReader) {
  const std::string bytes = sample_writer().serialize();
  uint64_t n_header;
  std::memcpy(&n_header, bytes.data(), 8);
  EXPECT_EQ(n_header % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  const SafetensorsFile file = parse(bytes);
  EXPECT_EQ(file.metadata().at("rank"), "8");
  ASSERT_EQ(file.tensors().size(), 5u);
  // Largest elements first: the f64 scalar, then f32, then i32, bf16, u8.
  EXPECT_EQ(file.tensors()[0].name, "c");
  EXPECT_EQ(file.tensors()[1].name, "b.weight");
  const SafetensorsTensor& w = file.tensor("b.weight");
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(element(w, 5), 6.0);
  EXPECT_EQ(element(file.tensor("c"), 0), 0.1);
  EXPECT_EQ(element(file.tensor("d"), 1), 2.0);
  EXPECT_EQ(element(file.tensor("a.bias"), 2), 3.0);
  EXPECT_EQ(file.tensor("e.empty").data.size(), 0u);
  for (const auto& t : file.tensors())  // natural alignment within the file
    EXPECT_EQ((t.data.data() - reinterpret_cast<const uint8_t*>(bytes.data())) % dtype_size(t.dtype), 0u) << t.name;
}

TEST(SafetensorsWriter, WritesAtomicallyToDisk) {
  const auto folder = std::filesystem::temp_directory_path() / ("sentinel_st_" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  const std::string path = (folder / "adapter.safetensors").string();
  sample_writer().write(path);
  sample_writer().write(path);  // replacing an existing file
  {
    const SafetensorsFile file = SafetensorsFile::open(path);
    EXPECT_EQ(file.path(), path);
    EXPECT_EQ(file.tensors().size(), 5u);
  }
  size_t n_entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder)) ++n_entries;
  EXPECT_EQ(n_entries, 1u) << "a temporary file was left behind";
  expect_error_containing([&] { sample_writer().write((folder / "no" / "such" / "dir.st").string()); },
                          "cannot create");
  std::filesystem::remove_all(folder);
}

TEST(SafetensorsWriter, Refusals) {
  SafetensorsWriter writer;
  const uint8_t bytes[8] = {};
  writer.add("x", DType::F32, {2}, {bytes, 8});
  expect_error_containing([&] { writer.add("x", DType::F32, {2}, {bytes, 8}); }, "already has a tensor named 'x'");
  expect_error_containing([&] { writer.add("y", DType::F32, {3}, {bytes, 8}); }, "does not match the 8 bytes given");
  expect_error_containing([&] { writer.add("y", DType::F32, {-1}, {bytes, 8}); }, "negative dim");
  expect_error_containing([&] { writer.add("__metadata__", DType::U8, {8}, {bytes, 8}); }, "reserved");
}

// ---- refusals ----

TEST(SafetensorsRefusal, EveryTruncationOfEveryFixture) {
  for (const std::string& bytes : {testing::read_io_fixture("python.safetensors"), sample_writer().serialize()}) {
    EXPECT_NO_THROW(parse(bytes));
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string prefix = bytes.substr(0, n);
      EXPECT_THROW(parse(prefix), Error) << "prefix of " << n << " bytes";
    }
  }
}

TEST(SafetensorsRefusal, HeaderLength) {
  expect_error_containing([] { parse("abc"); }, "fewer than the 8-byte header length");
  expect_error_containing([] { parse(make_file("{}").substr(0, 9)); },
                          "the header length says 2 bytes but only 1 follow");
  std::string huge = make_file("{}");
  const uint64_t n = 200'000'000;
  std::memcpy(huge.data(), &n, 8);
  expect_error_containing([&] { parse(huge); }, "over the 100 MB limit");
  expect_error_containing([] { parse(make_file(" {}")); }, "does not start with '{'");
}

TEST(SafetensorsRefusal, BadJson) {
  expect_error_containing([] { parse(make_file("{\"a\": ")); }, "malformed JSON header");
  expect_error_containing([] { parse(make_file("{\"a\": 1} x")); }, "malformed JSON header");
  expect_error_containing([] { parse(make_file("{\"a\": {\"dtype\": \"F32\", \"shape\": [[[[1]]]]}}")); },
                          "nested deeper than 3");
  expect_error_containing([] { parse(make_file("{\"a\": 5}")); }, "entry 'a' is not an object");
  expect_error_containing([] { parse(make_file("{\"__metadata__\": {\"k\": 1}}")); },
                          "__metadata__ value 'k' is not a string");
  const std::string t = "{\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}";
  expect_error_containing([&] { parse(make_file("{\"a\": " + t + ", \"a\": " + t + "}", "x")); },
                          "names tensor 'a' twice");
}

TEST(SafetensorsRefusal, BadTensorEntries) {
  auto one = [](const std::string& entry, const std::string& buffer) {
    parse(make_file("{\"t\": " + entry + "}", buffer));
  };
  expect_error_containing([&] { one(R"({"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]})", "x"); },
                          "has dtype 'F8_E4M3', which Sentinel does not read; supported: F64, F32");
  expect_error_containing([&] { one(R"({"shape": [1], "data_offsets": [0, 1]})", "x"); }, "has no string \"dtype\"");
  expect_error_containing([&] { one(R"({"dtype": "U8", "data_offsets": [0, 1]})", "x"); }, "has no \"shape\" array");
  expect_error_containing([&] { one(R"({"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]})", "x"); },
                          "shape entry -1, which is not a non-negative integer");
  expect_error_containing([&] { one(R"({"dtype": "U8", "shape": [1], "data_offsets": [0]})", "x"); },
                          "data_offsets of length 1");
  expect_error_containing([&] { one(R"({"dtype": "U8", "shape": [1], "data_offsets": [1, 0]})", "x"); },
                          "end before they begin");
  expect_error_containing([&] { one(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]})", "xxxx"); },
                          "tensor 't' (F32 [2]) needs 2 x 4 bytes, but its data_offsets [0, 4] span 4");
  expect_error_containing(
      [&] { one(R"({"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 1]})", "x"); },
      "element count overflows");
  expect_error_containing([&] { one(R"({"dtype": "U8", "shape": [4], "data_offsets": [0, 4]})", "xx"); },
                          "is truncated: tensor 't' ends at data offset 4 but the data buffer holds only 2 bytes");
}

TEST(SafetensorsRefusal, TensorsMustTileTheBuffer) {
  const auto u8 = [](int begin, int end) {
    return "{\"dtype\": \"U8\", \"shape\": [" + std::to_string(end - begin) + "], \"data_offsets\": [" +
           std::to_string(begin) + ", " + std::to_string(end) + "]}";
  };
  expect_error_containing([&] { parse(make_file("{\"a\": " + u8(0, 4) + ", \"b\": " + u8(2, 6) + "}", "xxxxxx")); },
                          "tensors 'a' and 'b' overlap");
  expect_error_containing([&] { parse(make_file("{\"a\": " + u8(0, 2) + ", \"b\": " + u8(4, 6) + "}", "xxxxxx")); },
                          "bytes [2, 4) of the data buffer belong to no tensor");
  expect_error_containing([&] { parse(make_file("{\"a\": " + u8(0, 2) + "}", "xxxx")); },
                          "holds 4 bytes but the tensors end at 2");
  expect_error_containing([&] { parse(make_file("{}", "x")); }, "holds 1 bytes but the tensors end at 0");
  EXPECT_NO_THROW(parse(make_file("{\"a\": " + u8(0, 2) + ", \"b\": " + u8(2, 6) + "}", "xxxxxx")));
}

TEST(SafetensorsRefusal, OpenNamesThePath) {
  expect_error_containing([] { SafetensorsFile::open("/nonexistent/w.safetensors"); }, "/nonexistent/w.safetensors");
}

}  // namespace
}  // namespace sentinel
