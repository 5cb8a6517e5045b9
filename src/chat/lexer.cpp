// The template lexer; a transcription of jinja2/lexer.py (Lexer.tokeniter and its regexes) for
// the default delimiters with trim_blocks and lstrip_blocks on. See lexer.h.
#include "lexer.h"

#include <cmath>
#include <cstring>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel::jinja {
namespace {

bool is_space_at(std::string_view s, size_t i, size_t* length) {
  const unicode::Utf8Step step = unicode::decode_utf8_step(s, i);
  *length = step.length;
  return unicode::is_python_space(step.code_point);
}

// Python's str.rstrip(): trailing whitespace (str.isspace) removed.
std::string_view rstrip(std::string_view s) {
  const std::u32string cs = unicode::decode_utf8(s);
  size_t keep = cs.size();
  while (keep > 0 && unicode::is_python_space(cs[keep - 1])) --keep;
  size_t bytes = 0;
  for (size_t i = 0; i < keep; ++i) bytes += unicode::decode_utf8_step(s, bytes).length;
  return s.substr(0, bytes);
}

bool all_space(std::string_view s) {
  for (size_t i = 0, n = 0; i < s.size(); i += n)
    if (!is_space_at(s, i, &n)) return false;
  return true;
}

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(normalise(source)) {}

  std::vector<Token> run() {
    while (pos_ < source_.size()) root();
    tokens_.push_back({TokenKind::End, "", position(source_.size())});
    return std::move(tokens_);
  }

 private:
  // "\r\n", "\r" and "\n" all become "\n"; one trailing newline is dropped (keep_trailing_newline=False).
  static std::string normalise(std::string_view source) {
    std::string out;
    out.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        out += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        out += source[i];
      }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  // Line and column of a byte offset (counted on from the previous one, which is almost always earlier).
  Position position(size_t offset) {
    if (offset < cursor_) {  // only errors look back (to the tag that is not closed): count again
      cursor_ = 0;
      at_ = Position{};
    }
    for (; cursor_ < offset && cursor_ < source_.size(); ++cursor_) {
      const auto c = static_cast<unsigned char>(source_[cursor_]);
      if (c == '\n') {
        ++at_.line;
        at_.column = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++at_.column;
      }
    }
    return at_;
  }

  [[noreturn]] void error(size_t offset, const std::string& what) { fail(where(position(offset)), what); }

  void push(TokenKind kind, std::string text, size_t offset) {
    tokens_.push_back({kind, std::move(text), position(offset)});
  }

  // Text up to the next tag, with the whitespace control of that tag applied to it.
  void root() {
    const size_t start = pos_;
    size_t tag = source_.find('{', pos_);
    auto opens_tag = [&](size_t at) { return source_[at] == '{' || source_[at] == '%' || source_[at] == '#'; };
    while (tag != std::string::npos && tag + 1 < source_.size() && !opens_tag(tag + 1))
      tag = source_.find('{', tag + 1);
    if (tag == std::string::npos || tag + 1 >= source_.size()) {
      push(TokenKind::Text, source_.substr(start), start);
      pos_ = source_.size();
      return;
    }
    const char kind = source_[tag + 1];
    const char sign =
        tag + 2 < source_.size() && (source_[tag + 2] == '-' || source_[tag + 2] == '+') ? source_[tag + 2] : 0;
    std::string_view text = std::string_view(source_).substr(start, tag - start);
    if (sign == '-') {
      text = rstrip(text);
    } else if (sign != '+' && kind != '{') {           // lstrip_blocks: blocks and comments, not {{ }}
      const size_t line_start = text.rfind('\n') + 1;  // npos + 1 == 0
      const std::string_view tail = text.substr(line_start);
      if ((line_start > 0 || line_starting_) && !tail.empty() && all_space(tail)) text = text.substr(0, line_start);
    }
    if (!text.empty()) push(TokenKind::Text, std::string(text), start);
    pos_ = tag + 2 + (sign ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') return comment(tag);
    if (kind == '%' && raw_begin()) return raw(tag);
    push(kind == '{' ? TokenKind::VariableBegin : TokenKind::BlockBegin, kind == '{' ? "{{" : "{%", tag);
    tag_contents(kind == '{' ? '}' : '%', tag);
  }

  // After "{#": up to the first "#}" (with its own whitespace control).
  void comment(size_t tag) {
    const size_t end = source_.find("#}", pos_);
    if (end == std::string::npos) error(tag, "missing end of comment tag '#}'");
    const char sign = end > pos_ && (source_[end - 1] == '-' || source_[end - 1] == '+') ? source_[end - 1] : 0;
    pos_ = end + 2;
    finish_tag(sign);
  }

  // After the end delimiter: '-' eats all following whitespace, '+' nothing, else trim_blocks
  // eats one newline. line_starting_ says whether the consumed text ended in a newline.
  void finish_tag(char sign) {
    line_starting_ = false;
    if (sign == '-') {
      size_t n = 0;
      while (pos_ < source_.size() && is_space_at(source_, pos_, &n)) {
        line_starting_ = source_[pos_] == '\n';
        pos_ += n;
      }
    } else if (sign != '+' && pos_ < source_.size() && source_[pos_] == '\n') {
      ++pos_;
      line_starting_ = true;
    }
  }

  // "{% raw %}" (or with -/+): true and past it if this block is a raw block.
  bool raw_begin() {
    size_t p = skip_space(pos_);
    if (source_.compare(p, 3, "raw") != 0 || (p + 3 < source_.size() && is_name_char(source_[p + 3]))) return false;
    p = skip_space(p + 3);
    if (source_.compare(p, 3, "-%}") == 0) {
      pos_ = p + 3;
      finish_tag('-');
      return true;
    }
    if (source_.compare(p, 2, "%}") == 0) {  // no trim_blocks newline here, as in jinja2's raw_begin rule
      pos_ = p + 2;
      line_starting_ = false;
      return true;
    }
    return false;
  }

  void raw(size_t tag) {
    for (size_t search = pos_;;) {
      const size_t open = source_.find("{%", search);
      if (open == std::string::npos) error(tag, "missing end of raw directive '{% endraw %}'");
      size_t p = open + 2;
      const char sign = p < source_.size() && (source_[p] == '-' || source_[p] == '+') ? source_[p] : 0;
      if (sign) ++p;
      p = skip_space(p);
      if (source_.compare(p, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      p = skip_space(p + 6);
      char end_sign = 0;
      if (p < source_.size() && (source_[p] == '-' || source_[p] == '+')) end_sign = source_[p++];
      if (source_.compare(p, 2, "%}") != 0) {
        search = open + 2;
        continue;
      }
      std::string_view text = std::string_view(source_).substr(pos_, open - pos_);
      if (sign == '-')
        text = rstrip(text);
      else if (sign != '+') {
        const size_t line_start = text.rfind('\n') + 1;
        const std::string_view tail = text.substr(line_start);
        if ((line_start > 0 || line_starting_) && !tail.empty() && all_space(tail)) text = text.substr(0, line_start);
      }
      if (!text.empty()) push(TokenKind::Text, std::string(text), pos_);
      pos_ = p + 2;
      finish_tag(end_sign);
      return;
    }
  }

  size_t skip_space(size_t p) const {
    size_t n = 0;
    while (p < source_.size() && is_space_at(source_, p, &n)) p += n;
    return p;
  }

  // Tokens inside {{ }} or {% %}, up to the end delimiter (close: '}' or '%').
  void tag_contents(char close, size_t tag) {
    std::vector<char> brackets;
    while (true) {
      pos_ = skip_space(pos_);
      if (pos_ >= source_.size())
        error(tag, close == '}' ? "missing end of print tag '}}'" : "missing end of block tag '%}'");
      if (brackets.empty()) {
        char sign = 0;
        size_t p = pos_;
        if (source_[p] == '-' || (close == '%' && source_[p] == '+')) sign = source_[p++];
        if (source_.compare(p, 2, close == '}' ? "}}" : "%}") == 0) {
          push(close == '}' ? TokenKind::VariableEnd : TokenKind::BlockEnd, close == '}' ? "}}" : "%}", pos_);
          pos_ = p + 2;
          if (close == '}' && sign != '-') {  // trim_blocks does not apply to }}
            line_starting_ = false;
          } else {
            finish_tag(sign);
          }
          return;
        }
      }
      token(brackets);
    }
  }

  void token(std::vector<char>& brackets) {
    const size_t start = pos_;
    const char c = source_[pos_];
    if (is_digit(c)) return number(start);
    if (is_name_start(c)) {
      while (pos_ < source_.size() && is_name_char(source_[pos_])) ++pos_;
      return push(TokenKind::Name, source_.substr(start, pos_ - start), start);
    }
    if (c == '\'' || c == '"') return string(start);
    static const char* const kOperators[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                             "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOperators) {
      const size_t n = std::strlen(op);
      if (source_.compare(pos_, n, op) != 0) continue;
      if (n == 1 && std::strchr("([{", op[0])) brackets.push_back(op[0] == '(' ? ')' : op[0] == '[' ? ']' : '}');
      if (n == 1 && std::strchr(")]}", op[0])) {
        if (brackets.empty()) error(start, std::string("unexpected '") + op + "'");
        if (brackets.back() != op[0])
          error(start, std::string("unexpected '") + op + "', expected '" + brackets.back() + "'");
        brackets.pop_back();
      }
      pos_ += n;
      return push(TokenKind::Operator, op, start);
    }
    const unicode::Utf8Step step = unicode::decode_utf8_step(source_, pos_);
    std::string ch;
    unicode::append_utf8(ch, step.code_point);
    error(start, "unexpected character '" + ch + "'");
  }

  // jinja2's integer_re and float_re: 0b/0o/0x prefixes, '_' between digits, floats need digits
  // on both sides of the point or an exponent.
  void number(size_t start) {
    auto digits = [&](auto accept) {
      const size_t from = pos_;
      while (pos_ < source_.size() &&
             (accept(source_[pos_]) ||
              (source_[pos_] == '_' && pos_ > from && pos_ + 1 < source_.size() && accept(source_[pos_ + 1]))))
        ++pos_;
      return pos_ > from;
    };
    auto dec = [](char ch) { return is_digit(ch); };
    const char base_char = pos_ + 1 < source_.size() ? static_cast<char>(source_[pos_ + 1] | 0x20) : 0;
    if (source_[pos_] == '0' && (base_char == 'b' || base_char == 'o' || base_char == 'x')) {
      const int base = base_char == 'b' ? 2 : base_char == 'o' ? 8 : 16;
      pos_ += 2;
      const size_t from = pos_;
      while (pos_ < source_.size() &&
             (std::isxdigit(static_cast<unsigned char>(source_[pos_])) || source_[pos_] == '_'))
        ++pos_;
      return integer(start, source_.substr(from, pos_ - from), base);
    }
    digits(dec);
    bool is_float = false;
    if (pos_ + 1 < source_.size() && source_[pos_] == '.' && is_digit(source_[pos_ + 1])) {
      ++pos_;
      digits(dec);
      is_float = true;
    }
    if (pos_ < source_.size() && (source_[pos_] | 0x20) == 'e') {
      size_t p = pos_ + 1;
      if (p < source_.size() && (source_[p] == '+' || source_[p] == '-')) ++p;
      if (p < source_.size() && is_digit(source_[p])) {
        pos_ = p;
        digits(dec);
        is_float = true;
      }
    }
    const std::string spelling = source_.substr(start, pos_ - start);
    if (!is_float) return integer(start, spelling, 10);
    std::string plain;
    for (char ch : spelling)
      if (ch != '_') plain += ch;
    Token t{TokenKind::Float, spelling, position(start)};
    t.number = std::strtod(plain.c_str(), nullptr);
    tokens_.push_back(std::move(t));
  }

  void integer(size_t start, const std::string& spelling, int base) {
    int64_t value = 0;
    bool any = false;
    for (char ch : spelling) {
      if (ch == '_') continue;
      const int d = is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10;
      if (d < 0 || d >= base)
        error(start, "invalid digit '" + std::string(1, ch) + "' in a base-" + std::to_string(base) + " integer");
      if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value))
        error(start, "integer literal " + spelling + " is beyond 64-bit range");
      any = true;
    }
    if (!any) error(start, "integer literal without digits");
    Token t{TokenKind::Integer, spelling, position(start)};
    t.integer = value;
    tokens_.push_back(std::move(t));
  }

  // A quoted literal; the escapes of Python's unicode-escape codec (\n \t \\ \' \xhh \uhhhh
  // \Uhhhhhhhh \ooo ...); an unknown escape keeps its backslash, as Python does.
  void string(size_t start) {
    const char quote = source_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= source_.size()) error(start, "unterminated string literal");
      const char c = source_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        continue;
      }
      if (pos_ >= source_.size()) error(start, "unterminated string literal");
      const char e = source_[pos_++];
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t code = 0;
          for (int i = 0; i < n; ++i, ++pos_) {
            if (pos_ >= source_.size() || !std::isxdigit(static_cast<unsigned char>(source_[pos_])))
              error(start, std::string("truncated \\") + e + " escape in a string literal");
            const char h = source_[pos_];
            code = code * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          if (code > 0x10FFFF) error(start, "\\U escape beyond U+10FFFF in a string literal");
          unicode::append_utf8(value, code >= 0xD800 && code <= 0xDFFF ? unicode::kReplacementCharacter : code);
          break;
        }
        case 'N':
          error(start, "\\N{...} escapes in string literals are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t code = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && pos_ < source_.size() && source_[pos_] >= '0' && source_[pos_] <= '7'; ++i)
              code = code * 8 + static_cast<uint32_t>(source_[pos_++] - '0');
            unicode::append_utf8(value, code);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    push(TokenKind::String, std::move(value), start);
  }

  std::string source_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
  size_t cursor_ = 0;
  Position at_;
};

}  // namespace

std::string where(const Position& position) {
  return "chat template line " + std::to_string(position.line) + ", column " + std::to_string(position.column) + ": ";
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace sentinel::jinja
