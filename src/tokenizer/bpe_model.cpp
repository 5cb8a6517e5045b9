// The BPE merge loop, written to give exactly the ids of tokenizers' Word::merge_all (bpe/word.rs):
// a min-heap of candidate merges ordered by (rank, position) over a doubly linked list of symbols,
// so a piece of n bytes costs O(n log n) however long it is.
#include "bpe_model.h"

#include <algorithm>

namespace sentinel::detail {
namespace {

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool live;     // false once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;     // index of the left symbol
  int32_t result;  // id the pair merges into, checked again when popped
};

// Min-heap order: lowest rank first, then leftmost position (as tokenizers' Merge::cmp).
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Reused across pieces on one thread, so that the merge loop allocates nothing in steady state.
struct Workspace {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

}  // namespace

BpeModel::BpeModel(Options options)
    : byte_ids_(options.byte_ids),
      whole_pieces_(options.whole_pieces.begin(), options.whole_pieces.end()),
      ignore_merges_(options.ignore_merges),
      unk_id_(options.unk_id) {
  merges_.reserve(options.merges.size());
  for (size_t rank = 0; rank < options.merges.size(); ++rank) {
    const Merge& m = options.merges[rank];
    // A pair listed twice keeps its last rank, as tokenizers' merge map (built by collecting into a
    // HashMap) does.
    merges_[pair_key(m.left, m.right)] = {static_cast<int32_t>(rank), m.result};
  }
  cache_.reserve(4096);
}

const BpeModel::MergeInfo* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto it = whole_pieces_.find(piece); it != whole_pieces_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (const auto it = cache_.find(piece); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_piece(piece, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
    }
  }
}

void BpeModel::merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
  Workspace& w = workspace();
  std::vector<Symbol>& symbols = w.symbols;
  std::vector<Candidate>& heap = w.heap;
  symbols.clear();
  heap.clear();

  // One symbol per byte; a byte without a token becomes unk, or is dropped without one (as
  // tokenizers does when unk_token is null).
  for (char c : piece) {
    int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) {
      if (!unk_id_) continue;
      id = *unk_id_;
    }
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  const LaterCandidate later;
  auto push = [&](int32_t pos, const MergeInfo& m) {
    heap.push_back({m.rank, pos, m.result});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
    if (const MergeInfo* m = find_merge(symbols[i].id, symbols[i + 1].id)) heap.push_back({m->rank, i, m->result});
  }
  std::make_heap(heap.begin(), heap.end(), later);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (!left.live || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const Symbol right = symbols[right_pos];
    // A stale candidate: the pair at this position changed since it was queued. tokenizers
    // compares only the resulting id, and so do we, to give the same ids in every case.
    const MergeInfo* current = find_merge(left.id, right.id);
    if (current == nullptr || current->result != top.result) continue;

    left.id = top.result;
    left.next = right.next;
    symbols[right_pos].live = false;
    if (right.next >= 0) symbols[right.next].prev = top.pos;

    if (left.prev >= 0) {
      if (const MergeInfo* m = find_merge(symbols[left.prev].id, left.id)) push(left.prev, *m);
    }
    if (left.next >= 0) {
      if (const MergeInfo* m = find_merge(left.id, symbols[left.next].id)) push(top.pos, *m);
    }
  }

  for (const Symbol& s : symbols) {
    if (s.live) out.push_back(s.id);
  }
}

}  // namespace sentinel::detail
