// The BPE merge loop, written to give exactly the ids of tokenizers' Word::merge_all (bpe/word.rs):
// a min-heap of candidate merges ordered by (rank, position) over a doubly linked list of symbols,
// so a piece of n bytes costs O(n log n) however long it is.
#include "bpe_model.h"

#include <algorithm>

#include "sentinel/tokenizer/unicode.h"

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
  std::vector<int32_t> initial;
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

}  // namespace

BpeModel::BpeModel(Options options)
    : symbols_(options.symbols),
      byte_ids_(options.byte_ids),
      character_ids_(options.character_ids.begin(), options.character_ids.end()),
      fuse_unk_(options.fuse_unk),
      whole_pieces_(options.whole_pieces.begin(), options.whole_pieces.end()),
      ignore_merges_(options.ignore_merges),
      unk_id_(options.unk_id),
      joinable_pairs_(std::move(options.joinable_pairs)) {
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

uint64_t BpeModel::character_pair_key(std::string_view left, std::string_view right) {
  auto pack = [](std::string_view s) {
    uint32_t v = 0;
    for (size_t i = 0; i < s.size() && i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[i])) << (8 * i);
    return v;
  };
  return (static_cast<uint64_t>(pack(left)) << 32) | pack(right);
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (!joinable_pairs_) {
    encode_whole(piece, out);
    return;
  }
  size_t chunk_begin = 0;
  std::string_view previous;
  for (size_t i = 0; i < piece.size();) {
    const std::string_view character = piece.substr(i, unicode::decode_utf8_step(piece, i).length);
    if (i > 0 && joinable_pairs_->count(character_pair_key(previous, character)) == 0) {
      encode_whole(piece.substr(chunk_begin, i - chunk_begin), out);
      chunk_begin = i;
    }
    previous = character;
    i += character.size();
  }
  encode_whole(piece.substr(chunk_begin), out);
}

void BpeModel::encode_whole(std::string_view piece, std::vector<int32_t>& out) const {
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

// tokenizers' BPE::merge_word for a character vocabulary: each character is its token; without one,
// its bytes' <0xXX> tokens if all exist, else unk (a run fused into one with fuse_unk). As there, a
// pending unk is only written before the next known character or at the end, so it can follow the
// byte tokens of a later character; without an unk token the character is dropped.
void BpeModel::initial_character_ids(std::string_view piece, std::vector<int32_t>& ids) const {
  bool pending_unk = false;
  for (size_t i = 0; i < piece.size();) {
    const size_t length = unicode::decode_utf8_step(piece, i).length;
    const std::string_view character = piece.substr(i, length);
    i += length;
    if (const auto it = character_ids_.find(character); it != character_ids_.end()) {
      if (pending_unk) ids.push_back(*unk_id_);
      pending_unk = false;
      ids.push_back(it->second);
      continue;
    }
    bool all_bytes = true;
    for (char c : character) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : character) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      continue;
    }
    if (!unk_id_) continue;
    if (pending_unk && !fuse_unk_) ids.push_back(*unk_id_);
    pending_unk = true;
  }
  if (pending_unk) ids.push_back(*unk_id_);
}

void BpeModel::merge_piece(std::string_view piece, std::vector<int32_t>& out) const {
  Workspace& w = workspace();
  std::vector<Symbol>& symbols = w.symbols;
  std::vector<Candidate>& heap = w.heap;
  symbols.clear();
  heap.clear();

  auto add_symbol = [&](int32_t id) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, true});
  };
  if (symbols_ == Symbols::Characters) {
    std::vector<int32_t>& ids = w.initial;
    ids.clear();
    initial_character_ids(piece, ids);
    for (int32_t id : ids) add_symbol(id);
  } else {
    // One symbol per byte; a byte without a token becomes unk, or is dropped without one (as
    // tokenizers does when unk_token is null).
    for (char c : piece) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        add_symbol(id);
      } else if (unk_id_) {
        add_symbol(*unk_id_);
      }
    }
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
