// KV cache storage: preallocated per layer, doubled on overflow, compacted on eviction.
#include "sentinel/cache/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/model/config.h"

namespace sentinel {

namespace {

at::ScalarType torch_dtype(kernels::RowType type) {
  switch (type) {
    case kernels::RowType::F16: return at::kHalf;
    case kernels::RowType::BF16: return at::kBFloat16;
    case kernels::RowType::Q8_0: return at::kByte;
    default: return at::kFloat;
  }
}

// Moves runs of cells [from, from + length) down to consecutive places from `to`, in every head of
// a contiguous CPU storage [1, heads, capacity, row]. memmove handles the overlap of a run with
// its target, so nothing is copied twice: the stream layout evicts a span just after the sinks,
// and the window behind it (most of the cache) moves once per eviction.
void move_runs_in_place(at::Tensor& storage, const std::vector<std::pair<int64_t, int64_t>>& runs, int64_t to) {
  const int64_t heads = storage.size(0) * storage.size(1), capacity = storage.size(2);
  const int64_t cell_bytes = storage.size(3) * static_cast<int64_t>(storage.element_size());
  auto* base = static_cast<uint8_t*>(storage.data_ptr());
  for (int64_t h = 0; h < heads; ++h) {
    uint8_t* head = base + h * capacity * cell_bytes;
    int64_t target = to;
    for (const auto& [from, length] : runs) {
      std::memmove(head + target * cell_bytes, head + from * cell_bytes, static_cast<size_t>(length * cell_bytes));
      target += length;
    }
  }
}

}  // namespace

KvStorage parse_kv_storage(const std::string& name) {
  if (name == "f32" || name == "float32") return KvStorage::F32;
  if (name == "f16" || name == "float16") return KvStorage::F16;
  if (name == "bf16" || name == "bfloat16") return KvStorage::BF16;
  if (name == "q8_0") return KvStorage::Q8_0;
  fail("unknown KV dtype '", name, "'; use f32, f16, bf16 or q8_0");
}

std::string kv_storage_name(KvStorage storage) {
  switch (storage) {
    case KvStorage::Compute: return "compute";
    case KvStorage::F32: return "f32";
    case KvStorage::F16: return "f16";
    case KvStorage::BF16: return "bf16";
    case KvStorage::Q8_0: return "q8_0";
  }
  return "?";
}

kernels::RowType kv_row_type(KvStorage storage, at::ScalarType compute_dtype) {
  switch (storage) {
    case KvStorage::Compute: return compute_dtype == at::kBFloat16 ? kernels::RowType::BF16 : kernels::RowType::F32;
    case KvStorage::F32: return kernels::RowType::F32;
    case KvStorage::F16: return kernels::RowType::F16;
    case KvStorage::BF16: return kernels::RowType::BF16;
    case KvStorage::Q8_0: return kernels::RowType::Q8_0;
  }
  return kernels::RowType::F32;
}

KvCache::KvCache(const ModelConfig& config, const KvCacheOptions& options)
    : options_(options), n_head_kv_(config.n_head_kv), head_dim_(config.head_dim) {
  check(options.capacity > 0, "KV cache capacity must be > 0, got ", options.capacity);
  row_type_ = kv_row_type(options.storage, options.dtype);
  check(row_type_ != kernels::RowType::Q8_0 || head_dim_ % kernels::kBlock == 0, "a q8_0 KV cache needs head_dim a ",
        "multiple of 32, this model has ", head_dim_, "; use --kv-dtype f16");
  check(row_type_ == kernels::RowType::F32 || options.device.is_cpu(), "KV dtype ", kernels::row_type_name(row_type_),
        " is stored on the CPU only; on ", options.device, " use the compute dtype");
  row_bytes_ = kernels::row_bytes(row_type_, head_dim_);
  keys_.resize(config.n_layer);
  values_.resize(config.n_layer);
  grow_to(options.capacity);
}

void KvCache::grow_to(int64_t new_capacity) {
  const auto tensor_options = at::TensorOptions().dtype(torch_dtype(row_type_)).device(options_.device);
  const int64_t last_dim = row_type_ == kernels::RowType::Q8_0 ? row_bytes_ : head_dim_;
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    at::Tensor k = at::empty({1, n_head_kv_, new_capacity, last_dim}, tensor_options);
    at::Tensor v = at::empty({1, n_head_kv_, new_capacity, last_dim}, tensor_options);
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
  // 1.5x, not 2x: a cache grown past a long prompt by a few decoded tokens would otherwise hold
  // up to twice the memory it uses (8,192 + 32 tokens: 16,384 cells). Layers regrow one at a
  // time, so the copy never holds two whole caches.
  grow_to(std::max(needed, capacity_ + capacity_ / 2));
}

void KvCache::write(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n_new = k.size(2);
  check(size() + n_new <= capacity_, "KV cache write of ", n_new, " cells past capacity ", capacity_,
        " (call reserve_for first)");
  keys_.at(layer).narrow(2, size(), n_new).copy_(stored(k));
  values_.at(layer).narrow(2, size(), n_new).copy_(stored(v));
}

at::Tensor KvCache::stored(const at::Tensor& rows) const {
  if (row_type_ != kernels::RowType::Q8_0) return rows;  // copy_ converts between float types
  const at::Tensor x = rows.to(at::kFloat).contiguous();  // [1, n_head_kv, T, head_dim]
  const int64_t n_rows = x.numel() / head_dim_;
  at::Tensor out = at::empty({1, x.size(1), x.size(2), row_bytes_}, at::kByte);
  const kernels::KernelTable& k = kernels::kernels();
  for (int64_t r = 0; r < n_rows; ++r)
    k.f32_to_row(row_type_, x.data_ptr<float>() + r * head_dim_, out.data_ptr<uint8_t>() + r * row_bytes_, head_dim_);
  return out;
}

at::Tensor KvCache::loaded(const at::Tensor& rows) const {
  if (row_type_ != kernels::RowType::Q8_0) return rows.scalar_type() == options_.dtype ? rows : rows.to(options_.dtype);
  const at::Tensor bytes = rows.contiguous();  // [1, n_head_kv, n, row_bytes]
  at::Tensor out = at::empty({1, bytes.size(1), bytes.size(2), head_dim_}, at::kFloat);
  const int64_t n_rows = bytes.size(1) * bytes.size(2);
  const kernels::KernelTable& k = kernels::kernels();
  for (int64_t r = 0; r < n_rows; ++r)
    k.row_to_f32(row_type_, bytes.data_ptr<uint8_t>() + r * row_bytes_, out.data_ptr<float>() + r * head_dim_, head_dim_);
  return out.to(options_.dtype);
}

at::Tensor KvCache::keys(int64_t layer, int64_t n) const { return loaded(keys_.at(layer).narrow(2, 0, n)); }
at::Tensor KvCache::values(int64_t layer, int64_t n) const { return loaded(values_.at(layer).narrow(2, 0, n)); }

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
  std::vector<CacheCell> kept_cells;
  kept_cells.reserve(cells_.size());
  for (int64_t i = 0; i < size(); ++i)
    if (!drop[i]) kept_cells.push_back(cells_[i]);
  // Cells before the first dropped one stay where they are; only the rest moves, in runs of
  // consecutive kept cells (a closed sentinel span leaves one run: the recent window after it).
  const int64_t first_drop = std::find(drop.begin(), drop.end(), true) - drop.begin();
  std::vector<std::pair<int64_t, int64_t>> runs;  // [source begin, length) of kept cells after first_drop
  for (int64_t i = first_drop; i < size();) {
    if (drop[i]) {
      ++i;
      continue;
    }
    const int64_t begin = i;
    while (i < size() && !drop[i]) ++i;
    runs.emplace_back(begin, i - begin);
  }
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    for (at::Tensor* storage : {&keys_[layer], &values_[layer]}) {
      if (storage->is_cpu() && storage->is_contiguous()) {
        move_runs_in_place(*storage, runs, first_drop);
        continue;
      }
      int64_t to = first_drop;
      for (const auto& [from, length] : runs) {
        // Moving down within one storage: copy through a temporary when source and target overlap.
        at::Tensor source = storage->narrow(2, from, length);
        storage->narrow(2, to, length).copy_(from < to + length ? source.clone() : source);
        to += length;
      }
    }
  }
  cells_ = std::move(kept_cells);
}

void KvCache::clear() { cells_.clear(); }

int64_t KvCache::bytes_in_use() const { return 2 * n_layer() * n_head_kv_ * row_bytes_ * size(); }

int64_t KvCache::bytes_allocated() const { return 2 * n_layer() * n_head_kv_ * row_bytes_ * capacity_; }

std::string KvCache::summary() const {
  std::ostringstream out;
  out << size() << "/" << capacity_ << " cells, " << bytes_in_use() << " bytes in use";
  return out.str();
}

}  // namespace sentinel
