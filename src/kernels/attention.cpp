// Attention for the quantized path: scores, an exponent pass and the value pass per chunk of
// keys, for every query head of a KV head's group while its rows are hot, then the chunks'
// partial softmaxes merged per head.
#include "sentinel/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "sentinel/core/error.h"

namespace sentinel::kernels {
namespace {

// Keys scored per kernel call: the block's rows stay in L1 while every query head of the group
// reads them (8 KiB of f16 at head_dim 64).
constexpr int64_t kRowsPerBlock = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Keys a query may attend to lie below this index (causal: the query's own key is the last).
int64_t visible_end(const AttentionJob& job, int64_t query) {
  return job.mask != nullptr ? job.n_keys : job.n_keys - job.n_queries + query + 1;
}

}  // namespace

void attention(const AttentionShape& shape, std::span<const AttentionJob> jobs, float scale, ThreadPool& pool,
               AttentionScratch& scratch, const KernelTable& k) {
  const int64_t n_head = shape.n_head, n_kv = shape.n_head_kv, hd = shape.head_dim;
  check(n_kv > 0 && n_head % n_kv == 0 && hd > 0, "attention: ", n_head, " query heads cannot share ", n_kv,
        " KV heads");
  const int64_t group = n_head / n_kv;
  const int64_t partial_size = 2 + hd;  // max, sum, accumulator

  // Keys split into chunks of a size that depends on the cache length and the thread count only,
  // never on how many queries come along: then a query's arithmetic (and so, through the 8-bit
  // rounding of the next layer's activations, the whole result) is the same whether its token is
  // decoded alone or in a chunk, as method.md section 6 wants. Never tiny chunks.
  const int64_t chunks_wanted = 4 * pool.size();

  auto& items = scratch.items;
  items.clear();
  scratch.first_item.clear();
  scratch.prob_offset.clear();
  int64_t n_probabilities = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const AttentionJob& job = jobs[j];
    check(job.n_queries >= 1 && job.n_keys >= job.n_queries, "attention job ", j, ": ", job.n_queries,
          " queries over ", job.n_keys, " keys (the new keys must be written first)");
    scratch.prob_offset.push_back(n_probabilities);
    n_probabilities += job.n_queries * n_head * job.n_keys;
    const int64_t chunk = std::max<int64_t>(256, (job.n_keys + chunks_wanted - 1) / chunks_wanted);
    for (int64_t t = 0; t < job.n_queries; ++t) {
      const int64_t end = visible_end(job, t);
      // A masked query skips the chunks it sees nothing of (a <CL> sees itself, a <CR> its span):
      // they would add nothing to its softmax, so the sum over the others is the same sum.
      const uint8_t* row = job.mask != nullptr ? job.mask + t * job.n_keys : nullptr;
      auto sees_any = [&](int64_t begin, int64_t stop) {
        return row == nullptr || std::any_of(row + begin, row + stop, [](uint8_t visible) { return visible != 0; });
      };
      std::vector<int64_t>& begins = scratch.chunk_begins;  // the query's chunks, the same for every KV head
      begins.clear();
      for (int64_t begin = 0; begin < end; begin += chunk)
        if (sees_any(begin, std::min(end, begin + chunk))) begins.push_back(begin);
      if (begins.empty()) begins.push_back(0);  // one chunk, all -inf, gives it zeros
      for (int64_t g = 0; g < n_kv; ++g) {
        scratch.first_item.push_back(static_cast<int64_t>(items.size()));
        for (int64_t begin : begins) items.push_back({static_cast<int64_t>(j), t, g, begin, std::min(end, begin + chunk)});
      }
    }
  }
  scratch.first_item.push_back(static_cast<int64_t>(items.size()));
  scratch.probabilities.resize(static_cast<size_t>(n_probabilities));
  scratch.partials.resize(items.size() * group * partial_size);

  float* probabilities = scratch.probabilities.data();
  float* partials = scratch.partials.data();
  scratch.block_max.resize(static_cast<size_t>(pool.size() * group));
  pool.parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t first, int64_t last, int thread) {
    float* block_max = scratch.block_max.data() + static_cast<size_t>(thread) * group;
    for (int64_t i = first; i < last; ++i) {
      const AttentionScratch::Item& item = items[i];
      const AttentionJob& job = jobs[item.job];
      const int64_t S = job.n_keys;
      float* probs = probabilities + scratch.prob_offset[item.job] + (item.query * n_head + item.kv_head * group) * S;
      const float* q = job.q + (item.query * n_head + item.kv_head * group) * hd;
      const uint8_t* mask = job.mask != nullptr ? job.mask + item.query * S : nullptr;
      const uint8_t* keys = job.keys + item.kv_head * job.head_stride;
      const uint8_t* values = job.values + item.kv_head * job.head_stride;
      float* partial = partials + i * group * partial_size;
      for (int64_t h = 0; h < group; ++h) partial[h * partial_size] = kNegInf;

      for (int64_t b = item.begin; b < item.end; b += kRowsPerBlock) {
        const int64_t n = std::min(kRowsPerBlock, item.end - b);
        k.scores(job.kv_type, keys + b * job.row_stride, job.row_stride, n, hd, q, group, scale, probs + b, S, block_max);
        for (int64_t h = 0; h < group; ++h) {
          if (mask != nullptr) {
            float* p = probs + h * S + b;
            block_max[h] = kNegInf;
            for (int64_t r = 0; r < n; ++r) {
              if (mask[b + r] == 0) p[r] = kNegInf;
              block_max[h] = std::max(block_max[h], p[r]);
            }
          }
          partial[h * partial_size] = std::max(partial[h * partial_size], block_max[h]);
        }
      }
      bool any_visible = false;
      for (int64_t h = 0; h < group; ++h) {
        float* ph = partial + h * partial_size;
        ph[1] = ph[0] == kNegInf ? 0.0f : k.exp_shift_sum(probs + h * S + item.begin, item.end - item.begin, ph[0]);
        std::fill(ph + 2, ph + 2 + hd, 0.0f);
        if (ph[0] == kNegInf) std::fill(probs + h * S + item.begin, probs + h * S + item.end, 0.0f);
        any_visible = any_visible || ph[1] > 0.0f;
      }
      if (!any_visible) continue;
      // Heads that see nothing here have all-zero probabilities, so they add nothing.
      for (int64_t b = item.begin; b < item.end; b += kRowsPerBlock) {
        const int64_t n = std::min(kRowsPerBlock, item.end - b);
        k.accumulate(job.kv_type, values + b * job.row_stride, job.row_stride, n, hd, probs + b, S, group, partial + 2,
                     partial_size);
      }
    }
  });

  // Merge the chunks of every (job, query, KV head): out = sum_i acc_i e^(m_i - M) / sum_i l_i e^(m_i - M).
  const int64_t n_triples = static_cast<int64_t>(scratch.first_item.size()) - 1;
  scratch.merged.resize(static_cast<size_t>(n_triples * group * 2));
  pool.parallel_for(n_triples, 8, [&](int64_t first, int64_t last, int) {
    for (int64_t triple = first; triple < last; ++triple) {
      const int64_t i0 = scratch.first_item[triple], i1 = scratch.first_item[triple + 1];
      if (i0 == i1) continue;
      const AttentionScratch::Item& head_item = items[i0];
      const AttentionJob& job = jobs[head_item.job];
      for (int64_t h = 0; h < group; ++h) {
        const int64_t head = head_item.kv_head * group + h;
        float M = kNegInf;
        for (int64_t i = i0; i < i1; ++i) {
          const float* ph = partials + (i * group + h) * partial_size;
          if (ph[1] > 0.0f) M = std::max(M, ph[0]);
        }
        float* out = job.out + (head_item.query * n_head + head) * hd;
        float* merged = scratch.merged.data() + (triple * group + h) * 2;
        merged[0] = M;
        std::fill(out, out + hd, 0.0f);
        if (M == kNegInf) continue;  // nothing visible: zeros rather than NaN
        float L = 0.0f;
        for (int64_t i = i0; i < i1; ++i) {
          const float* ph = partials + (i * group + h) * partial_size;
          if (ph[1] <= 0.0f) continue;
          const float w = std::exp(ph[0] - M);
          L += w * ph[1];
          for (int64_t d = 0; d < hd; ++d) out[d] += w * ph[2 + d];
        }
        const float inv = 1.0f / L;
        merged[1] = inv;
        for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
      }
    }
  });

  // The attention mass (H2O): each key's normalised probability, summed over heads and queries.
  bool any_mass = false;
  for (const AttentionJob& job : jobs) any_mass = any_mass || job.mass != nullptr;
  if (!any_mass) return;
  for (int64_t triple = 0; triple < n_triples; ++triple) {
    const int64_t i0 = scratch.first_item[triple], i1 = scratch.first_item[triple + 1];
    if (i0 == i1 || jobs[items[i0].job].mass == nullptr) continue;
    const AttentionJob& job = jobs[items[i0].job];
    if (job.mass_queries != nullptr && job.mass_queries[items[i0].query] == 0) continue;
    const int64_t S = job.n_keys;
    for (int64_t h = 0; h < group; ++h) {
      const float* merged = scratch.merged.data() + (triple * group + h) * 2;  // M, 1 / L
      if (merged[0] == kNegInf) continue;
      for (int64_t i = i0; i < i1; ++i) {
        const AttentionScratch::Item& item = items[i];
        const float* ph = partials + (i * group + h) * partial_size;
        if (ph[1] <= 0.0f) continue;
        const float factor = std::exp(ph[0] - merged[0]) * merged[1];
        const float* p = probabilities + scratch.prob_offset[item.job] + (item.query * n_head + item.kv_head * group + h) * S;
        for (int64_t key = item.begin; key < item.end; ++key) job.mass[key] += p[key] * factor;
      }
    }
  }
}

}  // namespace sentinel::kernels

namespace sentinel::kernels {

void attention_reference(const AttentionShape& shape, const AttentionJob& job, float scale) {
  const int64_t n_head = shape.n_head, hd = shape.head_dim, group = n_head / shape.n_head_kv, S = job.n_keys;
  const KernelTable& k = kernel_table(Isa::Scalar);
  std::vector<float> key(hd), value(hd);
  std::vector<double> score(S), acc(hd);
  for (int64_t t = 0; t < job.n_queries; ++t) {
    const int64_t end = visible_end(job, t);
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t g = h / group;
      const float* q = job.q + (t * n_head + h) * hd;
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < S; ++c) {
        const bool visible = c < end && (job.mask == nullptr || job.mask[t * S + c] != 0);
        score[c] = -std::numeric_limits<double>::infinity();
        if (!visible) continue;
        k.row_to_f32(job.kv_type, job.keys + g * job.head_stride + c * job.row_stride, key.data(), hd);
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[d]) * key[d];
        score[c] = dot * scale;
        max = std::max(max, score[c]);
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      double sum = 0.0;
      for (int64_t c = 0; c < S && max > -std::numeric_limits<double>::infinity(); ++c) {
        if (score[c] == -std::numeric_limits<double>::infinity()) continue;
        const double p = std::exp(score[c] - max);
        sum += p;
        score[c] = p;
        k.row_to_f32(job.kv_type, job.values + g * job.head_stride + c * job.row_stride, value.data(), hd);
        for (int64_t d = 0; d < hd; ++d) acc[d] += p * value[d];
      }
      float* out = job.out + (t * n_head + h) * hd;
      for (int64_t d = 0; d < hd; ++d) out[d] = sum > 0.0 ? static_cast<float>(acc[d] / sum) : 0.0f;
      if (job.mass != nullptr && sum > 0.0 && (job.mass_queries == nullptr || job.mass_queries[t] != 0))
        for (int64_t c = 0; c < S; ++c)
          if (score[c] != -std::numeric_limits<double>::infinity()) job.mass[c] += static_cast<float>(score[c] / sum);
    }
  }
}

}  // namespace sentinel::kernels
