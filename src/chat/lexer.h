// Internal: splits a Jinja template into text and tag tokens exactly as jinja2's Lexer does with
// transformers' settings (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
// newlines normalised to \n, one trailing newline dropped, `-`/`+` whitespace control, comments
// dropped, {% raw %} kept verbatim. Not configurable: other delimiters and line statements are absent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sentinel::jinja {

struct Position {
  int32_t line = 1, column = 1;  // 1-based; the column counts code points
};

enum class TokenKind : uint8_t {
  Text,           // template data between tags, whitespace control applied
  VariableBegin,  // {{
  VariableEnd,    // }}
  BlockBegin,     // {%
  BlockEnd,       // %}
  Name,           // identifier or keyword
  String,         // literal, escapes resolved (Python's unicode-escape)
  Integer,
  Float,
  Operator,  // + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  End,
};

struct Token {
  TokenKind kind;
  std::string text;  // Text / Name / String value / Operator spelling / literal spelling
  Position position;
  int64_t integer = 0;
  double number = 0;
};

// Throws Error "chat template line L, column C: ..." for an unterminated tag, comment, string or
// raw block, an unexpected character, or unbalanced brackets. Ends with one End token.
std::vector<Token> tokenize(std::string_view source);

// "chat template line 3, column 7: " (the prefix of every positioned error).
std::string where(const Position& position);

}  // namespace sentinel::jinja
