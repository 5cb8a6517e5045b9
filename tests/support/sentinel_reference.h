// Checks our sentinel layout and masked forward against a fixture of
// reference/make_sentinel_fixtures.py: transformers' LlamaForCausalLM run on a layout that Python
// built from docs/method.md sections 2-4 alone. The layout (ids, positions, mask) is compared
// before the logits, so a failure says whether the layout or the forward math is off.
// Torch suites only; used by the tiny-model unit test and the SmolLM2 parity test.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/engine/masked_forward.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/policies/policy.h"
#include "support/tensor_fixture.h"

namespace sentinel::testing {

constexpr const char* kSentinelRegenerate =
    "fixtures from: ~/.cache/sentinel/venv/bin/python reference/make_sentinel_fixtures.py";

class SentinelReference {
 public:
  explicit SentinelReference(const std::string& path) : tensors_(load_tensor_fixture(path)) {
    while (tensors_.count(prefix(n_layouts_) + "ids") > 0) ++n_layouts_;
    check(n_layouts_ > 0, path, " holds no layout l0.*; ", kSentinelRegenerate);
  }

  int n_layouts() const { return n_layouts_; }

  const at::Tensor& get(const std::string& key) const {
    const auto it = tensors_.find(key);
    if (it == tensors_.end()) fail("sentinel fixture has no '", key, "'; ", kSentinelRegenerate);
    return it->second;
  }
  const at::Tensor& get(int layout, const std::string& name) const { return get(prefix(layout) + name); }

  const at::Tensor& sentinel_rows() const { return get("sentinel_rows"); }  // [2, n_embd] f32

  // Our layout of layout `i`: a fresh sentinel policy with the fixture's explicit spans.
  MaskedSequence build(int i, const ModelConfig& config) const {
    const SentinelTokens tokens = sentinel_tokens(config);
    PolicyOptions options;
    options.method = Method::Sentinel;
    options.cl_id = tokens.cl;
    options.cr_id = tokens.cr;
    const at::Tensor spans = get(i, "spans").contiguous();  // [n_spans, 2] i64
    for (int64_t s = 0; s < spans.size(0); ++s)
      options.spans.push_back(Span{spans[s][0].item<int64_t>(), spans[s][1].item<int64_t>()});
    auto policy = make_policy(options);
    const std::vector<int32_t> ids = to_ids(get(i, "ids"));
    return masked_sequence(*policy, ids);
  }

  // Empty when our layout equals the reference's; otherwise where they first differ.
  std::string layout_mismatch(int i, const MaskedSequence& ours) const {
    std::ostringstream out;
    const at::Tensor ids = ours.ids[0], positions = ours.positions[0], mask = ours.mask[0];
    const at::Tensor& ref_ids = get(i, "layout_ids");
    if (ids.size(0) != ref_ids.size(0)) {
      out << "layout has " << ids.size(0) << " rows, reference " << ref_ids.size(0) << "; ours " << ids
          << " reference " << ref_ids;
      return out.str();
    }
    const auto first_diff = [](const at::Tensor& a, const at::Tensor& b) -> int64_t {
      const at::Tensor rows = (a != b).nonzero();
      return rows.size(0) == 0 ? -1 : rows[0][0].item<int64_t>();
    };
    if (const int64_t r = first_diff(ids, ref_ids); r >= 0)
      out << "ids differ first at row " << r << ": ours " << ids[r].item<int64_t>() << ", reference "
          << ref_ids[r].item<int64_t>() << "\n";
    if (const int64_t r = first_diff(positions, get(i, "positions")); r >= 0)
      out << "positions differ first at row " << r << ": ours " << positions[r].item<int64_t>() << ", reference "
          << get(i, "positions")[r].item<int64_t>() << "\n";
    const at::Tensor& allow = get(i, "allow");
    const at::Tensor cells = (mask != allow).nonzero();  // [n_diff, 2] (query, key)
    if (cells.size(0) > 0) {
      const int64_t q = cells[0][0].item<int64_t>(), k = cells[0][1].item<int64_t>();
      out << cells.size(0) << " mask cells differ, first (query row " << q << ", key row " << k << "): ours "
          << mask[q][k].item<bool>() << ", reference " << allow[q][k].item<bool>() << "\n";
    }
    const at::Tensor ordinary = at::tensor(ours.ordinary_rows, at::kLong);
    if (!ordinary.equal(get(i, "ordinary_rows"))) out << "ordinary rows differ: ours " << ordinary << "\n";
    return out.str();
  }

  struct LogitsComparison {
    double relative_error = 0;  // ||ours - ref|| / ||ref|| over the stored vocabulary columns
    double max_abs_diff = 0;
    int64_t n_rows = 0;
    // Rows whose full-vocabulary argmax differs from the reference's by more than `near_tie`
    // logits (our score of our top minus our score of the reference's top).
    std::vector<int64_t> top_disagreements;
  };

  // ours: [n_ordinary, n_vocab] f32 from masked_logits.
  LogitsComparison compare_logits(int i, const at::Tensor& ours, double near_tie) const {
    LogitsComparison c;
    const at::Tensor kept = ours.index_select(1, get(i, "columns"));
    const at::Tensor& expected = get(i, "logits");
    check(kept.sizes().equals(expected.sizes()), "logits ", kept.sizes(), " vs reference ", expected.sizes());
    c.relative_error = relative_error(kept, expected);
    c.max_abs_diff = max_abs_diff(kept, expected);
    c.n_rows = ours.size(0);
    const at::Tensor top = ours.argmax(-1), ref_top = get(i, "top");
    for (int64_t r = 0; r < c.n_rows; ++r) {
      const double shortfall = (ours[r][top[r]] - ours[r][ref_top[r]]).item<double>();
      if (shortfall > near_tie) c.top_disagreements.push_back(r);
    }
    return c;
  }

 private:
  static std::string prefix(int i) { return "l" + std::to_string(i) + "."; }

  std::map<std::string, at::Tensor> tensors_;
  int n_layouts_ = 0;
};

}  // namespace sentinel::testing
