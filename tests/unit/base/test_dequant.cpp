// Dequantization tests: every tensor of the gguf-py fixture against gguf.quants.dequantize
// (bit-exact for the float and 32-block types, 1e-6 relative for K-quants), hand-built blocks that
// pin the nibble order without Python, half-float conversion over all 65536 inputs, and refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"
#include "unit/base/io_test_support.h"

namespace sentinel {
namespace {

using testing::bytes_of;
using testing::expect_error_containing;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

std::vector<float> read_expected_values() {
  const std::string raw = testing::read_io_fixture("all_types_v3.expected.bin");
  std::vector<float> values(raw.size() / 4);
  std::memcpy(values.data(), raw.data(), values.size() * 4);
  return values;
}

bool is_k_quant(GgmlType type) {
  return type == GgmlType::Q2_K || type == GgmlType::Q3_K || type == GgmlType::Q4_K || type == GgmlType::Q5_K ||
         type == GgmlType::Q6_K;
}

TEST(Dequant, EveryFixtureTensorMatchesGgufPy) {
  const std::string bytes = testing::read_io_fixture("all_types_v3.gguf");
  const GgufFile file = GgufFile::parse(bytes_of(bytes), "all_types_v3.gguf");
  const auto expected_json = testing::read_io_json("all_types_v3.expected.json");
  const std::vector<float> expected = read_expected_values();
  ASSERT_EQ(file.tensors().size(), 14u);
  for (const auto& entry : expected_json["tensors"]) {
    const GgufTensorInfo& tensor = file.tensor(entry["name"].get<std::string>());
    SCOPED_TRACE(tensor.name + " (" + ggml_type_name(tensor.type) + ")");
    const std::vector<float> got = dequantize(tensor);
    const auto offset = entry["values_offset"].get<size_t>();
    ASSERT_EQ(got.size(), entry["n_values"].get<size_t>());
    ASSERT_LE(offset + got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const float want = expected[offset + i];
      if (is_k_quant(tensor.type)) {
        EXPECT_NEAR(got[i], want, 1e-6 * std::max(std::fabs(want), 1e-30f)) << "element " << i;
      } else {
        // Bit-exact, NaN payloads and signed zeros included.
        EXPECT_EQ(bits_of(got[i]), bits_of(want)) << "element " << i << ": " << got[i] << " vs " << want;
      }
    }
  }
}

TEST(Dequant, RowByRowEqualsWholeTensor) {
  const std::string bytes = testing::read_io_fixture("all_types_v3.gguf");
  const GgufFile file = GgufFile::parse(bytes_of(bytes));
  for (const GgufTensorInfo& tensor : file.tensors()) {
    SCOPED_TRACE(tensor.name);
    const std::vector<float> whole = dequantize(tensor);
    const int64_t row = tensor.dims[0];
    const int64_t row_bytes = ggml_row_bytes(tensor.type, row);
    std::vector<float> out(static_cast<size_t>(row));
    for (int64_t r = 0; r < tensor.n_elements() / row; ++r) {
      dequantize(tensor.type, tensor.data.subspan(static_cast<size_t>(r * row_bytes), static_cast<size_t>(row_bytes)),
                 out);
      EXPECT_EQ(0, std::memcmp(out.data(), whole.data() + r * row, out.size() * 4)) << "row " << r;
    }
  }
}

// The plain twin of f16_to_f32: the value written out from the IEEE 754 definition.
double half_by_definition(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa == 0 ? sign * INFINITY : NAN;
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

TEST(Dequant, HalfToFloatIsExactForAllInputs) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    const double want = half_by_definition(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
      ASSERT_EQ(bits_of(got), ((h & 0x8000u) << 16) | 0x7f800000u | ((h & 0x3ffu) << 13)) << "payload of " << h;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << "half 0x" << std::hex << h;
      ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << h;
    }
  }
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_TRUE(std::isinf(bf16_to_f32(0x7f80)));
}

// Hand-made blocks pin the layouts independently of gguf-py.
TEST(Dequant, Q4_0NibbleOrderByHand) {
  std::vector<uint8_t> block(18);
  const uint16_t one = 0x3c00;  // f16 1.0
  std::memcpy(block.data(), &one, 2);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> out(32);
  dequantize(GgmlType::Q4_0, block, out);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], static_cast<float>(j - 8)) << j;       // low nibbles: elements 0..15
    EXPECT_EQ(out[j + 16], static_cast<float>(7 - j)) << j;  // high nibbles: elements 16..31
  }
}

TEST(Dequant, Q4_1AndQ8_0ByHand) {
  std::vector<uint8_t> q41(20);
  const uint16_t half_d = 0x3800, minus_one = 0xbc00;  // d = 0.5, m = -1
  std::memcpy(q41.data(), &half_d, 2);
  std::memcpy(q41.data() + 2, &minus_one, 2);
  q41[4] = 0xf3;  // element 0: q = 3, element 16: q = 15
  std::vector<float> out(32);
  dequantize(GgmlType::Q4_1, q41, out);
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[16], 6.5f);
  EXPECT_EQ(out[1], -1.0f);

  std::vector<uint8_t> q80(34);
  const uint16_t two = 0x4000;
  std::memcpy(q80.data(), &two, 2);
  q80[2] = static_cast<uint8_t>(-128);
  q80[33] = 127;
  dequantize(GgmlType::Q8_0, q80, out);
  EXPECT_EQ(out[0], -256.0f);
  EXPECT_EQ(out[31], 254.0f);
}

TEST(Dequant, Q8_KAndF64ByHand) {
  std::vector<uint8_t> block(292);
  const float d = 0.25f;
  std::memcpy(block.data(), &d, 4);
  for (int j = 0; j < 256; ++j) block[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 128));
  std::vector<float> out(256);
  dequantize(GgmlType::Q8_K, block, out);
  for (int j = 0; j < 256; ++j) ASSERT_EQ(out[j], 0.25f * static_cast<float>(j - 128)) << j;

  const double values[2] = {1.0 / 3.0, -1e300};
  std::vector<float> f64(2);
  dequantize(GgmlType::F64, {reinterpret_cast<const uint8_t*>(values), 16}, f64);
  EXPECT_EQ(f64[0], static_cast<float>(1.0 / 3.0));
  EXPECT_TRUE(std::isinf(f64[1]));
}

TEST(Dequant, BlockGeometry) {
  EXPECT_EQ(ggml_block_size(GgmlType::F32), 1);
  EXPECT_EQ(ggml_type_size(GgmlType::F32), 4);
  EXPECT_EQ(ggml_block_size(GgmlType::Q4_0), 32);
  EXPECT_EQ(ggml_type_size(GgmlType::Q4_0), 18);
  EXPECT_EQ(ggml_type_size(GgmlType::Q4_1), 20);
  EXPECT_EQ(ggml_type_size(GgmlType::Q8_0), 34);
  EXPECT_EQ(ggml_block_size(GgmlType::Q4_K), 256);
  EXPECT_EQ(ggml_type_size(GgmlType::Q4_K), 144);
  EXPECT_EQ(ggml_type_size(GgmlType::Q6_K), 210);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_1, 576), 18 * 20);
  EXPECT_EQ(ggml_type_name(GgmlType::Q4_1), "Q4_1");
  EXPECT_EQ(ggml_type_name(static_cast<GgmlType>(16)), "IQ2_XXS");
  EXPECT_EQ(ggml_type_name(static_cast<GgmlType>(4)), "type 4");
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::Q6_K));
  EXPECT_FALSE(ggml_can_dequantize(GgmlType::Q8_1));
  expect_error_containing([] { ggml_row_bytes(GgmlType::Q4_0, 33); }, "33 elements is not a whole number of blocks");
  expect_error_containing([] { ggml_block_size(static_cast<GgmlType>(200)); }, "unknown ggml tensor type 200");
}

TEST(Dequant, Refusals) {
  std::vector<uint8_t> src(18);
  std::vector<float> dst(64);
  expect_error_containing([&] { dequantize(GgmlType::Q4_0, src, dst); },
                          "64 elements of Q4_0 take 36 bytes, but the source holds 18");
  std::vector<float> dst_odd(31);
  expect_error_containing([&] { dequantize(GgmlType::Q4_0, src, dst_odd); }, "not a whole number of blocks");
  expect_error_containing([&] { dequantize(static_cast<GgmlType>(16), src, dst); },
                          "IQ2_XXS cannot be dequantized yet");

  GgufTensorInfo tensor;
  tensor.name = "blk.0.ffn_up.weight";
  tensor.type = GgmlType::Q8_1;
  tensor.dims = {32};
  expect_error_containing(
      [&] { dequantize(tensor); },
      "tensor 'blk.0.ffn_up.weight' has type Q8_1, which Sentinel cannot dequantize yet; supported: F32, F16");
}

}  // namespace
}  // namespace sentinel
