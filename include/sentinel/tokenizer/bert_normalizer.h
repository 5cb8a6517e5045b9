// BERT's text preparation as Hugging Face `tokenizers` does it: the BertNormalizer (clean_text,
// handle_chinese_chars, strip_accents, lowercase) and the BertPreTokenizer (whitespace split, each
// punctuation character its own piece). Character classes come from ICU, corrected to the older
// Unicode tables that tokenizers compiles in (tests/data/minilm/bert_unicode.json checks every code
// point). Not the WordPiece model itself (wordpiece.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sentinel {

// The "normalizer" object of tokenizer.json with type "BertNormalizer". strip_accents null in the
// file means "as lowercase"; the loader resolves that, so here it is a plain flag.
struct BertNormalizerOptions {
  bool clean_text = true;            // drop U+0000, U+FFFD and control/format/private-use characters,
                                     // map whitespace to ' '
  bool handle_chinese_chars = true;  // put spaces around CJK ideographs, so each is its own word
  bool strip_accents = true;         // NFD, then drop nonspacing marks (Mn)
  bool lowercase = true;             // full lowercase mapping, character by character
};

namespace bert {
// The character classes of tokenizers' bert.rs, each exactly as tokenizers 0.23 answers it.
bool is_control(char32_t c);      // removed by clean_text: Cc, Cf, Co except \t \n \r (Unicode 8 table)
bool is_whitespace(char32_t c);   // Rust char::is_whitespace (the White_Space property)
bool is_chinese_char(char32_t c);  // the CJK ideograph blocks BERT's handle_chinese_chars names
bool is_punctuation(char32_t c);  // ASCII punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) or P* (Unicode 8 table)
bool is_nonspacing_mark(char32_t c);  // Mn (Unicode 8 table), what strip_accents removes after NFD
// char::to_lowercase: the full mapping (U+0130 -> "i\u0307"), Unicode as tokenizers knows it.
void append_lowercase(std::u32string& out, char32_t c);
}  // namespace bert

class BertNormalizer {
 public:
  explicit BertNormalizer(BertNormalizerOptions options = {}) : options_(options) {}
  const BertNormalizerOptions& options() const { return options_; }

  // `text` must be valid UTF-8 (the tokenizer replaces invalid bytes first); so is the result.
  std::string normalize(std::string_view text) const;

 private:
  BertNormalizerOptions options_;
};

// BertPreTokenizer on normalized text: split on whitespace (dropped), then every punctuation
// character becomes a piece of its own. Appends the pieces to `words`.
void bert_pre_tokenize(std::string_view text, std::vector<std::string>& words);

}  // namespace sentinel
