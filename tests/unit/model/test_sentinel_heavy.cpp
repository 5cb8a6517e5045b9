// Sentinel's heavy layout (policy.h: SpanLayout::Heavy) as a plan, without a model: where its
// spans close, what its mask shows, and what its eviction keeps, worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "sentinel/policies/mask.h"
#include "sentinel/policies/sentinel.h"

namespace sentinel {
namespace {

constexpr int32_t kCl = 1000, kCr = 1001;

PolicyOptions heavy(double ratio, int64_t span, int64_t sinks) {
  PolicyOptions o;
  o.method = Method::Sentinel;
  o.layout = SpanLayout::Heavy;
  o.ratio = ratio;
  o.span = span;
  o.sinks = sinks;
  o.cl_id = kCl;
  o.cr_id = kCr;
  return o;
}

std::vector<int32_t> tokens(int64_t n) {
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

std::vector<CacheCell> cells_of(const std::vector<Element>& elements) {
  std::vector<CacheCell> cells;
  for (const Element& e : elements) cells.push_back(e.cell);
  return cells;
}

at::Tensor masses(std::vector<float> m) { return at::tensor(m); }

// r = 0.5: after n tokens the cache may hold kv_budget(0.5, n + 1) - 1 cells, half of them the
// recent window. After 7 tokens that is 3 cells and a window of 1 (token 6), so span 0 = [2, 6)
// (2 sinks, L = 4) closes right after token 6; after 40 tokens the window is 30..39 and spans
// ending at 6, 10, ..., 30 are closed: 7 of them.
TEST(SentinelHeavy, SpansCloseAsTheyLeaveTheRecentHalf) {
  SentinelPolicy policy(heavy(0.5, 4, 2));
  EXPECT_EQ(policy.heavy_capacity(7), 3);
  EXPECT_EQ(policy.heavy_recent(7), 1);
  EXPECT_EQ(policy.heavy_recent(40), 10);
  const std::vector<Element> elements = policy.expand(tokens(40), 0);
  std::vector<int64_t> closed_after;  // ordinary index fed right before each <CR>
  int64_t last_ordinary = -1;
  for (const Element& e : elements) {
    if (e.ordinary_index >= 0) last_ordinary = e.ordinary_index;
    if (e.cell.kind == CellKind::CompressRight) {
      closed_after.push_back(last_ordinary);
      EXPECT_EQ(e.cell.position, 2 + 4 * e.cell.span + 3) << "a <CR> takes its span's last position";
    }
  }
  ASSERT_EQ(closed_after.size(), 7u);
  EXPECT_EQ(closed_after.front(), 6);
  EXPECT_TRUE(policy.wants_attention());
}

// Unlike method.md's rule, an ordinary token still sees what is left of a closed span, beside its <CR>.
TEST(SentinelHeavy, ClosedSpansStayVisibleBesideTheirSummary) {
  SentinelPolicy policy(heavy(0.5, 4, 2));
  const std::vector<Element> elements = policy.expand(tokens(9), 0);  // span 0 closes after token 6
  const std::vector<CacheCell> cells = cells_of(elements);
  const auto n = static_cast<int64_t>(cells.size());
  ASSERT_EQ(n, 11);  // 0..6, <CL>, <CR>, 7, 8
  ASSERT_EQ(cells[7].kind, CellKind::CompressLeft);
  ASSERT_EQ(cells[8].kind, CellKind::CompressRight);
  const at::Tensor mask = policy.mask(cells, n)[0];  // [n, n]
  for (int64_t k = 0; k < 7; ++k) EXPECT_TRUE(mask[10][k].item<bool>()) << "token 8 sees token " << k;
  EXPECT_FALSE(mask[10][7].item<bool>()) << "never a <CL>";
  EXPECT_TRUE(mask[10][8].item<bool>()) << "the <CR>";
  EXPECT_TRUE(mask[10][9].item<bool>()) << "token 7";
  // The <CR> reads its <CL> and span (2..5), nothing before it.
  for (int64_t k = 0; k < 8; ++k) EXPECT_EQ(mask[8][k].item<bool>(), (k >= 2 && k <= 5) || k == 7) << "key " << k;
  // The stream layout hides the closed span instead.
  EXPECT_FALSE(sentinel_mask(cells, n)[0][10][3].item<bool>());
}

// After 40 tokens: 54 cells (40 tokens, 7 <CL>, 7 <CR>). The <CL>s go; the cache keeps 20 cells:
// the 2 sinks, the 10 recent tokens, the 7 <CR>s, and room for 1 heavy hitter, the older token
// with the most attention (here 13).
TEST(SentinelHeavy, EvictionKeepsSinksRecentSummariesThenTheHeaviest) {
  SentinelPolicy policy(heavy(0.5, 4, 2));
  const std::vector<CacheCell> cells = cells_of(policy.expand(tokens(40), 0));
  ASSERT_EQ(cells.size(), 54u);
  std::vector<float> m(cells.size(), 0.1f);
  for (size_t i = 0; i < cells.size(); ++i)
    if (cells[i].kind == CellKind::Ordinary && cells[i].position == 13) m[i] = 5.0f;
  policy.observe_attention(cells, masses(m));
  const std::vector<int64_t> dead = policy.evictions(cells, 40);
  std::vector<CacheCell> kept;
  for (size_t i = 0; i < cells.size(); ++i)
    if (!std::binary_search(dead.begin(), dead.end(), static_cast<int64_t>(i))) kept.push_back(cells[i]);
  EXPECT_EQ(static_cast<int64_t>(kept.size()), policy.heavy_capacity(40));
  std::vector<int64_t> ordinary;
  int64_t summaries = 0;
  for (const CacheCell& c : kept) {
    EXPECT_NE(c.kind, CellKind::CompressLeft);
    if (c.kind == CellKind::CompressRight) ++summaries;
    else ordinary.push_back(c.position);
  }
  EXPECT_EQ(summaries, 7);
  EXPECT_EQ(ordinary, (std::vector<int64_t>{0, 1, 13, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}));
}

// Read one token per pass with scores that favour the first token, the cache never holds more
// than the budget after a pass, the first token never leaves, and <CR>s accumulate.
TEST(SentinelHeavy, DecodingStaysWithinTheBudget) {
  for (double ratio : {0.5, 0.75}) {
    SentinelPolicy reader(heavy(ratio, 8, 4));
    std::vector<CacheCell> cache;
    const std::vector<int32_t> ids = tokens(200);
    for (int64_t t = 0; t < 200; ++t) {
      for (const Element& e : reader.expand(std::span<const int32_t>(ids).subspan(t, 1), t)) cache.push_back(e.cell);
      std::vector<float> m(cache.size(), 0.2f);
      m[0] = 1.0f;
      reader.observe_attention(cache, masses(m));
      const std::vector<int64_t> dead = reader.evictions(cache, t + 1);
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) cache.erase(cache.begin() + *it);
      ASSERT_LE(static_cast<int64_t>(cache.size()), std::max<int64_t>(1, kv_budget(ratio, t + 2) - 1))
          << "ratio " << ratio << " after " << t + 1 << " tokens";
      ASSERT_EQ(cache.front().position, 0) << "the first token left after " << t + 1 << " tokens";
    }
    const auto summaries = std::count_if(cache.begin(), cache.end(),
                                         [](const CacheCell& c) { return c.kind == CellKind::CompressRight; });
    EXPECT_GT(summaries, 10) << "ratio " << ratio;
  }
}

TEST(SentinelHeavy, LayoutNameParsesAndReadsAttention) {
  EXPECT_EQ(parse_span_layout("heavy"), SpanLayout::Heavy);
  EXPECT_EQ(span_layout_name(SpanLayout::Heavy), "heavy");
  EXPECT_TRUE(reads_attention(heavy(0.5, 16, 4)));
  PolicyOptions stream = heavy(0.5, 16, 4);
  stream.layout = SpanLayout::Stream;
  EXPECT_FALSE(reads_attention(stream));
  PolicyOptions h2o;
  h2o.method = Method::H2O;
  h2o.ratio = 0.5;
  EXPECT_TRUE(reads_attention(h2o));
}

}  // namespace
}  // namespace sentinel
