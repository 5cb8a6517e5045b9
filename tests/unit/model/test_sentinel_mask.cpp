// The sentinel layout without a model: the attention mask of docs/method.md section 3 (its two
// worked examples, cell for cell), the position ids of section 4, where the scheduler of
// section 6 puts <CL>/<CR> and what it evicts, and training blocks cut from a layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/engine/masked_forward.h"
#include "sentinel/policies/mask.h"
#include "sentinel/policies/policy.h"
#include "sentinel/policies/sentinel.h"

namespace sentinel {
namespace {

constexpr int32_t kCl = 320, kCr = 321;  // the tiny model's n_vocab and n_vocab + 1

PolicyOptions explicit_spans(std::vector<Span> spans) {
  PolicyOptions o;
  o.method = Method::Sentinel;
  o.cl_id = kCl;
  o.cr_id = kCr;
  o.spans = std::move(spans);
  return o;
}

// The paper setting's periodic scheduler.
PolicyOptions scheduled(double ratio, int64_t span, int64_t window) {
  PolicyOptions o = explicit_spans({});
  o.ratio = ratio;
  o.span = span;
  o.window = window;
  o.layout = SpanLayout::Periodic;
  return o;
}

// The stream scheduler: sinks, then spans compressed as the budget needs.
PolicyOptions streamed(double ratio, int64_t span, int64_t sinks, int64_t window = 0) {
  PolicyOptions o = scheduled(ratio, span, window);
  o.layout = SpanLayout::Stream;
  o.sinks = sinks;
  return o;
}

// Ordinary tokens a, b, c, ... with ids 0, 1, 2, ...
std::vector<int32_t> tokens(int n) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = i;
  return ids;
}

MaskedSequence layout(const PolicyOptions& o, int n) {
  auto policy = make_policy(o);
  return masked_sequence(*policy, tokens(n));
}

// "a0 b1 CL1 c2 ...": each element as method.md section 4 writes it, letter (or sentinel) then
// position id. Also checks the ids tensor agrees with the elements.
std::string notation(const MaskedSequence& s) {
  std::string out;
  for (size_t i = 0; i < s.elements.size(); ++i) {
    const Element& e = s.elements[i];
    EXPECT_EQ(s.ids[0][i].item<int64_t>(), e.id) << "row " << i;
    EXPECT_EQ(s.positions[0][i].item<int64_t>(), e.cell.position) << "row " << i;
    if (!out.empty()) out += ' ';
    if (e.cell.kind == CellKind::CompressLeft) out += "CL";
    else if (e.cell.kind == CellKind::CompressRight) out += "CR";
    else out += static_cast<char>('a' + e.id);
    out += std::to_string(e.cell.position);
  }
  return out;
}

std::string notation(const std::vector<Element>& elements) {
  MaskedSequence s;
  s.elements = elements;
  const int64_t n = static_cast<int64_t>(elements.size());
  s.ids = at::empty({1, n}, at::kLong);
  s.positions = at::empty({1, n}, at::kLong);
  for (int64_t i = 0; i < n; ++i) {
    s.ids[0][i] = elements[i].id;
    s.positions[0][i] = elements[i].cell.position;
  }
  return notation(s);
}

// Rows of a [1, N, N] mask as "1..1." strings (1 = may attend), the notation of method.md section 3.
std::vector<std::string> rows(const at::Tensor& mask) {
  EXPECT_EQ(mask.dim(), 3);
  std::vector<std::string> out;
  const at::Tensor m = mask[0].to(at::kBool).contiguous();
  for (int64_t q = 0; q < m.size(0); ++q) {
    std::string row;
    for (int64_t k = 0; k < m.size(1); ++k) row += m[q][k].item<bool>() ? '1' : '.';
    out.push_back(row);
  }
  return out;
}

// ---- section 3: the mask ----

TEST(SentinelMask, MatchesTheSection3Example) {
  // a b <CL> c d e <CR> f g: the span holds ordinary tokens 2..4 (c d e).
  const MaskedSequence s = layout(explicit_spans({Span{2, 5}}), 7);
  ASSERT_EQ(notation(s), "a0 b1 CL1 c2 d3 e4 CR4 f5 g6");
  const std::vector<std::string> expected = {
      //  a b CL c d e CR f g
      "1........",  // a
      "11.......",  // b
      "..1......",  // CL: only itself
      "11.1.....",  // c: context and its own span, never CL
      "11.11....",  // d
      "11.111...",  // e
      "..11111..",  // CR: its CL, the span and itself; not a, b
      "11....11.",  // f: context and CR, not the closed span
      "11....111",  // g
  };
  EXPECT_EQ(rows(s.mask), expected);
}

// a <CL> b c <CR> d <CL> e f <CR> g: e and f see a, CR1, d and the earlier tokens of their own
// span; g sees a, CR1, d, CR2.
TEST(SentinelMask, MatchesTheSection3TwoSpanExample) {
  const MaskedSequence s = layout(explicit_spans({Span{1, 3}, Span{4, 6}}), 7);
  ASSERT_EQ(notation(s), "a0 CL0 b1 c2 CR2 d3 CL3 e4 f5 CR5 g6");
  const std::vector<std::string> expected = {
      //  a CL b c CR d CL e f CR g
      "1..........",  // a
      ".1.........",  // CL1
      "1.1........",  // b
      "1.11.......",  // c
      ".1111......",  // CR1
      "1...11.....",  // d
      "......1....",  // CL2
      "1...11.1...",  // e: a, CR1, d, itself
      "1...11.11..",  // f: ... and e
      "......1111.",  // CR2: CL2, e, f, itself
      "1...11...11",  // g: a, CR1, d, CR2, itself
  };
  EXPECT_EQ(rows(s.mask), expected);
}

// Adjacent spans: the second <CL> follows the first <CR> directly; a later token sees both <CR>s.
TEST(SentinelMask, AdjacentSpansCloseOneAfterTheOther) {
  const MaskedSequence s = layout(explicit_spans({Span{1, 3}, Span{3, 5}}), 6);
  ASSERT_EQ(notation(s), "a0 CL0 b1 c2 CR2 CL2 d3 e4 CR4 f5");
  const std::vector<std::string> expected = {
      //  a CL b c CR CL d e CR f
      "1.........",  // a
      ".1........",  // CL1
      "1.1.......",  // b
      "1.11......",  // c
      ".1111.....",  // CR1
      ".....1....",  // CL2
      "1...1.1...",  // d: a, CR1, itself
      "1...1.11..",  // e
      ".....1111.",  // CR2
      "1...1...11",  // f: a, CR1, CR2, itself
  };
  EXPECT_EQ(rows(s.mask), expected);
}

// A step over cached cells (chunked prefill, decode) must mask exactly like the same rows of the
// full-sequence mask, for every split of the layout into cached and new cells.
TEST(SentinelMask, EveryStepMaskIsTheMatchingRowsOfTheFullMask) {
  const MaskedSequence s = layout(explicit_spans({Span{1, 3}, Span{4, 6}}), 7);
  std::vector<CacheCell> cells;
  for (const Element& e : s.elements) cells.push_back(e.cell);
  const int64_t n = static_cast<int64_t>(cells.size());
  for (int64_t n_new = 1; n_new <= n; ++n_new) {
    const at::Tensor step = sentinel_mask(cells, n_new);  // [1, n_new, n] or undefined
    const at::Tensor expected = s.mask.narrow(1, n - n_new, n_new);
    if (!step.defined()) {
      EXPECT_TRUE(at::equal(expected, at::ones_like(expected).tril(n - n_new))) << n_new << " new cells";
    } else {
      EXPECT_TRUE(at::equal(step, expected)) << n_new << " new cells";
    }
  }
}

TEST(SentinelMask, WithoutSentinelsIsPlainCausal) {
  std::vector<CacheCell> cells(5);
  for (int64_t i = 0; i < 5; ++i) cells[i] = CacheCell{i, CellKind::Ordinary, -1};
  EXPECT_FALSE(sentinel_mask(cells, 5).defined());
  EXPECT_FALSE(sentinel_mask(cells, 1).defined());
  EXPECT_THROW(sentinel_mask(cells, 6), Error);
}

// ---- section 4: position ids ----

TEST(SentinelPositions, FollowTheSection4Example) {
  const MaskedSequence s = layout(explicit_spans({Span{2, 5}}), 7);
  EXPECT_EQ(notation(s), "a0 b1 CL1 c2 d3 e4 CR4 f5 g6");
  EXPECT_EQ(s.ids[0][2].item<int64_t>(), kCl);
  EXPECT_EQ(s.ids[0][6].item<int64_t>(), kCr);
  EXPECT_EQ(s.ordinary_rows, (std::vector<int64_t>{0, 1, 3, 4, 5, 7, 8}));  // rows that produce logits
  // Ordinary tokens carry their index; the span's tokens and both sentinels name span 0.
  std::vector<int32_t> spans;
  for (const Element& e : s.elements) spans.push_back(e.cell.span);
  EXPECT_EQ(spans, (std::vector<int32_t>{-1, -1, 0, 0, 0, 0, 0, -1, -1}));
  std::vector<int64_t> ordinary;
  for (const Element& e : s.elements) ordinary.push_back(e.ordinary_index);
  EXPECT_EQ(ordinary, (std::vector<int64_t>{0, 1, -1, 2, 3, 4, -1, 5, 6}));
}

TEST(SentinelPositions, ASpanAtTheVeryStartOpensAtZero) {
  const MaskedSequence s = layout(explicit_spans({Span{0, 2}}), 4);
  EXPECT_EQ(notation(s), "CL0 a0 b1 CR1 c2 d3");
  EXPECT_EQ(rows(s.mask), (std::vector<std::string>{"1.....", ".1....", ".11...", "1111..", "...11.", "...111"}));
}

TEST(SentinelPositions, ASpanEndingTheInputClosesAfterItsLastToken) {
  EXPECT_EQ(notation(layout(explicit_spans({Span{2, 4}}), 4)), "a0 b1 CL1 c2 d3 CR3");
  // A span the input does not reach the end of stays open: no <CR> yet.
  EXPECT_EQ(notation(layout(explicit_spans({Span{2, 9}}), 4)), "a0 b1 CL1 c2 d3");
}

// ---- section 6: the scheduler ----

std::vector<CacheCell> cells_of(const std::vector<Element>& elements) {
  std::vector<CacheCell> cells;
  for (const Element& e : elements) cells.push_back(e.cell);
  return cells;
}


TEST(SentinelScheduler, SpansOfLTokensEveryPeriod) {
  // P = (L - 1) / r: r = 0.5, L = 4 -> P = 6; r = 0.75 -> P = 4, adjacent spans.
  const SentinelPolicy half(scheduled(0.5, 4, 0));
  for (int64_t k = 0; k < 4; ++k) {
    ASSERT_TRUE(half.span(k).has_value());
    EXPECT_EQ(half.span(k)->begin, 6 * k);
    EXPECT_EQ(half.span(k)->end, 6 * k + 4);
  }
  const SentinelPolicy most(scheduled(0.75, 4, 0));
  EXPECT_EQ(most.span(3)->begin, 12);
  EXPECT_EQ(most.span(3)->end, 16);
  // r = 0.3, L = 8: P = 23.33..., begins at floor(k * P).
  const SentinelPolicy fractional(scheduled(0.3, 8, 0));
  EXPECT_EQ(fractional.span(1)->begin, 23);
  EXPECT_EQ(fractional.span(2)->begin, 46);
  EXPECT_EQ(fractional.span(3)->begin, 70);
  EXPECT_FALSE(SentinelPolicy(scheduled(0.0, 4, 0)).span(0).has_value());  // ratio 0: nothing to compress
  const SentinelPolicy named(explicit_spans({Span{2, 5}}));
  EXPECT_EQ(named.span(0)->begin, 2);
  EXPECT_FALSE(named.span(1).has_value());
}

// A scheduled span's <CL> and <CR> are fed together once the span is `window` tokens old, with the
// positions they would have had in-stream: <CL> the id before the span, <CR> its last token's.
TEST(SentinelScheduler, FeedsSentinelsAfterTheWindowWithInStreamPositions) {
  EXPECT_EQ(notation(layout(scheduled(0.5, 4, 0), 14)), "a0 b1 c2 d3 CL0 CR3 e4 f5 g6 h7 i8 j9 CL5 CR9 k10 l11 m12 n13");
  EXPECT_EQ(notation(layout(scheduled(0.5, 4, 2), 14)), "a0 b1 c2 d3 e4 f5 CL0 CR3 g6 h7 i8 j9 k10 l11 CL5 CR9 m12 n13");
  EXPECT_EQ(notation(layout(scheduled(0.75, 4, 0), 9)), "a0 b1 c2 d3 CL0 CR3 e4 f5 g6 h7 CL3 CR7 i8");
}

// Stream layout: the sinks are never in a span; spans follow them back to back and close just when
// the next query would otherwise see more than the budget (r = 0.5: after tokens 5, 9, 13).
TEST(SentinelScheduler, StreamLayoutKeepsTheSinksAndClosesSpansAsTheBudgetNeeds) {
  EXPECT_EQ(notation(layout(streamed(0.5, 4, 2), 14)),
            "a0 b1 c2 d3 e4 f5 CL1 CR5 g6 h7 i8 j9 CL5 CR9 k10 l11 m12 n13 CL9 CR13");
  const SentinelPolicy policy(streamed(0.5, 4, 2));
  EXPECT_EQ(policy.span(0)->begin, 2);
  EXPECT_EQ(policy.span(3)->begin, 14);
  // A window floor holds the first close back until span 0 is 6 tokens old.
  EXPECT_EQ(notation(layout(streamed(0.5, 4, 2, 6), 12)), "a0 b1 c2 d3 e4 f5 g6 h7 i8 j9 k10 l11 CL1 CR5");
}

// The stream layout spends the shared budget (policy.h: kv_budget) like every baseline: at steady
// state the next query never sees more than the budget, and at most L - 2 fewer. Early on, only a
// span not yet complete can hold it above: sinks + <CR>s + fewer than L raw tokens.
TEST(SentinelScheduler, StreamLayoutSpendsExactlyTheBudget) {
  const int64_t sinks = 4, n = 2000;
  for (double r : {0.25, 0.5, 0.75, 0.9}) {
    for (int64_t span : {4, 16, 32}) {
      // The <CR>s alone cost n / L entries: the budget (1 - r) n is reachable only below (L-1)/L.
      const double slack = (1.0 - r) - 1.0 / static_cast<double>(span);
      if (slack <= 0) continue;
      SCOPED_TRACE("ratio " + std::to_string(r) + " span " + std::to_string(span));
      auto policy = make_policy(streamed(r, span, sinks));
      std::vector<CacheCell> cache;
      const std::vector<int32_t> ids = tokens(n);
      for (int64_t i = 0; i < n; ++i) {
        for (const CacheCell& c : cells_of(policy->expand(std::span(ids).subspan(i, 1), i))) cache.push_back(c);
        std::vector<int64_t> dead = policy->evictions(cache, i + 1);
        for (auto it = dead.rbegin(); it != dead.rend(); ++it) cache.erase(cache.begin() + *it);
        const int64_t seen_by_next = static_cast<int64_t>(cache.size()) + 1;
        const int64_t budget = kv_budget(r, i + 2);
        const auto n_cr = std::count_if(cache.begin(), cache.end(),
                                        [](const CacheCell& c) { return c.kind == CellKind::CompressRight; });
        ASSERT_LE(seen_by_next, std::max<int64_t>(budget, sinks + n_cr + span)) << "after token " << i;
        // Steady state: once the budget has outgrown the sinks and one span (twice over).
        if (static_cast<double>(i + 1) * slack >= 2.0 * static_cast<double>(sinks + span)) {
          ASSERT_LE(seen_by_next, budget) << "after token " << i;
          ASSERT_GE(seen_by_next, budget - (span - 2)) << "after token " << i;
        }
      }
    }
  }
}

// With a window, tokens fed after the span but before its <CR> still see the span (it is not
// closed for them); later tokens see only the <CR>.
TEST(SentinelScheduler, TokensInsideTheWindowStillSeeTheOpenSpan) {
  const MaskedSequence s = layout(scheduled(0.5, 4, 2), 8);
  ASSERT_EQ(notation(s), "a0 b1 c2 d3 e4 f5 CL0 CR3 g6 h7");
  const std::vector<std::string> expected = {
      //  a b c d e f CL CR g h
      "1.........",  // a..d: span 0, open
      "11........",  //
      "111.......",  //
      "1111......",  //
      "11111.....",  // e, f: after the span, before its <CR>: still see it
      "111111....",  //
      "......1...",  // CL
      "1111..11..",  // CR: the span, its CL, itself; not e, f
      "....11.11.",  // g (opens span 1): e, f, CR, itself; not the closed span 0
      "....11.111",  // h
  };
  EXPECT_EQ(rows(s.mask), expected);
}

// expand() depends on the token indices only: any chunking gives the same elements.
TEST(SentinelScheduler, ExpansionDoesNotDependOnChunking) {
  for (const PolicyOptions& o : {scheduled(0.5, 4, 0), scheduled(0.5, 4, 3), scheduled(0.75, 4, 1),
                                 streamed(0.5, 4, 2), streamed(0.6, 3, 0, 2), explicit_spans({Span{0, 3}, Span{3, 7}, Span{12, 19}})}) {
    auto whole = make_policy(o);
    const std::string expected = notation(whole->expand(tokens(20), 0));
    for (int64_t chunk = 1; chunk <= 20; ++chunk) {
      auto policy = make_policy(o);
      std::vector<Element> all;
      const std::vector<int32_t> ids = tokens(20);
      for (int64_t begin = 0; begin < 20; begin += chunk) {
        const int64_t n = std::min<int64_t>(chunk, 20 - begin);
        for (const Element& e : policy->expand(std::span(ids).subspan(begin, n), begin)) all.push_back(e);
      }
      EXPECT_EQ(notation(all), expected) << "chunk " << chunk;
    }
  }
}

TEST(SentinelScheduler, RefusesTokensOutOfOrder) {
  auto policy = make_policy(scheduled(0.5, 4, 0));
  policy->expand(tokens(3), 0);
  try {
    policy->expand(tokens(2), 5);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected ordinary index 3, got 5"), std::string::npos) << e.what();
  }
}

// ---- section 6: eviction ----

// Once a <CR> is fed, its <CL> and the span's tokens leave the cache; the <CR> stays.
TEST(SentinelEviction, DropsTheClosedSpanAndItsClKeepsTheCr) {
  auto policy = make_policy(explicit_spans({Span{1, 3}, Span{5, 7}}));
  std::vector<CacheCell> cache = cells_of(policy->expand(tokens(4), 0));  // a CL b c CR d
  EXPECT_EQ(policy->evictions(cache, 4), (std::vector<int64_t>{1, 2, 3}));
  cache = {cache[0], cache[4], cache[5]};                                   // a CR d
  EXPECT_TRUE(policy->evictions(cache, 4).empty()) << "a span is evicted once";
  for (const CacheCell& c : cells_of(policy->expand(tokens(2), 4))) cache.push_back(c);  // e CL f
  EXPECT_TRUE(policy->evictions(cache, 6).empty()) << "span 1 is still open";
  for (const CacheCell& c : cells_of(policy->expand(tokens(2), 6))) cache.push_back(c);  // g CR h
  // a CR d e CL f g CR h: drop CL, f, g.
  EXPECT_EQ(policy->evictions(cache, 8), (std::vector<int64_t>{4, 5, 6}));
}

TEST(SentinelEviction, ScheduledSpansLeaveOneCrPerSpan) {
  auto policy = make_policy(scheduled(0.5, 4, 0));
  std::vector<CacheCell> cache = cells_of(policy->expand(tokens(14), 0));
  const std::vector<int64_t> dead = policy->evictions(cache, 14);
  // a b c d CL CR e f g h i j CL CR k l m n: spans 0 and 1 closed, span 2 (m, n) still open.
  EXPECT_EQ(dead, (std::vector<int64_t>{0, 1, 2, 3, 4, 8, 9, 10, 11, 12}));
}

// ---- the full-sequence path ----

TEST(MaskedSequence, RefusesAttentionDrivenPolicies) {
  PolicyOptions o;
  o.method = Method::H2O;
  o.ratio = 0.5;
  auto policy = make_policy(o);
  try {
    masked_sequence(*policy, tokens(4));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("h2o"), std::string::npos) << e.what();
  }
}

TEST(MaskedSequence, PlainCausalWithoutCompression) {
  PolicyOptions o;
  auto policy = make_policy(o);
  const MaskedSequence s = masked_sequence(*policy, tokens(4));
  EXPECT_EQ(rows(s.mask), (std::vector<std::string>{"1...", "11..", "111.", "1111"}));
}

// A training block cut from the section 3 layout: positions restart at 0, and a span cut by the
// block boundary keeps what lies inside the block.
TEST(MaskedBlock, BlockStartingInsideASpan) {
  auto policy = make_policy(explicit_spans({Span{2, 5}}));
  const MaskedSequence whole = masked_sequence(*policy, tokens(7));  // a b CL c d e CR f g
  const MaskedSequence block = masked_block(*policy, std::span(whole.elements).subspan(4, 5));  // d e CR f g
  EXPECT_EQ(notation(block), "d0 e1 CR1 f2 g3");
  EXPECT_EQ(rows(block.mask), (std::vector<std::string>{"1....", "11...", "111..", "..11.", "..111"}));
  EXPECT_EQ(block.ordinary_rows, (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(block.elements[3].ordinary_index, 2);
}

TEST(MaskedBlock, BlockEndingInsideASpan) {
  auto policy = make_policy(explicit_spans({Span{2, 5}}));
  const MaskedSequence whole = masked_sequence(*policy, tokens(7));
  const MaskedSequence block = masked_block(*policy, std::span(whole.elements).subspan(0, 5));  // a b CL c d
  EXPECT_EQ(notation(block), "a0 b1 CL1 c2 d3");
  EXPECT_EQ(rows(block.mask), (std::vector<std::string>{"1....", "11...", "..1..", "11.1.", "11.11"}));
}

TEST(MaskedBlock, BlockStartingAtAClTakesPositionZero) {
  auto policy = make_policy(explicit_spans({Span{2, 5}}));
  const MaskedSequence whole = masked_sequence(*policy, tokens(7));
  const MaskedSequence block = masked_block(*policy, std::span(whole.elements).subspan(2, 5));  // CL c d e CR
  EXPECT_EQ(notation(block), "CL0 c0 d1 e2 CR2");
  EXPECT_EQ(rows(block.mask), (std::vector<std::string>{"1....", ".1...", ".11..", ".111.", "11111"}));
}

// A block that is the whole layout is the layout itself, positions and mask alike, including
// scheduled spans whose sentinels are fed after the window (their positions are the span's
// edges, not the id of the token fed before them).
TEST(MaskedBlock, WholeLayoutAsOneBlockIsUnchanged) {
  for (const PolicyOptions& o : {explicit_spans({Span{0, 3}, Span{5, 9}}), scheduled(0.5, 4, 0), scheduled(0.5, 4, 3)}) {
    auto policy = make_policy(o);
    const MaskedSequence whole = masked_sequence(*policy, tokens(20));
    const MaskedSequence block = masked_block(*policy, whole.elements);
    EXPECT_EQ(notation(block), notation(whole)) << "window " << o.window;
    EXPECT_TRUE(at::equal(block.mask, whole.mask)) << "window " << o.window;
    EXPECT_EQ(block.ordinary_rows, whole.ordinary_rows);
  }
}

}  // namespace
}  // namespace sentinel
