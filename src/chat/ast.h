// Internal: the syntax tree of a parsed template, the shape of jinja2.nodes reduced to what chat
// templates use. Each node keeps the position of the token that names it (the operator, the
// filter, the tag) so that render errors point at it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lexer.h"
#include "value.h"

namespace sentinel::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;
using Keywords = std::vector<std::pair<std::string, ExprPtr>>;

enum class ExprKind : uint8_t {
  Literal,      // literal
  Name,         // name
  List,         // [children...]
  Tuple,        // (children...)
  Dict,         // {children[0]: children[1], ...}
  GetAttr,      // children[0].name
  GetItem,      // children[0][children[1]]
  Slice,        // children[0][children[1]:children[2]:children[3]] (null: omitted)
  Call,         // children[0](children[1..], keywords)
  Filter,       // children[0] | name(children[1..], keywords)
  Test,         // children[0] is [not] name(children[1..])
  Negate,       // -children[0]
  Plus,         // +children[0]
  Not,          // not children[0]
  And,          // children[0] and children[1]
  Or,           // children[0] or children[1]
  Binary,       // children[0] name children[1]: + - * / // % ** ~
  Compare,      // children[0] ops[0] children[1] ops[1] children[2] ...: == != < <= > >= in notin
  Conditional,  // children[1] if children[0] else children[2] (children[2] null: undefined)
  BlockBody,    // the rendered body of {% filter %} / {% set x | f %}, the subject of its filters
};

struct Expr {
  ExprKind kind;
  Position position;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  Keywords keywords;
  std::vector<std::string> ops;
  bool negated = false;  // Test: `is not`
};

enum class StmtKind : uint8_t {
  Text,      // text
  Output,    // {{ expr }}
  If,        // branches: (condition, body)...; else_body
  For,       // {% for targets in expr [if condition] %} body {% else %} else_body {% endfor %}
  Set,       // {% set targets = expr %}; with attribute: {% set targets[0].targets[1] = expr %}
  SetBlock,  // {% set targets[0] [| filter] %} body {% endset %}
  Macro,     // {% macro name(params) %} body {% endmacro %}
  Break,
  Continue,
  FilterBlock,  // {% filter filter %} body {% endfilter %}
  With,         // {% with params %} body {% endwith %} (params: the assignments)
  Scope,        // body: transformers' {% generation %} ... {% endgeneration %}, rendered as is
};

struct Stmt {
  StmtKind kind;
  Position position;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr filter;  // SetBlock / FilterBlock: a filter chain applied to a BlockBody
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> targets;
  bool attribute = false;  // Set: targets are {namespace, attribute}
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro: (name, default or null); With: (name, value)
};

// Parses the tokens of tokenize(); throws Error with the position and what was expected or is not
// supported. Nesting (brackets, operators, blocks) deeper than kMaxNesting is refused, which
// bounds the parser's and the renderer's recursion.
inline constexpr int kMaxNesting = 100;
Body parse(const std::vector<Token>& tokens);

struct Program {
  Body body;
};

}  // namespace sentinel::jinja
