// Internal: llama.cpp's SentencePiece merge step (llm_tokenizer_spm in src/llama-vocab.cpp of the
// vendored llama.cpp) on one text segment whose spaces are already "▁": characters merged by the
// score of the token they form, what stays unknown resegmented into <0xXX> byte tokens. Knows
// nothing of added tokens or the space prefix; Tokenizer (spm_tokenizer.cpp) drives it.
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

class SpmModel {
 public:
  struct Options {
    // Every token of the vocabulary by spelling, whatever its kind: llama.cpp's text_to_token also
    // finds control, user-defined, unused and byte tokens, so they merge like any other.
    std::vector<std::pair<std::string, int32_t>> tokens;
    std::vector<float> scores;              // id -> score; the highest-scoring pair merges first
    std::array<int32_t, 256> byte_ids;      // <0xXX> (else the one-byte token) per byte; -1 if neither
    std::optional<int32_t> unk_id;          // stands for a byte with neither; without it the byte is dropped
  };

  explicit SpmModel(Options options);
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  // Appends the ids of `text` (a segment with ' ' already escaped to "▁"; any bytes) to `out`.
  // Thread-safe.
  void encode(std::string_view text, std::vector<int32_t>& out) const;

 private:
  struct StringHash {  // lets the map be searched with a string_view, without a copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  int32_t find(std::string_view text) const;  // -1 if no token is spelled so
  void append_bytes(std::string_view text, std::vector<int32_t>& out) const;
  void encode_chunk(std::string_view text, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> by_spelling_;
  std::vector<float> scores_;
  std::array<int32_t, 256> byte_ids_;
  std::optional<int32_t> unk_id_;
  size_t max_token_bytes_ = 0;  // no pair longer than this can be a token
  // Pairs of adjacent symbols found inside some token (symbol_pair_key). Where two symbols of the
  // text form no such pair, no merge can ever join them, so the text is cut there and the chunks
  // merged apart (and cached): the same ids, as the heap's order within a chunk is unchanged.
  std::unordered_set<uint64_t> inner_pairs_;

  static constexpr size_t kCacheCapacity = 200000;
  static constexpr size_t kCacheMaxChunkBytes = 64;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace sentinel::detail
