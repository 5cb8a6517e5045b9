// attention() (chunked, threaded, GQA-grouped, vectorised) against attention_reference() (one head
// at a time, double precision) over odd cache sizes, masks, KV storage types and thread counts,
// and the thread pool it runs on.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <vector>

#include "sentinel/kernels/attention.h"

namespace sentinel::kernels {
namespace {

struct Case {
  int64_t n_head, n_head_kv, head_dim, n_keys, n_queries;
  bool masked;
  RowType kv_type;
  int threads;
  bool mass_of_some_queries = false;  // only every other query counts toward the attention mass
  // Masked rows as a sentinel step's: after query 0 (sees nothing), query 1 sees only the last key
  // (a <CL>), query 2 a run of 20 keys a third of the way in (a <CR> over its span), and the
  // rest of the queries are random: most chunks of keys are invisible to queries 1 and 2.
  bool sentinel_rows = false;
};

void run_case(const Case& c, const KernelTable& k) {
  std::mt19937 rng(static_cast<uint32_t>(c.n_keys * 31 + c.n_queries));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim};
  const int64_t capacity = c.n_keys + 5;  // rows beyond n_keys exist but must not be read
  const int64_t row_stride = row_bytes(c.kv_type, c.head_dim), head_stride = capacity * row_stride;
  std::vector<uint8_t> keys(c.n_head_kv * head_stride), values(keys.size());
  std::vector<float> row(c.head_dim);
  for (int64_t h = 0; h < c.n_head_kv; ++h)
    for (int64_t cell = 0; cell < capacity; ++cell) {
      for (float& x : row) x = 2.0f * normal(rng);
      k.f32_to_row(c.kv_type, row.data(), keys.data() + h * head_stride + cell * row_stride, c.head_dim);
      for (float& x : row) x = normal(rng);
      k.f32_to_row(c.kv_type, row.data(), values.data() + h * head_stride + cell * row_stride, c.head_dim);
    }
  std::vector<float> q(c.n_queries * c.n_head * c.head_dim);
  for (float& x : q) x = normal(rng);
  std::vector<uint8_t> mask;
  if (c.masked) {
    mask.resize(c.n_queries * c.n_keys);
    for (auto& m : mask) m = (rng() % 3) != 0;
    if (c.n_queries > 1)
      for (int64_t key = 0; key < c.n_keys; ++key) mask[key] = 0;  // query 0 sees nothing: zeros
    if (c.sentinel_rows && c.n_queries > 2) {
      std::fill(mask.begin() + c.n_keys, mask.begin() + 3 * c.n_keys, uint8_t{0});
      mask[2 * c.n_keys - 1] = 1;
      std::fill(mask.begin() + 2 * c.n_keys + c.n_keys / 3, mask.begin() + 2 * c.n_keys + c.n_keys / 3 + 20, uint8_t{1});
    }
  }
  AttentionJob job;
  job.kv_type = c.kv_type;
  job.keys = keys.data();
  job.values = values.data();
  job.head_stride = head_stride;
  job.row_stride = row_stride;
  job.n_keys = c.n_keys;
  job.q = q.data();
  job.n_queries = c.n_queries;
  job.mask = c.masked ? mask.data() : nullptr;
  std::vector<uint8_t> counted(c.n_queries);
  for (int64_t t = 0; t < c.n_queries; ++t) counted[t] = t % 2 == 1;
  if (c.mass_of_some_queries) job.mass_queries = counted.data();
  std::vector<float> out(q.size()), expected(q.size()), mass(c.n_keys, 0.0f), expected_mass(c.n_keys, 0.0f);
  AttentionJob reference = job;
  job.out = out.data();
  job.mass = mass.data();
  reference.out = expected.data();
  reference.mass = expected_mass.data();

  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  ThreadPool pool(c.threads);
  AttentionScratch scratch;
  attention(shape, std::span(&job, 1), scale, pool, scratch, k);
  attention_reference(shape, reference, scale);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], expected[i], 2e-5) << "S=" << c.n_keys << " T=" << c.n_queries << " " << row_type_name(c.kv_type)
                                           << " threads " << c.threads << " index " << i;
  for (int64_t key = 0; key < c.n_keys; ++key) ASSERT_NEAR(mass[key], expected_mass[key], 2e-5) << key;
  // Each counted query that sees any key spreads one unit of probability per head.
  double total = 0.0;
  for (float m : mass) total += m;
  int64_t counted_seeing = 0;
  for (int64_t t = 0; t < c.n_queries; ++t) {
    const bool sees_any = !c.masked || c.n_queries == 1 || t > 0;  // masked runs blank query 0 (above)
    if (sees_any && (!c.mass_of_some_queries || counted[t] != 0)) ++counted_seeing;
  }
  EXPECT_NEAR(total, static_cast<double>(c.n_head * counted_seeing), 1e-3 * c.n_head * c.n_queries);
}

TEST(AttentionKernel, MatchesTheReferenceOverShapesMasksAndStorage) {
  std::vector<Isa> isas = {Isa::Scalar};
  for (Isa isa : {Isa::Avx2, Isa::Avx512})
    if (isa_supported(isa)) isas.push_back(isa);
  for (Isa isa : isas) {
    for (const Case& c : std::vector<Case>{
             {9, 3, 64, 1, 1, false, RowType::F32, 1},     {9, 3, 64, 7, 1, false, RowType::F16, 2},
             {9, 3, 64, 300, 1, true, RowType::F32, 2},    {9, 3, 64, 1000, 3, false, RowType::Q8_0, 2},
             {6, 2, 32, 513, 4, true, RowType::F16, 3},    {4, 4, 40, 70, 2, false, RowType::BF16, 2},
             {8, 1, 128, 2049, 1, false, RowType::F32, 2}, {9, 3, 64, 777, 5, true, RowType::Q8_0, 1},
             {9, 3, 64, 301, 5, true, RowType::F32, 2, true},  {6, 2, 32, 65, 4, false, RowType::F16, 1, true},
             {9, 3, 64, 2049, 4, true, RowType::F16, 2, true, true}, {9, 3, 64, 3001, 3, true, RowType::F32, 3, false, true}})
      run_case(c, kernel_table(isa));
  }
}

TEST(ThreadPool, EveryIndexRunsOnceInEveryRegion) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 64, 1001}) {
      for (int64_t grain : {1, 3, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> bad_thread{0};
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int t) {
          if (t < 0 || t >= threads) bad_thread++;
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " grain " << grain;
        EXPECT_EQ(bad_thread.load(), 0);
      }
    }
  }
}

}  // namespace
}  // namespace sentinel::kernels
