// The recall probes: building the cases and reading them through compressing sessions.
#include "sentinel/eval/recall.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "sentinel/core/error.h"
#include "sentinel/engine/session.h"

namespace sentinel {
namespace {

std::vector<int32_t> concat(std::initializer_list<const std::vector<int32_t>*> parts) {
  std::vector<int32_t> out;
  for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

// `unit` repeated until `n` tokens (the last copy cut).
std::vector<int32_t> filler(const std::vector<int32_t>& unit, int64_t n) {
  std::vector<int32_t> out;
  while (static_cast<int64_t>(out.size()) < n) out.insert(out.end(), unit.begin(), unit.end());
  out.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
  return out;
}

}  // namespace

std::vector<RecallCase> repeat_cases(std::span<const int32_t> text, int64_t ctx, int64_t passage, int64_t lead,
                                     int64_t n_cases) {
  check(passage >= 2 && lead >= 0 && lead + 2 * passage < ctx, "repeat: --passage ", passage, " and its lead ", lead,
        " must leave a gap inside the context of ", ctx, " tokens");
  std::vector<RecallCase> cases;
  const int64_t context = ctx - passage;
  for (int64_t begin = 0; begin + context <= static_cast<int64_t>(text.size()) &&
                          static_cast<int64_t>(cases.size()) < n_cases;
       begin += context) {
    RecallCase c;
    c.context.assign(text.begin() + begin, text.begin() + begin + context);
    c.target.assign(c.context.begin() + lead, c.context.begin() + lead + passage);
    c.distance = context - lead - passage;
    cases.push_back(std::move(c));
  }
  check(!cases.empty(), "repeat: the text has ", text.size(), " tokens, fewer than one case of ", context);
  return cases;
}

std::vector<RecallCase> passkey_cases(const Tokenizer& tokenizer, int64_t ctx, int64_t n_cases, uint64_t seed) {
  check(n_cases >= 1, "passkey: need at least one case");
  auto encode = [&](const std::string& s, bool bos = false) { return tokenizer.encode(s, bos, SpecialTokens::Ignore); };
  const std::vector<int32_t> header = encode(
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
      "about the important information there.\n",
      /*bos=*/true);
  const std::vector<int32_t> unit =
      encode("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n");
  const std::vector<int32_t> question = encode("What is the pass key? The pass key is");
  std::mt19937_64 rng(seed);
  std::vector<RecallCase> cases;
  for (int64_t i = 0; i < n_cases; ++i) {
    const std::string key = std::to_string(10000 + rng() % 90000);
    const std::vector<int32_t> statement = encode("The pass key is " + key + ". Remember it. " + key + " is the pass key.\n");
    RecallCase c;
    c.target = encode(" " + key);
    const int64_t fill = ctx - static_cast<int64_t>(header.size() + statement.size() + question.size() + c.target.size());
    check(fill >= 2, "passkey: --ctx ", ctx, " is too short for the prompt; use at least ", ctx - fill + 2);
    const double depth = (static_cast<double>(i) + 0.5) / static_cast<double>(n_cases);
    const auto before = static_cast<int64_t>(depth * static_cast<double>(fill));
    const std::vector<int32_t> a = filler(unit, before), b = filler(unit, fill - before);
    c.context = concat({&header, &a, &statement, &b, &question});
    c.distance = static_cast<int64_t>(b.size() + question.size());
    cases.push_back(std::move(c));
  }
  return cases;
}

RecallScore score_recall(DecoderModel& model, std::span<const RecallCase> cases, const PolicyOptions& policy,
                         int64_t chunk, const std::function<void(int64_t, int64_t)>& progress) {
  check(chunk >= 1, "--chunk must be >= 1, got ", chunk);
  c10::InferenceMode inference;
  const auto start = std::chrono::steady_clock::now();
  RecallScore score;
  int64_t longest = 0;
  for (const RecallCase& c : cases) longest = std::max<int64_t>(longest, c.context.size() + c.target.size());
  Session session(model, model->cache_options(std::min<int64_t>(longest, 256)), policy);
  for (const RecallCase& c : cases) {
    check(!c.context.empty() && !c.target.empty(), "a recall case needs a context and a target");
    session.reset();
    // The context's last logits predict target[0]; target[i]'s predict target[i + 1].
    const at::Tensor first = session.append(c.context, Logits::Last, chunk).unsqueeze(0);  // [1, n_vocab]
    at::Tensor logits = first;
    if (c.target.size() > 1) {
      const at::Tensor rest = session.append(std::span(c.target).first(c.target.size() - 1), Logits::All, chunk);
      logits = at::cat({first, rest.to(first.device())});  // [n_target, n_vocab]
    }
    const at::Tensor target = at::tensor(std::vector<int64_t>(c.target.begin(), c.target.end()), at::kLong)
                                  .to(logits.device());
    const at::Tensor log_p = logits.to(at::kFloat).log_softmax(-1);
    score.nll_sum += -log_p.gather(1, target.unsqueeze(1)).sum().item<double>();
    score.exact += at::equal(log_p.argmax(-1), target) ? 1 : 0;
    score.n_target += static_cast<int64_t>(c.target.size());
    ++score.n_cases;
    score.ordinary_fed += session.stats().ordinary_seen;
    score.cells_retained += session.stats().cells_in_use;
    if (progress) progress(score.n_cases, static_cast<int64_t>(cases.size()));
  }
  score.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return score;
}

}  // namespace sentinel
