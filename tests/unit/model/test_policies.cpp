// The baseline eviction policies of docs/method.md section 7 as plans, without a model: exactly
// which keys each query of a small hand-checked case sees, exactly which cells survive eviction,
// that eviction keeps the cache within kv_budget(), and PolicyOptions::validate()'s refusals.
// The sentinel policy's layout and mask are in test_sentinel_mask.cpp; the model-level
// equivalence of all of them in test_compression_equivalence.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/policies/h2o.h"
#include "sentinel/policies/policy.h"
#include "sentinel/policies/rules.h"

namespace sentinel {
namespace {

using Positions = std::vector<int64_t>;

std::vector<CacheCell> ordinary_cells(int64_t n) {
  std::vector<CacheCell> cells(n);
  for (int64_t i = 0; i < n; ++i) cells[i] = CacheCell{i, CellKind::Ordinary, -1};
  return cells;
}

// Positions each of n tokens sees (itself included) when all n are fed in one pass: row j of the
// full-sequence mask. An undefined mask means plain causal attention.
std::vector<Positions> visible_rows(const CompressionPolicy& policy, int64_t n) {
  const std::vector<CacheCell> cells = ordinary_cells(n);
  const at::Tensor mask = policy.mask(cells, n);  // [1, n, n] bool or undefined
  std::vector<Positions> rows(n);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < n; ++k)
      if (k <= j && (!mask.defined() || mask[0][j][k].item<bool>())) rows[j].push_back(k);
  return rows;
}

PolicyOptions options(Method method, double ratio) {
  PolicyOptions o;
  o.method = method;
  o.ratio = ratio;
  return o;
}

// Decodes n tokens through the plan alone, `chunk` at a time, the way Session does: expand,
// commit the new cells, evict. Returns the cached positions after each chunk, and fails the test
// if an eviction list is out of range or names a cell twice.
std::vector<Positions> decode_plan(CompressionPolicy& policy, int64_t n, int64_t chunk = 1) {
  std::vector<CacheCell> cache;
  std::vector<Positions> kept;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t count = std::min(chunk, n - begin);
    const std::vector<int32_t> tokens(count, 7);
    for (const Element& e : policy.expand(tokens, begin)) cache.push_back(e.cell);
    const std::vector<int64_t> dead = policy.evictions(cache, begin + count);
    std::vector<bool> drop(cache.size(), false);
    for (int64_t i : dead) {
      EXPECT_TRUE(i >= 0 && i < static_cast<int64_t>(cache.size())) << "eviction index " << i;
      if (i < 0 || i >= static_cast<int64_t>(cache.size())) continue;
      EXPECT_FALSE(drop[i]) << "cell " << i << " listed twice";
      drop[i] = true;
    }
    std::vector<CacheCell> rest;
    for (size_t i = 0; i < cache.size(); ++i)
      if (!drop[i]) rest.push_back(cache[i]);
    cache = std::move(rest);
    Positions positions;
    for (const CacheCell& c : cache) positions.push_back(c.position);
    kept.push_back(positions);
  }
  return kept;
}

// ---- kv_budget ----

TEST(KvBudget, IsTheCeilingOfTheKeptFractionAndNeverZero) {
  EXPECT_EQ(kv_budget(0.5, 10), 5);
  EXPECT_EQ(kv_budget(0.5, 11), 6);    // ceil(5.5)
  EXPECT_EQ(kv_budget(0.75, 10), 3);   // ceil(2.5)
  EXPECT_EQ(kv_budget(0.0, 10), 10);
  EXPECT_EQ(kv_budget(0.9, 1), 1);     // ceil(0.1)
  EXPECT_EQ(kv_budget(0.5, 0), 1);     // never below one entry
  EXPECT_EQ(kv_budget(0.7, 10), 3);    // (1 - 0.7) * 10 is 3.0000000000000004 in double: still 3
}

// ---- none ----

TEST(NoCompression, PlainCausalMaskAndNoEvictions) {
  auto policy = make_policy(options(Method::None, 0.0));
  EXPECT_EQ(policy->method(), Method::None);
  EXPECT_FALSE(policy->mask(ordinary_cells(10), 10).defined());
  const std::vector<Positions> kept = decode_plan(*policy, 10);
  EXPECT_EQ(kept.back(), (Positions{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// ---- local ----

// Paper: query j attends to floor(j * r) <= k <= j. At r = 0.5 the first visible key is floor(j / 2).
TEST(LocalPolicy, RelativeWindowDropsTheOldestFractionOfEachPrefix) {
  auto policy = make_policy(options(Method::Local, 0.5));
  const std::vector<Positions> rows = visible_rows(*policy, 10);
  EXPECT_EQ(rows[0], (Positions{0}));
  EXPECT_EQ(rows[1], (Positions{0, 1}));
  EXPECT_EQ(rows[2], (Positions{1, 2}));
  EXPECT_EQ(rows[3], (Positions{1, 2, 3}));
  EXPECT_EQ(rows[4], (Positions{2, 3, 4}));
  EXPECT_EQ(rows[7], (Positions{3, 4, 5, 6, 7}));
  EXPECT_EQ(rows[9], (Positions{4, 5, 6, 7, 8, 9}));
}

TEST(LocalPolicy, RelativeWindowKeepsTheNewestBudgetAfterDecoding) {
  auto half = make_policy(options(Method::Local, 0.5));
  EXPECT_EQ(decode_plan(*half, 10).back(), (Positions{5, 6, 7, 8, 9}));  // next query 10 sees k >= 5
  auto three_quarters = make_policy(options(Method::Local, 0.75));
  EXPECT_EQ(decode_plan(*three_quarters, 10).back(), (Positions{7, 8, 9}));  // floor(7.5) = 7
}

TEST(LocalPolicy, FixedWindowSeesTheLastWindowTokensWhateverTheRatio) {
  PolicyOptions o = options(Method::Local, 0.5);
  o.window = 3;  // itself and the two before it; the ratio is ignored
  auto policy = make_policy(o);
  const std::vector<Positions> rows = visible_rows(*policy, 10);
  EXPECT_EQ(rows[0], (Positions{0}));
  EXPECT_EQ(rows[1], (Positions{0, 1}));
  EXPECT_EQ(rows[2], (Positions{0, 1, 2}));
  EXPECT_EQ(rows[3], (Positions{1, 2, 3}));
  EXPECT_EQ(rows[9], (Positions{7, 8, 9}));
  // The next query (10) sees 8, 9 and itself: the cache holds window - 1 cells.
  EXPECT_EQ(decode_plan(*policy, 10).back(), (Positions{8, 9}));
}

// ---- scattered ----

// Pinned from an independent splitmix64 in Python (the same hash as ScatteredPolicy::kept): with
// seed 42 and r = 0.5, of positions 0..9 these are kept. A change here changes every scattered result.
TEST(ScatteredPolicy, SeededKeepSetIsPinned) {
  PolicyOptions o = options(Method::Scattered, 0.5);
  o.seed = 42;
  const ScatteredPolicy policy(o.ratio, o.seed);
  Positions kept;
  for (int64_t k = 0; k < 10; ++k)
    if (policy.kept(k)) kept.push_back(k);
  EXPECT_EQ(kept, (Positions{0, 5, 7, 9}));
  auto made = make_policy(o);
  EXPECT_EQ(decode_plan(*made, 10).back(), (Positions{0, 5, 7, 9}));
}

// Decided once per token: every later query sees the same kept keys, and a query always sees
// itself, kept or not.
TEST(ScatteredPolicy, EveryLaterQuerySeesTheSameKeepSetAndItself) {
  const ScatteredPolicy policy(0.5, 42);
  const std::vector<Positions> rows = visible_rows(policy, 10);
  EXPECT_EQ(rows[1], (Positions{0, 1}));
  EXPECT_EQ(rows[4], (Positions{0, 4}));  // 4 is dropped for others but sees itself
  EXPECT_EQ(rows[6], (Positions{0, 5, 6}));
  EXPECT_EQ(rows[9], (Positions{0, 5, 7, 9}));
  for (int64_t j = 1; j < 10; ++j)
    for (int64_t k = 0; k < j; ++k) {
      const bool seen = std::count(rows[j].begin(), rows[j].end(), k) > 0;
      EXPECT_EQ(seen, policy.kept(k)) << "query " << j << ", key " << k;
    }
}

TEST(ScatteredPolicy, KeepFractionIsOneMinusRatioAndDependsOnTheSeed) {
  const int64_t n = 20000;
  for (double ratio : {0.25, 0.5, 0.75}) {
    const ScatteredPolicy policy(ratio, 3);
    int64_t kept = 0;
    for (int64_t k = 0; k < n; ++k) kept += policy.kept(k) ? 1 : 0;
    // Binomial standard deviation at n = 20000 is at most 0.0035: 0.015 is over 4 sigma.
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - ratio, 0.015) << "ratio " << ratio;
  }
  const ScatteredPolicy a(0.5, 1), b(0.5, 2), a_again(0.5, 1);
  int64_t differ = 0;
  for (int64_t k = 0; k < 200; ++k) {
    differ += a.kept(k) != b.kept(k) ? 1 : 0;
    EXPECT_EQ(a.kept(k), a_again.kept(k)) << "position " << k;
  }
  EXPECT_GT(differ, 50);  // independent seeds disagree on about half the positions
}

// ---- strided ----

// r = 0.5: stride s = 1.5 / 0.5 = 3, recent window (kv_budget(r, j + 1) + 1) / 2.
TEST(StridedPolicy, RecentWindowPlusEveryStrideThToken) {
  auto policy = make_policy(options(Method::Strided, 0.5));
  EXPECT_DOUBLE_EQ(StridedPolicy(0.5).stride(), 3.0);
  const std::vector<Positions> rows = visible_rows(*policy, 10);
  EXPECT_EQ(rows[2], (Positions{0, 2}));              // recent 1; 0 is on the stride
  EXPECT_EQ(rows[5], (Positions{0, 3, 4, 5}));        // recent 2
  EXPECT_EQ(rows[9], (Positions{0, 3, 6, 7, 8, 9}));  // recent 3
  EXPECT_EQ(decode_plan(*policy, 10).back(), (Positions{0, 3, 6, 8, 9}));
  EXPECT_EQ(decode_plan(*policy, 40).back(),
            (Positions{0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}));
}

// A fractional stride keeps k = ceil(m * s): r = 0.25 gives s = 5/3 and older tokens
// 0, 2, 4, 5, 7, 9, 10, ... An integer stride of round(5/3) = 2 would keep 1/2 of the older
// tokens instead of 3/5 and undercut the budget; at r < 1/3 it would round to 1 and keep all.
TEST(StridedPolicy, FractionalStrideKeepsCeilOfMultiples) {
  const StridedPolicy quarter(0.25);
  EXPECT_NEAR(quarter.stride(), 5.0 / 3.0, 1e-12);
  Positions on;
  for (int64_t k = 0; k <= 12; ++k)
    if (quarter.on_stride(k)) on.push_back(k);
  EXPECT_EQ(on, (Positions{0, 2, 4, 5, 7, 9, 10, 12}));
  EXPECT_DOUBLE_EQ(StridedPolicy(0.75).stride(), 7.0);
  EXPECT_DOUBLE_EQ(StridedPolicy(0.9).stride(), 19.0);  // 1.9 / 0.1 is 19.000000000000004: snapped
  EXPECT_TRUE(StridedPolicy(0.9).on_stride(19));
  EXPECT_FALSE(StridedPolicy(0.9).on_stride(20));
}

// ---- streaming ----

TEST(StreamingPolicy, SinksPlusRecentWindow) {
  PolicyOptions o = options(Method::Streaming, 0.5);
  o.sinks = 2;
  auto policy = make_policy(o);
  const std::vector<Positions> rows = visible_rows(*policy, 10);
  EXPECT_EQ(rows[3], (Positions{0, 1, 3}));        // budget 2 is spent by the sinks: recent window of 1
  EXPECT_EQ(rows[6], (Positions{0, 1, 5, 6}));     // kv_budget(0.5, 7) = 4: 2 sinks + 2 recent
  EXPECT_EQ(rows[9], (Positions{0, 1, 7, 8, 9}));  // kv_budget(0.5, 10) = 5
  EXPECT_EQ(decode_plan(*policy, 10).back(), (Positions{0, 1, 7, 8, 9}));
  Positions expected = {0, 1};
  for (int64_t k = 22; k < 40; ++k) expected.push_back(k);
  EXPECT_EQ(decode_plan(*policy, 40).back(), expected);
}

// ---- properties shared by the rule-based baselines ----
// Each property loops over every baseline and ratio in one test (one process under ctest, which
// runs every test case as its own process); the failure names the case.

struct RuleCase {
  std::string name;
  PolicyOptions options;
};

std::vector<RuleCase> rule_cases() {
  std::vector<RuleCase> cases;
  for (double r : {0.2, 0.25, 0.4, 0.5, 0.75, 0.9}) {
    const std::string tag = std::to_string(static_cast<int>(r * 100));
    cases.push_back({"local_relative_" + tag, options(Method::Local, r)});
    cases.push_back({"scattered_" + tag, options(Method::Scattered, r)});
    cases.push_back({"strided_" + tag, options(Method::Strided, r)});
    PolicyOptions streaming = options(Method::Streaming, r);
    streaming.sinks = 4;
    cases.push_back({"streaming_" + tag, streaming});
  }
  PolicyOptions fixed = options(Method::Local, 0.0);
  fixed.window = 6;
  cases.push_back({"local_fixed_6", fixed});
  return cases;
}

// Eviction must drop exactly what the next query can no longer see: a visible cell dropped would
// change the logits, an invisible one kept would waste the budget. Checked against the full mask.
TEST(RuleBaselines, EvictionKeepsExactlyWhatTheNextQuerySees) {
  const int64_t n = 60;
  for (const RuleCase& c : rule_cases()) {
    SCOPED_TRACE(c.name);
    auto planner = make_policy(c.options);
    const std::vector<Positions> kept = decode_plan(*planner, n);
    auto full = make_policy(c.options);
    const std::vector<Positions> rows = visible_rows(*full, n + 1);
    for (int64_t t = 1; t <= n; ++t) {
      Positions expected = rows[t];  // query t (the next one) sees these, itself last
      expected.pop_back();
      ASSERT_EQ(kept[t - 1], expected) << "after " << t << " tokens";
    }
  }
}

// A key hidden from query j stays hidden from every later query (what makes eviction exact).
TEST(RuleBaselines, VisibilityIsMonotone) {
  for (const RuleCase& c : rule_cases()) {
    SCOPED_TRACE(c.name);
    auto policy = make_policy(c.options);
    const std::vector<Positions> rows = visible_rows(*policy, 60);
    for (int64_t j = 1; j < 60; ++j) {
      const std::set<int64_t> before(rows[j - 1].begin(), rows[j - 1].end());
      for (int64_t k : rows[j])
        if (k < j - 1) ASSERT_TRUE(before.count(k) > 0) << "key " << k << " hidden from query " << j - 1 << " but seen by " << j;
    }
  }
}

// The plan depends on the token indices only, never on how the stream is chunked.
TEST(RuleBaselines, ChunkingDoesNotChangeWhatIsKept) {
  const int64_t n = 37;
  for (const RuleCase& c : rule_cases()) {
    SCOPED_TRACE(c.name);
    auto one = make_policy(c.options);
    const Positions expected = decode_plan(*one, n).back();
    for (int64_t chunk : {2, 5, 16, 37}) {
      auto policy = make_policy(c.options);
      EXPECT_EQ(decode_plan(*policy, n, chunk).back(), expected) << "chunk " << chunk;
    }
  }
}

// After n tokens the cache holds at most kv_budget(ratio, n) cells (the next query sees those
// plus itself). Streaming keeps its sinks even when they alone exceed the budget (early tokens at
// high ratios); scattered keeps 1 - r on average only; the fixed window holds window - 1.
TEST(RuleBaselines, CacheStaysWithinTheBudget) {
  for (const RuleCase& c : rule_cases()) {
    SCOPED_TRACE(c.name);
    const PolicyOptions& o = c.options;
    auto policy = make_policy(o);
    const std::vector<Positions> kept = decode_plan(*policy, 200);
    const bool fixed_window = o.method == Method::Local && o.window > 0;
    if (o.method == Method::Scattered) {
      const double fraction = static_cast<double>(kept.back().size()) / 200.0;
      EXPECT_NEAR(fraction, 1.0 - o.ratio, 0.12);  // 200 Bernoulli draws: sd <= 0.035
      continue;
    }
    for (int64_t n = 1; n <= 200; ++n) {
      int64_t limit = fixed_window ? o.window - 1 : kv_budget(o.ratio, n);
      if (o.method == Method::Streaming) limit = std::max(limit, std::min(n, o.sinks));
      ASSERT_LE(static_cast<int64_t>(kept[n - 1].size()), limit) << "after " << n << " tokens";
    }
    // At steady state the budget is spent, not undercut: a baseline keeping much less than its
    // budget would be compared unfairly against sentinel compression (method.md section 7).
    if (!fixed_window) EXPECT_GE(static_cast<int64_t>(kept.back().size()), kv_budget(o.ratio, 200) - 1);
  }
}

// ---- H2O ----

at::Tensor masses(std::vector<float> m) { return at::tensor(m, at::kFloat); }

// r = 0.5 and 10 cached tokens: the next query (10) may see kv_budget(0.5, 11) = 6 entries,
// itself included, so 5 cells stay: the 2 most recent and the 3 heaviest older ones (the heavy
// half takes the odd cell).
TEST(H2OPolicy, KeepsTheRecentHalfAndTheHeaviestOlderCells) {
  H2OPolicy policy(0.5);
  const std::vector<CacheCell> cells = ordinary_cells(10);
  policy.observe_attention(cells, masses({0.1f, 0.2f, 5.0f, 0.3f, 0.1f, 3.0f, 0.4f, 0.0f, 9.0f, 0.0f}));
  EXPECT_EQ(policy.evictions(cells, 10), (std::vector<int64_t>{0, 1, 3, 4, 7}));  // keeps 2, 5, 6, 8, 9
  EXPECT_FALSE(policy.mask(cells, 1).defined());  // no mask: eviction is the whole policy
}

// Scores follow the token (its position), not the cell index, across compaction.
TEST(H2OPolicy, ScoresAccumulatePerTokenAcrossEvictions) {
  H2OPolicy policy(0.5);
  policy.observe_attention(ordinary_cells(10), masses({0, 0, 5, 0, 0, 3, 0, 0, 0, 0}));
  std::vector<CacheCell> cells;
  for (int64_t p : {2, 5, 7, 8, 9, 10}) cells.push_back(CacheCell{p, CellKind::Ordinary, -1});
  policy.observe_attention(cells, masses({0.5f, 1.0f, 10.0f, 0, 0, 0}));
  EXPECT_DOUBLE_EQ(policy.score(2), 5.5);
  EXPECT_DOUBLE_EQ(policy.score(5), 4.0);
  EXPECT_DOUBLE_EQ(policy.score(7), 10.0);
  EXPECT_DOUBLE_EQ(policy.score(99), 0.0);
  // Next query 11: kv_budget(0.5, 12) - 1 = 5 cells: recent 9, 10; heavy 7 (10), 2 (5.5), 5 (4).
  EXPECT_EQ(policy.evictions(cells, 11), (std::vector<int64_t>{3}));  // cell 3 holds position 8
}

// Without attention seen, every older cell scores 0: the stable order keeps the oldest (0, 1, 2).
TEST(H2OPolicy, TiesKeepTheOlderToken) {
  H2OPolicy policy(0.5);
  EXPECT_EQ(policy.evictions(ordinary_cells(10), 10), (std::vector<int64_t>{3, 4, 5, 6, 7}));
}

TEST(H2OPolicy, EvictsOnlyPastTheBudget) {
  // r = 0.25: query 1 may see kv_budget(0.25, 2) = 2 entries, cell 0 and itself.
  EXPECT_TRUE(H2OPolicy(0.25).evictions(ordinary_cells(1), 1).empty());
  // r = 0.5: query 1 may see kv_budget(0.5, 2) = 1 entry, itself only; the cache keeps one cell
  // anyway, so the first token (the attention sink) is not evicted at start-up.
  EXPECT_TRUE(H2OPolicy(0.5).evictions(ordinary_cells(1), 1).empty());
}

// Read one token per pass at r = 0.5, the first token collects the most attention (every query
// sees it) and must never leave: H2O evicting it at the first pass scored 27.7 against 22.4 on a
// real book. Capacity 1 after two tokens goes to the heavy half, i.e. to it.
TEST(H2OPolicy, TheSinkSurvivesStartUpOneTokenPerPass) {
  H2OPolicy policy(0.5);
  std::vector<CacheCell> cache;
  for (int64_t t = 0; t < 40; ++t) {
    cache.push_back(CacheCell{t, CellKind::Ordinary, -1});
    std::vector<float> m(cache.size(), 0.2f);
    m[0] = 1.0f;  // every query leans on the first token, as real models do
    policy.observe_attention(cache, masses(m));
    const std::vector<int64_t> dead = policy.evictions(cache, t + 1);
    for (auto it = dead.rbegin(); it != dead.rend(); ++it) cache.erase(cache.begin() + *it);
    ASSERT_FALSE(cache.empty()) << "after " << t + 1 << " tokens";
    ASSERT_EQ(cache.front().position, 0) << "the first token was evicted after " << t + 1 << " tokens";
  }
}

TEST(H2OPolicy, DecodingNeverHoldsMoreThanTheBudget) {
  for (double ratio : {0.25, 0.5, 0.9}) {
    H2OPolicy policy(ratio);
    std::vector<CacheCell> cache;
    for (int64_t t = 0; t < 80; ++t) {
      cache.push_back(CacheCell{t, CellKind::Ordinary, -1});
      // Attention that favours every third token, so heavy hitters differ from recent ones.
      std::vector<float> m(cache.size());
      for (size_t i = 0; i < cache.size(); ++i) m[i] = cache[i].position % 3 == 0 ? 1.0f : 0.1f;
      policy.observe_attention(cache, masses(m));
      const std::vector<int64_t> dead = policy.evictions(cache, t + 1);
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) cache.erase(cache.begin() + *it);
      const auto n_cells = static_cast<int64_t>(cache.size());
      ASSERT_LE(n_cells, kv_budget(ratio, t + 1)) << "ratio " << ratio << " after " << t + 1 << " tokens";
      // ... and spends it: the next query sees kv_budget(ratio, t + 2) entries, itself included,
      // except that the cache never empties.
      ASSERT_EQ(n_cells, std::min(t + 1, std::max<int64_t>(1, kv_budget(ratio, t + 2) - 1)))
          << "ratio " << ratio << " after " << t + 1;
    }
  }
}

TEST(H2OPolicy, RejectsAttentionMassOfTheWrongLength) {
  H2OPolicy policy(0.5);
  try {
    policy.observe_attention(ordinary_cells(4), masses({1, 2, 3}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4]"), std::string::npos) << e.what();
  }
}

// ---- names and the factory ----

TEST(PolicyFactory, EveryMethodNameParsesAndBuildsItsPolicy) {
  for (const std::string& name : method_names()) {
    const Method m = parse_method(name);
    EXPECT_EQ(method_name(m), name);
    PolicyOptions o = options(m, 0.5);
    o.span = 4;
    o.cl_id = 320;
    o.cr_id = 321;
    if (m == Method::SepLLM) o.separators = {13, 30};
    EXPECT_EQ(make_policy(o)->method(), m) << name;
  }
  try {
    parse_method("sentinal");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'sentinal'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("streaming"), std::string::npos) << "should list accepted names: " << e.what();
  }
}

// ---- PolicyOptions::validate ----

// The message of the Error that validate() throws for `o`, or "" if it accepts it.
std::string validation_error(const PolicyOptions& o) {
  try {
    o.validate();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

PolicyOptions sentinel_options() {
  PolicyOptions o = options(Method::Sentinel, 0.5);
  o.span = 4;
  o.cl_id = 320;
  o.cr_id = 321;
  return o;
}

#define EXPECT_ERROR_MENTIONS(options_value, ...)                                             \
  do {                                                                                       \
    const std::string message = validation_error(options_value);                              \
    EXPECT_FALSE(message.empty()) << "validate() accepted it";                                \
    for (const char* part : {__VA_ARGS__})                                                    \
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message; \
  } while (0)

TEST(PolicyOptions, RatioMustBeInZeroToOne) {
  EXPECT_ERROR_MENTIONS(options(Method::Local, 1.0), "[0, 0.999]", "got 1");
  EXPECT_ERROR_MENTIONS(options(Method::Local, 0.9995), "got 0.9995");
  EXPECT_ERROR_MENTIONS(options(Method::Local, -0.25), "got -0.25");
  EXPECT_ERROR_MENTIONS(options(Method::None, 1.5), "got 1.5");
  EXPECT_EQ(validation_error(options(Method::Local, 0.0)), "");
  EXPECT_EQ(validation_error(options(Method::Local, 0.99)), "");
  EXPECT_THROW(make_policy(options(Method::Streaming, 1.0)), Error);  // the factory validates too
}

TEST(PolicyOptions, WindowAndSinksMustNotBeNegative) {
  PolicyOptions window = options(Method::Local, 0.5);
  window.window = -3;
  EXPECT_ERROR_MENTIONS(window, "window", "-3");
  PolicyOptions sinks = options(Method::Streaming, 0.5);
  sinks.sinks = -2;
  EXPECT_ERROR_MENTIONS(sinks, "sinks", "-2");
}

TEST(PolicyOptions, SentinelNeedsDistinctSentinelIds) {
  PolicyOptions missing = sentinel_options();
  missing.cl_id = -1;
  EXPECT_ERROR_MENTIONS(missing, "<CL>/<CR>");
  PolicyOptions same = sentinel_options();
  same.cr_id = same.cl_id;
  EXPECT_ERROR_MENTIONS(same, "<CL>/<CR>");
  EXPECT_EQ(validation_error(sentinel_options()), "");
}

TEST(PolicyOptions, ScheduledSpansNeedTwoTokensAndARatioTheyCanReach) {
  PolicyOptions one = sentinel_options();
  one.span = 1;
  EXPECT_ERROR_MENTIONS(one, "span", "got 1");
  // Spans of 4 leave one <CR> per 4 tokens: at most 3/4 of the context can go.
  PolicyOptions too_high = sentinel_options();
  too_high.ratio = 0.8;
  EXPECT_ERROR_MENTIONS(too_high, "0.8", "4", "0.75");
  PolicyOptions at_limit = sentinel_options();
  at_limit.ratio = 0.75;
  EXPECT_EQ(validation_error(at_limit), "");
  PolicyOptions thirds = sentinel_options();
  thirds.span = 3;
  thirds.ratio = 2.0 / 3.0;  // exactly (L-1)/L in floating point
  EXPECT_EQ(validation_error(thirds), "");
}

TEST(PolicyOptions, ExplicitSpansMustBeNonEmptySortedAndDisjoint) {
  PolicyOptions empty = sentinel_options();
  empty.spans = {Span{3, 3}};
  EXPECT_ERROR_MENTIONS(empty, "span 0", "[3, 3)");
  PolicyOptions negative = sentinel_options();
  negative.spans = {Span{-1, 2}};
  EXPECT_ERROR_MENTIONS(negative, "[-1, 2)");
  PolicyOptions overlap = sentinel_options();
  overlap.spans = {Span{0, 5}, Span{4, 6}};
  EXPECT_ERROR_MENTIONS(overlap, "span 1 [4, 6)", "ends at 5");
  PolicyOptions unsorted = sentinel_options();
  unsorted.spans = {Span{10, 12}, Span{2, 4}};
  EXPECT_ERROR_MENTIONS(unsorted, "span 1 [2, 4)");
  // Explicit spans replace the scheduler: its span length and ratio limit do not apply, and
  // adjacent spans are allowed.
  PolicyOptions explicit_spans = sentinel_options();
  explicit_spans.span = 1;
  explicit_spans.ratio = 0.95;
  explicit_spans.spans = {Span{0, 4}, Span{4, 5}};
  EXPECT_EQ(validation_error(explicit_spans), "");
}

TEST(PolicyOptions, ExplicitSpansOnlyForSentinel) {
  PolicyOptions local = options(Method::Local, 0.5);
  local.spans = {Span{0, 4}};
  EXPECT_ERROR_MENTIONS(local, "sentinel");
}

}  // namespace
}  // namespace sentinel
