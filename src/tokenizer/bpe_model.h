// Internal: the BPE merge step of one pre-tokenized piece (bytes -> ids), with merge ranks keyed by
// the pair of ids and a bounded cache of recent pieces. The piece starts as one symbol per byte
// (byte-level BPE) or per character, with byte fallback (SentencePiece converted to BPE). Knows
// nothing of text, pre-tokenizers or added tokens; Tokenizer (bpe.cpp, spm_encode.cpp) drives it.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace sentinel::detail {

class BpeModel {
 public:
  struct Merge {
    int32_t left, right, result;  // token ids
  };
  // What a piece is cut into before merging.
  enum class Symbols : uint8_t {
    Bytes,       // one per byte, spelled in the GPT-2 byte alphabet (byte_ids)
    Characters,  // one per UTF-8 character by its spelling (character_ids); a character without a
                 // token becomes its bytes' <0xXX> tokens (byte_ids), else unk (tokenizers' merge_word)
  };
  struct Options {
    Symbols symbols = Symbols::Bytes;
    // Bytes: the single-byte token of each byte. Characters: the <0xXX> byte-fallback token of each
    // byte, only when byte_fallback is on. -1 where the vocabulary lacks it.
    std::array<int32_t, 256> byte_ids;
    std::unordered_map<std::string, int32_t> character_ids;  // Characters: spellings of 1..4 bytes
    bool fuse_unk = false;              // Characters: a run of unknown characters is one unk
    std::vector<Merge> merges;          // in rank order
    // ignore_merges: a piece whose bytes are a whole token is that token, unmerged (Llama-3).
    std::unordered_map<std::string, int32_t> whole_pieces;
    bool ignore_merges = false;
    std::optional<int32_t> unk_id;  // stands for a byte with no token; without it the byte is dropped
    // Characters only: pairs of adjacent characters (character_pair_key) that some merge joins, the
    // last character of its left part and the first of its right part. When set, a piece is cut
    // between characters no merge joins, and the chunks are merged apart (and cached): the same ids,
    // since no merge could cross the cut and each chunk's merges keep their order. Only valid when
    // every character either is a token or falls back to byte tokens that no merge uses, no unk can
    // occur and ignore_merges is off; the caller checks that.
    std::optional<std::unordered_set<uint64_t>> joinable_pairs;
  };
  static uint64_t character_pair_key(std::string_view left, std::string_view right);

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
  void encode_whole(std::string_view piece, std::vector<int32_t>& out) const;
  void initial_character_ids(std::string_view piece, std::vector<int32_t>& ids) const;

  struct StringHash {  // lets the maps be searched with a string_view, without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Symbols symbols_;
  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> character_ids_;
  bool fuse_unk_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> whole_pieces_;
  bool ignore_merges_;
  std::optional<int32_t> unk_id_;
  std::optional<std::unordered_set<uint64_t>> joinable_pairs_;

  // Pieces repeat (" the", ","): remembering their ids skips the merge loop. Bounded: when full,
  // new pieces are simply not remembered. Only short pieces are cached.
  static constexpr size_t kCacheCapacity = 200000;
  static constexpr size_t kCacheMaxPieceBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace sentinel::detail
