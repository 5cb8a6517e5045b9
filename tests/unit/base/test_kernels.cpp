// Every kernel of the vectorised tables against its plain scalar twin, over odd sizes and
// unaligned inputs, and the scalar twin against the definition (dequantize, then dot in double).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dot_tokens_support.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel::kernels {
namespace {

// Each vectorised table (the test's parameter) against the scalar one; skipped where the CPU
// lacks the table's instructions.
class KernelTwins : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << isa_name(GetParam()) << " table";
  }
  const KernelTable& scalar = kernel_table(Isa::Scalar);
  const KernelTable& fast() { return kernel_table(GetParam()); }
};

std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  return x;
}

// Random weight blocks: random nibbles/bytes, scales of a realistic size.
template <typename Block>
std::vector<Block> random_blocks(int64_t n_blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Block> blocks(static_cast<size_t>(n_blocks));
  for (Block& b : blocks) {
    auto* bytes = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
    b.d = float_to_half(std::uniform_real_distribution<float>(1e-3f, 5e-2f)(rng));
    if constexpr (std::is_same_v<Block, BlockQ4_1>) b.m = float_to_half(std::uniform_real_distribution<float>(-0.2f, 0.2f)(rng));
    if constexpr (std::is_same_v<Block, BlockQ8_0>)
      for (int8_t& q : b.qs) q = std::max<int8_t>(q, -127);  // ggml's quantizer never writes -128
  }
  return blocks;
}

TEST_P(KernelTwins, ActivationQuantizationIsBitIdentical) {
  for (int64_t n : {32, 64, 96, 576, 1536}) {
    std::vector<float> storage = random_floats(n + 1, static_cast<uint32_t>(n), 3.0f);
    storage[5] = 0.0f;
    const float* x = storage.data() + 1;  // unaligned
    std::vector<BlockQ8A> a(n / 32), b(n / 32);
    scalar.quantize_q8a(x, a.data(), n);
    fast().quantize_q8a(x, b.data(), n);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(BlockQ8A)), 0) << "n = " << n;
    // And it is a quantization: |x - d q| <= d / 2 per value, s = d * sum(q).
    for (int64_t i = 0; i < n; ++i) EXPECT_LE(std::fabs(x[i] - a[i / 32].d * a[i / 32].qs[i % 32]), a[i / 32].d * 0.5f + 1e-6f);
  }
  std::vector<float> zeros(32, 0.0f);
  BlockQ8A z;
  fast().quantize_q8a(zeros.data(), &z, 32);
  EXPECT_EQ(z.d, 0.0f);
  EXPECT_EQ(z.s, 0.0f);
}

template <typename Block, typename Dot>
void check_block_dot(RowType type, Dot scalar_dot, Dot fast_dot, const KernelTable& scalar, Isa fast_isa) {
  for (int64_t nb : {1, 2, 3, 7, 18, 48}) {
    const auto w = random_blocks<Block>(nb, static_cast<uint32_t>(nb * 7 + 1));
    const std::vector<float> x = random_floats(nb * 32, static_cast<uint32_t>(nb));
    std::vector<BlockQ8A> q(nb);
    scalar.quantize_q8a(x.data(), q.data(), nb * 32);
    // Definition: dequantized weights times dequantized activations, in double.
    std::vector<float> wf(nb * 32);
    scalar.row_to_f32(type, w.data(), wf.data(), nb * 32);
    double exact = 0.0, magnitude = 0.0;
    for (int64_t i = 0; i < nb * 32; ++i) {
      const double xi = static_cast<double>(q[i / 32].d) * q[i / 32].qs[i % 32];
      exact += wf[i] * xi;
      magnitude += std::fabs(wf[i] * xi);
    }
    const float s = scalar_dot(w.data(), q.data(), nb), f = fast_dot(w.data(), q.data(), nb);
    EXPECT_NEAR(s, exact, 1e-5 * magnitude + 1e-6) << row_type_name(type) << " scalar, blocks " << nb;
    EXPECT_NEAR(f, s, 1e-5 * magnitude + 1e-6) << row_type_name(type) << " " << isa_name(fast_isa) << ", blocks " << nb;
  }
}

// Four rows at once equal four single-row dots, in both tables (rows taken from odd offsets).
template <typename Block>
void check_dot4(void (*dot4)(const Block* const*, const BlockQ8A*, int64_t, float*),
                float (*dot)(const Block*, const BlockQ8A*, int64_t), const KernelTable& scalar) {
  for (int64_t nb : {1, 5, 18}) {
    const auto w = random_blocks<Block>(nb * 7, static_cast<uint32_t>(nb + 40));
    const std::vector<float> x = random_floats(nb * 32, static_cast<uint32_t>(nb + 50));
    std::vector<BlockQ8A> q(nb);
    scalar.quantize_q8a(x.data(), q.data(), nb * 32);
    const Block* rows[4] = {w.data() + 1 * nb, w.data() + 6 * nb, w.data() + 3 * nb, w.data()};
    float out[4];
    dot4(rows, q.data(), nb, out);
    for (int r = 0; r < 4; ++r) {
      const float expected = dot(rows[r], q.data(), nb);
      EXPECT_NEAR(out[r], expected, 1e-5f * (1.0f + std::fabs(expected))) << "row " << r << ", blocks " << nb;
    }
  }
}

TEST_P(KernelTwins, Q8RowsAgainstFloatActivations) {
  for (int64_t nb : {1, 3, 18}) {
    const auto w = random_blocks<BlockQ8_0>(nb * 5, static_cast<uint32_t>(nb + 70));
    std::vector<float> storage = random_floats(nb * 32 + 1, static_cast<uint32_t>(nb + 80));
    const float* x = storage.data() + 1;  // unaligned
    const BlockQ8_0* rows[4] = {w.data() + 4 * nb, w.data() + 2 * nb, w.data(), w.data() + nb};
    float s[4], f[4];
    scalar.dot4_q8_0_f32(rows, x, nb, s);
    fast().dot4_q8_0_f32(rows, x, nb, f);
    for (int r = 0; r < 4; ++r) {
      std::vector<float> wf(nb * 32);
      scalar.row_to_f32(RowType::Q8_0, rows[r], wf.data(), nb * 32);
      double exact = 0.0, magnitude = 0.0;
      for (int64_t i = 0; i < nb * 32; ++i) {
        exact += static_cast<double>(wf[i]) * x[i];
        magnitude += std::fabs(static_cast<double>(wf[i]) * x[i]);
      }
      EXPECT_NEAR(s[r], exact, 1e-5 * magnitude) << "scalar row " << r;
      EXPECT_NEAR(f[r], exact, 1e-5 * magnitude) << isa_name(GetParam()) << " row " << r;
    }
  }
}

TEST_P(KernelTwins, FourRowDotsEqualSingleRowDots) {
  for (const KernelTable* t : {&scalar, &fast()}) {
    check_dot4<BlockQ4_0>(t->dot4_q4_0, scalar.dot_q4_0, scalar);
    check_dot4<BlockQ4_1>(t->dot4_q4_1, scalar.dot_q4_1, scalar);
    check_dot4<BlockQ8_0>(t->dot4_q8_0, scalar.dot_q8_0, scalar);
  }
}

TEST_P(KernelTwins, Q16ActivationQuantizationIsBitIdentical) {
  for (int64_t n : {32, 64, 96, 576, 1536}) {
    std::vector<float> storage = random_floats(n + 3, static_cast<uint32_t>(n + 5), 3.0f);
    storage[9] = 0.0f;
    const float* x = storage.data() + 3;  // unaligned
    std::vector<BlockQ16A> a(n / 32), b(n / 32);
    scalar.quantize_q16a(x, a.data(), n);
    fast().quantize_q16a(x, b.data(), n);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(BlockQ16A)), 0) << "n = " << n;
    for (int64_t blk = 0; blk < n / 32; ++blk) {
      int64_t sum = 0;
      for (int64_t i = 0; i < 32; ++i) {
        EXPECT_LE(std::fabs(x[blk * 32 + i] - a[blk].d * a[blk].qs[i]), a[blk].d * 0.5f + 1e-6f);
        sum += a[blk].qs[i];
      }
      EXPECT_FLOAT_EQ(a[blk].s, a[blk].d * static_cast<float>(sum));
    }
  }
  std::vector<float> zeros(32, 0.0f);
  BlockQ16A z;
  fast().quantize_q16a(zeros.data(), &z, 32);
  EXPECT_EQ(z.d, 0.0f);
  EXPECT_EQ(z.s, 0.0f);
}

// Four rows against 16-bit activations: scalar against the definition (dequantized rows times
// dequantized activations, in double), the vectorised table against scalar, and both close to the float
// activations themselves, far closer than 8 bits come; with several tokens, each token's sums are
// those of the token alone.
template <typename Block>
void check_dot4_q16(RowType type, Dot4Q16<Block> scalar_dot4, Dot4Q16<Block> fast_dot4, const KernelTable& scalar) {
  for (int64_t nb : {1, 2, 5, 18, 48}) {
    const auto w = random_blocks<Block>(nb * 7, static_cast<uint32_t>(nb + 90));
    const std::vector<float> x = random_floats(nb * 32, static_cast<uint32_t>(nb + 91), 2.0f);
    std::vector<BlockQ16A> q16(nb);
    std::vector<BlockQ8A> q8(nb);
    scalar.quantize_q16a(x.data(), q16.data(), nb * 32);
    scalar.quantize_q8a(x.data(), q8.data(), nb * 32);
    const Block* rows[4] = {w.data() + 5 * nb, w.data() + 2 * nb, w.data() + 6 * nb, w.data() + 5 * nb};
    float s[4], f[4];
    scalar_dot4(rows, q16.data(), 1, nb, s);
    fast_dot4(rows, q16.data(), 1, nb, f);
    for (int r = 0; r < 4; ++r) {
      std::vector<float> wf(nb * 32);
      scalar.row_to_f32(type, rows[r], wf.data(), nb * 32);
      double exact = 0.0, of_float_x = 0.0, of_8_bit_x = 0.0, magnitude = 0.0;
      for (int64_t i = 0; i < nb * 32; ++i) {
        exact += wf[i] * static_cast<double>(q16[i / 32].d) * q16[i / 32].qs[i % 32];
        of_float_x += static_cast<double>(wf[i]) * x[i];
        of_8_bit_x += wf[i] * static_cast<double>(q8[i / 32].d) * q8[i / 32].qs[i % 32];
        magnitude += std::fabs(static_cast<double>(wf[i]) * x[i]);
      }
      const std::string where = row_type_name(type) + ", row " + std::to_string(r) + ", blocks " + std::to_string(nb);
      EXPECT_NEAR(s[r], exact, 1e-5 * magnitude + 1e-6) << "scalar " << where;
      EXPECT_NEAR(f[r], s[r], 1e-5 * magnitude + 1e-6) << "vectorised " << where;
      EXPECT_NEAR(s[r], of_float_x, 1e-4 * magnitude) << "16 bits against float inputs, " << where;
      if (nb >= 18) EXPECT_LT(std::fabs(exact - of_float_x), std::fabs(of_8_bit_x - of_float_x)) << where;
    }
    EXPECT_EQ(s[0], s[3]) << "the same row twice gives the same sum";

    std::vector<BlockQ16A> tokens(kMaxDotTokens * nb);
    const std::vector<float> xs = random_floats(kMaxDotTokens * nb * 32, static_cast<uint32_t>(nb + 92), 2.0f);
    scalar.quantize_q16a(xs.data(), tokens.data(), kMaxDotTokens * nb * 32);
    const std::string where = row_type_name(type) + ", blocks " + std::to_string(nb);
    expect_each_token_as_alone(fast_dot4, rows, tokens.data(), nb, "vectorised " + where);
  }
}

TEST_P(KernelTwins, Q16ActivationDotsMatchTheScalarTwinAndTheDefinition) {
  check_dot4_q16<BlockQ4_0>(RowType::Q4_0, scalar.dot4_q4_0_q16, fast().dot4_q4_0_q16, scalar);
  check_dot4_q16<BlockQ4_1>(RowType::Q4_1, scalar.dot4_q4_1_q16, fast().dot4_q4_1_q16, scalar);
  check_dot4_q16<BlockQ8_0>(RowType::Q8_0, scalar.dot4_q8_0_q16, fast().dot4_q8_0_q16, scalar);
}

TEST_P(KernelTwins, QuantizedDotsMatchTheScalarTwinAndTheDefinition) {
  check_block_dot<BlockQ4_0>(RowType::Q4_0, scalar.dot_q4_0, fast().dot_q4_0, scalar, GetParam());
  check_block_dot<BlockQ4_1>(RowType::Q4_1, scalar.dot_q4_1, fast().dot_q4_1, scalar, GetParam());
  check_block_dot<BlockQ8_0>(RowType::Q8_0, scalar.dot_q8_0, fast().dot_q8_0, scalar, GetParam());
}

TEST_P(KernelTwins, FloatDotsOverOddSizesAndUnalignedRows) {
  for (int64_t n = 1; n <= 70; n += 3) {
    const std::vector<float> w = random_floats(n + 1, 11u + static_cast<uint32_t>(n));
    const std::vector<float> x = random_floats(n + 1, 97u + static_cast<uint32_t>(n));
    std::vector<uint16_t> h(n + 1), b(n + 1);
    scalar.f32_to_row(RowType::F16, w.data(), h.data() + 1, n);
    scalar.f32_to_row(RowType::BF16, w.data(), b.data() + 1, n);
    double magnitude = 0.0;
    for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(w[i] * x[i + 1]);
    const double tol = 1e-5 * magnitude + 1e-7;
    EXPECT_NEAR(fast().dot_f32(w.data() + 1, x.data() + 1, n), scalar.dot_f32(w.data() + 1, x.data() + 1, n), tol) << n;
    EXPECT_NEAR(fast().dot_f16(h.data() + 1, x.data() + 1, n), scalar.dot_f16(h.data() + 1, x.data() + 1, n), tol) << n;
    EXPECT_NEAR(fast().dot_bf16(b.data() + 1, x.data() + 1, n), scalar.dot_bf16(b.data() + 1, x.data() + 1, n), tol) << n;
  }
}

TEST_P(KernelTwins, HalfConversionsAgreeWithF16COnEveryValue) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> a(65536), b(65536);
  scalar.row_to_f32(RowType::F16, all.data(), a.data(), 65536);
  fast().row_to_f32(RowType::F16, all.data(), b.data(), 65536);
  for (uint32_t i = 0; i < 65536; ++i) {
    if (std::isnan(a[i])) {
      EXPECT_TRUE(std::isnan(b[i])) << i;
      continue;
    }
    ASSERT_EQ(std::memcmp(&a[i], &b[i], 4), 0) << "half " << i;
  }
  // float -> half, round to nearest even, around every boundary (subnormals, overflow, ties).
  std::vector<float> probes = random_floats(4000, 5u, 1000.0f);
  for (float v : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e-8f, 5.96e-8f, 2.98e-8f, 6.1e-5f, 1.0f + 1.0f / 2048,
                  std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()})
    probes.push_back(v);
  for (int i = 0; i < 2000; ++i) probes.push_back(std::ldexp(static_cast<float>(i % 97) + 0.5f, -(i % 30)));
  for (float& v : probes) v = std::ldexp(v, -10 - static_cast<int>(std::fabs(v)) % 20);
  const int64_t n = static_cast<int64_t>(probes.size());
  std::vector<uint16_t> hs(n), hf(n);
  scalar.f32_to_row(RowType::F16, probes.data(), hs.data(), n);
  fast().f32_to_row(RowType::F16, probes.data(), hf.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hs[i], hf[i]) << probes[i];
}

TEST_P(KernelTwins, RowConversionsAreExact) {
  const int64_t n = 96;
  const auto q40 = random_blocks<BlockQ4_0>(3, 1);
  const auto q41 = random_blocks<BlockQ4_1>(3, 2);
  const auto q80 = random_blocks<BlockQ8_0>(3, 3);
  const std::vector<float> f = random_floats(n, 4);
  std::vector<uint16_t> h(n), bf(n);
  scalar.f32_to_row(RowType::F16, f.data(), h.data(), n);
  scalar.f32_to_row(RowType::BF16, f.data(), bf.data(), n);
  const std::pair<RowType, const void*> rows[] = {{RowType::Q4_0, q40.data()}, {RowType::Q4_1, q41.data()},
                                                  {RowType::Q8_0, q80.data()}, {RowType::F16, h.data()},
                                                  {RowType::BF16, bf.data()},  {RowType::F32, f.data()}};
  for (const auto& [type, data] : rows) {
    std::vector<float> a(n), b(n);
    scalar.row_to_f32(type, data, a.data(), n);
    fast().row_to_f32(type, data, b.data(), n);
    EXPECT_EQ(std::memcmp(a.data(), b.data(), n * 4), 0) << row_type_name(type);
  }
  // KV rows stored as q8_0: both tables write the same bytes, within half a step of the input.
  std::vector<BlockQ8_0> sa(3), sb(3);
  scalar.f32_to_row(RowType::Q8_0, f.data(), sa.data(), n);
  fast().f32_to_row(RowType::Q8_0, f.data(), sb.data(), n);
  EXPECT_EQ(std::memcmp(sa.data(), sb.data(), sizeof(BlockQ8_0) * 3), 0);
  std::vector<float> back(n);
  scalar.row_to_f32(RowType::Q8_0, sa.data(), back.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_LE(std::fabs(back[i] - f[i]), half_to_float(sa[i / 32].d) * 0.51f + 1e-7f);
}

// KV rows of every storage type, read in place by the attention kernels, for a group of query
// heads: scores and value sums against the scalar twin, and each row's score bit-identical
// wherever the row sits among the rows scored (a key's arithmetic must not depend on how many
// queries or keys come along).
TEST_P(KernelTwins, AttentionOverStoredRowsMatches) {
  for (RowType type : {RowType::F32, RowType::F16, RowType::BF16, RowType::Q8_0}) {
    for (int64_t n : {32, 40, 64, 72, 128}) {
      if (type == RowType::Q8_0 && n % 32 != 0) continue;
      for (int64_t rows : {1, 5, 13, 64}) {
        for (int64_t n_q : {1, 3}) {
          const std::string where = row_type_name(type) + " n=" + std::to_string(n) + " rows=" + std::to_string(rows) +
                                    " heads=" + std::to_string(n_q);
          const int64_t stride = row_bytes(type, n) + 4;  // rows not packed
          const std::vector<float> values = random_floats(rows * n, static_cast<uint32_t>(n + rows));
          std::vector<uint8_t> storage(static_cast<size_t>(rows * stride + 4));
          for (int64_t r = 0; r < rows; ++r) scalar.f32_to_row(type, values.data() + r * n, storage.data() + 4 + r * stride, n);
          const uint8_t* kv = storage.data() + 4;
          const std::vector<float> q = random_floats(n_q * n, 1);
          const int64_t out_stride = rows + 2;
          std::vector<float> a(n_q * out_stride), b(n_q * out_stride), ma(n_q), mb(n_q);
          scalar.scores(type, kv, stride, rows, n, q.data(), n_q, 0.125f, a.data(), out_stride, ma.data());
          fast().scores(type, kv, stride, rows, n, q.data(), n_q, 0.125f, b.data(), out_stride, mb.data());
          for (int64_t h = 0; h < n_q; ++h) {
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_NEAR(a[h * out_stride + r], b[h * out_stride + r], 1e-5f * (1.0f + std::fabs(a[h * out_stride + r])))
                  << where;
            EXPECT_NEAR(ma[h], mb[h], 1e-5f * (1.0f + std::fabs(ma[h]))) << where;
          }
          if (rows > 3) {  // the same rows scored from the fourth on
            std::vector<float> c(n_q * out_stride), mc(n_q);
            fast().scores(type, kv + 3 * stride, stride, rows - 3, n, q.data(), n_q, 0.125f, c.data(), out_stride, mc.data());
            for (int64_t h = 0; h < n_q; ++h)
              for (int64_t r = 3; r < rows; ++r)
                ASSERT_EQ(b[h * out_stride + r], c[h * out_stride + r - 3]) << where << " row " << r;
          }
          const int64_t acc_stride = n + 5;
          std::vector<float> acc_a(n_q * acc_stride, 0.5f), acc_b = acc_a;
          scalar.accumulate(type, kv, stride, rows, n, a.data(), out_stride, n_q, acc_a.data(), acc_stride);
          fast().accumulate(type, kv, stride, rows, n, a.data(), out_stride, n_q, acc_b.data(), acc_stride);
          for (size_t i = 0; i < acc_a.size(); ++i) ASSERT_NEAR(acc_a[i], acc_b[i], 1e-5f * (1.0f + std::fabs(acc_a[i]))) << where;
        }
      }
    }
  }
}

TEST_P(KernelTwins, ExponentsNormsAndSiluMatch) {
  for (int64_t n : {1, 7, 8, 9, 100, 576}) {
    std::vector<float> x = random_floats(n, 3u + static_cast<uint32_t>(n), 10.0f), y = x;
    if (n > 3) x[2] = y[2] = -std::numeric_limits<float>::infinity();  // masked: exactly zero
    const float sa = scalar.exp_shift_sum(x.data(), n, 30.0f), sb = fast().exp_shift_sum(y.data(), n, 30.0f);
    EXPECT_NEAR(sa, sb, 2e-6f * sa);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], y[i], 2e-6f * x[i] + 1e-30f);
    if (n > 3) EXPECT_EQ(y[2], 0.0f);

    const std::vector<float> v = random_floats(n, 8), w = random_floats(n, 9);
    std::vector<float> ra(n), rb(n), ga(n), gb(n);
    scalar.rms_norm(v.data(), w.data(), 1e-5f, ra.data(), n);
    fast().rms_norm(v.data(), w.data(), 1e-5f, rb.data(), n);
    scalar.silu_mul(v.data(), w.data(), ga.data(), n);
    fast().silu_mul(v.data(), w.data(), gb.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(ra[i], rb[i], 1e-5f * (1.0f + std::fabs(ra[i])));
      EXPECT_NEAR(ga[i], gb[i], 1e-5f * (1.0f + std::fabs(ga[i])));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(VectorTables, KernelTwins, ::testing::Values(Isa::Avx2, Isa::Avx512),
                         [](const ::testing::TestParamInfo<Isa>& info) { return isa_name(info.param); });

TEST(KernelDispatch, NamesAndChoice) {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_EQ(best_isa(), isa_supported(Isa::Avx512) ? Isa::Avx512 : isa_supported(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar);
  EXPECT_THROW(parse_isa("avx10"), std::exception);
  EXPECT_EQ(row_bytes(RowType::Q4_1, 576), 18 * 20);
  EXPECT_EQ(row_bytes(RowType::Q8_0, 64), 68);
  EXPECT_EQ(row_bytes(RowType::F16, 64), 128);
}

}  // namespace
}  // namespace sentinel::kernels
