// Session: chunked incremental forward passes over a KV cache, with the policy's plan applied
// after every pass (commit the new cells, then evict what no later query can see).
#include "sentinel/engine/session.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/profile.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel {

Session::Session(DecoderModel model, const KvCacheOptions& cache_options, const PolicyOptions& policy)
    : model_(std::move(model)), cache_(model_->config().kv_shape(), cache_options), policy_options_(policy),
      policy_(fresh_policy()) {}

std::unique_ptr<CompressionPolicy> Session::fresh_policy() const {
  std::unique_ptr<CompressionPolicy> policy = make_policy(policy_options_);
  policy->attach(&cache_);
  return policy;
}

void Session::reset() {
  cache_.clear();
  policy_ = fresh_policy();
  stats_ = {};
  next_position_ = 0;
  last_prediction_ = at::Tensor();
}

void Session::resume(std::span<const int32_t> ordinary_tokens, const CompressionStats& stats) {
  check(!reads_attention(policy_options_), "a ", method_name(policy_options_.method),
        " session that evicts by attention (h2o, tova, sentinel --layout heavy) cannot be resumed: its plan depends "
        "on attention scores that are not saved; sentinel --layout stream, strided, streaming and sepllm resume");
  policy_ = fresh_policy();
  const int64_t n = static_cast<int64_t>(ordinary_tokens.size());
  if (n > 0) {
    // Replay the plan (it depends on token indices alone): every cell it feeds over the n tokens,
    // less those no query from n on may see, must be exactly the cells restored, or the state was
    // saved under other options (or altered) and would compute something else.
    std::vector<CacheCell> planned;
    for (const Element& e : policy_->expand(ordinary_tokens, 0)) planned.push_back(e.cell);
    std::vector<bool> dead(planned.size(), false);
    for (int64_t i : policy_->evictions(planned, n)) dead[static_cast<size_t>(i)] = true;
    std::vector<CacheCell> kept;
    for (size_t i = 0; i < planned.size(); ++i)
      if (!dead[i]) kept.push_back(planned[i]);
    const std::vector<CacheCell>& held = cache_.cells();
    const bool same = kept.size() == held.size() &&
                      std::equal(kept.begin(), kept.end(), held.begin(), [](const CacheCell& a, const CacheCell& b) {
                        return a.position == b.position && a.kind == b.kind && a.span == b.span;
                      });
    check(same, "the resumed cache holds ", held.size(), " cells where its ", method_name(policy_options_.method),
          " plan keeps ", kept.size(), " after ", n,
          " tokens: the state was saved under other compression options, or altered");
  }
  next_position_ = n;
  stats_ = stats;
  stats_.ordinary_seen = n;
  stats_.cells_in_use = cache_.size();
}

at::Tensor Session::step(std::span<const int32_t> tokens, std::span<const CacheCell> cells, const at::Tensor& mask) {
  check(tokens.size() == cells.size(), "step: ", tokens.size(), " tokens but ", cells.size(), " cells");
  const auto device = model_->embed_tokens->weight.device();
  const int64_t T = static_cast<int64_t>(tokens.size());
  at::Tensor ids = at::empty({T}, at::kLong), positions = at::empty({T}, at::kLong);
  int64_t* id_data = ids.data_ptr<int64_t>();
  int64_t* position_data = positions.data_ptr<int64_t>();
  for (int64_t i = 0; i < T; ++i) {
    id_data[i] = tokens[i];
    position_data[i] = cells[i].position;
  }
  const CachedInput input{ids.to(device), positions.to(device), mask.defined() ? mask.to(device) : mask, &cache_};
  at::Tensor hidden = model_->forward_cached(std::span(&input, 1))[0].hidden;  // [T, n_embd]
  cache_.commit(cells);
  return hidden;
}

Session::Chunk Session::plan(std::span<const int32_t> tokens) {
  const profile::Scope scope(profile::Phase::Plan);
  Chunk chunk;
  chunk.elements = policy_->expand(tokens, next_position_);
  chunk.n_ordinary = static_cast<int64_t>(tokens.size());
  const int64_t T = static_cast<int64_t>(chunk.elements.size());
  std::vector<CacheCell> cells(cache_.cells());  // cached cells, then the new ones
  cells.reserve(cache_.size() + T);
  at::Tensor ids = at::empty({T}, at::kLong), positions = at::empty({T}, at::kLong);
  int64_t* id_data = ids.data_ptr<int64_t>();
  int64_t* position_data = positions.data_ptr<int64_t>();
  for (int64_t i = 0; i < T; ++i) {
    const Element& e = chunk.elements[i];
    id_data[i] = e.id;
    position_data[i] = e.cell.position;
    cells.push_back(e.cell);
  }
  const at::Tensor mask = policy_->mask(cells, T);  // [1, T, S] or undefined
  const auto device = model_->embed_tokens->weight.device();
  chunk.input = {ids.to(device), positions.to(device), mask.defined() ? mask.to(device) : mask, &cache_,
                 policy_->wants_attention()};
  if (policy_->wants_attention() && chunk.n_ordinary < T) {
    // Heavy hitters are what the text attends to: a <CR> reading the span it summarises (or a
    // <CL>) would crown that span's tokens just as the summary makes them redundant.
    at::Tensor ordinary = at::empty({T}, at::kBool);
    bool* is_ordinary = ordinary.data_ptr<bool>();
    for (int64_t i = 0; i < T; ++i) is_ordinary[i] = chunk.elements[i].ordinary_index >= 0;
    chunk.input.mass_queries = ordinary.to(device);
  }
  return chunk;
}

Session::Completed Session::complete(const Chunk& chunk, const CachedOutput& out) {
  std::vector<CacheCell> new_cells;
  std::vector<int64_t> ordinary_rows;  // rows of the ordinary tokens: sentinels produce no logits (method.md section 2)
  new_cells.reserve(chunk.elements.size());
  for (size_t i = 0; i < chunk.elements.size(); ++i) {
    const Element& e = chunk.elements[i];
    new_cells.push_back(e.cell);
    if (e.ordinary_index >= 0)
      ordinary_rows.push_back(static_cast<int64_t>(i));
    else
      ++stats_.sentinels_fed;
  }
  {
    const profile::Scope scope(profile::Phase::Cache);
    cache_.commit(new_cells);
  }
  stats_.peak_cells = std::max(stats_.peak_cells, cache_.size());
  stats_.peak_bytes = std::max(stats_.peak_bytes, cache_.bytes_in_use());
  if (policy_->wants_attention()) {
    const profile::Scope scope(profile::Phase::AttentionBookkeeping);
    policy_->observe_attention(cache_.cells(), out.attention_mass);
  }
  Completed done;
  done.hidden = ordinary_rows.size() == chunk.elements.size()
                    ? out.hidden
                    : out.hidden.index_select(0, at::tensor(ordinary_rows, at::kLong).to(out.hidden.device()));
  if (policy_->wants_surprisal() && chunk.n_ordinary > 0) {
    // The policy ranks by what the model expected: score the chunk's tokens before evicting.
    done.logits = model_->logits(done.hidden);  // [n_ordinary, n_vocab]
    const profile::Scope scope(profile::Phase::Surprisal);
    std::vector<int32_t> ids;
    for (int64_t row : ordinary_rows) ids.push_back(chunk.elements[static_cast<size_t>(row)].id);
    observe_surprisal(done.logits, ids, chunk.elements[static_cast<size_t>(ordinary_rows[0])].ordinary_index);
  }

  next_position_ += chunk.n_ordinary;
  stats_.ordinary_seen = next_position_;
  std::vector<int64_t> dead;
  {
    const profile::Scope scope(profile::Phase::Evictions);
    dead = policy_->evictions(cache_.cells(), next_position_);
  }
  const profile::Scope cache_scope(profile::Phase::Cache);
  if (record_ != nullptr) {
    const at::Tensor& mask = chunk.input.mask;
    record_->push_back({chunk.elements, mask.defined() ? mask.to(at::kCPU) : mask, dead});
  }
  cache_.evict(dead);
  cache_.release_window(policy_->lowest_query_position(next_position_));
  stats_.cells_evicted += static_cast<int64_t>(dead.size());
  stats_.cells_in_use = cache_.size();
  return done;
}

namespace {

// -log softmax(row)[id] over one row of logits, in float32.
float token_nll(const float* row, int64_t n_vocab, int32_t id) {
  thread_local std::vector<float> shifted;
  shifted.assign(row, row + n_vocab);
  const float max = *std::max_element(row, row + n_vocab);
  return max + std::log(kernels::kernels().exp_shift_sum(shifted.data(), n_vocab, max)) - row[id];
}

}  // namespace

void Session::observe_surprisal(const at::Tensor& logits_in, std::span<const int32_t> ids, int64_t first) {
  // Row i of `logits` predicts ids[i + 1]; the previous chunk's last row predicts ids[0]. Plain
  // loops on the CPU: torch's reductions over a vocabulary row wake its OpenMP team, whose threads
  // then spin on the cores the next step's kernels need (the heavy layout's matrix products took
  // 7.2 ms a step instead of 5.6, `sentinel bench --profile`, 8,192 / 0.75, 2 threads).
  const at::Tensor logits = logits_in.to(at::kCPU, at::kFloat).contiguous();  // [n, n_vocab]
  const int64_t n = logits.size(0), n_vocab = logits.size(1);
  const float* rows = logits.data_ptr<float>();
  std::vector<float> nll;  // [scored tokens]
  nll.reserve(static_cast<size_t>(n));
  int64_t scored_from = first + 1;
  if (last_prediction_.defined()) {
    nll.push_back(token_nll(last_prediction_.data_ptr<float>(), n_vocab, ids[0]));
    scored_from = first;
  }
  for (int64_t i = 0; i + 1 < n; ++i) nll.push_back(token_nll(rows + i * n_vocab, n_vocab, ids[i + 1]));
  if (!nll.empty()) policy_->observe_surprisal(scored_from, at::tensor(nll));
  last_prediction_ = logits[n - 1];  // [n_vocab], predicts the next chunk's first token
}

at::Tensor Session::append(std::span<const int32_t> tokens, Logits which, int64_t chunk) {
  Session* self = this;
  return append_batch(std::span(&self, 1), std::span(&tokens, 1), which, chunk)[0];
}

std::vector<at::Tensor> append_batch(std::span<Session* const> sessions,
                                     std::span<const std::span<const int32_t>> tokens, Logits which, int64_t chunk) {
  check(chunk > 0, "chunk size must be > 0, got ", chunk);
  check(sessions.size() == tokens.size(), "append_batch: ", sessions.size(), " sessions but ", tokens.size(),
        " token lists");
  check(!sessions.empty(), "append_batch needs at least one session");
  DecoderModel& model = sessions[0]->model_;
  for (size_t i = 0; i < sessions.size(); ++i) {
    check(sessions[i]->model_.get() == model.get(), "sessions advanced together must share one model");
    for (size_t j = 0; j < i; ++j)
      check(sessions[j] != sessions[i], "session ", i, " is session ", j, " again: a session advances once per pass");
  }
  const size_t n = sessions.size();
  size_t longest = 0;
  for (const auto& t : tokens) longest = std::max(longest, t.size());

  std::vector<std::vector<at::Tensor>> all_logits(n);
  std::vector<at::Tensor> last(n);
  for (size_t begin = 0; begin < longest; begin += static_cast<size_t>(chunk)) {
    // The sessions with tokens left in this round, and their plans.
    std::vector<size_t> active;
    std::vector<Session::Chunk> plans;
    std::vector<CachedInput> inputs;
    for (size_t i = 0; i < n; ++i) {
      if (begin >= tokens[i].size()) continue;
      const size_t count = std::min(tokens[i].size() - begin, static_cast<size_t>(chunk));
      active.push_back(i);
      plans.push_back(sessions[i]->plan(tokens[i].subspan(begin, count)));
      inputs.push_back(plans.back().input);
    }
    const std::vector<CachedOutput> outs = model->forward_cached(inputs);

    // One LM-head product for every row that needs logits (a per-session product would read the
    // [n_vocab, n_embd] head once per sequence).
    std::vector<at::Tensor> rows;
    std::vector<size_t> owners;
    for (size_t a = 0; a < active.size(); ++a) {
      const size_t i = active[a];
      const Session::Completed done = sessions[i]->complete(plans[a], outs[a]);
      const at::Tensor& hidden = done.hidden;  // [n_ordinary, n_embd]
      const bool last_chunk = begin + static_cast<size_t>(chunk) >= tokens[i].size();
      if (which == Logits::All || (which == Logits::Last && last_chunk)) {
        if (done.logits.defined() && which == Logits::All) all_logits[i].push_back(done.logits);
        else if (done.logits.defined()) last[i] = done.logits[done.logits.size(0) - 1];
        else {
          rows.push_back(which == Logits::All ? hidden : hidden.narrow(0, hidden.size(0) - 1, 1));
          owners.push_back(i);
        }
      }
    }
    if (rows.empty()) continue;
    const at::Tensor logits = model->logits(rows.size() == 1 ? rows[0] : at::cat(rows));  // [rows, n_vocab]
    int64_t row = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      const at::Tensor mine = logits.narrow(0, row, rows[r].size(0));
      row += rows[r].size(0);
      if (which == Logits::All)
        all_logits[owners[r]].push_back(mine);
      else
        last[owners[r]] = mine[0];
    }
  }
  if (which != Logits::All) return last;
  std::vector<at::Tensor> result(n);
  for (size_t i = 0; i < n; ++i)
    if (!all_logits[i].empty()) result[i] = all_logits[i].size() == 1 ? all_logits[i][0] : at::cat(all_logits[i], 0);
  return result;
}

}  // namespace sentinel
