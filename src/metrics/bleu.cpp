// BLEU as sacrebleu 2.6 computes it: sacrebleu/tokenizers/tokenizer_13a.py and tokenizer_re.py for
// the tokenizer, sacrebleu/metrics/bleu.py (compute_bleu, _compute_segment_statistics) for the rest.
// The floating-point operations follow the Python expressions term by term, so the values are the same.
#include "sentinel/metrics/bleu.h"

#include <algorithm>
#include <cmath>

#include "sentinel/core/error.h"
#include "sentinel/metrics/ngrams.h"

namespace sentinel::metrics {
namespace {

// Python's str.replace(from, to): every non-overlapping occurrence, left to right.
std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  size_t start = 0;
  for (size_t at = text.find(from); at != std::string_view::npos; at = text.find(from, start)) {
    out.append(text.substr(start, at - start)).append(to);
    start = at + from.size();
  }
  out.append(text.substr(start));
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The first regex of TokenizerRegexp: [\{-\~\[-\` -\&\(-\+\:-\@\/], i.e. { | } ~ [ \ ] ^ _ `
// space ! " # $ % & ( ) * + : ; < = > ? @ / (not ' , - . letters or digits).
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

// The other three regexes are two-character patterns applied by re.sub: a scan from the left that
// replaces each match and resumes after it. Working on UTF-8 bytes gives Python's result on code
// points: the patterns' own characters are ASCII, and a non-ASCII character can only stand in a
// [^0-9] slot, where its bytes are copied unchanged.
template <typename Matches, typename Write>
std::string substitute_pairs(const std::string& text, Matches&& matches, Write&& write) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && matches(text[i], text[i + 1])) {
      write(out, text[i], text[i + 1]);
      i += 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& word : words) {
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

// sacrebleu's my_log: log, with log(0) floored to -9999999999.
double floored_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

}  // namespace

BleuSmoothing parse_bleu_smoothing(std::string_view name) {
  for (const BleuSmoothing s : {BleuSmoothing::None, BleuSmoothing::Floor, BleuSmoothing::AddK, BleuSmoothing::Exp})
    if (name == bleu_smoothing_name(s)) return s;
  fail("unknown BLEU smoothing '", name, "'; use one of exp, floor, add-k, none");
}

const char* bleu_smoothing_name(BleuSmoothing smoothing) {
  switch (smoothing) {
    case BleuSmoothing::None: return "none";
    case BleuSmoothing::Floor: return "floor";
    case BleuSmoothing::AddK: return "add-k";
    case BleuSmoothing::Exp: return "exp";
  }
  return "?";
}

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  check(counts.size() == other.counts.size() && totals.size() == other.totals.size(),
        "cannot add BLEU statistics of max n-gram order ", other.counts.size(), " to statistics of order ",
        counts.size(), "; compute all segments with the same order");
  sys_len += other.sys_len;
  ref_len += other.ref_len;
  for (size_t n = 0; n < counts.size(); ++n) {
    counts[n] += other.counts[n];
    totals[n] += other.totals[n];
  }
  return *this;
}

std::string tokenize_13a(std::string_view line) {
  std::string text = replace_all(line, "<skipped>", "");
  text = replace_all(text, "-\n", "");
  text = replace_all(text, "\n", " ");
  if (text.find('&') != std::string::npos) {
    text = replace_all(text, "&quot;", "\"");
    text = replace_all(text, "&amp;", "&");
    text = replace_all(text, "&lt;", "<");
    text = replace_all(text, "&gt;", ">");
  }
  std::string spaced;
  for (const char c : " " + text + " ") {
    if (is_13a_symbol(c)) {
      spaced.append(" ").append(1, c).append(" ");
    } else {
      spaced += c;
    }
  }
  // ([^0-9])([\.,]) -> "\1 \2 ": a period or comma not after a digit
  spaced = substitute_pairs(
      spaced, [](char a, char b) { return !is_digit(a) && (b == '.' || b == ','); },
      [](std::string& out, char a, char b) { out.append(1, a).append(" ").append(1, b).append(" "); });
  // ([\.,])([^0-9]) -> " \1 \2": a period or comma not before a digit
  spaced = substitute_pairs(
      spaced, [](char a, char b) { return (a == '.' || a == ',') && !is_digit(b); },
      [](std::string& out, char a, char b) { out.append(" ").append(1, a).append(" ").append(1, b); });
  // ([0-9])(-) -> "\1 \2 ": a dash after a digit
  spaced = substitute_pairs(
      spaced, [](char a, char b) { return is_digit(a) && b == '-'; },
      [](std::string& out, char a, char b) { out.append(1, a).append(" ").append(1, b).append(" "); });
  return join(split_whitespace(spaced));
}

BleuStats bleu_statistics(std::string_view hypothesis, std::string_view reference, int max_ngram_order) {
  check(max_ngram_order >= 1, "BLEU max n-gram order ", max_ngram_order, " is invalid; use 1 or more (4 is standard)");
  Vocabulary vocabulary;
  const std::vector<int32_t> hyp = vocabulary.ids(split_whitespace(tokenize_13a(rstrip_whitespace(hypothesis))));
  const std::vector<int32_t> ref = vocabulary.ids(split_whitespace(tokenize_13a(rstrip_whitespace(reference))));
  BleuStats stats;
  stats.sys_len = static_cast<int64_t>(hyp.size());
  stats.ref_len = static_cast<int64_t>(ref.size());
  stats.counts.assign(static_cast<size_t>(max_ngram_order), 0);
  stats.totals.assign(static_cast<size_t>(max_ngram_order), 0);
  for (int n = 1; n <= max_ngram_order; ++n) {
    NgramCounts hyp_ngrams, ref_ngrams;
    add_ngrams(hyp, n, hyp_ngrams);
    add_ngrams(ref, n, ref_ngrams);
    for (const auto& [ngram, count] : hyp_ngrams) {
      stats.totals[n - 1] += count;
      if (const auto it = ref_ngrams.find(ngram); it != ref_ngrams.end())
        stats.counts[n - 1] += std::min(count, it->second);
    }
  }
  return stats;
}

BleuScore compute_bleu(const BleuStats& stats, const BleuOptions& options) {
  const int order = options.max_ngram_order;
  check(order >= 1 && stats.counts.size() == static_cast<size_t>(order) && stats.totals.size() == stats.counts.size(),
        "BLEU statistics have max n-gram order ", stats.counts.size(), " but the options ask for ", order,
        "; compute the statistics with the options' max_ngram_order");
  const double k = options.smooth_value.value_or(options.smoothing == BleuSmoothing::Floor ? 0.1 : 1.0);

  BleuScore result;
  result.counts = stats.counts;
  result.totals = stats.totals;
  result.sys_len = stats.sys_len;
  result.ref_len = stats.ref_len;
  result.ratio = stats.ref_len != 0 ? static_cast<double>(stats.sys_len) / static_cast<double>(stats.ref_len) : 0.0;
  if (stats.sys_len < stats.ref_len)
    result.bp = stats.sys_len > 0
                    ? std::exp(1.0 - static_cast<double>(stats.ref_len) / static_cast<double>(stats.sys_len))
                    : 0.0;
  result.precisions.assign(static_cast<size_t>(order), 0.0);
  if (std::all_of(stats.counts.begin(), stats.counts.end(), [](int64_t c) { return c == 0; })) return result;

  double smooth_mteval = 1.0;
  int effective_order = order;
  for (int n = 1; n <= order; ++n) {
    double correct = static_cast<double>(stats.counts[n - 1]);
    double total = static_cast<double>(stats.totals[n - 1]);
    if (options.smoothing == BleuSmoothing::AddK && n > 1) {
      correct += k;
      total += k;
    }
    if (total == 0) break;
    if (options.effective_order) effective_order = n;
    double& precision = result.precisions[n - 1];
    if (correct == 0) {
      if (options.smoothing == BleuSmoothing::Exp) {
        smooth_mteval *= 2;
        precision = 100.0 / (smooth_mteval * total);
      } else if (options.smoothing == BleuSmoothing::Floor) {
        precision = 100.0 * k / total;
      }
    } else {
      precision = 100.0 * correct / total;
    }
  }
  double log_sum = 0.0;
  for (int n = 0; n < effective_order; ++n) log_sum += floored_log(result.precisions[n]);
  result.score = result.bp * std::exp(log_sum / effective_order);
  return result;
}

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const BleuOptions& options) {
  check(hypotheses.size() == references.size(), "corpus BLEU got ", hypotheses.size(), " hypotheses but ",
        references.size(), " references; give one reference per hypothesis");
  check(!hypotheses.empty(), "corpus BLEU got no hypotheses; give at least one hypothesis/reference pair");
  BleuStats sum = bleu_statistics(hypotheses[0], references[0], options.max_ngram_order);
  for (size_t i = 1; i < hypotheses.size(); ++i) sum += bleu_statistics(hypotheses[i], references[i], options.max_ngram_order);
  return compute_bleu(sum, options);
}

BleuScore sentence_bleu(std::string_view hypothesis, std::string_view reference, const BleuOptions& options) {
  return compute_bleu(bleu_statistics(hypothesis, reference, options.max_ngram_order), options);
}

}  // namespace sentinel::metrics
