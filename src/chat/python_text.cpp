// Python str semantics for the template interpreter; see python_text.h. The rules follow CPython's
// Objects/unicodeobject.c (split, strip, repr, title) and Modules/_json.c (json.dumps quoting).
#include "python_text.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::jinja::py {
namespace {

bool is_space(char32_t c) { return unicode::is_python_space(c); }

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// ICU's full case mappings work on UTF-16.
enum class CaseMap { Upper, Lower, Title };

std::string icu_case(std::string_view text, CaseMap mapping) {
  UErrorCode status = U_ZERO_ERROR;
  int32_t n16 = 0;
  u_strFromUTF8WithSub(nullptr, 0, &n16, text.data(), static_cast<int32_t>(text.size()), 0xFFFD, nullptr, &status);
  std::u16string source(static_cast<size_t>(n16), u'\0');
  status = U_ZERO_ERROR;
  u_strFromUTF8WithSub(source.data(), n16, nullptr, text.data(), static_cast<int32_t>(text.size()), 0xFFFD, nullptr,
                       &status);
  std::u16string mapped(source.size() * 3 + 4, u'\0');  // a full mapping grows a string at most threefold
  status = U_ZERO_ERROR;
  int32_t n = 0;
  switch (mapping) {
    case CaseMap::Upper:
      n = u_strToUpper(mapped.data(), static_cast<int32_t>(mapped.size()), source.data(), n16, "", &status);
      break;
    case CaseMap::Lower:
      n = u_strToLower(mapped.data(), static_cast<int32_t>(mapped.size()), source.data(), n16, "", &status);
      break;
    case CaseMap::Title:  // only ever called on one code point, so the word breaks do not matter
      n = u_strToTitle(mapped.data(), static_cast<int32_t>(mapped.size()), source.data(), n16, nullptr, "", &status);
      break;
  }
  check(U_SUCCESS(status), "case mapping failed: ", u_errorName(status));
  std::string out(static_cast<size_t>(n) * 3, '\0');
  int32_t n8 = 0;
  status = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &n8, mapped.data(), n, &status);
  out.resize(static_cast<size_t>(n8));
  return out;
}

std::string map_code_point(char32_t c, CaseMap mapping) {
  std::string one;
  unicode::append_utf8(one, c);
  if (c < 0x80) {
    if (mapping == CaseMap::Lower) return std::string(1, static_cast<char>(std::tolower(static_cast<int>(c))));
    return std::string(1, static_cast<char>(std::toupper(static_cast<int>(c))));
  }
  return icu_case(one, mapping);
}

bool is_cased(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED); }

// Python's str.isprintable(): false for categories Cc Cf Cs Co Cn Zl Zp Zs, except the ASCII space.
bool is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(static_cast<UChar32>(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

void append_hex(std::string& out, const char* prefix, uint32_t value, int digits) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%s%0*x", prefix, digits, value);
  out += buffer;
}

}  // namespace

std::u32string decode(std::string_view text) { return unicode::decode_utf8(text); }

std::string encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) unicode::append_utf8(out, c);
  return out;
}

int64_t length(std::string_view text) {
  int64_t n = 0;
  for (size_t i = 0; i < text.size(); i += unicode::decode_utf8_step(text, i).length) ++n;
  return n;
}

std::optional<std::string> code_point_at(std::string_view text, int64_t index) {
  if (index < 0) index += length(text);
  if (index < 0) return std::nullopt;
  size_t at = 0;
  for (int64_t k = 0; at < text.size(); ++k) {
    const unicode::Utf8Step step = unicode::decode_utf8_step(text, at);
    if (k == index) {
      std::string one;
      unicode::append_utf8(one, step.code_point);  // an invalid byte reads as U+FFFD, as in decode()
      return one;
    }
    at += step.length;
  }
  return std::nullopt;
}

std::string strip(std::string_view text, const std::optional<std::string>& chars, bool left, bool right) {
  const std::u32string cs = decode(text);
  const std::u32string set = chars ? decode(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  size_t begin = 0, end = cs.size();
  if (left)
    while (begin < end && strippable(cs[begin])) ++begin;
  if (right)
    while (end > begin && strippable(cs[end - 1])) --end;
  return encode(std::u32string_view(cs).substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view text, const std::optional<std::string>& sep, int64_t max_split) {
  std::vector<std::string> parts;
  if (sep) {
    check(!sep->empty(), "str.split: empty separator");
    size_t at = 0;
    while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
      const size_t found = text.find(*sep, at);
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(at, found - at));
      at = found + sep->size();
    }
    parts.emplace_back(text.substr(at));
    return parts;
  }
  const std::u32string cs = decode(text);
  size_t i = 0;
  while (true) {
    while (i < cs.size() && is_space(cs[i])) ++i;
    if (i == cs.size()) break;
    if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
      parts.push_back(encode(std::u32string_view(cs).substr(i)));  // the rest, trailing space and all
      break;
    }
    size_t j = i;
    while (j < cs.size() && !is_space(cs[j])) ++j;
    parts.push_back(encode(std::u32string_view(cs).substr(i, j - i)));
    i = j;
  }
  return parts;
}

std::vector<std::string> rsplit(std::string_view text, const std::optional<std::string>& sep, int64_t max_split) {
  if (max_split < 0) return split(text, sep, max_split);
  std::vector<std::string> parts;
  if (sep) {
    check(!sep->empty(), "str.rsplit: empty separator");
    size_t end = text.size();
    while (static_cast<int64_t>(parts.size()) < max_split) {
      if (end < sep->size()) break;
      const size_t found = text.rfind(*sep, end - sep->size());
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(found + sep->size(), end - found - sep->size()));
      end = found;
    }
    parts.emplace_back(text.substr(0, end));
  } else {
    const std::u32string cs = decode(text);
    size_t end = cs.size();
    while (true) {
      while (end > 0 && is_space(cs[end - 1])) --end;
      if (end == 0) break;
      if (static_cast<int64_t>(parts.size()) == max_split) {
        parts.push_back(encode(std::u32string_view(cs).substr(0, end)));  // the rest, leading space and all
        break;
      }
      size_t begin = end;
      while (begin > 0 && !is_space(cs[begin - 1])) --begin;
      parts.push_back(encode(std::u32string_view(cs).substr(begin, end - begin)));
      end = begin;
    }
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view text, bool keep_ends) {
  const std::u32string cs = decode(text);
  std::vector<std::string> lines;
  size_t begin = 0;
  for (size_t i = 0; i < cs.size(); ++i) {
    const char32_t c = cs[i];
    const bool line_break = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                            c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!line_break) continue;
    size_t end = i + 1;
    if (c == '\r' && end < cs.size() && cs[end] == '\n') ++end;
    lines.push_back(encode(std::u32string_view(cs).substr(begin, (keep_ends ? end : i) - begin)));
    begin = end;
    i = end - 1;
  }
  if (begin < cs.size()) lines.push_back(encode(std::u32string_view(cs).substr(begin)));
  return lines;
}

std::string replace(std::string_view text, std::string_view old, std::string_view replacement, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts the replacement before every code point and at the end
    const std::u32string cs = decode(text);
    int64_t done = 0;
    for (char32_t c : cs) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      unicode::append_utf8(out, c);
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t at = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    const size_t found = text.find(old, at);
    if (found == std::string_view::npos) break;
    out.append(text.substr(at, found - at));
    out += replacement;
    at = found + old.size();
  }
  out.append(text.substr(at));
  return out;
}

int64_t find(std::string_view text, std::string_view part, bool from_right) {
  const size_t found = from_right ? text.rfind(part) : text.find(part);
  if (found == std::string_view::npos) return -1;
  return length(text.substr(0, found));
}

int64_t count(std::string_view text, std::string_view part) {
  if (part.empty()) return length(text) + 1;
  int64_t n = 0;
  for (size_t at = text.find(part); at != std::string_view::npos; at = text.find(part, at + part.size())) ++n;
  return n;
}

std::string upper(std::string_view text) {
  if (!is_ascii(text)) return icu_case(text, CaseMap::Upper);
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view text) {
  if (!is_ascii(text)) return icu_case(text, CaseMap::Lower);
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string capitalize(std::string_view text) {
  const std::u32string cs = decode(text);
  if (cs.empty()) return "";
  return map_code_point(cs[0], CaseMap::Title) + lower(encode(std::u32string_view(cs).substr(1)));
}

std::string title(std::string_view text) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : decode(text)) {
    out += map_code_point(c, previous_cased ? CaseMap::Lower : CaseMap::Title);
    previous_cased = is_cased(c);
  }
  return out;
}

std::string jinja_title(std::string_view text) {
  // re.split(r"([-\s({\[<]+)", s): words and the separator runs between them, each item
  // item[0].upper() + item[1:].lower().
  const std::u32string cs = decode(text);
  auto separator = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_space(c); };
  std::string out;
  size_t i = 0;
  while (i < cs.size()) {
    const bool sep = separator(cs[i]);
    size_t j = i;
    while (j < cs.size() && separator(cs[j]) == sep) ++j;
    out += upper(encode(std::u32string_view(cs).substr(i, 1)));
    out += lower(encode(std::u32string_view(cs).substr(i + 1, j - i - 1)));
    i = j;
  }
  return out;
}

bool all_of_class(std::string_view text, char kind) {
  const std::u32string cs = decode(text);
  if (cs.empty()) return false;
  bool any_cased = false;
  for (char32_t c : cs) {
    const UChar32 u = static_cast<UChar32>(c);
    switch (kind) {
      case 'd':
        if (!u_isdigit(u)) return false;
        break;
      case 'a':
        if (!u_isalpha(u)) return false;
        break;
      case 's':
        if (!is_space(c)) return false;
        break;
      case 'u':
        if (u_islower(u) || u_istitle(u)) return false;
        any_cased |= u_isupper(u);
        break;
      case 'l':
        if (u_isupper(u) || u_istitle(u)) return false;
        any_cased |= u_islower(u);
        break;
      default:
        return false;
    }
  }
  return kind == 'u' || kind == 'l' ? any_cased : true;
}

std::string repr(std::string_view text) {
  const std::u32string cs = decode(text);
  const bool has_single = cs.find(U'\'') != std::u32string::npos;
  const bool has_double = cs.find(U'"') != std::u32string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : cs) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      append_hex(out, "\\x", c, 2);
    } else if (c < 0x7F || is_printable(c)) {
      unicode::append_utf8(out, c);
    } else if (c <= 0xFF) {
      append_hex(out, "\\x", c, 2);
    } else if (c <= 0xFFFF) {
      append_hex(out, "\\u", c, 4);
    } else {
      append_hex(out, "\\U", c, 8);
    }
  }
  out += quote;
  return out;
}

void append_json_string(std::string& out, std::string_view text, bool ensure_ascii) {
  out += '"';
  auto escape_byte = [&](unsigned char c) {
    switch (c) {
      case '"':
        out += "\\\"";
        return;
      case '\\':
        out += "\\\\";
        return;
      case '\n':
        out += "\\n";
        return;
      case '\r':
        out += "\\r";
        return;
      case '\t':
        out += "\\t";
        return;
      case '\b':
        out += "\\b";
        return;
      case '\f':
        out += "\\f";
        return;
      default:
        append_hex(out, "\\u", c, 4);
    }
  };
  if (!ensure_ascii) {
    for (char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == '"' || c == '\\') {
        escape_byte(c);
      } else {
        out += ch;
      }
    }
  } else {
    for (char32_t c : decode(text)) {
      if (c < 0x20 || c == '"' || c == '\\') {
        escape_byte(static_cast<unsigned char>(c));
      } else if (c < 0x7F) {
        out += static_cast<char>(c);
      } else if (c <= 0xFFFF) {
        append_hex(out, "\\u", c, 4);
      } else {
        const uint32_t v = c - 0x10000;
        append_hex(out, "\\u", 0xD800 + (v >> 10), 4);
        append_hex(out, "\\u", 0xDC00 + (v & 0x3FF), 4);
      }
    }
  }
  out += '"';
}

std::string float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // The shortest digits that round-trip, then CPython's layout (Python/pystrtod.c,
  // format_float_short with repr's mode 'r'): exponent form when decpt <= -4 or decpt > 16.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  const std::string_view sci(buffer, static_cast<size_t>(result.ptr - buffer));
  const size_t e = sci.find('e');
  std::string digits;
  bool negative = false;
  for (char c : sci.substr(0, e)) {
    if (c == '-')
      negative = true;
    else if (c != '.')
      digits += c;
  }
  const int exponent = std::stoi(std::string(sci.substr(e + 1)));
  const int decpt = exponent + 1;
  const int n = static_cast<int>(digits.size());
  // (Appended piece by piece: GCC 12 warns falsely on "literal" + std::string&&.)
  std::string out = negative ? "-" : "";
  if (decpt <= -4 || decpt > 16) {
    out += digits[0];
    if (n > 1) {
      out += '.';
      out.append(digits, 1);
    }
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += exp;
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decpt), '0');
    out += digits;
  } else if (decpt >= n) {
    out += digits;
    out.append(static_cast<size_t>(decpt - n), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<size_t>(decpt));
    out += '.';
    out.append(digits, static_cast<size_t>(decpt));
  }
  return out;
}

}  // namespace sentinel::jinja::py
