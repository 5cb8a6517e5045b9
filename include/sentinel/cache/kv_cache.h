// The KV cache: per-layer key/value storage plus per-cell metadata (position id, token kind,
// span). It only stores and compacts; deciding what to keep or what a query may see is
// the job of the caller's plan (docs/method.md section 6). Not thread-safe.
//
// Every layer holds the same cells, except the sliding-window layers of models that have them
// (Gemma 3): a query there sees only keys less than `sliding_window` positions behind it, so those
// layers keep a bounded suffix of the cells, the window, and drop older rows as positions advance.
// Compression plans over the whole cell list (what the global layers hold); an evicted cell leaves
// every layer that still holds it.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sentinel/cache/cache_cell.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel {

// What a cache stores for one model: the sizes its layers' K/V rows take, as the model describes
// them (ModelConfig::kv_shape()). The cache knows these numbers, not the model.
struct KvShape {
  int64_t n_layer = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  // Sliding-window layers (Gemma 3): a query there sees only keys less than `sliding_window`
  // positions behind it. 0 = the model has no such layers.
  int64_t sliding_window = 0;
  std::vector<uint8_t> sliding_layers;  // [n_layer] 1 = a sliding-window layer; empty = none
  bool is_sliding(int64_t layer) const {
    return sliding_window > 0 && !sliding_layers.empty() && sliding_layers[static_cast<size_t>(layer)] != 0;
  }
};

// How K/V rows are stored. Compute stores them in `dtype`, the model's compute dtype; the others
// trade precision for memory and bandwidth (q8_0: ggml's 8-bit blocks of 32, 34 bytes per 32
// values) and stack with compression. keys()/values() hand the dense path `dtype` tensors either way.
enum class KvStorage : uint8_t { Compute, F32, F16, BF16, Q8_0 };
KvStorage parse_kv_storage(const std::string& name);  // "f32", "f16", "bf16", "q8_0"; throws naming them
// The row type K/V are stored as: Compute resolves to the compute dtype's (f32 or bf16).
kernels::RowType kv_row_type(KvStorage storage, at::ScalarType compute_dtype);

// K and V bytes an uncompressed cache of n_tokens holds, rows of row_bytes: every cell in the
// global layers, at most the window in the sliding-window ones.
int64_t uncompressed_kv_bytes(const KvShape& shape, int64_t n_tokens, int64_t row_bytes);

struct KvCacheOptions {
  int64_t capacity = 512;                  // initial cells; grows by doubling when exceeded
  at::ScalarType dtype = at::kFloat;       // the model's compute dtype
  at::Device device = at::kCPU;
  KvStorage storage = KvStorage::Compute;  // what the rows are stored as
};

class KvCache {
 public:
  KvCache(const KvShape& shape, const KvCacheOptions& options);

  int64_t size() const { return static_cast<int64_t>(cells_.size()); }  // cells in use
  int64_t capacity() const { return capacity_; }
  int64_t n_layer() const { return static_cast<int64_t>(keys_.size()); }
  const std::vector<CacheCell>& cells() const { return cells_; }
  at::ScalarType dtype() const { return options_.dtype; }
  kernels::RowType row_type() const { return row_type_; }  // storage type of one K or V row

  // The first cell a layer stores: 0, or window_begin() in a sliding-window layer.
  int64_t first_cell(int64_t layer) const { return is_window_layer(layer) ? window_begin_ : 0; }
  int64_t window_begin() const { return window_begin_; }
  bool is_window_layer(int64_t layer) const { return window_layers_.at(static_cast<size_t>(layer)) != 0; }
  bool has_window_layers() const { return sliding_window_ > 0; }

  // Raw rows for the quantized path's kernels: row (kv head h, cell c) of a layer's keys starts at
  // key_data(layer) + h * head_stride(layer) + (c - first_cell(layer)) * row_stride() (bytes);
  // values alike.
  uint8_t* key_data(int64_t layer) { return raw(keys_.at(layer), layer); }
  uint8_t* value_data(int64_t layer) { return raw(values_.at(layer), layer); }
  int64_t row_stride() const { return row_bytes_; }
  int64_t head_stride(int64_t layer) const { return keys_.at(layer).size(2) * row_bytes_; }

  // --- used by the model's forward pass, in this order ---
  // Makes room for n_new cells after the current ones (may reallocate, may move a window), whose
  // smallest position is first_position. Throws when a sliding-window layer has already dropped
  // keys such a query would see (positions never go back in a sequence).
  void reserve_for(int64_t n_new, int64_t first_position);
  // Writes the new tokens' K/V of one layer at cells [size(), size()+T), converting to the storage.
  // k, v: [1, n_head_kv, T, head_dim] in the compute dtype.
  void write(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // Cells [first_cell(layer), n) of a layer, [1, n_head_kv, n - first_cell(layer), head_dim] in the
  // compute dtype: views when rows are stored in it, converted copies otherwise.
  at::Tensor keys(int64_t layer, int64_t n) const;
  at::Tensor values(int64_t layer, int64_t n) const;
  // Makes the written cells part of the cache; `cells` describes them in order.
  void commit(std::span<const CacheCell> cells);
  // No later query has a position below `lowest`: the cells it cannot see (position <= lowest -
  // sliding_window) leave the window layers. Without this call they keep every cell.
  void release_window(int64_t lowest);

  // --- restoring a saved cache ---
  // Makes an empty cache hold `cells`, the window layers cells [window_begin, n), with their rows
  // not yet written: the caller copies the saved rows in through key_data/value_data. The cells
  // before window_begin count as released.
  void prepare_restore(std::span<const CacheCell> cells, int64_t window_begin);

  // --- eviction: the one place that removes cells ---
  // Drops the given cell indices (any order, no duplicates) from every layer and packs the rest,
  // keeping their order, so memory and attention cost really shrink. The global layers move as
  // few rows as they can: their cells may start later in the storage (evicting a span just after
  // the sinks moves the sinks, not the window behind the span).
  void evict(std::span<const int64_t> cell_indices);
  void clear();

  // K and V bytes of the cells held, by layer type and in all; of the storage allocated.
  int64_t global_bytes_in_use() const;
  int64_t window_bytes_in_use() const;
  int64_t bytes_in_use() const { return global_bytes_in_use() + window_bytes_in_use(); }
  int64_t bytes_allocated() const;
  int64_t bytes_uncompressed(int64_t n_tokens) const;  // uncompressed_kv_bytes of these rows
  std::string summary() const;

 private:
  void grow_to(int64_t new_capacity);
  void move_to_front();  // the global layers' rows back to row 0
  // The storage row of a layer's first cell: front_ in the global layers, 0 in the window ones.
  int64_t row_offset(int64_t layer) const { return is_window_layer(layer) ? 0 : front_; }
  uint8_t* raw(const at::Tensor& storage, int64_t layer) const {
    return static_cast<uint8_t*>(storage.data_ptr()) + row_offset(layer) * row_bytes_;
  }
  void reserve_window(int64_t n_new);
  void resize_layer(size_t layer, int64_t capacity, int64_t first_cell);
  int64_t bytes_per_layer_cell() const { return 2 * n_head_kv_ * row_bytes_; }
  at::Tensor stored(const at::Tensor& rows) const;  // [1, n_head_kv, T, head_dim] -> storage layout
  at::Tensor loaded(const at::Tensor& rows) const;  // storage layout -> compute dtype

  KvCacheOptions options_;
  kernels::RowType row_type_ = kernels::RowType::F32;
  int64_t n_head_kv_ = 0;
  int64_t head_dim_ = 0;
  int64_t row_bytes_ = 0;  // bytes of one stored row of head_dim values
  int64_t capacity_ = 0;            // cells the global layers' storage holds
  int64_t front_ = 0;               // the global layers' row of cell 0 (rows before it are free)
  int64_t sliding_window_ = 0;      // the model's window in positions; 0 = no window layers
  std::vector<uint8_t> window_layers_;  // [n_layer] 1 = sliding-window layer
  int64_t n_window_layers_ = 0;
  int64_t window_capacity_ = 0;     // cells each window layer's storage holds
  int64_t window_begin_ = 0;        // first cell the window layers store
  int64_t window_live_ = 0;         // first cell a later query can still see (>= window_begin_)
  int64_t dropped_position_ = -1;   // highest position a window layer has dropped; -1 none
  // [n_layer][1, n_head_kv, layer capacity, head_dim] in the storage dtype; q8_0: [.., row_bytes]
  // uint8. Global layers' row front_ + i holds cell i, window layers' row i cell window_begin_ + i.
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
  std::vector<CacheCell> cells_;    // [size()] metadata of the cells in use
};

}  // namespace sentinel
