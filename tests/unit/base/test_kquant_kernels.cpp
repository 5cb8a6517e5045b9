// The ggml block types of Q4_K_M / Q5_K_M / Q6_K files (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) in every
// kernel table this CPU runs, over odd sizes and rows that start off any SIMD boundary: rows
// widened to float equal io/dequant's dequantize bit for bit; the scalar four-row dots equal the
// definition (io/dequant's weights times activations d * q, summed in double); every vectorised
// table's dots equal the scalar twin, and with several tokens at once each token's as it alone. The
// definition never goes through the kernels' own unpacking.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dot_tokens_support.h"
#include "sentinel/io/dequant.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel::kernels {
namespace {

// What the tests need of each weight type: its RowType, io/dequant's name for it, the sizes to try
// (in blocks of the type) and the table members under test.
template <typename Block>
struct TypeUnderTest;

template <>
struct TypeUnderTest<BlockQ5_0> {
  static constexpr RowType row = RowType::Q5_0;
  static constexpr GgmlType ggml = GgmlType::Q5_0;
  static constexpr int64_t sizes[] = {1, 3, 5, 9};
  static auto q16(const KernelTable& t) { return t.dot4_q5_0_q16; }
  static auto q8(const KernelTable& t) { return t.dot4_q5_0; }
};
template <>
struct TypeUnderTest<BlockQ5_1> {
  static constexpr RowType row = RowType::Q5_1;
  static constexpr GgmlType ggml = GgmlType::Q5_1;
  static constexpr int64_t sizes[] = {1, 3, 5, 9};
  static auto q16(const KernelTable& t) { return t.dot4_q5_1_q16; }
  static auto q8(const KernelTable& t) { return t.dot4_q5_1; }
};
template <>
struct TypeUnderTest<BlockQ4_K> {
  static constexpr RowType row = RowType::Q4_K;
  static constexpr GgmlType ggml = GgmlType::Q4_K;
  static constexpr int64_t sizes[] = {1, 3, 7};
  static auto q16(const KernelTable& t) { return t.dot4_q4_k_q16; }
  static auto q8(const KernelTable& t) { return t.dot4_q4_k; }
};
template <>
struct TypeUnderTest<BlockQ5_K> {
  static constexpr RowType row = RowType::Q5_K;
  static constexpr GgmlType ggml = GgmlType::Q5_K;
  static constexpr int64_t sizes[] = {1, 3, 7};
  static auto q16(const KernelTable& t) { return t.dot4_q5_k_q16; }
  static auto q8(const KernelTable& t) { return t.dot4_q5_k; }
};
template <>
struct TypeUnderTest<BlockQ6_K> {
  static constexpr RowType row = RowType::Q6_K;
  static constexpr GgmlType ggml = GgmlType::Q6_K;
  static constexpr int64_t sizes[] = {1, 3, 7};
  static auto q16(const KernelTable& t) { return t.dot4_q6_k_q16; }
  static auto q8(const KernelTable& t) { return t.dot4_q6_k; }
};

// Values per block of the type: 32, or 256 for the K-quant superblocks.
template <typename Block>
constexpr int64_t values_per_block() {
  return sizeof(Block) > 64 ? kSuperBlock : kBlock;
}

// The f16 fields of each block type: d, and dmin (K-quants) or m (Q5_1).
template <typename Block>
void set_scales(Block& b, uint16_t first, uint16_t second) {
  b.d = first;
  if constexpr (requires { b.dmin; }) b.dmin = second;
  if constexpr (requires { b.m; }) b.m = second;
}

// A finite f16: any sign and exponent (subnormals and zeros too) but never inf or NaN.
uint16_t random_finite_half(std::mt19937& rng) {
  for (;;) {
    const auto h = static_cast<uint16_t>(rng());
    if ((h & 0x7C00u) != 0x7C00u) return h;
  }
}

// Random blocks: random bytes for qs, qh and the packed scales. `realistic` picks d and dmin/m of
// the sizes real files have (|d| in [1e-3, 5e-2], either sign) for the dot tests; otherwise any
// finite f16, to pin every rounding of the widening.
template <typename Block>
std::vector<Block> random_blocks(int64_t n_blocks, uint32_t seed, bool realistic) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> magnitude(1e-3f, 5e-2f);
  auto scale = [&] {
    if (!realistic) return random_finite_half(rng);
    return float_to_half(rng() % 2 == 0 ? magnitude(rng) : -magnitude(rng));
  };
  std::vector<Block> blocks(static_cast<size_t>(n_blocks));
  for (Block& b : blocks) {
    auto* bytes = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
    const uint16_t first = scale();
    set_scales(b, first, scale());
  }
  return blocks;
}

// Blocks copied to 2 bytes past an 8-byte boundary (a row of a real file is 2-byte aligned at
// least: every block size is even), so no row sits where a SIMD load would like it.
template <typename Block>
class OffsetBlocks {
 public:
  explicit OffsetBlocks(const std::vector<Block>& blocks) : storage_(blocks.size() * sizeof(Block) / 8 + 2) {
    std::memcpy(reinterpret_cast<uint8_t*>(storage_.data()) + kOffset, blocks.data(), blocks.size() * sizeof(Block));
  }
  const Block* data() const {
    return reinterpret_cast<const Block*>(reinterpret_cast<const uint8_t*>(storage_.data()) + kOffset);
  }
  std::span<const uint8_t> span(int64_t first, int64_t n) const {
    return {reinterpret_cast<const uint8_t*>(data() + first), static_cast<size_t>(n) * sizeof(Block)};
  }

 private:
  static constexpr size_t kOffset = 2;
  std::vector<uint64_t> storage_;  // 8-byte aligned
};

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

// Each table the CPU runs (the test's parameter); skipped where it lacks the instructions.
class KQuantKernels : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << isa_name(GetParam()) << " table";
  }
  const KernelTable& scalar = kernel_table(Isa::Scalar);
  const KernelTable& table() { return kernel_table(GetParam()); }
};

template <typename Block>
void check_widening(const KernelTable& table) {
  using T = TypeUnderTest<Block>;
  constexpr int64_t per_block = values_per_block<Block>();
  for (int64_t n_blocks : T::sizes) {
    const auto blocks = random_blocks<Block>(n_blocks, static_cast<uint32_t>(n_blocks * 31 + 7), false);
    const OffsetBlocks<Block> row(blocks);
    const int64_t n = n_blocks * per_block;
    std::vector<float> expected(n), storage(n + 1);
    dequantize(T::ggml, row.span(0, n_blocks), expected);
    float* got = storage.data() + 1;  // not 32-byte aligned
    table.row_to_f32(T::row, row.data(), got, n);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t a, b;
      std::memcpy(&a, &expected[i], 4);
      std::memcpy(&b, &got[i], 4);
      ASSERT_EQ(a, b) << row_type_name(T::row) << " " << isa_name(table.isa) << ", blocks " << n_blocks << ", value "
                      << i << ": " << got[i] << " vs io/dequant " << expected[i];
    }
  }
}

TEST_P(KQuantKernels, RowsWidenBitIdenticallyToIoDequant) {
  check_widening<BlockQ5_0>(table());
  check_widening<BlockQ5_1>(table());
  check_widening<BlockQ4_K>(table());
  check_widening<BlockQ5_K>(table());
  check_widening<BlockQ6_K>(table());
}

template <typename Activations>
void quantize(const KernelTable& t, const float* x, Activations* a, int64_t n) {
  if constexpr (std::is_same_v<Activations, BlockQ16A>)
    t.quantize_q16a(x, a, n);
  else
    t.quantize_q8a(x, a, n);
}

// The four rows the dot tests take from a blob of seven rows of n_blocks blocks: scattered, the
// first and last the same row.
constexpr int64_t kFirstBlock[4] = {5, 2, 6, 5};  // which rows of the blob
template <typename Block>
std::array<const Block*, 4> four_rows(const OffsetBlocks<Block>& blob, int64_t n_blocks) {
  std::array<const Block*, 4> rows;
  for (int r = 0; r < 4; ++r) rows[r] = blob.data() + kFirstBlock[r] * n_blocks;
  return rows;
}

template <typename Block, typename Activations>
using Dot4 = std::function<void(const Block* const*, const Activations*, int64_t, float*)>;

// A 16-bit product with one token, as a one-token Dot4.
template <typename Block>
Dot4<Block, BlockQ16A> one_token(Dot4Q16<Block> dot) {
  return [dot](const Block* const* rows, const BlockQ16A* x, int64_t n_blocks, float* out) { dot(rows, x, 1, n_blocks, out); };
}

// Four rows (taken from a blob of seven at scattered offsets, the first and last the same row)
// against one activation row: the scalar twin against the definition, the table under test against
// the scalar twin.
template <typename Block, typename Activations>
void check_dot4(Dot4<Block, Activations> scalar_dot4, Dot4<Block, Activations> table_dot4, const KernelTable& scalar,
                Isa isa) {
  using T = TypeUnderTest<Block>;
  constexpr int64_t per_block = values_per_block<Block>();
  for (int64_t n_blocks : T::sizes) {
    const int64_t n = n_blocks * per_block, n_act = n / kBlock;
    const OffsetBlocks<Block> blob(random_blocks<Block>(7 * n_blocks, static_cast<uint32_t>(n_blocks + 100), true));
    const auto rows = four_rows(blob, n_blocks);
    const std::vector<float> x = random_floats(n, static_cast<uint32_t>(n_blocks + 200), 2.0f);
    std::vector<Activations> act_storage(n_act + 1);
    Activations* act = act_storage.data() + 1;  // 72 or 40 bytes in: not 64-byte aligned
    quantize(scalar, x.data(), act, n);

    float s[4], f[4];
    scalar_dot4(rows.data(), act, n_act, s);
    table_dot4(rows.data(), act, n_act, f);
    for (int r = 0; r < 4; ++r) {
      std::vector<float> w(n);
      dequantize(T::ggml, blob.span(kFirstBlock[r] * n_blocks, n_blocks), w);
      double exact = 0.0, magnitude = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double xi = static_cast<double>(act[i / kBlock].d) * act[i / kBlock].qs[i % kBlock];
        exact += w[i] * xi;
        magnitude += std::fabs(w[i] * xi);
      }
      const std::string where = row_type_name(T::row) + (std::is_same_v<Activations, BlockQ16A> ? " q16" : " q8") +
                                ", row " + std::to_string(r) + ", blocks " + std::to_string(n_blocks);
      ASSERT_GT(magnitude, 0.0) << where;
      EXPECT_NEAR(s[r], exact, 1e-5 * magnitude) << "scalar " << where;
      if (isa != Isa::Scalar) EXPECT_NEAR(f[r], s[r], 1e-6 * magnitude) << isa_name(isa) << " " << where;
    }
    EXPECT_EQ(f[0], f[3]) << "the same row twice gives the same sum, " << row_type_name(T::row) << " " << isa_name(isa);
  }
}

template <typename Block>
void check_both_activation_formats(const KernelTable& scalar, const KernelTable& table) {
  using T = TypeUnderTest<Block>;
  check_dot4<Block, BlockQ16A>(one_token(T::q16(scalar)), one_token(T::q16(table)), scalar, table.isa);
  check_dot4<Block, BlockQ8A>(T::q8(scalar), T::q8(table), scalar, table.isa);
}

TEST_P(KQuantKernels, FourRowDotsMatchTheScalarTwinAndTheDefinition) {
  check_both_activation_formats<BlockQ5_0>(scalar, table());
  check_both_activation_formats<BlockQ5_1>(scalar, table());
  check_both_activation_formats<BlockQ4_K>(scalar, table());
  check_both_activation_formats<BlockQ5_K>(scalar, table());
  check_both_activation_formats<BlockQ6_K>(scalar, table());
}

// Several tokens against the same rows: each token's sums are those of the token alone, bit for bit.
template <typename Block>
void check_tokens_together(const KernelTable& table) {
  using T = TypeUnderTest<Block>;
  for (int64_t n_blocks : T::sizes) {
    const int64_t n = n_blocks * values_per_block<Block>(), n_act = n / kBlock;
    const OffsetBlocks<Block> blob(random_blocks<Block>(7 * n_blocks, static_cast<uint32_t>(n_blocks + 300), true));
    const auto rows = four_rows(blob, n_blocks);
    const std::vector<float> x = random_floats(kMaxDotTokens * n, static_cast<uint32_t>(n_blocks + 400), 2.0f);
    std::vector<BlockQ16A> act(kMaxDotTokens * n_act);
    table.quantize_q16a(x.data(), act.data(), kMaxDotTokens * n);
    expect_each_token_as_alone<Block>(T::q16(table), rows.data(), act.data(), n_act,
                                      row_type_name(T::row) + " " + isa_name(table.isa) + ", blocks " +
                                          std::to_string(n_blocks));
  }
}

TEST_P(KQuantKernels, TokensTogetherSumAsEachAlone) {
  check_tokens_together<BlockQ5_0>(table());
  check_tokens_together<BlockQ5_1>(table());
  check_tokens_together<BlockQ4_K>(table());
  check_tokens_together<BlockQ5_K>(table());
  check_tokens_together<BlockQ6_K>(table());
}

// A K-quant row's sub-blocks are told apart: moving one value changes exactly the sum it belongs
// to. Guards against dots that read sub-block j's scale, nibble half or qh bit for another j.
TEST_P(KQuantKernels, EverySubBlockCountsWithItsOwnScale) {
  const KernelTable& t = table();
  std::vector<float> x(kSuperBlock, 0.0f);
  std::vector<BlockQ16A> act(8);
  for (int j = 0; j < 8; ++j) {
    std::fill(x.begin(), x.end(), 0.0f);
    x[32 * j + 17] = 1.0f;  // one activation value in sub-block j (its second 16-value half)
    t.quantize_q16a(x.data(), act.data(), kSuperBlock);
    auto expect_value = [&](auto blocks, RowType type, GgmlType ggml) {
      std::vector<float> w(kSuperBlock);
      dequantize(ggml, {reinterpret_cast<const uint8_t*>(blocks.data()), sizeof(blocks[0])}, w);
      const auto* block = blocks.data();
      const decltype(block) rows[4] = {block, block, block, block};
      float out[4];
      if constexpr (std::is_same_v<decltype(block), const BlockQ4_K*>)
        t.dot4_q4_k_q16(rows, act.data(), 1, 8, out);
      else if constexpr (std::is_same_v<decltype(block), const BlockQ5_K*>)
        t.dot4_q5_k_q16(rows, act.data(), 1, 8, out);
      else
        t.dot4_q6_k_q16(rows, act.data(), 1, 8, out);
      float largest = 0.0f;
      for (float v : w) largest = std::max(largest, std::fabs(v));
      EXPECT_NEAR(out[0], w[32 * j + 17], 1e-5f * largest)
          << row_type_name(type) << " " << isa_name(t.isa) << ", sub-block " << j;
    };
    expect_value(random_blocks<BlockQ4_K>(1, 11u + j, true), RowType::Q4_K, GgmlType::Q4_K);
    expect_value(random_blocks<BlockQ5_K>(1, 21u + j, true), RowType::Q5_K, GgmlType::Q5_K);
    expect_value(random_blocks<BlockQ6_K>(1, 31u + j, true), RowType::Q6_K, GgmlType::Q6_K);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryTable, KQuantKernels, ::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                         [](const ::testing::TestParamInfo<Isa>& info) { return isa_name(info.param); });

TEST(KQuantKernelTypes, GeometryAgreesWithIoDequant) {
  struct Case {
    RowType row;
    GgmlType ggml;
    const char* name;
  };
  const Case cases[] = {{RowType::F32, GgmlType::F32, "f32"},    {RowType::F16, GgmlType::F16, "f16"},
                        {RowType::BF16, GgmlType::BF16, "bf16"}, {RowType::Q4_0, GgmlType::Q4_0, "q4_0"},
                        {RowType::Q4_1, GgmlType::Q4_1, "q4_1"}, {RowType::Q8_0, GgmlType::Q8_0, "q8_0"},
                        {RowType::Q5_0, GgmlType::Q5_0, "q5_0"}, {RowType::Q5_1, GgmlType::Q5_1, "q5_1"},
                        {RowType::Q4_K, GgmlType::Q4_K, "q4_k"}, {RowType::Q5_K, GgmlType::Q5_K, "q5_k"},
                        {RowType::Q6_K, GgmlType::Q6_K, "q6_k"}};
  for (const Case& c : cases) {
    EXPECT_EQ(row_type_name(c.row), c.name);
    EXPECT_EQ(row_type_block(c.row), ggml_block_size(c.ggml)) << c.name;
    EXPECT_EQ(is_block_type(c.row), ggml_block_size(c.ggml) > 1) << c.name;
    for (int64_t n : {256, 768, 1536})
      EXPECT_EQ(row_bytes(c.row, n), ggml_row_bytes(c.ggml, n)) << c.name << " n=" << n;
  }
  EXPECT_EQ(row_bytes(RowType::Q6_K, 512), 420);
  EXPECT_EQ(row_bytes(RowType::Q5_0, 64), 44);
}

}  // namespace
}  // namespace sentinel::kernels
