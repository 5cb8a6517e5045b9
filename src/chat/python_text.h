// Internal: Python's str semantics on UTF-8 text, as chat templates see them through Jinja (strip,
// split, case mapping, repr, json.dumps quoting, float repr). Indices and lengths count code
// points, like Python's; invalid UTF-8 reads as U+FFFD. Not a general Unicode library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel::jinja::py {

std::u32string decode(std::string_view text);
std::string encode(std::u32string_view text);
int64_t length(std::string_view text);  // code points
// s[index] (negative counts from the end): the code point's bytes, nullopt out of range. No copy of s.
std::optional<std::string> code_point_at(std::string_view text, int64_t index);

// str.strip / lstrip / rstrip: `chars` unset strips whitespace (str.isspace), else any of its code points.
std::string strip(std::string_view text, const std::optional<std::string>& chars, bool left, bool right);
// str.split / rsplit: `sep` unset splits on whitespace runs; max_split < 0: no limit.
std::vector<std::string> split(std::string_view text, const std::optional<std::string>& sep, int64_t max_split);
std::vector<std::string> rsplit(std::string_view text, const std::optional<std::string>& sep, int64_t max_split);
std::vector<std::string> splitlines(std::string_view text, bool keep_ends);  // str.splitlines
std::string replace(std::string_view text, std::string_view old, std::string_view replacement, int64_t count);
int64_t find(std::string_view text, std::string_view part, bool from_right);  // code point index, -1 if absent
int64_t count(std::string_view text, std::string_view part);

// Full Unicode case mappings (ICU, root locale), as Python's str methods apply them.
std::string upper(std::string_view text);
std::string lower(std::string_view text);
std::string capitalize(std::string_view text);   // str.capitalize: first code point titlecased, rest lowered
std::string title(std::string_view text);        // str.title: cased runs start titlecased
std::string jinja_title(std::string_view text);  // Jinja's |title: words split on -, whitespace, ( { [ <
bool all_of_class(std::string_view text,
                  char kind);  // str.isdigit 'd', isalpha 'a', isspace 's', isupper 'u', islower 'l'

std::string repr(std::string_view text);  // repr(str): quoted and escaped like Python
// json.dumps(str): ensure_ascii escapes everything outside ' '..'~' (surrogate pairs above U+FFFF).
void append_json_string(std::string& out, std::string_view text, bool ensure_ascii);
std::string float_repr(double value);  // repr(float): shortest round trip, Python's layout ("1e-05", "2.0")

}  // namespace sentinel::jinja::py
