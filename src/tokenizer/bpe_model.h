// Internal: the BPE merge step of one pre-tokenized piece (bytes -> ids), with merge ranks keyed by
// the pair of ids and a bounded cache of recent pieces. Knows nothing of text, pre-tokenizers or
// added tokens; Tokenizer (bpe.cpp) drives it.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentinel::detail {

class BpeModel {
 public:
  struct Merge {
    int32_t left, right, result;  // token ids
  };
  struct Options {
    std::array<int32_t, 256> byte_ids;  // id of each single-byte token, -1 if the vocabulary lacks it
    std::vector<Merge> merges;          // in rank order
    // ignore_merges: a piece whose bytes are a whole token is that token, unmerged (Llama-3).
    std::unordered_map<std::string, int32_t> whole_pieces;
    bool ignore_merges = false;
    std::optional<int32_t> unk_id;  // stands for a byte with no token; without it the byte is dropped
  };

  explicit BpeModel(Options options);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one piece (raw bytes) to `out`. Thread-safe.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

 private:
  struct MergeInfo {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const MergeInfo* find_merge(int32_t left, int32_t right) const;
  void merge_piece(std::string_view piece, std::vector<int32_t>& out) const;

  struct StringHash {  // lets the maps be searched with a string_view, without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> whole_pieces_;
  bool ignore_merges_;
  std::optional<int32_t> unk_id_;

  // Pieces repeat (" the", ","): remembering their ids skips the merge loop. Bounded: when full,
  // new pieces are simply not remembered. Only short pieces are cached.
  static constexpr size_t kCacheCapacity = 200000;
  static constexpr size_t kCacheMaxPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace sentinel::detail
