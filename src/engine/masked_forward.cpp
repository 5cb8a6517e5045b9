// Full-sequence masked forward: the policy's own mask() over an empty cache and all elements, or
// the mask a session's recorded steps amount to.
#include "sentinel/engine/masked_forward.h"

#include <algorithm>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// Ids, positions and ordinary rows of `elements`, with `mask` [1, N, N] (undefined: the policy's
// own mask over the elements, or plain causal where it has none).
MaskedSequence finish(const CompressionPolicy* policy, std::vector<Element> elements, at::Tensor mask = {}) {
  const int64_t n = static_cast<int64_t>(elements.size());
  MaskedSequence out;
  out.ids = at::empty({1, n}, at::kLong);
  out.positions = at::empty({1, n}, at::kLong);
  std::vector<CacheCell> cells(n);
  for (int64_t i = 0; i < n; ++i) {
    out.ids[0][i] = elements[i].id;
    out.positions[0][i] = elements[i].cell.position;
    cells[i] = elements[i].cell;
    if (elements[i].ordinary_index >= 0) out.ordinary_rows.push_back(i);
  }
  out.mask = mask.defined() || policy == nullptr ? mask : policy->mask(cells, n);
  if (!out.mask.defined()) out.mask = at::ones({1, n, n}, at::kBool).tril();  // plain causal
  out.elements = std::move(elements);
  return out;
}

}  // namespace

MaskedSequence masked_sequence(CompressionPolicy& fresh_policy, std::span<const int32_t> tokens) {
  check(!fresh_policy.wants_attention(), "--compress ", method_name(fresh_policy.method()),
        " decides from attention scores while decoding; it has no full-sequence mask (use incremental evaluation)");
  return finish(&fresh_policy, fresh_policy.expand(tokens, 0));
}

MaskedSequence masked_block(const CompressionPolicy& policy, std::span<const Element> elements) {
  std::vector<Element> block(elements.begin(), elements.end());
  // Shift every position so the block's first ordinary token gets 0. A sentinel keeps its offset
  // from the ordinary tokens: in-stream that is the id of the token before it, and a scheduled
  // <CL>/<CR> fed after the window keeps its span's edge (SentinelPolicy::expand), which
  // renumbering it from the token fed before it would lose. Clamped at 0 when that token lies
  // before the block.
  int64_t offset = 0;
  for (const Element& e : block)
    if (e.ordinary_index >= 0) {
      offset = e.ordinary_index;
      break;
    }
  int64_t next_ordinary = 0;
  for (Element& e : block) {
    if (e.ordinary_index >= 0) {
      e.cell.position = e.ordinary_index = next_ordinary++;
    } else {
      e.cell.position = std::max<int64_t>(e.cell.position - offset, 0);
    }
  }
  return finish(&policy, std::move(block));
}

MaskedSequence replayed_sequence(std::span<const StepRecord> steps) {
  int64_t n = 0;
  for (const StepRecord& step : steps) n += static_cast<int64_t>(step.elements.size());
  std::vector<uint8_t> visible(static_cast<size_t>(n * n), 0);  // [query, key] over all elements fed
  std::vector<Element> elements;
  elements.reserve(n);
  std::vector<int64_t> cached;  // the element each cache cell holds, in cache order
  for (const StepRecord& step : steps) {
    const auto T = static_cast<int64_t>(step.elements.size());
    const auto n_past = static_cast<int64_t>(cached.size());
    const int64_t first = static_cast<int64_t>(elements.size());
    at::Tensor mask;  // [T, n_past + T] bool
    if (step.mask.defined()) {
      check(step.mask.dim() == 3 && step.mask.size(1) == T && step.mask.size(2) == n_past + T,
            "replay: a step of ", T, " elements over ", n_past, " cached cells has a mask of shape ",
            step.mask.sizes());
      mask = step.mask[0].to(at::kBool).contiguous();
    }
    const bool* m = mask.defined() ? mask.data_ptr<bool>() : nullptr;
    for (int64_t i = 0; i < T; ++i) {
      uint8_t* row = visible.data() + (first + i) * n;
      for (int64_t c = 0; c <= n_past + i; ++c) {
        if (m != nullptr && !m[i * (n_past + T) + c]) continue;  // undefined: causal over everything
        row[c < n_past ? cached[c] : first + (c - n_past)] = 1;
      }
    }
    for (int64_t i = 0; i < T; ++i) cached.push_back(first + i);
    elements.insert(elements.end(), step.elements.begin(), step.elements.end());
    std::vector<int64_t> dead(step.evicted);
    std::sort(dead.rbegin(), dead.rend());
    for (int64_t d : dead) {
      check(d >= 0 && d < static_cast<int64_t>(cached.size()), "replay: evicted cell ", d, " of ", cached.size());
      cached.erase(cached.begin() + d);
    }
  }
  const at::Tensor mask = at::from_blob(visible.data(), {1, n, n}, at::kByte).to(at::kBool);  // copies
  return finish(nullptr, std::move(elements), mask);
}

MaskedSequence read_and_replay(DecoderModel& model, const PolicyOptions& policy, std::span<const int32_t> tokens,
                               int64_t chunk) {
  at::NoGradGuard no_grad;
  Session session(model, model->cache_options(static_cast<int64_t>(tokens.size())), policy);
  std::vector<StepRecord> steps;
  session.record_steps(&steps);
  session.append(tokens, Logits::None, chunk);
  return replayed_sequence(steps);
}

at::Tensor masked_logits(DecoderModel& model, const MaskedSequence& sequence) {
  const auto device = model->embed_tokens->weight.device();
  ForwardInput input{sequence.ids.to(device), sequence.positions.to(device), sequence.mask.to(device)};
  const at::Tensor hidden = model->forward(input).hidden[0];  // [N, n_embd]
  const at::Tensor rows = at::tensor(sequence.ordinary_rows, at::kLong).to(device);
  return model->logits(hidden.index_select(0, rows));
}

}  // namespace sentinel
