// NLTK's PorterStemmer (nltk/stem/porter.py, mode NLTK_EXTENSIONS) step by step: the same rules in
// the same order, the same "first rule whose suffix matches decides" logic, and NLTK's changes
// (irregular forms, -ies/-ied on 4-letter words, y -> i only after a consonant, alli before bli,
// fulli, logi, the 2-letter cvc case). Only the ASCII words rouge's tokenizer produces are expected.
#include "sentinel/metrics/porter_stemmer.h"

#include <functional>
#include <initializer_list>
#include <utility>

namespace sentinel::metrics {
namespace {

using Condition = std::function<bool(std::string_view stem)>;

struct Rule {
  std::string_view suffix;
  std::string_view replacement;
  Condition condition;  // empty: unconditional
};

bool is_vowel(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Paper: a consonant is a letter other than a e i o u, and other than y preceded by a consonant.
bool is_consonant(std::string_view word, size_t i) {
  bool consonant = true;
  for (size_t j = 0; j <= i; ++j) consonant = is_vowel(word[j]) ? false : word[j] == 'y' && j > 0 ? !consonant : true;
  return consonant;
}

// m in [C](VC){m}[V]: the number of vowel -> consonant transitions.
int measure(std::string_view stem) {
  int m = 0;
  bool previous_consonant = true, previous_vowel = false;
  for (size_t j = 0; j < stem.size(); ++j) {
    const bool consonant = is_vowel(stem[j]) ? false : stem[j] == 'y' && j > 0 ? !previous_consonant : true;
    if (consonant && previous_vowel) ++m;
    previous_consonant = consonant;
    previous_vowel = !consonant;
  }
  return m;
}

bool positive_measure(std::string_view stem) { return measure(stem) > 0; }
bool measure_above_1(std::string_view stem) { return measure(stem) > 1; }

bool contains_vowel(std::string_view stem) {
  for (size_t j = 0; j < stem.size(); ++j)
    if (!is_consonant(stem, j)) return true;
  return false;
}

bool ends_with(std::string_view word, std::string_view suffix) {
  return word.size() >= suffix.size() && word.substr(word.size() - suffix.size()) == suffix;
}

// *d: ends with a double consonant.
bool ends_double_consonant(std::string_view word) {
  return word.size() >= 2 && word.back() == word[word.size() - 2] && is_consonant(word, word.size() - 1);
}

// *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK also counts a 2-letter vowel-consonant word.
bool ends_cvc(std::string_view w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w.back() != 'w' &&
      w.back() != 'x' && w.back() != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

std::string without(std::string_view word, size_t n_chars) { return std::string(word.substr(0, word.size() - n_chars)); }

// The first rule whose suffix the word ends with decides: its replacement if the condition holds on
// the stem, otherwise the word unchanged (later rules are not tried).
std::string apply_rules(std::string_view word, std::initializer_list<Rule> rules) {
  for (const Rule& rule : rules) {
    if (!ends_with(word, rule.suffix)) continue;
    std::string stem = without(word, rule.suffix.size());
    if (!rule.condition || rule.condition(stem)) return stem.append(rule.replacement);
    return std::string(word);
  }
  return std::string(word);
}

std::string step1a(std::string_view word) {
  if (ends_with(word, "ies") && word.size() == 4) return without(word, 3) + "ie";
  return apply_rules(word, {{"sses", "ss", {}}, {"ies", "i", {}}, {"ss", "ss", {}}, {"s", "", {}}});
}

std::string step1b(std::string_view word) {
  if (ends_with(word, "ied")) return without(word, 3) + (word.size() == 4 ? "ie" : "i");
  if (ends_with(word, "eed")) {
    std::string stem = without(word, 3);
    return measure(stem) > 0 ? stem + "ee" : std::string(word);
  }
  std::string stem;
  bool removed = false;  // (*v*) ED -> or (*v*) ING ->
  for (const std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
    if (ends_with(word, suffix) && contains_vowel(without(word, suffix.size()))) {
      stem = without(word, suffix.size());
      removed = true;
      break;
    }
  }
  if (!removed) return std::string(word);
  if (ends_with(stem, "at")) return stem + "e";
  if (ends_with(stem, "bl")) return stem + "e";
  if (ends_with(stem, "iz")) return stem + "e";
  if (ends_double_consonant(stem)) {  // -> single letter, unless l, s or z (and then no further rule)
    const char last = stem.back();
    return last != 'l' && last != 's' && last != 'z' ? without(stem, 1) : stem;
  }
  return measure(stem) == 1 && ends_cvc(stem) ? stem + "e" : stem;  // (m=1 and *o) -> E
}

std::string step1c(std::string_view word) {
  return apply_rules(word, {{"y", "i", [](std::string_view stem) {
                               return stem.size() > 1 && is_consonant(stem, stem.size() - 1);
                             }}});
}

std::string step2(std::string_view word) {
  if (ends_with(word, "alli") && positive_measure(without(word, 4))) return step2(without(word, 4) + "al");
  const Condition m = positive_measure;
  // logi -> log keeps the 'l' in the stem it measures (so geo-logi, theo-logi work).
  const Condition logi = [word](std::string_view) { return positive_measure(without(word, 3)); };
  return apply_rules(word, {{"ational", "ate", m}, {"tional", "tion", m}, {"enci", "ence", m}, {"anci", "ance", m},
                            {"izer", "ize", m},    {"bli", "ble", m},     {"alli", "al", m},    {"entli", "ent", m},
                            {"eli", "e", m},       {"ousli", "ous", m},   {"ization", "ize", m}, {"ation", "ate", m},
                            {"ator", "ate", m},    {"alism", "al", m},    {"iveness", "ive", m}, {"fulness", "ful", m},
                            {"ousness", "ous", m}, {"aliti", "al", m},    {"iviti", "ive", m},  {"biliti", "ble", m},
                            {"fulli", "ful", m},   {"logi", "log", logi}});
}

std::string step3(std::string_view word) {
  const Condition m = positive_measure;
  return apply_rules(word, {{"icate", "ic", m}, {"ative", "", m}, {"alize", "al", m}, {"iciti", "ic", m},
                            {"ical", "ic", m}, {"ful", "", m}, {"ness", "", m}});
}

std::string step4(std::string_view word) {
  const Condition m = measure_above_1;
  const Condition ion = [](std::string_view stem) {
    return measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't');
  };
  return apply_rules(word, {{"al", "", m},   {"ance", "", m}, {"ence", "", m}, {"er", "", m},   {"ic", "", m},
                            {"able", "", m}, {"ible", "", m}, {"ant", "", m},  {"ement", "", m}, {"ment", "", m},
                            {"ent", "", m},  {"ion", "", ion}, {"ou", "", m},  {"ism", "", m},  {"ate", "", m},
                            {"iti", "", m},  {"ous", "", m},  {"ive", "", m},  {"ize", "", m}});
}

std::string step5a(std::string_view word) {
  if (ends_with(word, "e")) {
    std::string stem = without(word, 1);
    const int m = measure(stem);
    if (m > 1 || (m == 1 && !ends_cvc(stem))) return stem;
  }
  return std::string(word);
}

std::string step5b(std::string_view word) {
  return apply_rules(word, {{"ll", "l", [word](std::string_view) { return measure(without(word, 1)) > 1; }}});
}

// NLTK's table of irregular forms, looked up before any step.
const char* irregular_form(std::string_view word) {
  static const std::pair<std::string_view, const char*> kForms[] = {
      {"sky", "sky"},         {"skies", "sky"},     {"dying", "die"},         {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},     {"innings", "inning"},    {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"}, {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},       {"proceed", "proceed"}, {"exceed", "exceed"},   {"succeed", "succeed"}};
  for (const auto& [form, stem] : kForms)
    if (form == word) return stem;
  return nullptr;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  std::string stem(word);
  for (char& c : stem)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (const char* irregular = irregular_form(stem)) return irregular;
  if (word.size() <= 2) return stem;
  stem = step1a(stem);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  return step5b(stem);
}

}  // namespace sentinel::metrics
