// The template parser, statements: tokens to the tree of ast.h (parse_expression.cpp has the
// expressions), then the check of filter and test names with jinja2's compile-time rule.
// Unsupported tags fail with their name.
#include "parser.h"

#include "builtins.h"

namespace sentinel::jinja {

Body Parser::parse_template() {
  Body body = parse_body({});
  return body;
}

// Statements up to a {% tag %} whose name is in `ends` (left unconsumed), or the end of the template.
Body Parser::parse_body(std::initializer_list<std::string_view> ends, const Position* opened, std::string_view opener) {
  Body body;
  while (true) {
    const Token& t = current();
    if (t.kind == TokenKind::End) {
      if (ends.size() == 0) return body;
      error_at(opened ? *opened : t.position, "the '" + std::string(opener) + "' tag is never closed (expected '{% " +
                                                  std::string(*(ends.end() - 1)) + " %}')");
    }
    if (t.kind == TokenKind::Text) {
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::Text;
      s->position = t.position;
      s->text = t.text;
      body.push_back(std::move(s));
      advance();
    } else if (t.kind == TokenKind::VariableBegin) {
      advance();
      auto s = std::make_unique<Stmt>();
      s->kind = StmtKind::Output;
      s->position = t.position;
      s->expr = parse_tuple(true, false);
      if (current().kind != TokenKind::VariableEnd) unexpected("'}}'");
      advance();
      body.push_back(std::move(s));
    } else if (t.kind == TokenKind::BlockBegin) {
      const Token& tag = peek();
      if (tag.kind == TokenKind::Name)
        for (std::string_view end : ends)
          if (tag.text == end) return body;
      advance();
      body.push_back(parse_statement());
    } else {
      unexpected("template text or a tag");
    }
  }
}

std::string Parser::describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::Text:
      return "template text";
    case TokenKind::VariableBegin:
      return "'{{'";
    case TokenKind::VariableEnd:
      return "'}}'";
    case TokenKind::BlockBegin:
      return "'{%'";
    case TokenKind::BlockEnd:
      return "'%}'";
    case TokenKind::String:
      return "a string";
    case TokenKind::End:
      return "the end of the template";
    default:
      return "'" + t.text + "'";
  }
}

[[noreturn]] void Parser::unexpected(const std::string& expected) const {
  error_at(current().position, "expected " + expected + ", got " + describe(current()));
}

void Parser::expect_op(std::string_view op) {
  if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
}

std::string Parser::expect_name() {
  if (current().kind != TokenKind::Name) unexpected("a name");
  return advance().text;
}

void Parser::expect_block_end(std::string_view tag) {
  if (current().kind != TokenKind::BlockEnd) unexpected("'%}' to end the '" + std::string(tag) + "' tag");
  advance();
}

// After "{%": the tag name decides.
StmtPtr Parser::parse_statement() {
  const Position at = current().position;
  if (current().kind != TokenKind::Name) unexpected("a tag name");
  const std::string tag = advance().text;
  Nesting nesting(*this, at);
  if (tag == "if") return parse_if(at);
  if (tag == "for") return parse_for(at);
  if (tag == "set") return parse_set(at);
  if (tag == "macro") return parse_macro(at);
  if (tag == "filter") {
    auto s = statement(StmtKind::FilterBlock, at);
    s->filter = parse_filter(node(ExprKind::BlockBody, at), true);
    expect_block_end(tag);
    s->body = parse_body({"endfilter"}, &at, tag);
    close("endfilter");
    return s;
  }
  if (tag == "break" || tag == "continue") {
    expect_block_end(tag);
    return statement(tag == "break" ? StmtKind::Break : StmtKind::Continue, at);
  }
  if (tag == "generation") {  // transformers' AssistantTracker extension: renders its body
    auto s = statement(StmtKind::Scope, at);
    expect_block_end(tag);
    s->body = parse_body({"endgeneration"}, &at, tag);
    close("endgeneration");
    return s;
  }
  if (tag == "with") {
    auto s = statement(StmtKind::With, at);
    while (current().kind != TokenKind::BlockEnd) {
      if (!s->params.empty()) expect_op(",");
      std::string name = expect_name();
      expect_op("=");
      s->params.emplace_back(std::move(name), parse_expression(true));
    }
    expect_block_end(tag);
    s->body = parse_body({"endwith"}, &at, tag);
    close("endwith");
    return s;
  }
  static const char* const kUnsupported[] = {"call", "include", "import", "from", "extends", "block", "autoescape"};
  for (const char* name : kUnsupported)
    if (tag == name) error_at(at, "the '" + tag + "' tag is not supported in chat templates");
  error_at(at, "unknown tag '" + tag + "' (transformers' Jinja environment does not define it)");
}

void Parser::close(std::string_view end) {
  advance();  // {%
  advance();  // the end name, checked by parse_body
  expect_block_end(end);
}

StmtPtr Parser::parse_if(const Position& at) {
  auto s = statement(StmtKind::If, at);
  while (true) {
    ExprPtr condition = parse_tuple(false, false);
    expect_block_end("if");
    Body body = parse_body({"elif", "else", "endif"}, &at, "if");
    s->branches.emplace_back(std::move(condition), std::move(body));
    advance();  // {%
    const std::string next = advance().text;
    if (next == "elif") continue;
    if (next == "else") {
      expect_block_end("else");
      s->else_body = parse_body({"endif"}, &at, "if");
      close("endif");
    } else {
      expect_block_end("endif");
    }
    return s;
  }
}

// for a in xs / for k, v in d.items() / for (a, b) in pairs
std::vector<std::string> Parser::parse_targets() {
  std::vector<std::string> names;
  const bool parenthesised = skip_op("(");
  do {
    names.push_back(expect_name());
  } while (skip_op(","));
  if (parenthesised) expect_op(")");
  return names;
}

StmtPtr Parser::parse_for(const Position& at) {
  auto s = statement(StmtKind::For, at);
  s->targets = parse_targets();
  if (!skip_name("in")) unexpected("'in'");
  s->expr = parse_tuple(false, false, "recursive");
  if (skip_name("if")) s->condition = parse_expression(true);
  if (is_name("recursive")) error_at(current().position, "recursive for loops are not supported in chat templates");
  expect_block_end("for");
  s->body = parse_body({"else", "endfor"}, &at, "for");
  advance();
  if (advance().text == "else") {
    expect_block_end("else");
    s->else_body = parse_body({"endfor"}, &at, "for");
    close("endfor");
  } else {
    expect_block_end("endfor");
  }
  return s;
}

StmtPtr Parser::parse_set(const Position& at) {
  std::vector<std::string> targets;
  bool attribute = false;
  if (current().kind == TokenKind::Name && peek().kind == TokenKind::Operator && peek().text == ".") {
    targets.push_back(advance().text);  // {% set ns.attr = ... %}
    advance();
    targets.push_back(expect_name());
    attribute = true;
  } else {
    targets = parse_targets();
  }
  if (skip_op("=")) {
    auto s = statement(StmtKind::Set, at);
    s->targets = std::move(targets);
    s->attribute = attribute;
    s->expr = parse_tuple(true, false);
    expect_block_end("set");
    return s;
  }
  if (attribute || targets.size() != 1) unexpected("'=' (a block set assigns one plain name)");
  auto s = statement(StmtKind::SetBlock, at);
  s->targets = std::move(targets);
  if (is_op("|")) s->filter = parse_filter(node(ExprKind::BlockBody, at), false);
  expect_block_end("set");
  s->body = parse_body({"endset"}, &at, "set");
  close("endset");
  return s;
}

StmtPtr Parser::parse_macro(const Position& at) {
  auto s = statement(StmtKind::Macro, at);
  s->name = expect_name();
  expect_op("(");
  while (!skip_op(")")) {
    if (!s->params.empty()) expect_op(",");
    if (skip_op(")")) break;
    std::string name = expect_name();
    ExprPtr default_value;
    if (skip_op("="))
      default_value = parse_expression(true);
    else if (!s->params.empty() && s->params.back().second)
      error_at(current().position, "a macro parameter without a default follows one with a default");
    s->params.emplace_back(std::move(name), std::move(default_value));
  }
  expect_block_end("macro");
  s->body = parse_body({"endmacro"}, &at, "macro");
  close("endmacro");
  return s;
}

namespace {

// Unknown filters and tests fail when the template is compiled, as in jinja2, except inside an
// {% if %} or an inline if, where jinja2 defers the error to when the filter runs (a "soft
// frame", jinja2/compiler.py _filter_test_common). Loops, macros and blocks open hard frames again.
class Validator {
 public:
  void body(const Body& b, bool soft) {
    for (const StmtPtr& s : b) statement(*s, soft);
  }

 private:
  void statement(const Stmt& s, bool soft) {
    switch (s.kind) {
      case StmtKind::If:
        for (const auto& [condition, body_] : s.branches) {
          expr(condition.get(), true);
          body(body_, true);
        }
        body(s.else_body, true);
        return;
      case StmtKind::For:
        expr(s.expr.get(), soft);
        expr(s.condition.get(), false);
        body(s.body, false);
        body(s.else_body, false);
        return;
      case StmtKind::Macro:
        for (const auto& [name, default_value] : s.params) expr(default_value.get(), false);
        body(s.body, false);
        return;
      case StmtKind::With:
        for (const auto& [name, value] : s.params) expr(value.get(), soft);
        body(s.body, false);
        return;
      default:
        expr(s.expr.get(), soft);
        expr(s.filter.get(), soft);
        body(s.body, false);
    }
  }

  void expr(const Expr* e, bool soft) {
    if (!e) return;
    if (e->kind == ExprKind::Conditional) soft = true;
    if (e->kind == ExprKind::Filter && !soft) {
      switch (filter_support(e->name)) {
        case Support::Yes:
          break;
        case Support::NotImplemented:
          fail(where(e->position), "the Jinja filter '", e->name, "' is not supported by this interpreter");
        case Support::Unknown:
          fail(where(e->position), "no filter named '", e->name, "' (neither Jinja nor transformers defines it)");
      }
    }
    if (e->kind == ExprKind::Test && !soft && !is_test(e->name))
      fail(where(e->position), "no test named '", e->name, "'");
    for (const ExprPtr& child : e->children) expr(child.get(), soft);
    for (const auto& [name, value] : e->keywords) expr(value.get(), soft);
  }
};

}  // namespace

Body parse(const std::vector<Token>& tokens) {
  Body body = Parser(tokens).parse_template();
  Validator().body(body, false);
  return body;
}

}  // namespace sentinel::jinja
