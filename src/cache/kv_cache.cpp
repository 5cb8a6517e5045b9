// KV cache storage: preallocated per layer, doubled on overflow, compacted on eviction.
#include "sentinel/cache/kv_cache.h"

#include <algorithm>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/model/config.h"

namespace sentinel {

KvCache::KvCache(const LlamaConfig& config, const KvCacheOptions& options)
    : options_(options), n_head_kv_(config.n_head_kv), head_dim_(config.head_dim) {
  check(options.capacity > 0, "KV cache capacity must be > 0, got ", options.capacity);
  keys_.resize(config.n_layer);
  values_.resize(config.n_layer);
  grow_to(options.capacity);
}

void KvCache::grow_to(int64_t new_capacity) {
  const auto tensor_options = at::TensorOptions().dtype(options_.dtype).device(options_.device);
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    at::Tensor k = at::empty({1, n_head_kv_, new_capacity, head_dim_}, tensor_options);
    at::Tensor v = at::empty({1, n_head_kv_, new_capacity, head_dim_}, tensor_options);
    if (size() > 0) {
      k.narrow(2, 0, size()).copy_(keys_[layer].narrow(2, 0, size()));
      v.narrow(2, 0, size()).copy_(values_[layer].narrow(2, 0, size()));
    }
    keys_[layer] = std::move(k);
    values_[layer] = std::move(v);
  }
  capacity_ = new_capacity;
}

void KvCache::reserve_for(int64_t n_new) {
  const int64_t needed = size() + n_new;
  if (needed <= capacity_) return;
  grow_to(std::max(needed, 2 * capacity_));
}

void KvCache::write(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n_new = k.size(2);
  check(size() + n_new <= capacity_, "KV cache write of ", n_new, " cells past capacity ", capacity_,
        " (call reserve_for first)");
  keys_.at(layer).narrow(2, size(), n_new).copy_(k);
  values_.at(layer).narrow(2, size(), n_new).copy_(v);
}

at::Tensor KvCache::keys(int64_t layer, int64_t n) const { return keys_.at(layer).narrow(2, 0, n); }
at::Tensor KvCache::values(int64_t layer, int64_t n) const { return values_.at(layer).narrow(2, 0, n); }

void KvCache::commit(std::span<const CacheCell> cells) {
  check(size() + static_cast<int64_t>(cells.size()) <= capacity_, "KV cache commit past capacity");
  cells_.insert(cells_.end(), cells.begin(), cells.end());
}

void KvCache::evict(std::span<const int64_t> cell_indices) {
  if (cell_indices.empty()) return;
  std::vector<bool> drop(cells_.size(), false);
  for (int64_t i : cell_indices) {
    check(i >= 0 && i < size(), "cannot evict cell ", i, ": the cache holds ", size(), " cells");
    check(!drop[i], "cell ", i, " listed twice for eviction");
    drop[i] = true;
  }
  std::vector<int64_t> keep;
  std::vector<CacheCell> kept_cells;
  keep.reserve(cells_.size());
  for (int64_t i = 0; i < size(); ++i) {
    if (drop[i]) continue;
    keep.push_back(i);
    kept_cells.push_back(cells_[i]);
  }
  const int64_t n_keep = static_cast<int64_t>(keep.size());
  if (n_keep > 0) {
    const at::Tensor index = at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(options_.device);
    for (size_t layer = 0; layer < keys_.size(); ++layer) {
      // index_select copies first, so writing the result over the front of the same storage is safe.
      keys_[layer].narrow(2, 0, n_keep).copy_(keys_[layer].index_select(2, index));
      values_[layer].narrow(2, 0, n_keep).copy_(values_[layer].index_select(2, index));
    }
  }
  cells_ = std::move(kept_cells);
}

void KvCache::clear() { cells_.clear(); }

int64_t KvCache::bytes_in_use() const {
  return 2 * n_layer() * n_head_kv_ * head_dim_ * size() * static_cast<int64_t>(at::elementSize(options_.dtype));
}

int64_t KvCache::bytes_allocated() const {
  return 2 * n_layer() * n_head_kv_ * head_dim_ * capacity_ * static_cast<int64_t>(at::elementSize(options_.dtype));
}

std::string KvCache::summary() const {
  std::ostringstream out;
  out << size() << "/" << capacity_ << " cells, " << bytes_in_use() << " bytes in use";
  return out.str();
}

}  // namespace sentinel
