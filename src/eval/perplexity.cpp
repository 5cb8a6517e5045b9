// Strided perplexity, plain and compressed. Both score the same tokens in the same windows:
// plain runs each window as one causal forward pass (positions restart at 0) and projects only
// the window's new tokens to logits, which keeps memory at O(stride * n_vocab); compressed reads
// each window through a Session, so the policy's masks and evictions shape every prediction.
#include "sentinel/eval/perplexity.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>

#include "sentinel/cache/kv_cache.h"
#include "sentinel/core/error.h"
#include "sentinel/engine/session.h"

namespace sentinel {
namespace {

struct Window {
  int64_t begin = 0, end = 0;  // tokens [begin, end) are fed
  int64_t first_scored = 0;    // tokens [first_scored, end) are predicted in this window
};

// Windows of `ctx` tokens every `stride` tokens until the text's end; each token after the
// first is scored once, in the first window that covers it after the previous window's end.
std::vector<Window> plan_windows(int64_t n, const PerplexityOptions& options) {
  std::vector<Window> windows;
  int64_t prev_end = 0;
  for (int64_t begin = 0;; begin += options.stride) {
    const int64_t end = std::min(begin + options.ctx, n);
    windows.push_back(Window{begin, end, std::max(prev_end, begin + 1)});
    prev_end = end;
    if (end == n) break;
  }
  return windows;
}

// -sum log p(target) for logits [m, n_vocab] of rows predicting `targets` [m] int64.
double negative_log_likelihood(const at::Tensor& logits, const at::Tensor& targets) {
  return -logits.log_softmax(-1).gather(1, targets.unsqueeze(1)).sum().item<double>();
}

// K and V bytes one token occupies across all layers in the model's dtype.
int64_t kv_bytes(DecoderModel& model, int64_t n_tokens) {
  const ModelConfig& c = model->config();
  return uncompressed_kv_bytes(c.kv_shape(), n_tokens, c.head_dim * static_cast<int64_t>(at::elementSize(model->dtype())));
}

using Clock = std::chrono::steady_clock;

}  // namespace

void PerplexityOptions::validate() const {
  check(ctx >= 2, "--ctx must be >= 2, got ", ctx);
  check(stride >= 1 && stride <= ctx, "--stride must be in [1, ctx=", ctx, "], got ", stride);
}

double PerplexityResult::achieved_ratio() const {
  return ordinary_fed > 0 ? 1.0 - static_cast<double>(cells_retained) / static_cast<double>(ordinary_fed) : 0.0;
}

PerplexityResult strided_perplexity(DecoderModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                    const ProgressCallback& progress) {
  options.validate();
  const int64_t n = static_cast<int64_t>(ids.size());
  check(n >= 2, "perplexity needs at least 2 tokens, got ", n);
  c10::InferenceMode inference;
  const auto start = Clock::now();
  const auto device = model->embed_tokens->weight.device();
  const at::Tensor all_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong);
  const std::vector<Window> windows = plan_windows(n, options);

  PerplexityResult result;
  result.n_tokens = n;
  result.n_windows = static_cast<int64_t>(windows.size());
  for (const Window& w : windows) {
    at::Tensor window_ids = all_ids.slice(0, w.begin, w.end).unsqueeze(0).to(device);  // [1, L]
    at::Tensor positions = at::arange(w.end - w.begin, at::kLong).unsqueeze(0).to(device);
    at::Tensor hidden = model->forward({window_ids, positions, {}}).hidden[0];  // [L, n_embd]
    // hidden at index i predicts token i + 1 of the window.
    at::Tensor predictors = hidden.slice(0, w.first_scored - 1 - w.begin, w.end - 1 - w.begin);
    result.nll_sum += negative_log_likelihood(model->logits(predictors), all_ids.slice(0, w.first_scored, w.end).to(device));
    result.n_scored += w.end - w.first_scored;
    result.ordinary_fed += w.end - w.begin;
    result.cells_retained += w.end - w.begin;
    result.peak_kv_bytes = std::max(result.peak_kv_bytes, kv_bytes(model, w.end - w.begin));
    if (progress) progress(&w - windows.data() + 1, result.n_windows);
  }
  result.ppl = std::exp(result.nll_sum / static_cast<double>(result.n_scored));
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

void validate_compressed_perplexity(const PerplexityOptions& options, const PolicyOptions& policy, int64_t chunk) {
  options.validate();
  policy.validate();
  check(chunk >= 1, "--chunk must be >= 1, got ", chunk);
  if (policy.method == Method::Sentinel) {
    check(policy.span <= options.ctx || !policy.spans.empty(), "--span ", policy.span,
          " is longer than the evaluation window --ctx ", options.ctx, "; use a shorter span or a longer window");
    check(policy.window < options.ctx, "--window ", policy.window, " protects the whole evaluation window --ctx ",
          options.ctx, ", so nothing would be compressed; use a smaller --window");
  }
}

PerplexityResult compressed_perplexity(DecoderModel& model, std::span<const int32_t> ids, const PerplexityOptions& options,
                                       const PolicyOptions& policy, int64_t chunk, const ProgressCallback& progress,
                                       DecoderModel* reference) {
  validate_compressed_perplexity(options, policy, chunk);
  const int64_t n = static_cast<int64_t>(ids.size());
  check(n >= 2, "perplexity needs at least 2 tokens, got ", n);
  c10::InferenceMode inference;
  const auto start = Clock::now();
  const at::Tensor all_ids = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong);
  const std::vector<Window> windows = plan_windows(n, options);

  PerplexityResult result;
  result.n_tokens = n;
  result.n_windows = static_cast<int64_t>(windows.size());
  // Start small: the cache grows by doubling only as far as the policy lets it.
  Session session(model, model->cache_options(std::min<int64_t>(options.ctx, 256)), policy);
  result.has_reference = reference != nullptr;
  std::vector<at::Tensor> token_logprob, token_greedy, token_kl;  // options.per_token: one piece per fed chunk
  for (const Window& w : windows) {
    session.reset();
    // Token i of the text is predicted by the logits of token i - 1.
    const int64_t first_predictor = w.first_scored - 1;
    at::Tensor reference_log_p;  // [w.end - first_predictor - 1, n_vocab]: the reference's predictions of the scored tokens
    if (reference != nullptr) {
      const auto reference_start = Clock::now();
      const at::Tensor window_ids = all_ids.slice(0, w.begin, w.end).unsqueeze(0);
      const at::Tensor positions = at::arange(w.end - w.begin, at::kLong).unsqueeze(0);
      const at::Tensor hidden = (*reference)->forward({window_ids, positions, {}}).hidden[0];  // [L, n_embd]
      reference_log_p = (*reference)->logits(hidden.slice(0, first_predictor - w.begin, w.end - 1 - w.begin)).log_softmax(-1);
      result.reference_nll_sum += -reference_log_p.gather(1, all_ids.slice(0, w.first_scored, w.end).unsqueeze(1)).sum().item<double>();
      result.reference_seconds += std::chrono::duration<double>(Clock::now() - reference_start).count();
    }
    for (int64_t begin = w.begin; begin < w.end; begin += chunk) {
      const int64_t end = std::min(begin + chunk, w.end);
      const std::span<const int32_t> piece = ids.subspan(begin, end - begin);
      const int64_t lo = std::max(begin, first_predictor), hi = std::min(end, w.end - 1);  // predictors in piece
      if (lo >= hi) {
        session.append(piece, Logits::None, chunk);
        continue;
      }
      at::Tensor logits = session.append(piece, Logits::All, chunk);  // [end - begin, n_vocab]
      const at::Tensor predicted = logits.slice(0, lo - begin, hi - begin);  // [m, n_vocab]
      const at::Tensor targets = all_ids.slice(0, lo + 1, hi + 1).to(logits.device());  // [m]
      const at::Tensor log_p_target = predicted.log_softmax(-1).gather(1, targets.unsqueeze(1)).squeeze(1);  // [m]
      result.nll_sum += -log_p_target.sum().item<double>();
      if (options.per_token) {
        token_logprob.push_back(log_p_target.to(at::kCPU, at::kFloat));
        token_greedy.push_back((predicted.argmax(-1) == targets).to(at::kCPU));
      }
      if (reference != nullptr) {
        const auto compare_start = Clock::now();
        const at::Tensor log_p = predicted.to(at::kCPU).log_softmax(-1);  // [m, n_vocab]
        const at::Tensor ref = reference_log_p.slice(0, lo - first_predictor, hi - first_predictor);
        const at::Tensor kl = (ref.exp() * (ref - log_p)).sum(-1);  // [m]
        result.kl_sum += kl.sum().item<double>();
        if (options.per_token) token_kl.push_back(kl.to(at::kFloat));
        result.top1_agree += (ref.argmax(-1) == log_p.argmax(-1)).sum().item<int64_t>();
        result.reference_seconds += std::chrono::duration<double>(Clock::now() - compare_start).count();
      }
    }
    result.n_scored += w.end - w.first_scored;
    result.ordinary_fed += session.stats().ordinary_seen;
    result.cells_retained += session.stats().cells_in_use;
    result.peak_kv_bytes = std::max(result.peak_kv_bytes, session.stats().peak_bytes);
    if (progress) progress(&w - windows.data() + 1, result.n_windows);
  }
  result.ppl = std::exp(result.nll_sum / static_cast<double>(result.n_scored));
  if (options.per_token) {
    result.token_logprob = at::cat(token_logprob);
    result.token_greedy = at::cat(token_greedy);
    if (reference != nullptr) result.token_kl = at::cat(token_kl);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

double continuation_nll(DecoderModel& model, std::span<const int32_t> prefix, std::span<const int32_t> continuation) {
  check(!prefix.empty() && !continuation.empty(), "continuation_nll needs a prefix and a continuation");
  c10::InferenceMode inference;
  const auto device = model->embed_tokens->weight.device();
  std::vector<int64_t> all(prefix.begin(), prefix.end());
  all.insert(all.end(), continuation.begin(), continuation.end());
  const auto n = static_cast<int64_t>(all.size()), p = static_cast<int64_t>(prefix.size());
  const at::Tensor ids = at::tensor(all, at::kLong);
  const at::Tensor positions = at::arange(n, at::kLong).unsqueeze(0).to(device);
  const at::Tensor hidden = model->forward({ids.unsqueeze(0).to(device), positions, {}}).hidden[0];  // [n, n_embd]
  // Rows p-1 .. n-2 predict the continuation's tokens.
  return negative_log_likelihood(model->logits(hidden.slice(0, p - 1, n - 1)), ids.slice(0, p, n).to(device));
}

}  // namespace sentinel
