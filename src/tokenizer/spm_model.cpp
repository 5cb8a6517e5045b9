// llama.cpp's SentencePiece merge loop, step for step, so that ties and odd inputs give its ids:
// symbols are "characters" cut by the lead byte alone (as unicode_len_utf8, so invalid UTF-8 is cut
// the same way), a max-heap holds candidate pairs by (score of the merged token, leftmost first), and
// a popped pair is stale exactly when its two symbols no longer add up to the size it was queued with.
// llama.cpp runs it on a whole text segment at once; cutting the segment where no token can span
// (see inner_pairs_) gives the same ids, faster, and lets repeated words come from a cache.
#include "spm_model.h"

#include <algorithm>

namespace sentinel::detail {
namespace {

struct Symbol {
  uint32_t begin;  // byte offset in the segment
  uint32_t size;   // bytes; 0 once merged into its left neighbour
  int32_t prev, next;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;
};

// std::priority_queue order of llm_bigram_spm::comparator: the top is the highest score, then the
// leftmost pair.
struct LowerPriority {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// Bytes of the UTF-8 sequence a lead byte announces; continuation and invalid bytes count as 1.
uint32_t utf8_length_from_lead(uint8_t byte) {
  static constexpr uint8_t kLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLength[byte >> 4];
}

// A symbol's bytes (at most 4) as a number; two symbols make a pair key. Different symbols may share
// a key only if one is a cut-off sequence, which at worst keeps a cut from being made.
uint64_t symbol_pair_key(std::string_view left, std::string_view right) {
  auto pack = [](std::string_view s) {
    uint32_t v = 0;
    for (size_t i = 0; i < s.size() && i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[i])) << (8 * i);
    return v;
  };
  return (static_cast<uint64_t>(pack(left)) << 32) | pack(right);
}

size_t symbol_size(std::string_view text, size_t offset) {
  return std::min<size_t>(utf8_length_from_lead(static_cast<uint8_t>(text[offset])), text.size() - offset);
}

struct Workspace {  // reused across calls on one thread
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
};

Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

}  // namespace

SpmModel::SpmModel(Options options)
    : scores_(std::move(options.scores)), byte_ids_(options.byte_ids), unk_id_(options.unk_id) {
  by_spelling_.reserve(options.tokens.size());
  for (auto& [spelling, id] : options.tokens) {
    max_token_bytes_ = std::max(max_token_bytes_, spelling.size());
    // A token's symbols are cut as the text's are: from its start, by the lead byte.
    std::string_view previous;
    for (size_t offset = 0; offset < spelling.size();) {
      const std::string_view symbol = std::string_view(spelling).substr(offset, symbol_size(spelling, offset));
      if (offset > 0) inner_pairs_.insert(symbol_pair_key(previous, symbol));
      previous = symbol;
      offset += symbol.size();
    }
    by_spelling_.emplace(std::move(spelling), id);  // the first id of a spelling wins
  }
  cache_.reserve(4096);
}

int32_t SpmModel::find(std::string_view text) const {
  const auto it = by_spelling_.find(text);
  return it == by_spelling_.end() ? -1 : it->second;
}

void SpmModel::append_bytes(std::string_view text, std::vector<int32_t>& out) const {
  for (char c : text) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id >= 0) {
      out.push_back(id);
    } else if (unk_id_) {
      out.push_back(*unk_id_);  // llama.cpp aborts here; a vocabulary without byte tokens is rare
    }
  }
}

void SpmModel::encode(std::string_view text, std::vector<int32_t>& out) const {
  size_t chunk_begin = 0;
  std::string_view previous;
  auto emit = [&](size_t end) {
    const std::string_view chunk = text.substr(chunk_begin, end - chunk_begin);
    chunk_begin = end;
    if (chunk.size() > kCacheMaxChunkBytes) {
      encode_chunk(chunk, out);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (const auto it = cache_.find(chunk); it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const size_t first = out.size();
    encode_chunk(chunk, out);
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(chunk), std::vector<int32_t>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
    }
  };
  for (size_t offset = 0; offset < text.size();) {
    const std::string_view symbol = text.substr(offset, symbol_size(text, offset));
    if (offset > 0 && inner_pairs_.count(symbol_pair_key(previous, symbol)) == 0) emit(offset);
    previous = symbol;
    offset += symbol.size();
  }
  if (chunk_begin < text.size()) emit(text.size());
}

void SpmModel::encode_chunk(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  Workspace& w = workspace();
  std::vector<Symbol>& symbols = w.symbols;
  std::vector<Bigram>& heap = w.heap;
  symbols.clear();
  heap.clear();

  for (size_t offset = 0; offset < text.size();) {
    const auto size = static_cast<uint32_t>(symbol_size(text, offset));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(offset), size, index - 1, index + 1});
    offset += size;
  }
  symbols.back().next = -1;

  const LowerPriority lower;
  // llm_tokenizer_spm_session::try_add_bigram: queue the pair if the text it spans is a token.
  auto try_add = [&](int32_t left, int32_t right, bool keep_heap) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].size + symbols[right].size;
    if (size > max_token_bytes_) return;
    const int32_t id = find(text.substr(symbols[left].begin, size));
    if (id < 0) return;
    heap.push_back({scores_[id], left, right, size});
    if (keep_heap) std::push_heap(heap.begin(), heap.end(), lower);
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i, false);
  std::make_heap(heap.begin(), heap.end(), lower);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Bigram top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.size == 0 || right.size == 0 || left.size + right.size != top.size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    try_add(left.prev, top.left, true);
    try_add(top.left, left.next, true);
  }

  // Every live symbol is a token, except single characters the vocabulary lacks: those become
  // their bytes. (llama.cpp's rev_merge fallback never applies: a merged symbol is always a token.)
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].begin, symbols[i].size);
    const int32_t id = find(piece);
    if (id >= 0) {
      out.push_back(id);
    } else {
      append_bytes(piece, out);
    }
  }
}

}  // namespace sentinel::detail
