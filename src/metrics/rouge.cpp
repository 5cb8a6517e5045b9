// ROUGE-L as rouge-score 0.1.2 computes it: rouge_score/tokenize.py for the tokens,
// rouge_scorer._score_lcs and scoring.fmeasure for the values (same operations, same order).
#include "sentinel/metrics/rouge.h"

#include <algorithm>

#include "sentinel/core/error.h"
#include "sentinel/metrics/porter_stemmer.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::metrics {
namespace {

// Length of the longest common subsequence (rouge_scorer._lcs_table[-1][-1]), two rows at a time.
size_t lcs_length(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> previous(b.size() + 1, 0), current(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      current[j] = a[i - 1] == b[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], current[j - 1]);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

}  // namespace

std::vector<std::string> rouge_tokenize(std::string_view text, Stemming stemming) {
  std::vector<std::string> tokens;
  std::string token;
  const auto end_token = [&] {
    if (token.empty()) return;
    tokens.push_back(stemming == Stemming::Porter && token.size() > 3 ? porter_stem(token) : std::move(token));
    token.clear();
  };
  for (size_t i = 0; i < text.size();) {
    const unicode::Utf8Step step = unicode::decode_utf8_step(text, i);
    i += step.length;
    const char32_t c = step.code_point;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      token += static_cast<char>(c);
    } else if (c >= 'A' && c <= 'Z') {
      token += static_cast<char>(c - 'A' + 'a');
    } else if (c == 0x212A) {  // KELVIN SIGN: lowercase "k"
      token += 'k';
    } else if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: lowercase "i" + U+0307 (a separator)
      token += 'i';
      end_token();
    } else {
      end_token();
    }
  }
  end_token();
  return tokens;
}

RougeScore rouge_l(std::string_view hypothesis, std::string_view reference, Stemming stemming) {
  const std::vector<std::string> hyp = rouge_tokenize(hypothesis, stemming);
  const std::vector<std::string> ref = rouge_tokenize(reference, stemming);
  RougeScore score;
  if (hyp.empty() || ref.empty()) return score;
  const auto lcs = static_cast<double>(lcs_length(ref, hyp));
  score.precision = lcs / static_cast<double>(hyp.size());
  score.recall = lcs / static_cast<double>(ref.size());
  if (score.precision + score.recall > 0)
    score.fmeasure = 2 * score.precision * score.recall / (score.precision + score.recall);
  return score;
}

std::vector<RougeScore> rouge_l(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                                Stemming stemming) {
  check(hypotheses.size() == references.size(), "ROUGE-L got ", hypotheses.size(), " hypotheses but ",
        references.size(), " references; give one reference per hypothesis");
  std::vector<RougeScore> scores;
  scores.reserve(hypotheses.size());
  for (size_t i = 0; i < hypotheses.size(); ++i) scores.push_back(rouge_l(hypotheses[i], references[i], stemming));
  return scores;
}

RougeScore mean_rouge(std::span<const RougeScore> scores) {
  check(!scores.empty(), "the mean ROUGE of no pairs is undefined; give at least one pair");
  RougeScore mean;
  for (const RougeScore& s : scores) {
    mean.precision += s.precision;
    mean.recall += s.recall;
    mean.fmeasure += s.fmeasure;
  }
  const auto n = static_cast<double>(scores.size());
  mean.precision /= n;
  mean.recall /= n;
  mean.fmeasure /= n;
  return mean;
}

}  // namespace sentinel::metrics
