// Span sampling for training (docs/method.md section 5).
#include "sentinel/train/spans.h"

#include <algorithm>
#include <cmath>

#include "sentinel/core/error.h"

namespace sentinel {

SpanUnit parse_span_unit(const std::string& name) {
  if (name == "word") return SpanUnit::Word;
  if (name == "token") return SpanUnit::Token;
  fail("unknown span unit '", name, "'; use word (the authors' whitespace words) or token");
}

void SpanSamplerOptions::validate() const {
  check(ratio >= 0.0 && ratio < 1.0, "--ratio must be in [0, 1), got ", ratio,
        " (the fraction of the context removed from the KV cache)");
  check(min_length >= 2, "the shortest span must be >= 2 units (a span of 1 saves nothing), got ", min_length);
  check(max_length >= min_length, "--max-span must be >= ", min_length, ", got ", max_length);
  check(min_row_units >= 1, "the shortest row with spans must be >= 1 unit, got ", min_row_units);
  check(max_attempts >= 1, "span sampler attempts must be >= 1, got ", max_attempts);
}

std::vector<Span> sample_spans(int64_t n_units, const SpanSamplerOptions& options, std::mt19937_64& rng) {
  std::vector<Span> spans;
  if (options.ratio <= 0.0 || n_units < options.min_row_units || n_units < options.min_length) return spans;
  const double avg = 0.5 * static_cast<double>(options.min_length + options.max_length);
  const double coverage = std::min(1.0, options.ratio * avg / (avg - 1.0));
  const auto target = static_cast<int64_t>(std::ceil(coverage * static_cast<double>(n_units) - 1e-9));
  std::vector<uint8_t> taken(n_units, 0);
  int64_t covered = 0;
  // Plain modulo over 64-bit draws: portable (std distributions differ between libraries), and
  // the bias is far below anything measurable here.
  auto uniform = [&rng](int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
  };
  for (int64_t attempt = 0; attempt < options.max_attempts && covered < target; ++attempt) {
    const int64_t length = std::min(uniform(options.min_length, options.max_length), n_units);
    const int64_t begin = uniform(0, n_units - length);
    if (std::any_of(taken.begin() + begin, taken.begin() + begin + length, [](uint8_t t) { return t != 0; })) continue;
    std::fill(taken.begin() + begin, taken.begin() + begin + length, 1);
    spans.push_back(Span{begin, begin + length});
    covered += length;
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  return spans;
}

}  // namespace sentinel
