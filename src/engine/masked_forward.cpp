// Full-sequence masked forward: the policy's own mask() over an empty cache and all elements.
#include "sentinel/engine/masked_forward.h"

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

MaskedSequence finish(const CompressionPolicy& policy, std::vector<Element> elements) {
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
  out.mask = policy.mask(cells, n);
  if (!out.mask.defined()) out.mask = at::ones({1, n, n}, at::kBool).tril();  // plain causal
  out.elements = std::move(elements);
  return out;
}

}  // namespace

MaskedSequence masked_sequence(CompressionPolicy& fresh_policy, std::span<const int32_t> tokens) {
  check(!fresh_policy.wants_attention(), "--compress ", method_name(fresh_policy.method()),
        " decides from attention scores while decoding; it has no full-sequence mask (use incremental evaluation)");
  return finish(fresh_policy, fresh_policy.expand(tokens, 0));
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
  return finish(policy, std::move(block));
}

at::Tensor masked_logits(LlamaModel& model, const MaskedSequence& sequence) {
  const auto device = model->embed_tokens->weight.device();
  ForwardInput input{sequence.ids.to(device), sequence.positions.to(device), sequence.mask.to(device)};
  const at::Tensor hidden = model->forward(input).hidden[0];  // [N, n_embd]
  const at::Tensor rows = at::tensor(sequence.ordinary_rows, at::kLong).to(device);
  return model->logits(hidden.index_select(0, rows));
}

}  // namespace sentinel
