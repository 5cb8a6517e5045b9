// BLEU exactly as sacrebleu 2.6 computes it (Papineni et al. 2002; smoothing from Chen and Cherry,
// WMT 2014): the mteval-v13a tokenizer ("13a"), clipped n-gram counts, the brevity penalty, and the
// 'exp' / 'floor' / 'add-k' / 'none' smoothing, at the sentence and the corpus level, one reference
// per hypothesis. Case-sensitive (sacrebleu's lowercase=False); no other tokenizer.
// Checked value for value against sacrebleu by tests/unit/base/test_metrics_bleu.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel::metrics {

enum class BleuSmoothing {
  None,   // 'none': an order without a match makes the score 0
  Floor,  // 'floor': an order without a match counts smooth_value matches (default 0.1)
  AddK,   // 'add-k': orders 2..N add smooth_value (default 1) to matches and totals
  Exp,    // 'exp': the k-th order without a match counts 1/2^k matches (mteval-v13a, NIST)
};

// "none" | "floor" | "add-k" | "exp" (sacrebleu's names); throws Error naming the valid ones.
BleuSmoothing parse_bleu_smoothing(std::string_view name);
const char* bleu_smoothing_name(BleuSmoothing smoothing);

struct BleuOptions {
  BleuSmoothing smoothing = BleuSmoothing::Exp;  // sacrebleu's default for corpus and sentence BLEU
  std::optional<double> smooth_value;            // unset: 0.1 for Floor, 1 for AddK (unused otherwise)
  int max_ngram_order = 4;                       // N
  // Average only the orders up to the highest one the hypothesis has n-grams of (so a 3-word
  // sentence is not scored 0 for having no 4-gram). sacrebleu: false for corpus_bleu and the BLEU
  // class, true for sentence_bleu.
  bool effective_order = false;
};

// sacrebleu.corpus_bleu()'s defaults (exp smoothing, no effective order).
inline BleuOptions corpus_bleu_defaults() { return BleuOptions{}; }
// sacrebleu.sentence_bleu()'s defaults (exp smoothing, effective order).
inline BleuOptions sentence_bleu_defaults() {
  BleuOptions options;
  options.effective_order = true;
  return options;
}

// BLEU's sufficient statistics; a corpus's are the sum of its segments'.
struct BleuStats {
  int64_t sys_len = 0;          // hypothesis words
  int64_t ref_len = 0;          // reference words
  std::vector<int64_t> counts;  // [N] hypothesis n-grams that match the reference (clipped), n = 1..N
  std::vector<int64_t> totals;  // [N] hypothesis n-grams, n = 1..N

  BleuStats& operator+=(const BleuStats& other);  // throws Error if the orders differ
};

// sacrebleu's BLEUScore.
struct BleuScore {
  double score = 0;                // 0..100
  std::vector<int64_t> counts;     // [N] the statistics' counts (sacrebleu's add-k also adds k here for
  std::vector<int64_t> totals;     // [N]  n >= 2 in its BLEUScore; these are the statistics unsmoothed)
  std::vector<double> precisions;  // [N] 0..100, smoothed
  double bp = 1;                   // brevity penalty: exp(1 - ref_len / sys_len) if sys_len < ref_len
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  double ratio = 0;  // sys_len / ref_len, 0 if ref_len is 0
};

// sacrebleu's Tokenizer13a on one line: drops "<skipped>" and "-\n", turns "\n" into a space,
// un-escapes &quot; &amp; &lt; &gt; (in that order), splits off punctuation and symbols, periods and
// commas except between digits, and a dash after a digit; words joined by single spaces.
// BLEU first strips trailing whitespace from each segment (bleu_statistics does).
std::string tokenize_13a(std::string_view line);

// The statistics of one hypothesis against its reference: both right-stripped and 13a-tokenized.
BleuStats bleu_statistics(std::string_view hypothesis, std::string_view reference, int max_ngram_order = 4);

// sacrebleu's BLEU.compute_bleu: the score from (summed) statistics. Throws Error if the options'
// order differs from the statistics'.
BleuScore compute_bleu(const BleuStats& stats, const BleuOptions& options);

// Corpus BLEU: statistics summed over the segments, then one score. hypotheses[i] is scored against
// references[i]; throws Error if the counts differ or there are none.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const BleuOptions& options = corpus_bleu_defaults());

// Sentence BLEU of one hypothesis against one reference.
BleuScore sentence_bleu(std::string_view hypothesis, std::string_view reference,
                        const BleuOptions& options = sentence_bleu_defaults());

}  // namespace sentinel::metrics
