// The Porter stemmer exactly as NLTK 3.x implements it in its default mode (NLTK_EXTENSIONS:
// Martin Porter's published extensions plus NLTK's irregular forms and rule changes), which is the
// stemmer rouge-score's tokenizer applies with use_stemmer=True (rouge_score/tokenizers.py).
// Words are ASCII (rouge's tokens are [a-z0-9]+); other bytes are treated as consonants.
#pragma once

#include <string>
#include <string_view>

namespace sentinel::metrics {

// nltk.stem.porter.PorterStemmer().stem(word): lowercased (ASCII), words of 1-2 characters
// unchanged, e.g. "relational" -> "relat", "ponies" -> "poni", "dying" -> "die", "happy" -> "happi".
std::string porter_stem(std::string_view word);

}  // namespace sentinel::metrics
