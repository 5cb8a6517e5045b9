// Dense visibility masks from cell metadata. Built on the CPU as bytes; a decode step's mask is
// one row, a full-sequence mask of N elements is N x N.
#include "sentinel/policies/mask.h"

#include <unordered_map>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// rows: [n_new * n_cells] bytes. Undefined when the causal lower triangle is all ones.
at::Tensor finish_mask(std::vector<uint8_t>& rows, int64_t n_new, int64_t n_cells, bool all_causal) {
  if (all_causal) return {};
  return at::from_blob(rows.data(), {1, n_new, n_cells}, at::kByte).to(at::kBool);  // copies
}

}  // namespace

at::Tensor build_mask(std::span<const CacheCell> cells, int64_t n_new, const VisibilityRule& rule) {
  const int64_t n_cells = static_cast<int64_t>(cells.size());
  check(n_new >= 0 && n_new <= n_cells, "mask: ", n_new, " new cells but only ", n_cells, " cells");
  const int64_t first_query = n_cells - n_new;
  std::vector<uint8_t> rows(static_cast<size_t>(n_new * n_cells), 0);
  bool all_causal = true;
  for (int64_t q = 0; q < n_new; ++q) {
    const int64_t query_index = first_query + q;
    uint8_t* row = rows.data() + q * n_cells;
    for (int64_t k = 0; k < query_index; ++k) {
      row[k] = rule(cells[query_index], cells[k]) ? 1 : 0;
      all_causal = all_causal && row[k];
    }
    row[query_index] = 1;
  }
  return finish_mask(rows, n_new, n_cells, all_causal);
}

at::Tensor sentinel_mask(std::span<const CacheCell> cells, int64_t n_new, ClosedSpans closed) {
  const int64_t n_cells = static_cast<int64_t>(cells.size());
  check(n_new >= 0 && n_new <= n_cells, "mask: ", n_new, " new cells but only ", n_cells, " cells");
  // closed_at[span] = feeding index of the span's <CR>.
  std::unordered_map<int32_t, int64_t> closed_at;
  for (int64_t i = 0; i < n_cells; ++i)
    if (cells[i].kind == CellKind::CompressRight) closed_at.emplace(cells[i].span, i);
  auto closed_before = [&](int32_t span, int64_t index) {
    auto it = closed_at.find(span);
    return it != closed_at.end() && it->second < index;
  };

  const int64_t first_query = n_cells - n_new;
  std::vector<uint8_t> rows(static_cast<size_t>(n_new * n_cells), 0);
  bool all_causal = true;
  for (int64_t q = 0; q < n_new; ++q) {
    const int64_t query_index = first_query + q;
    const CacheCell& query = cells[query_index];
    uint8_t* row = rows.data() + q * n_cells;
    for (int64_t k = 0; k < query_index; ++k) {
      const CacheCell& key = cells[k];
      bool visible = false;
      switch (query.kind) {
        case CellKind::CompressLeft:
          visible = false;
          break;
        case CellKind::CompressRight:
          visible = key.span == query.span && key.kind != CellKind::CompressRight;
          break;
        case CellKind::Ordinary:
          if (key.kind == CellKind::CompressRight) visible = true;
          else if (key.kind == CellKind::CompressLeft) visible = false;
          else
            visible = key.span < 0 || closed == ClosedSpans::Visible || !closed_before(key.span, query_index);
          break;
      }
      row[k] = visible ? 1 : 0;
      all_causal = all_causal && visible;
    }
    row[query_index] = 1;
  }
  return finish_mask(rows, n_new, n_cells, all_causal);
}

}  // namespace sentinel
