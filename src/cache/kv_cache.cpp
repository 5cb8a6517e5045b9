// KV cache storage: preallocated per layer, doubled on overflow, compacted on eviction.
#include "sentinel/cache/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "sentinel/core/error.h"

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

using Runs = std::vector<std::pair<int64_t, int64_t>>;  // [first row, length)

// A run of rows to move within every head of a storage.
struct Move {
  int64_t from, to, length;
};

// Applies moves, in order, to every head of a storage [1, heads, capacity, row]. On a contiguous
// CPU storage memmove handles the overlap of a run with its target, so nothing is copied twice.
void apply_moves(at::Tensor& storage, const std::vector<Move>& moves) {
  if (!storage.is_cpu() || !storage.is_contiguous()) {
    for (const Move& m : moves) {
      at::Tensor source = storage.narrow(2, m.from, m.length);
      const bool overlap = m.from < m.to + m.length && m.to < m.from + m.length;
      storage.narrow(2, m.to, m.length).copy_(overlap ? source.clone() : source);
    }
    return;
  }
  const int64_t heads = storage.size(0) * storage.size(1), capacity = storage.size(2);
  const int64_t row_bytes = storage.size(3) * static_cast<int64_t>(storage.element_size());
  auto* base = static_cast<uint8_t*>(storage.data_ptr());
  for (int64_t h = 0; h < heads; ++h) {
    uint8_t* head = base + h * capacity * row_bytes;
    for (const Move& m : moves)
      std::memmove(head + m.to * row_bytes, head + m.from * row_bytes, static_cast<size_t>(m.length * row_bytes));
  }
}

// Runs of rows [from, from + length), ascending, moved down to consecutive rows from `to`.
void move_rows(at::Tensor& storage, const Runs& runs, int64_t to) {
  std::vector<Move> moves;
  for (const auto& [from, length] : runs) {
    moves.push_back({from, to, length});
    to += length;
  }
  apply_moves(storage, moves);
}

// How the global layers pack their kept cells after an eviction: each run of kept cells has some
// number b of dropped cells before it, and lands b rows lower if the packed cells start where they
// did; they may as well start `shift` rows later (rows before front_ are free), and then the runs
// with b == shift stay where they are. The shift that keeps the most rows in place is taken: the
// stream layout drops a span just after the sinks and the span's <CL> at the end, so the sinks
// move up, one <CR> moves down, and the recent window between them stays. `moves`: those with
// to > from first, last to first, then those with to < from, first to last, so that no move
// overwrites a run still to move.
struct Packing {
  std::vector<Move> moves;
  int64_t shift = 0;
};

Packing plan_packing(const std::vector<bool>& drop, int64_t front, bool may_shift) {
  struct Run {
    int64_t begin, length, dropped_before;
  };
  std::vector<Run> runs;
  int64_t dropped = 0;
  const auto n = static_cast<int64_t>(drop.size());
  for (int64_t i = 0; i < n;) {
    if (drop[i]) {
      ++dropped, ++i;
      continue;
    }
    const int64_t begin = i;
    while (i < n && !drop[i]) ++i;
    runs.push_back({begin, i - begin, dropped});
  }
  Packing packing;
  if (may_shift) {
    int64_t best = 0;
    for (size_t r = 0; r < runs.size();) {  // runs with the same b are adjacent (b only grows)
      int64_t length = 0;
      size_t next = r;
      for (; next < runs.size() && runs[next].dropped_before == runs[r].dropped_before; ++next) length += runs[next].length;
      if (length > best) best = length, packing.shift = runs[r].dropped_before;
      r = next;
    }
  }
  for (auto run = runs.rbegin(); run != runs.rend(); ++run)
    if (run->dropped_before < packing.shift)
      packing.moves.push_back({front + run->begin, front + run->begin + packing.shift - run->dropped_before, run->length});
  for (const Run& run : runs)
    if (run.dropped_before > packing.shift)
      packing.moves.push_back({front + run.begin, front + run.begin + packing.shift - run.dropped_before, run.length});
  return packing;
}

// The runs of kept cells a storage whose row 0 holds cell `base` moves when the cells marked in
// `drop` leave, in rows; *to receives the row of the first dropped cell at or after `base`. Rows
// before it stay where they are (a closed sentinel span leaves one run: the recent window after it).
Runs kept_runs(const std::vector<bool>& drop, int64_t base, int64_t* to) {
  const auto n = static_cast<int64_t>(drop.size());
  const int64_t first_drop = std::find(drop.begin() + base, drop.end(), true) - drop.begin();
  *to = first_drop - base;
  Runs runs;
  for (int64_t i = first_drop; i < n;) {
    if (drop[i]) {
      ++i;
      continue;
    }
    const int64_t begin = i;
    while (i < n && !drop[i]) ++i;
    runs.emplace_back(begin - base, i - begin);
  }
  return runs;
}

}  // namespace

KvStorage parse_kv_storage(const std::string& name) {
  if (name == "f32" || name == "float32") return KvStorage::F32;
  if (name == "f16" || name == "float16") return KvStorage::F16;
  if (name == "bf16" || name == "bfloat16") return KvStorage::BF16;
  if (name == "q8_0") return KvStorage::Q8_0;
  fail("unknown KV dtype '", name, "'; use f32, f16, bf16 or q8_0");
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

KvCache::KvCache(const KvShape& shape, const KvCacheOptions& options)
    : options_(options), n_head_kv_(shape.n_head_kv), head_dim_(shape.head_dim) {
  check(options.capacity > 0, "KV cache capacity must be > 0, got ", options.capacity);
  row_type_ = kv_row_type(options.storage, options.dtype);
  check(row_type_ != kernels::RowType::Q8_0 || head_dim_ % kernels::kBlock == 0, "a q8_0 KV cache needs head_dim a ",
        "multiple of 32, this model has ", head_dim_, "; use --kv-dtype f16");
  check(row_type_ == kernels::RowType::F32 || options.device.is_cpu(), "KV dtype ", kernels::row_type_name(row_type_),
        " is stored on the CPU only; on ", options.device, " use the compute dtype");
  row_bytes_ = kernels::row_bytes(row_type_, head_dim_);
  keys_.resize(shape.n_layer);
  values_.resize(shape.n_layer);
  window_layers_.assign(static_cast<size_t>(shape.n_layer), 0);
  for (int64_t l = 0; l < shape.n_layer; ++l) window_layers_[l] = shape.is_sliding(l) ? 1 : 0;
  n_window_layers_ = std::count(window_layers_.begin(), window_layers_.end(), 1);
  if (n_window_layers_ > 0) sliding_window_ = shape.sliding_window;
  for (size_t layer = 0; layer < keys_.size(); ++layer) resize_layer(layer, options.capacity, 0);
  capacity_ = window_capacity_ = options.capacity;
}

void KvCache::resize_layer(size_t layer, int64_t capacity, int64_t first_cell) {
  const auto tensor_options = at::TensorOptions().dtype(torch_dtype(row_type_)).device(options_.device);
  const int64_t last_dim = row_type_ == kernels::RowType::Q8_0 ? row_bytes_ : head_dim_;
  at::Tensor k = at::empty({1, n_head_kv_, capacity, last_dim}, tensor_options);
  at::Tensor v = at::empty({1, n_head_kv_, capacity, last_dim}, tensor_options);
  const int64_t n_rows = size() - first_cell,
                old_first = first_cell - this->first_cell(static_cast<int64_t>(layer)) + row_offset(static_cast<int64_t>(layer));
  if (keys_[layer].defined() && n_rows > 0) {
    k.narrow(2, 0, n_rows).copy_(keys_[layer].narrow(2, old_first, n_rows));
    v.narrow(2, 0, n_rows).copy_(values_[layer].narrow(2, old_first, n_rows));
  }
  keys_[layer] = std::move(k);
  values_[layer] = std::move(v);
}

void KvCache::grow_to(int64_t new_capacity) {
  for (size_t layer = 0; layer < keys_.size(); ++layer)
    if (!is_window_layer(static_cast<int64_t>(layer))) resize_layer(layer, new_capacity, 0);
  capacity_ = new_capacity;
  front_ = 0;  // the copies start at row 0
}

void KvCache::move_to_front() {
  const Runs held{{front_, size()}};
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    if (is_window_layer(static_cast<int64_t>(layer))) continue;
    move_rows(keys_[layer], held, 0);
    move_rows(values_[layer], held, 0);
  }
  front_ = 0;
}

void KvCache::reserve_for(int64_t n_new, int64_t first_position) {
  check(dropped_position_ < 0 || first_position - sliding_window_ >= dropped_position_, "a query at position ",
        first_position, " sees keys from position ", first_position - sliding_window_ + 1, " in the ",
        sliding_window_, "-position sliding window, but the window layers have dropped positions up to ",
        dropped_position_, ": a sequence's positions never go back; start a new session to read it again");
  const int64_t needed = size() + n_new;
  // 1.5x, not 2x: a cache grown past a long prompt by a few decoded tokens would otherwise hold
  // up to twice the memory it uses (8,192 + 32 tokens: 16,384 cells). Layers regrow one at a
  // time, so the copy never holds two whole caches.
  if (needed > capacity_) {
    grow_to(std::max(needed, capacity_ + capacity_ / 2));
  } else if (front_ + needed > capacity_) {
    // Evictions from the front left free rows there: the cells move back to row 0 once, and the
    // free rows (at least a quarter of the storage, or it grows instead) last that many new cells.
    if (needed <= capacity_ - capacity_ / 4) move_to_front();
    else grow_to(capacity_ + capacity_ / 2);
  }
  if (has_window_layers()) reserve_window(n_new);
}

void KvCache::reserve_window(int64_t n_new) {
  const int64_t capacity = window_capacity_;
  const int64_t live = size() + n_new - window_live_;  // rows held after the new ones, once the dead leave
  // Moving the live rows to the front leaves half a window free behind them, so it runs at most
  // once every sliding_window / 2 tokens: about two row copies per layer and token. A window
  // grown for a long prompt pass shrinks back at the next move.
  const int64_t wanted = live + std::max<int64_t>(sliding_window_ / 2, 1);
  if (size() + n_new - window_begin_ <= capacity && capacity <= 2 * wanted) return;
  const int64_t new_capacity = wanted > capacity || capacity > 2 * wanted ? wanted : capacity;
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    if (!is_window_layer(static_cast<int64_t>(layer))) continue;
    if (new_capacity != capacity) {
      resize_layer(layer, new_capacity, window_live_);
      continue;
    }
    const Runs live_rows{{window_live_ - window_begin_, size() - window_live_}};
    move_rows(keys_[layer], live_rows, 0);
    move_rows(values_[layer], live_rows, 0);
  }
  window_begin_ = window_live_;
  window_capacity_ = new_capacity;
}

void KvCache::write(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n_new = k.size(2), row = row_offset(layer) + size() - first_cell(layer);
  check(row + n_new <= keys_.at(layer).size(2), "KV cache write of ", n_new, " cells past capacity ",
        keys_.at(layer).size(2), " of layer ", layer, " (call reserve_for first)");
  keys_[layer].narrow(2, row, n_new).copy_(stored(k));
  values_[layer].narrow(2, row, n_new).copy_(stored(v));
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

at::Tensor KvCache::keys(int64_t layer, int64_t n) const {
  return loaded(keys_.at(layer).narrow(2, row_offset(layer), n - first_cell(layer)));
}
at::Tensor KvCache::values(int64_t layer, int64_t n) const {
  return loaded(values_.at(layer).narrow(2, row_offset(layer), n - first_cell(layer)));
}

void KvCache::commit(std::span<const CacheCell> cells) {
  check(front_ + size() + static_cast<int64_t>(cells.size()) <= capacity_, "KV cache commit past capacity");
  cells_.insert(cells_.end(), cells.begin(), cells.end());
}

void KvCache::release_window(int64_t lowest) {
  // Cells are in feed order; the queries a policy feeds late (a <CR> at its span's end) are
  // accounted for in `lowest`, so the cells no query can see are a prefix.
  if (!has_window_layers()) return;
  while (window_live_ < size() && cells_[window_live_].position <= lowest - sliding_window_) {
    dropped_position_ = std::max(dropped_position_, cells_[window_live_].position);
    ++window_live_;
  }
}

void KvCache::prepare_restore(std::span<const CacheCell> cells, int64_t window_begin) {
  check(size() == 0, "prepare_restore needs an empty cache, this one holds ", size(), " cells");
  const auto n = static_cast<int64_t>(cells.size());
  check(0 <= window_begin && window_begin <= n && (window_begin == 0 || has_window_layers()), "a saved window from cell ",
        window_begin, " of ", n, " does not fit this model", has_window_layers() ? "" : " (it has no sliding-window layers)");
  reserve_for(n, 0);  // an empty cache: nothing dropped yet, no window to move
  cells_.assign(cells.begin(), cells.end());
  window_begin_ = window_live_ = window_begin;
  for (int64_t i = 0; i < window_begin; ++i) dropped_position_ = std::max(dropped_position_, cells_[i].position);
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
  // The window layers compact down (their rows begin at window_begin_ and move to row 0 as the
  // window advances); the global layers pack as plan_packing says, starting later where that
  // moves fewer rows (on the CPU, where the kernels read rows from key_data()).
  int64_t window_to = 0;
  const Runs window_runs = kept_runs(drop, window_begin_, &window_to);
  const Packing packing = plan_packing(drop, front_, options_.device.is_cpu());
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    if (is_window_layer(static_cast<int64_t>(layer))) {
      move_rows(keys_[layer], window_runs, window_to);
      move_rows(values_[layer], window_runs, window_to);
    } else {
      apply_moves(keys_[layer], packing.moves);
      apply_moves(values_[layer], packing.moves);
    }
  }
  front_ += packing.shift;
  // Dropped cells before the window's marks shift them down.
  window_begin_ -= std::count(drop.begin(), drop.begin() + window_begin_, true);
  window_live_ -= std::count(drop.begin(), drop.begin() + window_live_, true);
  cells_ = std::move(kept_cells);
}

void KvCache::clear() {
  cells_.clear();
  front_ = 0;
  window_begin_ = window_live_ = 0;
  dropped_position_ = -1;
}

int64_t KvCache::global_bytes_in_use() const { return (n_layer() - n_window_layers_) * bytes_per_layer_cell() * size(); }

int64_t KvCache::window_bytes_in_use() const { return n_window_layers_ * bytes_per_layer_cell() * (size() - window_begin_); }

int64_t KvCache::bytes_allocated() const {
  int64_t rows = 0;
  for (const at::Tensor& k : keys_) rows += k.size(2);
  return rows * bytes_per_layer_cell();
}

int64_t uncompressed_kv_bytes(const KvShape& shape, int64_t n_tokens, int64_t row_bytes) {
  int64_t cells = 0;  // summed over layers
  for (int64_t l = 0; l < shape.n_layer; ++l) cells += shape.is_sliding(l) ? std::min(n_tokens, shape.sliding_window) : n_tokens;
  return 2 * shape.n_head_kv * row_bytes * cells;
}

int64_t KvCache::bytes_uncompressed(int64_t n_tokens) const {
  const int64_t window_cells = has_window_layers() ? std::min(n_tokens, sliding_window_) : n_tokens;
  return bytes_per_layer_cell() * ((n_layer() - n_window_layers_) * n_tokens + n_window_layers_ * window_cells);
}

std::string KvCache::summary() const {
  std::ostringstream out;
  out << size() << "/" << capacity_ << " cells, " << bytes_in_use() << " bytes in use";
  if (has_window_layers())
    out << " (" << global_bytes_in_use() << " in " << n_layer() - n_window_layers_ << " global layers, "
        << window_bytes_in_use() << " in " << n_window_layers_ << " sliding-window layers holding "
        << size() - window_begin_ << " cells)";
  return out.str();
}

}  // namespace sentinel
