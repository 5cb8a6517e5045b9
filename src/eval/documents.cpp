// Excerpts for open-ended generation: WikiText articles from their start, books at even offsets.
#include "sentinel/eval/documents.h"

#include <algorithm>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// " = Title = " alone on its line: a WikiText article title (sections are " = = Name = = ").
bool is_article_title(std::string_view line) {
  return line.size() > 6 && line.starts_with(" = ") && !line.starts_with(" = = ") && line.ends_with(" = ");
}

// Byte offsets where the articles of a WikiText file start; empty when it has no titles.
std::vector<size_t> article_starts(const std::string& text) {
  std::vector<size_t> starts;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    if (is_article_title(std::string_view(text).substr(at, end - at))) starts.push_back(at);
    at = end + 1;
  }
  return starts;
}

// `k` of `n` indices spread evenly (all of them when k >= n).
std::vector<int64_t> spread(int64_t n, int64_t k) {
  std::vector<int64_t> picks;
  if (k >= n) {
    for (int64_t i = 0; i < n; ++i) picks.push_back(i);
    return picks;
  }
  for (int64_t i = 0; i < k; ++i) picks.push_back(i * n / k);
  return picks;
}

}  // namespace

std::vector<Excerpt> make_excerpts(const Tokenizer& tokenizer, const std::string& name, const std::string& text,
                                   int64_t prefix, int64_t continuation, int64_t per_file) {
  check(prefix >= 2 && continuation >= 1 && per_file >= 1, "excerpts need --prefix >= 2, --new-tokens >= 1 and ",
        "--docs-per-file >= 1, got ", prefix, ", ", continuation, ", ", per_file);
  const int64_t need = prefix + continuation;
  std::vector<Excerpt> excerpts;
  const std::vector<size_t> starts = article_starts(text);
  if (!starts.empty()) {
    std::vector<Excerpt> eligible;
    for (size_t a = 0; a < starts.size(); ++a) {
      const size_t end = a + 1 < starts.size() ? starts[a + 1] : text.size();
      const auto ids = tokenizer.encode(std::string_view(text).substr(starts[a], end - starts[a]), /*add_bos=*/true,
                                        SpecialTokens::Ignore);
      if (static_cast<int64_t>(ids.size()) < need) continue;
      eligible.push_back(Excerpt{name + "#article " + std::to_string(a), {ids.begin(), ids.begin() + prefix},
                                 {ids.begin() + prefix, ids.begin() + need}});
    }
    for (int64_t i : spread(static_cast<int64_t>(eligible.size()), per_file)) excerpts.push_back(eligible[i]);
  } else {
    const auto ids = tokenizer.encode(text, /*add_bos=*/false, SpecialTokens::Ignore);
    const auto bos = tokenizer.encode("", /*add_bos=*/true, SpecialTokens::Ignore);  // [BOS] or []
    const int64_t body = prefix - static_cast<int64_t>(bos.size());                 // prefix tokens from the book
    const int64_t room = static_cast<int64_t>(ids.size()) - body - continuation;
    if (room >= 0) {
      for (int64_t i : spread(room + 1, per_file)) {
        Excerpt e{name + "@" + std::to_string(i), bos, {}};
        e.prefix.insert(e.prefix.end(), ids.begin() + i, ids.begin() + i + body);
        e.continuation.assign(ids.begin() + i + body, ids.begin() + i + body + continuation);
        excerpts.push_back(std::move(e));
      }
    }
  }
  check(!excerpts.empty(), "'", name, "' has no document of ", need, " tokens (--prefix ", prefix, " + --new-tokens ",
        continuation, "); give a longer text or shorter lengths");
  return excerpts;
}

}  // namespace sentinel
