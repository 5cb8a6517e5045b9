// The template parser, expressions: jinja2/parser.py's precedence climbing (condexpr, or, and,
// not, compare, + -, ~, * / // %, **, unary, then postfix, filters and tests). See parser.h.
#include "parser.h"

namespace sentinel::jinja {

// A comma-separated list is a tuple; `explicit_parens` allows the empty tuple.
ExprPtr Parser::parse_tuple(bool with_condexpr, bool explicit_parens, std::string_view extra_end) {
  const Position at = current().position;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    const Token& t = current();
    if (t.kind == TokenKind::VariableEnd || t.kind == TokenKind::BlockEnd || is_op(")") ||
        (!extra_end.empty() && is_name(extra_end)))
      break;
    items.push_back(parse_expression(with_condexpr));
    if (is_op(","))
      is_tuple = true;
    else
      break;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) unexpected("an expression");
  }
  auto e = node(ExprKind::Tuple, at);
  e->children = std::move(items);
  return e;
}

ExprPtr Parser::parse_condexpr() {
  Nesting nesting(*this, current().position);
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    const Position at = advance().position;
    auto e = node(ExprKind::Conditional, at);
    e->children.push_back(parse_or());
    e->children.push_back(std::move(expr));
    e->children.push_back(skip_name("else") ? parse_condexpr() : nullptr);
    expr = std::move(e);
  }
  return expr;
}

ExprPtr Parser::binary(ExprKind kind, const Position& at, ExprPtr left, ExprPtr right, std::string op) {
  auto e = node(kind, at);
  e->name = std::move(op);
  e->children.push_back(std::move(left));
  e->children.push_back(std::move(right));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const Position at = advance().position;
    left = binary(ExprKind::Or, at, std::move(left), parse_and());
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const Position at = advance().position;
    left = binary(ExprKind::And, at, std::move(left), parse_not());
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (is_name("not")) {
    Nesting nesting(*this, current().position);
    auto e = node(ExprKind::Not, advance().position);
    e->children.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  const Position at = current().position;
  ExprPtr first = parse_math1();
  std::unique_ptr<Expr> e;
  while (true) {
    std::string op;
    if (current().kind == TokenKind::Operator &&
        (is_op("==") || is_op("!=") || is_op("<") || is_op("<=") || is_op(">") || is_op(">="))) {
      op = advance().text;
    } else if (skip_name("in")) {
      op = "in";
    } else if (is_name("not") && peek().kind == TokenKind::Name && peek().text == "in") {
      advance();
      advance();
      op = "notin";
    } else {
      break;
    }
    if (!e) {
      e = node(ExprKind::Compare, at);
      e->children.push_back(std::move(first));
    }
    e->ops.push_back(op);
    e->children.push_back(parse_math1());
  }
  return e ? std::move(e) : std::move(first);
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& op = advance();
    left = binary(ExprKind::Binary, op.position, std::move(left), parse_concat(), op.text);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const Token& op = advance();
    left = binary(ExprKind::Binary, op.position, std::move(left), parse_math2(), "~");
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& op = advance();
    left = binary(ExprKind::Binary, op.position, std::move(left), parse_pow(), op.text);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const Token& op = advance();
    left = binary(ExprKind::Binary, op.position, std::move(left), parse_unary(true), "**");
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  Nesting nesting(*this, current().position);
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    const Token& op = advance();
    e = node(op.text == "-" ? ExprKind::Negate : ExprKind::Plus, op.position);
    e->children.push_back(parse_unary(false));
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr Parser::parse_primary() {
  const Token& t = current();
  switch (t.kind) {
    case TokenKind::Name: {
      advance();
      auto e = node(ExprKind::Literal, t.position);
      if (t.text == "true" || t.text == "True")
        e->literal = Value(true);
      else if (t.text == "false" || t.text == "False")
        e->literal = Value(false);
      else if (t.text == "none" || t.text == "None")
        e->literal = Value::none();
      else {
        e->kind = ExprKind::Name;
        e->name = t.text;
      }
      return e;
    }
    case TokenKind::String: {
      auto e = node(ExprKind::Literal, t.position);
      std::string text;
      while (current().kind == TokenKind::String) text += advance().text;  // "a" "b" is "ab"
      e->literal = Value(std::move(text));
      return e;
    }
    case TokenKind::Integer:
    case TokenKind::Float: {
      advance();
      auto e = node(ExprKind::Literal, t.position);
      e->literal = t.kind == TokenKind::Integer ? Value(t.integer) : Value(t.number);
      return e;
    }
    case TokenKind::Operator:
      if (t.text == "(") {
        advance();
        ExprPtr e = parse_tuple(true, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[") return parse_list();
      if (t.text == "{") return parse_dict();
      break;
    default:
      break;
  }
  unexpected("an expression");
}

ExprPtr Parser::parse_list() {
  auto e = node(ExprKind::List, advance().position);
  while (!skip_op("]")) {
    if (!e->children.empty()) expect_op(",");
    if (skip_op("]")) break;
    e->children.push_back(parse_expression(true));
  }
  return e;
}

ExprPtr Parser::parse_dict() {
  auto e = node(ExprKind::Dict, advance().position);
  while (!skip_op("}")) {
    if (!e->children.empty()) expect_op(",");
    if (skip_op("}")) break;
    e->children.push_back(parse_expression(true));
    expect_op(":");
    e->children.push_back(parse_expression(true));
  }
  return e;
}

ExprPtr Parser::parse_postfix(ExprPtr e) {
  while (true) {
    if (is_op(".")) {
      const Position at = advance().position;
      if (current().kind == TokenKind::Integer) {  // x.0 is x[0]
        auto item = node(ExprKind::GetItem, at);
        item->children.push_back(std::move(e));
        auto index = node(ExprKind::Literal, current().position);
        index->literal = Value(advance().integer);
        item->children.push_back(std::move(index));
        e = std::move(item);
        continue;
      }
      auto attr = node(ExprKind::GetAttr, at);
      attr->name = expect_name();
      attr->children.push_back(std::move(e));
      e = std::move(attr);
    } else if (is_op("[")) {
      e = parse_subscript(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr subject) {
  const Position at = advance().position;  // [
  Nesting nesting(*this, at);
  ExprPtr start, stop, step;
  if (!is_op(":")) start = parse_expression(true);
  if (!skip_op(":")) {
    ExprPtr index = std::move(start);
    if (is_op(",")) {  // x[a, b]: a tuple key
      auto t = node(ExprKind::Tuple, index->position);
      t->children.push_back(std::move(index));
      while (skip_op(",") && !is_op("]")) t->children.push_back(parse_expression(true));
      index = std::move(t);
    }
    expect_op("]");
    auto e = node(ExprKind::GetItem, at);
    e->children.push_back(std::move(subject));
    e->children.push_back(std::move(index));
    return e;
  }
  if (!is_op("]") && !is_op(":")) stop = parse_expression(true);
  if (skip_op(":") && !is_op("]")) step = parse_expression(true);
  expect_op("]");
  auto e = node(ExprKind::Slice, at);
  e->children.push_back(std::move(subject));
  e->children.push_back(std::move(start));
  e->children.push_back(std::move(stop));
  e->children.push_back(std::move(step));
  return e;
}

// (args, name=value); appends to e->children and e->keywords.
void Parser::parse_call_args(Expr& e) {
  expect_op("(");
  bool first = true;
  while (!skip_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (skip_op(")")) break;
    if (is_op("*") || is_op("**")) error_at(current().position, "*args and **kwargs in calls are not supported");
    if (current().kind == TokenKind::Name && peek().kind == TokenKind::Operator && peek().text == "=") {
      std::string name = advance().text;
      advance();
      e.keywords.emplace_back(std::move(name), parse_expression(true));
    } else {
      if (!e.keywords.empty()) error_at(current().position, "a positional argument follows keyword arguments");
      e.children.push_back(parse_expression(true));
    }
  }
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  Nesting nesting(*this, current().position);
  auto e = node(ExprKind::Call, current().position);
  e->children.push_back(std::move(callee));
  parse_call_args(*e);
  return e;
}

// | name | name(args) ...; `inline_first`: the first filter has no '|' ({% filter name %}).
ExprPtr Parser::parse_filter(ExprPtr e, bool inline_first) {
  while (is_op("|") || inline_first) {
    if (!inline_first) advance();
    inline_first = false;
    auto f = node(ExprKind::Filter, current().position);
    f->name = expect_name();
    while (is_op(".") && peek().kind == TokenKind::Name) {
      advance();
      f->name += "." + advance().text;
    }
    f->children.push_back(std::move(e));
    if (is_op("(")) parse_call_args(*f);
    e = std::move(f);
  }
  return e;
}

ExprPtr Parser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      e = parse_filter(std::move(e), false);
    } else if (is_name("is")) {
      e = parse_test(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr Parser::parse_test(ExprPtr subject) {
  advance();  // is
  const bool negated = skip_name("not");
  auto t = node(ExprKind::Test, current().position);
  t->name = expect_name();
  while (is_op(".") && peek().kind == TokenKind::Name) {
    advance();
    t->name += "." + advance().text;
  }
  t->negated = negated;
  t->children.push_back(std::move(subject));
  const Token& c = current();
  const bool argument_follows = c.kind == TokenKind::String || c.kind == TokenKind::Integer ||
                                c.kind == TokenKind::Float ||
                                (c.kind == TokenKind::Name && c.text != "else" && c.text != "or" && c.text != "and") ||
                                (c.kind == TokenKind::Operator && (c.text == "[" || c.text == "{"));
  if (is_op("(")) {
    parse_call_args(*t);
  } else if (argument_follows) {  // `x is divisibleby 3`, `x is sameas none`: one argument
    if (is_name("is")) error_at(c.position, "tests cannot be chained with 'is'");
    t->children.push_back(parse_postfix(parse_primary()));
  }
  return t;
}

}  // namespace sentinel::jinja
