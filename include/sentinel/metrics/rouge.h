// ROUGE-L exactly as Google's rouge-score 0.1.2 computes it (rouge_scorer.RougeScorer(["rougeL"])):
// its tokenizer (lowercase, every run of characters other than [a-z0-9] is a separator, optional
// Porter stemming of tokens longer than 3 characters) and the longest common subsequence of the
// token lists, per pair. Not rougeLsum (no sentence splitting) and not ROUGE-N.
// Checked value for value against rouge-score by tests/unit/base/test_metrics_rouge.cpp.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel::metrics {

enum class Stemming { Off, Porter };  // rouge-score's use_stemmer=False / True

// rouge_score.tokenize.tokenize(text, stemmer): Python's str.lower(), then the maximal runs of
// [a-z0-9]. Non-ASCII characters are separators, except the two whose lowercase holds an ASCII
// letter: U+0130 (İ, lowercase "i" + U+0307) gives "i" and U+212A (Kelvin sign) gives "k".
// With Stemming::Porter, tokens longer than 3 characters go through porter_stem().
// Invalid UTF-8 is read as Python's errors='replace' would read it (the bytes separate tokens).
std::vector<std::string> rouge_tokenize(std::string_view text, Stemming stemming);

struct RougeScore {
  double precision = 0;  // LCS / hypothesis tokens
  double recall = 0;     // LCS / reference tokens
  double fmeasure = 0;   // 2 P R / (P + R), 0 if P + R is 0
};

// ROUGE-L of one hypothesis against one reference; all three 0 if either has no token.
// Note the order: rouge-score's scorer.score(target, prediction) takes the reference first.
RougeScore rouge_l(std::string_view hypothesis, std::string_view reference, Stemming stemming = Stemming::Off);

// ROUGE-L of each pair: hypotheses[i] against references[i]. Throws Error if the counts differ.
std::vector<RougeScore> rouge_l(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                                Stemming stemming = Stemming::Off);

// The mean of each field over the pairs (summed in order, divided by the count: Python's
// sum(xs) / len(xs)). Throws Error if there are none.
RougeScore mean_rouge(std::span<const RougeScore> scores);

}  // namespace sentinel::metrics
