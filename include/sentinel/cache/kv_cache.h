// The KV cache: per-layer key/value storage plus per-cell metadata (position id, token kind,
// sequence). It only stores and compacts; deciding what to keep or what a query may see is
// the job of the caller's plan (docs/method.md section 6). Not thread-safe.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sentinel/kernels/kernels.h"

namespace sentinel {

struct ModelConfig;

// What a cached token is. Sentinels are the compression tokens of docs/method.md section 2.
enum class CellKind : uint8_t { Ordinary, CompressLeft /* <CL> */, CompressRight /* <CR> */ };

struct CacheCell {
  int64_t position = 0;  // rotary position id the key was computed with (never changes)
  CellKind kind = CellKind::Ordinary;
  int32_t seq = 0;       // sequence the cell belongs to
  int32_t span = -1;     // compression span the token belongs to (sentinels: the span they open/close)
};

// How K/V rows are stored. Compute stores them in `dtype`, the model's compute dtype; the others
// trade precision for memory and bandwidth (q8_0: ggml's 8-bit blocks of 32, 34 bytes per 32
// values) and stack with compression. keys()/values() hand the dense path `dtype` tensors either way.
enum class KvStorage : uint8_t { Compute, F32, F16, BF16, Q8_0 };
KvStorage parse_kv_storage(const std::string& name);  // "f32", "f16", "bf16", "q8_0"; throws naming them
std::string kv_storage_name(KvStorage storage);
// The row type K/V are stored as: Compute resolves to the compute dtype's (f32 or bf16).
kernels::RowType kv_row_type(KvStorage storage, at::ScalarType compute_dtype);

struct KvCacheOptions {
  int64_t capacity = 512;                  // initial cells; grows by doubling when exceeded
  at::ScalarType dtype = at::kFloat;       // the model's compute dtype
  at::Device device = at::kCPU;
  KvStorage storage = KvStorage::Compute;  // what the rows are stored as
};

class KvCache {
 public:
  KvCache(const ModelConfig& config, const KvCacheOptions& options);

  int64_t size() const { return static_cast<int64_t>(cells_.size()); }  // cells in use
  int64_t capacity() const { return capacity_; }
  int64_t n_layer() const { return static_cast<int64_t>(keys_.size()); }
  const std::vector<CacheCell>& cells() const { return cells_; }
  at::ScalarType dtype() const { return options_.dtype; }
  kernels::RowType row_type() const { return row_type_; }  // storage type of one K or V row

  // Raw rows for the quantized path's kernels: row (kv head h, cell c) of a layer's keys starts at
  // key_data(layer) + h * head_stride() + c * row_stride() (bytes); values alike.
  uint8_t* key_data(int64_t layer) { return static_cast<uint8_t*>(keys_.at(layer).data_ptr()); }
  uint8_t* value_data(int64_t layer) { return static_cast<uint8_t*>(values_.at(layer).data_ptr()); }
  int64_t row_stride() const { return row_bytes_; }
  int64_t head_stride() const { return capacity_ * row_bytes_; }

  // --- used by the model's forward pass, in this order ---
  // Makes room for n_new cells after the current ones (may reallocate).
  void reserve_for(int64_t n_new);
  // Writes the new tokens' K/V of one layer at cells [size(), size()+T), converting to the storage.
  // k, v: [1, n_head_kv, T, head_dim] in the compute dtype.
  void write(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // The first n cells of a layer, [1, n_head_kv, n, head_dim] in the compute dtype: views when
  // rows are stored in it, converted copies otherwise.
  at::Tensor keys(int64_t layer, int64_t n) const;
  at::Tensor values(int64_t layer, int64_t n) const;
  // Makes the written cells part of the cache; `cells` describes them in order.
  void commit(std::span<const CacheCell> cells);

  // --- eviction: the one place that removes cells ---
  // Drops the given cell indices (any order, no duplicates) from every layer and compacts the
  // rest to the front, keeping their order, so memory and attention cost really shrink.
  void evict(std::span<const int64_t> cell_indices);
  void clear();

  int64_t bytes_in_use() const;     // K and V bytes of the cells in use, all layers
  int64_t bytes_allocated() const;  // K and V bytes of the storage, all layers
  std::string summary() const;

 private:
  void grow_to(int64_t new_capacity);
  at::Tensor stored(const at::Tensor& rows) const;  // [1, n_head_kv, T, head_dim] -> storage layout
  at::Tensor loaded(const at::Tensor& rows) const;  // storage layout -> compute dtype

  KvCacheOptions options_;
  kernels::RowType row_type_ = kernels::RowType::F32;
  int64_t n_head_kv_ = 0;
  int64_t head_dim_ = 0;
  int64_t row_bytes_ = 0;  // bytes of one stored row of head_dim values
  int64_t capacity_ = 0;
  // [n_layer][1, n_head_kv, capacity, head_dim] in the storage dtype; q8_0: [.., capacity, row_bytes] uint8
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  std::vector<CacheCell> cells_;    // [size()] metadata of the cells in use
};

}  // namespace sentinel
