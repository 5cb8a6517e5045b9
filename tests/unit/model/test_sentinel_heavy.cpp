// Sentinel's heavy layout (policy.h: SpanLayout::Heavy) as a plan, without a model: where its
// spans close, what its mask shows, and what its eviction keeps, worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "sentinel/core/error.h"
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

// The cells of `cells` not in `dead` (sorted indices): what an eviction keeps.
std::vector<CacheCell> survivors(const std::vector<CacheCell>& cells, const std::vector<int64_t>& dead) {
  std::vector<CacheCell> kept;
  for (size_t i = 0; i < cells.size(); ++i)
    if (!std::binary_search(dead.begin(), dead.end(), static_cast<int64_t>(i))) kept.push_back(cells[i]);
  return kept;
}

// The ordinary positions among `cells`, in order.
std::vector<int64_t> ordinary_positions(const std::vector<CacheCell>& cells) {
  std::vector<int64_t> out;
  for (const CacheCell& c : cells)
    if (c.kind == CellKind::Ordinary) out.push_back(c.position);
  return out;
}

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
  const std::vector<CacheCell> kept = survivors(cells, policy.evictions(cells, 40));
  EXPECT_EQ(static_cast<int64_t>(kept.size()), policy.heavy_capacity(40));
  int64_t summaries = 0;
  for (const CacheCell& c : kept) {
    EXPECT_NE(c.kind, CellKind::CompressLeft);
    summaries += c.kind == CellKind::CompressRight;
  }
  EXPECT_EQ(summaries, 7);
  EXPECT_EQ(ordinary_positions(kept), (std::vector<int64_t>{0, 1, 13, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}));
}

// --older-rank surprisal: the same budget, the room for older tokens going to the one the model
// least expected (here 21), whatever the attention says (13 drew it all).
TEST(SentinelHeavy, SurprisalRanksTheOlderTokensInstead) {
  PolicyOptions options = heavy(0.5, 4, 2);
  options.older_rank = OlderRank::Surprisal;
  SentinelPolicy policy(options);
  EXPECT_FALSE(policy.wants_attention());
  EXPECT_TRUE(policy.wants_surprisal());
  const std::vector<CacheCell> cells = cells_of(policy.expand(tokens(40), 0));
  std::vector<float> nll(39, 0.5f);  // positions 1..39
  nll[21 - 1] = 7.0f;
  policy.observe_surprisal(1, at::tensor(nll));
  EXPECT_EQ(ordinary_positions(survivors(cells, policy.evictions(cells, 40))),
            (std::vector<int64_t>{0, 1, 21, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}));
}

// --older-rank both: half the ranked room to the heaviest hitters (the odd cell included), half to
// the most surprising of what they leave. With spans of 8 the 20 cells after 40 tokens are 2 sinks,
// 10 recent tokens, 3 <CR>s and room for 5 older tokens: 13, 14, 15 by attention, 21, 22 by
// surprisal (14 is as surprising as 21 but already kept).
TEST(SentinelHeavy, BothRanksShareTheOlderRoom) {
  PolicyOptions options = heavy(0.5, 8, 2);
  options.older_rank = OlderRank::Both;
  SentinelPolicy policy(options);
  EXPECT_TRUE(policy.wants_attention());
  EXPECT_TRUE(policy.wants_surprisal());
  const std::vector<CacheCell> cells = cells_of(policy.expand(tokens(40), 0));
  std::vector<float> m(cells.size(), 0.1f);
  for (size_t i = 0; i < cells.size(); ++i) {
    if (cells[i].kind != CellKind::Ordinary) continue;
    if (cells[i].position == 13) m[i] = 5.0f;
    if (cells[i].position == 14) m[i] = 4.0f;
    if (cells[i].position == 15) m[i] = 3.0f;
  }
  policy.observe_attention(cells, masses(m));
  std::vector<float> nll(39, 0.5f);  // positions 1..39
  nll[14 - 1] = nll[21 - 1] = 7.0f;
  nll[22 - 1] = 6.0f;
  policy.observe_surprisal(1, at::tensor(nll));
  const std::vector<CacheCell> kept = survivors(cells, policy.evictions(cells, 40));
  EXPECT_EQ(std::count_if(kept.begin(), kept.end(), [](const CacheCell& c) { return c.kind == CellKind::CompressRight; }), 3);
  EXPECT_EQ(ordinary_positions(kept),
            (std::vector<int64_t>{0, 1, 13, 14, 15, 21, 22, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}));
}

// Reads n tokens one per pass, attention 5 on the positions in `heavy` and 0.2
// elsewhere, and returns the cache it ends with, checked after every pass: within the budget, the
// first token still in.
std::vector<CacheCell> decode_one_by_one(SentinelPolicy& reader, int64_t n, double ratio,
                                         const std::vector<int64_t>& heavy = {}) {
  std::vector<CacheCell> cache;
  const std::vector<int32_t> ids = tokens(n);
  for (int64_t t = 0; t < n; ++t) {
    for (const Element& e : reader.expand(std::span<const int32_t>(ids).subspan(t, 1), t)) cache.push_back(e.cell);
    std::vector<float> m(cache.size(), 0.2f);
    for (size_t i = 0; i < cache.size(); ++i)
      if (std::find(heavy.begin(), heavy.end(), cache[i].position) != heavy.end() && cache[i].kind == CellKind::Ordinary)
        m[i] = 5.0f;
    reader.observe_attention(cache, masses(m));
    const std::vector<int64_t> dead = reader.evictions(cache, t + 1);
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) cache.erase(cache.begin() + *it);
    EXPECT_LE(static_cast<int64_t>(cache.size()), std::max<int64_t>(1, kv_budget(ratio, t + 2) - 1))
        << "ratio " << ratio << " after " << t + 1 << " tokens";
    EXPECT_EQ(cache.front().position, 0) << "the first token left after " << t + 1 << " tokens";
  }
  return cache;
}

// The ordinary positions of `cache` in [begin, end).
std::vector<int64_t> ordinary_between(const std::vector<CacheCell>& cache, int64_t begin, int64_t end) {
  std::vector<int64_t> out;
  for (const CacheCell& c : cache)
    if (c.kind == CellKind::Ordinary && c.position >= begin && c.position < end) out.push_back(c.position);
  return out;
}

// Read one token per pass, the cache never holds more than the budget after a pass, the first
// token never leaves, and <CR>s accumulate.
TEST(SentinelHeavy, DecodingStaysWithinTheBudget) {
  for (double ratio : {0.5, 0.75}) {
    SentinelPolicy reader(heavy(ratio, 8, 4));
    const std::vector<CacheCell> cache = decode_one_by_one(reader, 200, ratio, {0});
    const auto summaries = std::count_if(cache.begin(), cache.end(),
                                         [](const CacheCell& c) { return c.kind == CellKind::CompressRight; });
    EXPECT_GT(summaries, 10) << "ratio " << ratio;
  }
}

// --stride-share 1: the older tokens are kept as strided keeps its older half, evenly spread from
// the sinks to the recent window, whatever the attention says. After 400 tokens with spans of 16
// no gap between kept neighbours is under half their mean spacing or over twice it, the oldest
// stretch (the passage a recall test asks back) included. (At r 0.5 the kept positions run
// 7 10 13 16 22 25 ...: three apart, six where a <CR> sits between them.) Of the four tokens that
// drew all the attention, H2O's choice, no more are kept than of any four neighbours.
TEST(SentinelHeavy, StrideShareKeepsOlderTokensEvenlySpread) {
  for (double ratio : {0.5, 0.75}) {
    PolicyOptions options = heavy(ratio, 16, 4);
    options.stride_share = 1.0;
    SentinelPolicy reader(options);
    const std::vector<CacheCell> cache = decode_one_by_one(reader, 400, ratio, {100, 101, 102, 103});
    const int64_t recent_begin = 400 - reader.heavy_recent(400);
    const std::vector<int64_t> older = ordinary_between(cache, 4, recent_begin);
    ASSERT_GT(older.size(), 20u) << "ratio " << ratio;
    const double spacing = static_cast<double>(recent_begin - 4) / static_cast<double>(older.size());
    std::vector<int64_t> gaps;
    for (size_t i = 1; i < older.size(); ++i) gaps.push_back(older[i] - older[i - 1]);
    EXPECT_GE(*std::min_element(gaps.begin(), gaps.end()), spacing / 2) << "ratio " << ratio;
    EXPECT_LE(*std::max_element(gaps.begin(), gaps.end()), 2 * spacing) << "ratio " << ratio;
    EXPECT_LE(older.front() - 4, 2 * spacing) << "the oldest stretch is kept too";
    EXPECT_LE(ordinary_between(cache, 100, 104).size(), 2u) << "attention does not decide at share 1";
  }
}

// --stride-share 0.5: half the older tokens' room goes to the heaviest, the other half evenly
// spread over what is left. Tokens 100..103 draw the attention: they stay, beside an even share
// that reaches from the oldest older tokens to the newest.
TEST(SentinelHeavy, StrideShareSplitsTheOlderBudget) {
  PolicyOptions options = heavy(0.5, 16, 4);
  options.stride_share = 0.5;
  SentinelPolicy reader(options);
  const std::vector<CacheCell> cache = decode_one_by_one(reader, 400, 0.5, {100, 101, 102, 103});
  const int64_t recent_begin = 400 - reader.heavy_recent(400);
  EXPECT_EQ(ordinary_between(cache, 100, 104), (std::vector<int64_t>{100, 101, 102, 103}));
  EXPECT_GT(ordinary_between(cache, 4, 100).size(), 5u) << "the even share reaches the oldest older tokens";
  EXPECT_GT(ordinary_between(cache, 200, recent_begin).size(), 5u) << "and the newest";
  EXPECT_EQ(static_cast<int64_t>(cache.size()), reader.heavy_capacity(400));
}

TEST(SentinelHeavy, StrideShareIsCheckedWhereItApplies) {
  PolicyOptions options = heavy(0.5, 8, 4);
  options.stride_share = 1.5;
  EXPECT_THROW(options.validate(), Error);
  PolicyOptions h2o;
  h2o.method = Method::H2O;
  h2o.ratio = 0.5;
  h2o.stride_share = 0.5;
  EXPECT_THROW(h2o.validate(), Error);
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
