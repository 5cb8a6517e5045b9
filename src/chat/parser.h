// Internal: the recursive-descent parser behind parse() (ast.h), a transcription of
// jinja2/parser.py. Statements are in parser.cpp, expressions (operator precedence, tuples,
// filters and tests binding tighter than binary operators, slices, calls) in parse_expression.cpp.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "ast.h"
#include "sentinel/core/error.h"

namespace sentinel::jinja {

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}
  Body parse_template();

 private:
  // ---- tokens ----
  const Token& current() const { return tokens_[i_]; }
  const Token& peek(size_t ahead = 1) const { return tokens_[std::min(i_ + ahead, tokens_.size() - 1)]; }
  const Token& advance() { return tokens_[i_ < tokens_.size() - 1 ? i_++ : i_]; }
  bool is_op(std::string_view op) const { return current().kind == TokenKind::Operator && current().text == op; }
  bool is_name(std::string_view name) const { return current().kind == TokenKind::Name && current().text == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  static std::string describe(const Token& t);
  [[noreturn]] void error_at(const Position& p, const std::string& what) const { fail(where(p), what); }
  [[noreturn]] void unexpected(const std::string& expected) const;
  void expect_op(std::string_view op);
  std::string expect_name();
  void expect_block_end(std::string_view tag);

  // Bounds recursion: nested brackets, operators and blocks (kMaxNesting).
  struct Nesting {
    Nesting(Parser& parser, const Position& at) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.error_at(at, "nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nesting() { --p.depth_; }
    Parser& p;
  };

  ExprPtr node(ExprKind kind, const Position& p) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->position = p;
    return e;
  }
  StmtPtr statement(StmtKind kind, const Position& p) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->position = p;
    return s;
  }

  // ---- statements (parser.cpp) ----
  // Statements up to a {% tag %} whose name is in `ends` (left unconsumed), or the end of the template.
  Body parse_body(std::initializer_list<std::string_view> ends, const Position* opened = nullptr,
                  std::string_view opener = "");
  StmtPtr parse_statement();         // after "{%": the tag name decides
  void close(std::string_view end);  // {% end... %}
  StmtPtr parse_if(const Position& at);
  std::vector<std::string> parse_targets();  // a / k, v / (a, b)
  StmtPtr parse_for(const Position& at);
  StmtPtr parse_set(const Position& at);
  StmtPtr parse_macro(const Position& at);

  // ---- expressions (parse_expression.cpp), jinja2.parser.Parser.parse_* in order of precedence ----
  // A comma-separated list is a tuple; `explicit_parens` allows the empty tuple.
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens, std::string_view extra_end = "");
  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }
  ExprPtr parse_condexpr();
  ExprPtr binary(ExprKind kind, const Position& at, ExprPtr left, ExprPtr right, std::string op = "");
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();   // + -
  ExprPtr parse_concat();  // ~
  ExprPtr parse_math2();   // * / // %
  ExprPtr parse_pow();     // **
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_list();
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr e);  // .name [index] (call)
  ExprPtr parse_subscript(ExprPtr subject);
  void parse_call_args(Expr& e);  // (args, name=value): appends to e.children and e.keywords
  ExprPtr parse_call(ExprPtr callee);
  // | name | name(args) ...; `inline_first`: the first filter has no '|' ({% filter name %}).
  ExprPtr parse_filter(ExprPtr e, bool inline_first);
  ExprPtr parse_filter_expr(ExprPtr e);  // filters, tests and calls after a unary
  ExprPtr parse_test(ExprPtr subject);

  const std::vector<Token>& tokens_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace sentinel::jinja
