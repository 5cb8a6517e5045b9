// The training span sampler of docs/method.md section 5: which ordinary tokens of the training
// text get wrapped in <CL> ... <CR>. Spans are sampled per text row, over whitespace words (the
// authors' unit) or over tokens (ours), seeded; the achieved ratio is measured, never assumed.
// Not the inference scheduler (policies/sentinel.h) and not the tokenization of rows (data.h).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sentinel/policies/policy.h"

namespace sentinel {

enum class SpanUnit { Word, Token };
SpanUnit parse_span_unit(const std::string& name);  // "word" | "token"; throws naming both

struct SpanSamplerOptions {
  double ratio = 0.5;          // nominal fraction of the context removed from the KV cache, in [0, 1)
  int64_t min_length = 2;      // span lengths are uniform in [min_length, max_length] units
  int64_t max_length = 25;     // MAXL (the authors' 25 words)
  int64_t min_row_units = 30;  // rows with fewer units get no spans (the authors' n >= 30 words)
  SpanUnit unit = SpanUnit::Word;
  // Random placements tried per row before giving up on the coverage target (the authors' cap:
  // with it the sampler saturates well below high targets, hence the measured ratio).
  int64_t max_attempts = 200;
  void validate() const;  // throws naming the bad option
};

// Samples sorted, disjoint (adjacency allowed) spans over a row of n_units units: lengths uniform
// in [min_length, max_length], random starts, until the spans cover ratio * avg / (avg - 1) of the
// row (avg = mean span length, so that ratio is the fraction removed: each span keeps one <CR>)
// or max_attempts placements were tried. Deterministic given the generator's state.
std::vector<Span> sample_spans(int64_t n_units, const SpanSamplerOptions& options, std::mt19937_64& rng);

}  // namespace sentinel
