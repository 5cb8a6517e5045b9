// Where sentinel's scheduler puts its spans: the span layouts by name, and each one's default
// span. A header of its own because the shipped adapters are chosen by layout (model/adapter.h),
// which needs this enum and none of the policies; defined in src/policies/policy_options.cpp.
#pragma once

#include <cstdint>
#include <string>

namespace sentinel {

// Where the sentinel scheduler puts its spans (when no explicit spans are given).
//   Stream: the first `sinks` tokens are never compressed; after them, span k covers
//     [sinks + k*L, sinks + (k+1)*L) and is closed (its <CL> and <CR> fed together) just when the
//     budget needs it, so the raw recent window is what the budget leaves: after ordinary token
//     i, spans are closed while the next query would see more than kv_budget(ratio, i + 2)
//     entries (closing one removes L - 1 entries). The same budget as every other method.
//   Periodic: the paper setting's scheduler: span k covers [floor(k*P), floor(k*P) + L) with
//     P = (L - 1) / ratio from the first token on, closed once older than `window` tokens.
//   Heavy: summaries beside heavy hitters. The spans of Stream, each closed as soon as it leaves
//     H2O's recent half of the budget; the closed span's tokens stay visible until evicted, and
//     eviction keeps, besides the sinks, the recent window and every <CR>, the older tokens with
//     the most accumulated attention (H2O's heavy hitters) that the budget leaves room for. The
//     summaries and the heavy hitters share one budget, so a <CR> costs one heavy hitter.
enum class SpanLayout { Stream, Periodic, Heavy };
SpanLayout parse_span_layout(const std::string& name);  // "stream" | "periodic" | "heavy"; throws naming them
std::string span_layout_name(SpanLayout layout);
// The layout `--compress sentinel` reads with when none is given, on every front (CLI, server,
// Python, eval grids): heavy, whose KL from the uncompressed model is less than half the stream
// layout's in every validation cell (Alice, docs/results/validation_layouts.jsonl;
// docs/training.md, "Which texts chose"). PolicyOptions itself keeps Stream: it is plain data
// that callers fill in whole.
SpanLayout default_span_layout();
// Tokens per <CR> when none is given: the span each layout's shipped adapter was validated at
// (docs/training_runs.md): 48 beside heavy hitters, whose summaries each cost one of them; 16
// elsewhere.
int64_t default_span(SpanLayout layout);

}  // namespace sentinel
