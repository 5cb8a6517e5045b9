// The GGUF reader and dequantizer on the real default model (SmolLM2-135M-Instruct Q4_1):
// structure as llama.cpp sees it, and rows of Q8_0/Q4_1/F32 tensors equal to gguf-py's values
// (tests/data/io/smollm2_q4_1_samples.json, from reference/make_io_fixtures.py). Without the
// model every test fails, naming scripts/setup.sh (which installs it, as CI does): a skip would
// hide a broken setup.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "sentinel/core/paths.h"
#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"
#include "unit/base/io_test_support.h"

namespace sentinel {
namespace {

class DefaultModelGguf : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      path_ = new std::string(default_model_path());
    } catch (const Error& e) {
      missing_ = new std::string(e.what());  // "... Run scripts/setup.sh to install it ..."
    }
  }
  static void TearDownTestSuite() {
    delete path_;
    delete missing_;
    path_ = missing_ = nullptr;
  }
  void SetUp() override {
    if (path_ == nullptr) GTEST_FAIL() << *missing_;
  }
  static std::string* path_;
  static std::string* missing_;
};
std::string* DefaultModelGguf::path_ = nullptr;
std::string* DefaultModelGguf::missing_ = nullptr;

TEST_F(DefaultModelGguf, StructureMatchesLlamaCpp) {
  const GgufFile file = GgufFile::open(*path_);
  EXPECT_EQ(file.version(), 3u);
  EXPECT_EQ(file.alignment(), 32u);
  EXPECT_EQ(file.tensors().size(), 272u);
  EXPECT_EQ(file.get("general.architecture").as_string(), "llama");
  EXPECT_EQ(file.get("llama.block_count").as_int(), 30);
  EXPECT_EQ(file.get("llama.embedding_length").as_int(), 576);
  EXPECT_EQ(file.get("llama.attention.head_count_kv").as_int(), 3);
  EXPECT_EQ(file.get("llama.rope.freq_base").as_float(), 100000.0);
  EXPECT_EQ(file.get("tokenizer.ggml.tokens").as_array().size(), 49152u);
  EXPECT_EQ(file.get("tokenizer.ggml.tokens").as_string_array()[0], "<|endoftext|>");
  EXPECT_EQ(file.metadata_keys().size(), 33u);
  const GgufTensorInfo& embd = file.tensor("token_embd.weight");
  EXPECT_EQ(embd.type, GgmlType::Q8_0);
  EXPECT_EQ(embd.dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(file.tensor("blk.0.attn_q.weight").type, GgmlType::Q4_1);
  EXPECT_EQ(file.tensor("output_norm.weight").type, GgmlType::F32);
  for (const GgufTensorInfo& t : file.tensors()) EXPECT_TRUE(ggml_can_dequantize(t.type)) << t.name;
}

TEST_F(DefaultModelGguf, RowsEqualGgufPy) {
  const GgufFile file = GgufFile::open(*path_);
  const auto fixture = testing::read_io_json("smollm2_q4_1_samples.json");
  EXPECT_EQ(fixture["n_tensors"].get<size_t>(), file.tensors().size());
  for (const auto& sample : fixture["samples"]) {
    const GgufTensorInfo& t = file.tensor(sample["tensor"].get<std::string>());
    const auto row = sample["row"].get<int64_t>();
    SCOPED_TRACE(t.name + " row " + std::to_string(row));
    EXPECT_EQ(ggml_type_name(t.type), sample["type"].get<std::string>());
    EXPECT_EQ(t.dims, sample["dims"].get<std::vector<int64_t>>());
    const int64_t row_bytes = ggml_row_bytes(t.type, t.dims[0]);
    std::vector<float> values(static_cast<size_t>(t.dims[0]));
    dequantize(t.type, t.data.subspan(static_cast<size_t>(row * row_bytes), static_cast<size_t>(row_bytes)), values);
    const auto expected = sample["values"].get<std::vector<double>>();
    ASSERT_LE(expected.size(), values.size());
    for (size_t i = 0; i < expected.size(); ++i)
      ASSERT_EQ(values[i], static_cast<float>(expected[i])) << "element " << i;  // bit-exact
  }
}

TEST_F(DefaultModelGguf, DequantizesEveryTensor) {
  const GgufFile file = GgufFile::open(*path_);
  const auto start = std::chrono::steady_clock::now();
  int64_t n_values = 0;
  for (const GgufTensorInfo& t : file.tensors()) n_values += static_cast<int64_t>(dequantize(t).size());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(n_values, 134515008);
  std::cout << "dequantized " << n_values << " values in " << seconds << " s\n";
}

}  // namespace
}  // namespace sentinel
