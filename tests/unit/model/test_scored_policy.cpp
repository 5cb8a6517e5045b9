// ScoredPolicy (scored.h): a caller's scores, the engine's budget. Scores that H2O would give make
// it evict exactly what H2OPolicy evicts, step after step; bad scores are refused by name; a custom
// policy runs through PolicyOptions::custom like any built-in one.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/policies/h2o.h"
#include "sentinel/policies/scored.h"

namespace sentinel {
namespace {

// H2O's rule as scores: accumulated attention, the recent half of the kept room first.
struct H2OScores {
  std::vector<double> mass;
  void observe(std::span<const CacheCell> cells, const at::Tensor& m) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].position >= static_cast<int64_t>(mass.size())) mass.resize(cells[i].position + 1, 0.0);
      mass[cells[i].position] += m[static_cast<int64_t>(i)].item<double>();
    }
  }
  at::Tensor score(const ScoreRequest& r) const {
    const int64_t n = static_cast<int64_t>(r.cells.size());
    at::Tensor s = at::empty({n}, at::kDouble);
    for (int64_t i = 0; i < n; ++i) s[i] = mass[r.cells[i].position];
    const int64_t n_recent = r.keep - (r.keep + 1) / 2;
    if (n_recent > 0) s.slice(0, n - n_recent).fill_(std::numeric_limits<double>::infinity());
    return s;
  }
};

TEST(ScoredPolicy, H2OScoresEvictExactlyWhatH2OEvicts) {
  for (double ratio : {0.3, 0.5, 0.8}) {
    H2OPolicy h2o(ratio);
    auto state = std::make_shared<H2OScores>();
    ScoredPolicy scored(
        ratio, [state](const ScoreRequest& r) { return state->score(r); },
        [state](std::span<const CacheCell> cells, const at::Tensor& m) { state->observe(cells, m); });
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    std::vector<CacheCell> a, b;
    int64_t next = 0;
    for (int step = 0; step < 60; ++step) {
      const int64_t fed = 1 + step % 5;  // passes of 1 to 5 tokens
      for (int64_t t = 0; t < fed; ++t, ++next) {
        a.push_back(CacheCell{next, CellKind::Ordinary, -1});
        b.push_back(CacheCell{next, CellKind::Ordinary, -1});
      }
      at::Tensor mass = at::empty({static_cast<int64_t>(a.size())}, at::kFloat);
      for (int64_t i = 0; i < mass.size(0); ++i) mass[i] = uniform(rng) < 0.2f ? 0.0f : uniform(rng);  // ties too
      h2o.observe_attention(a, mass);
      scored.observe_attention(b, mass);
      const std::vector<int64_t> expected = h2o.evictions(a, next);
      ASSERT_EQ(scored.evictions(b, next), expected) << "ratio " << ratio << ", step " << step;
      for (auto it = expected.rbegin(); it != expected.rend(); ++it) {
        a.erase(a.begin() + *it);
        b.erase(b.begin() + *it);
      }
      ASSERT_EQ(static_cast<int64_t>(a.size()), std::min<int64_t>(next, cells_kept_for_next_query(ratio, next)));
    }
  }
}

// TOVA keeps what the last pass attended to most: the same budget as H2O, no recent half.
TEST(TovaPolicy, KeepsTheCellsTheLastPassAttendedToMost) {
  PolicyOptions options;
  options.method = Method::Tova;
  options.ratio = 0.5;
  const std::unique_ptr<CompressionPolicy> tova = make_policy(options);
  EXPECT_EQ(tova->method(), Method::Tova);
  EXPECT_TRUE(tova->wants_attention());
  EXPECT_TRUE(reads_attention(options));
  std::vector<CacheCell> cells;
  for (int64_t p = 0; p < 10; ++p) cells.push_back(CacheCell{p, CellKind::Ordinary, -1});
  // An older pass's attention does not count: only the last one ranks.
  tova->observe_attention(cells, at::tensor(std::vector<float>{9, 9, 9, 9, 9, 0, 0, 0, 0, 0}));
  tova->observe_attention(cells, at::tensor(std::vector<float>{0.1f, 0.2f, 5, 0.3f, 0.1f, 3, 0.4f, 0, 9, 0}));
  // Next query 10: kv_budget(0.5, 11) - 1 = 5 cells stay: 8 (9), 2 (5), 5 (3), 6 (0.4), 3 (0.3).
  EXPECT_EQ(tova->evictions(cells, 10), (std::vector<int64_t>{0, 1, 4, 7, 9}));
}

TEST(ScoredPolicy, RefusesScoresOfTheWrongShapeOrNaN) {
  std::vector<CacheCell> cells;
  for (int64_t p = 0; p < 10; ++p) cells.push_back(CacheCell{p, CellKind::Ordinary, -1});
  ScoredPolicy short_scores(0.5, [](const ScoreRequest&) { return at::zeros({3}); });
  EXPECT_THROW(
      {
        try {
          short_scores.evictions(cells, 10);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("one score per cached entry, a 1-D tensor of 10 values"), std::string::npos)
              << e.what();
          throw;
        }
      },
      Error);
  ScoredPolicy nan_scores(0.5, [](const ScoreRequest&) { return at::full({10}, std::nan("")); });
  EXPECT_THROW(nan_scores.evictions(cells, 10), Error);
}

TEST(ScoredPolicy, RunsThroughPolicyOptionsAsTheCustomMethod) {
  PolicyOptions options;
  options.method = Method::Custom;
  options.ratio = 0.5;
  EXPECT_THROW(options.validate(), Error);  // a custom method needs its maker
  options.custom = std::make_shared<const PolicyMaker>([] {
    return std::make_unique<ScoredPolicy>(0.5, [](const ScoreRequest& r) {
      return at::arange(static_cast<int64_t>(r.cells.size()), at::kDouble);  // the newest stay
    });
  });
  const std::unique_ptr<CompressionPolicy> policy = make_policy(options);
  EXPECT_EQ(policy->method(), Method::Custom);
  EXPECT_EQ(method_name(Method::Custom), "custom");
  EXPECT_THROW(parse_method("custom"), Error);  // no option names it
  EXPECT_TRUE(reads_attention(options));        // may decide from anything: never resumed
  std::vector<CacheCell> cells;
  for (int64_t p = 0; p < 10; ++p) cells.push_back(CacheCell{p, CellKind::Ordinary, -1});
  EXPECT_EQ(policy->evictions(cells, 10), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace sentinel
