// The renderer: executes statements and evaluates expressions of the tree from parser.cpp, with
// jinja2's scoping and Python's operator semantics. See evaluator.h.
#include "evaluator.h"

#include <chrono>
#include <iterator>

#include "builtins.h"

namespace sentinel::jinja {
namespace {

// Restores the output target when a capture ends, also on an exception.
class OutputSwap {
 public:
  OutputSwap(std::string*& out, std::string* replacement) : out_(out), saved_(out) { out_ = replacement; }
  ~OutputSwap() { out_ = saved_; }

 private:
  std::string*& out_;
  std::string* saved_;
};

// Binds loop targets (or set targets) to a value: one name gets it whole, several unpack it.
void bind_targets(Renderer& r, Frame& frame, const std::vector<std::string>& names, const Value& value) {
  if (names.size() == 1) {
    frame.vars[names[0]] = value;
    return;
  }
  fail_if_undefined(value);
  const std::vector<Value> parts = iterate(r, value);
  check(parts.size() == names.size(), parts.size() > names.size() ? "too many" : "not enough",
        " values to unpack (expected ", names.size(), ", got ", parts.size(), ")");
  for (size_t i = 0; i < names.size(); ++i) frame.vars[names[i]] = parts[i];
}

// Using an undefined value as an object (x.a, x[0], x()): the error points at x.
void check_defined(const Value& v, const Expr& where_from) {
  if (v.is_undefined()) throw PositionedError(where(where_from.position) + v.undefined_hint());
}

}  // namespace

const Value* Frame::find(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    const auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

Renderer::Renderer(const RenderOptions& options) : options_(options) {
  if (options_.now) {
    now_ = *options_.now;
  } else {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    localtime_r(&t, &now_);
  }
}

Renderer::~Renderer() {
  for (const auto& scope : macro_scopes_) scope->vars.clear();
  for (const Value& ns : namespaces_) ns.namespace_dict().clear();
}

std::string Renderer::render(const Program& program, const nlohmann::ordered_json& variables) {
  check(variables.is_object(), "chat template variables must be a JSON object, got ", variables.type_name());
  auto globals = std::make_shared<Frame>(nullptr);
  add_globals(*globals);
  for (const auto& [name, value] : variables.items()) globals->vars[name] = Value::from_json(value);
  auto top = std::make_shared<Frame>(globals);
  std::string out;
  OutputSwap swap(out_, &out);
  exec_body(program.body, top);
  return out;
}

void Renderer::check_text(size_t bytes) const {
  check(bytes <= options_.limits.max_output_bytes, "the template builds a string of ", bytes,
        " bytes, beyond the limit of ", options_.limits.max_output_bytes, " (RenderLimits::max_output_bytes)");
}

void Renderer::check_list(size_t n) const {
  check(static_cast<int64_t>(n) <= options_.limits.max_list_items, "the template builds a list of ", n,
        " items, beyond the limit of ", options_.limits.max_list_items, " (RenderLimits::max_list_items)");
}

void Renderer::step(int64_t n) {
  steps_ += n;
  check(steps_ <= options_.limits.max_steps, "rendering took more than ", options_.limits.max_steps,
        " steps (RenderLimits::max_steps); the template loops too long");
}

void Renderer::write(std::string_view text) {
  charge_text(text.size());
  out_->append(text);
  check(out_->size() <= options_.limits.max_output_bytes, "the rendered text exceeds ",
        options_.limits.max_output_bytes, " bytes (RenderLimits::max_output_bytes)");
}

std::string Renderer::capture(const Body& body, const FramePtr& frame) {
  std::string text;
  OutputSwap swap(out_, &text);
  exec_body(body, frame);
  return text;
}

// ---- statements ----

Renderer::Flow Renderer::exec_body(const Body& body, const FramePtr& frame) {
  for (const StmtPtr& s : body) {
    const Flow flow = exec(*s, frame);
    if (flow != Flow::Normal) return flow;
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec(const Stmt& s, const FramePtr& frame) {
  step();
  try {
    switch (s.kind) {
      case StmtKind::Text:
        write(s.text);
        return Flow::Normal;
      case StmtKind::Output:
        write(to_str(eval(*s.expr, frame), text_bounds()));
        return Flow::Normal;
      case StmtKind::If:
        for (const auto& [condition, body] : s.branches)
          if (eval(*condition, frame).truthy()) return exec_body(body, frame);
        return exec_body(s.else_body, frame);
      case StmtKind::For:
        return exec_for(s, frame);
      case StmtKind::Set:
        exec_set(s, frame);
        return Flow::Normal;
      case StmtKind::SetBlock: {
        block_body_ = capture(s.body, frame);
        frame->vars[s.targets[0]] = s.filter ? eval(*s.filter, frame) : Value(std::move(block_body_));
        return Flow::Normal;
      }
      case StmtKind::Macro: {
        Function f;
        f.name = s.name;
        f.macro = &s;
        f.closure = frame;
        frame->vars[s.name] = Value::function(std::move(f));
        macro_scopes_.push_back(frame);
        return Flow::Normal;
      }
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
      case StmtKind::FilterBlock:
        block_body_ = capture(s.body, frame);
        write(to_str(eval(*s.filter, frame), text_bounds()));
        return Flow::Normal;
      case StmtKind::With: {
        auto inner = std::make_shared<Frame>(frame);
        for (const auto& [name, value] : s.params) inner->vars[name] = eval(*value, frame);
        return exec_body(s.body, inner);
      }
      case StmtKind::Scope:
        write(capture(s.body, std::make_shared<Frame>(frame)));
        return Flow::Normal;
    }
  } catch (const PositionedError&) {
    throw;
  } catch (const Error& e) {
    throw PositionedError(where(s.position) + e.what());
  }
  return Flow::Normal;
}

Renderer::Flow Renderer::exec_for(const Stmt& s, const FramePtr& frame) {
  const Value sequence = eval(*s.expr, frame);
  std::vector<Value> items = iterate(*this, sequence);
  if (s.condition) {  // {% for x in xs if cond %}: filtered before loop.index counts
    std::vector<Value> kept;
    for (const Value& item : items) {
      step();
      auto probe = std::make_shared<Frame>(frame);
      bind_targets(*this, *probe, s.targets, item);
      if (eval(*s.condition, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_body(s.else_body, frame);
  // One `loop` object for the whole loop, updated in place, as jinja2's LoopContext is.
  const auto n = static_cast<int64_t>(items.size());
  auto position = std::make_shared<int64_t>(0);  // what loop.cycle() reads
  static const char* const kFields[] = {"index0", "index", "revindex0", "revindex", "first",   "last",
                                        "length", "depth", "depth0",    "previtem", "nextitem"};
  Dict fields;
  for (const char* name : kFields) fields.set(Value(name), Value());
  fields.set(Value("cycle"), Value::function({"loop.cycle",
                                              [position](Renderer&, CallArgs& args) -> Value {
                                                check(!args.positional.empty(), "loop.cycle() needs a value");
                                                const auto k = static_cast<size_t>(*position);
                                                return args.positional[k % args.positional.size()];
                                              },
                                              nullptr, nullptr}));
  const Value loop = Value::dict(std::move(fields));
  Dict& state = loop.namespace_dict();
  for (int64_t i = 0; i < n; ++i) {
    step(2);  // an iteration costs about what two expressions do
    *position = i;
    const Value values[] = {Value(i),
                            Value(i + 1),
                            Value(n - i - 1),
                            Value(n - i),
                            Value(i == 0),
                            Value(i == n - 1),
                            Value(n),
                            Value(1),
                            Value(0),
                            i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("there is no previous item"),
                            i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::undefined("there is no next item")};
    for (size_t k = 0; k < std::size(values); ++k) state.set_at(k, values[k]);
    auto inner = std::make_shared<Frame>(frame);
    bind_targets(*this, *inner, s.targets, items[static_cast<size_t>(i)]);
    inner->vars["loop"] = loop;
    if (exec_body(s.body, inner) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Renderer::exec_set(const Stmt& s, const FramePtr& frame) {
  Value value = eval(*s.expr, frame);
  if (!s.attribute) {
    bind_targets(*this, *frame, s.targets, value);
    return;
  }
  const Value* target = frame->find(s.targets[0]);
  check(target && target->is(Type::Namespace), "cannot assign attribute '", s.targets[1], "' on '", s.targets[0],
        "': it is not a namespace() (", target ? type_name(*target) : "undefined", ")");
  check(s.targets[1].empty() || s.targets[1][0] != '_', "chat templates cannot store underscore-prefixed attributes ",
        "on a namespace, but got '", s.targets[1], "'");
  target->namespace_dict().set(Value(s.targets[1]), std::move(value));
}

// ---- expressions ----

Value Renderer::eval(const Expr& e, const FramePtr& frame) {
  step();
  try {
    return eval_node(e, frame);
  } catch (const PositionedError&) {
    throw;
  } catch (const TemplateRaised& raised) {
    throw PositionedError("chat template raised an error at line " + std::to_string(e.position.line) + ", column " +
                          std::to_string(e.position.column) + ": " + raised.what());
  } catch (const Error& error) {
    throw PositionedError(where(e.position) + error.what());
  }
}

Value Renderer::eval_node(const Expr& e, const FramePtr& frame) {
  switch (e.kind) {
    case ExprKind::Literal:
      return e.literal;
    case ExprKind::Name: {
      const Value* v = frame->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const ExprPtr& child : e.children) items.push_back(eval(*child, frame));
      return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      Dict d;
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value key = eval(*e.children[i], frame);
        d.set(std::move(key), eval(*e.children[i + 1], frame));
      }
      return Value::dict(std::move(d));
    }
    case ExprKind::GetAttr: {
      const Value obj = eval(*e.children[0], frame);
      check_defined(obj, *e.children[0]);
      return get_attribute(obj, e.name);
    }
    case ExprKind::GetItem: {
      const Value obj = eval(*e.children[0], frame);
      check_defined(obj, *e.children[0]);
      return get_item(*this, obj, eval(*e.children[1], frame));
    }
    case ExprKind::Slice: {
      const Value obj = eval(*e.children[0], frame);
      check_defined(obj, *e.children[0]);
      auto part = [&](size_t i) { return e.children[i] ? eval(*e.children[i], frame) : Value::none(); };
      return slice(*this, obj, part(1), part(2), part(3));
    }
    case ExprKind::Call:
      return eval_call(e, frame);
    case ExprKind::Filter:
      return eval_filter(e, frame);
    case ExprKind::Test: {
      const Value subject = eval(*e.children[0], frame);
      CallArgs args = eval_args(e, 1, frame);
      return Value(apply_test(*this, e.name, subject, args) != e.negated);
    }
    case ExprKind::Negate:
      return negate(eval(*e.children[0], frame));
    case ExprKind::Plus: {
      Value v = eval(*e.children[0], frame);
      fail_if_undefined(v);
      check(v.is_number(), "bad operand type for unary +: '", type_name(v), "'");
      return v.is(Type::Bool) ? Value(v.integer()) : v;
    }
    case ExprKind::Not:
      return Value(!eval(*e.children[0], frame).truthy());
    case ExprKind::And: {
      Value left = eval(*e.children[0], frame);
      return left.truthy() ? eval(*e.children[1], frame) : left;
    }
    case ExprKind::Or: {
      Value left = eval(*e.children[0], frame);
      return left.truthy() ? left : eval(*e.children[1], frame);
    }
    case ExprKind::Binary: {
      const Value left = eval(*e.children[0], frame);
      return binary_op(*this, e.name, left, eval(*e.children[1], frame));
    }
    case ExprKind::Compare:
      return eval_compare(e, frame);
    case ExprKind::Conditional:
      if (eval(*e.children[0], frame).truthy()) return eval(*e.children[1], frame);
      return e.children[2] ? eval(*e.children[2], frame)
                           : Value::undefined("the condition was false and there is no else");
    case ExprKind::BlockBody:
      return Value(block_body_);
  }
  return {};
}

Value Renderer::eval_compare(const Expr& e, const FramePtr& frame) {
  Value left = eval(*e.children[0], frame);
  for (size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], frame);
    const std::string& op = e.ops[i];
    if (left.is_string()) charge_text(left.str().size());
    if (left.is_sequence()) charge_items(left.items().size());
    bool result;
    if (op == "==")
      result = equals(left, right);
    else if (op == "!=")
      result = !equals(left, right);
    else if (op == "in")
      result = contains(*this, right, left);
    else if (op == "notin")
      result = !contains(*this, right, left);
    else {
      fail_if_undefined(left);
      fail_if_undefined(right);
      if (op == "<")
        result = less(left, right);
      else if (op == "<=")
        result = !less(right, left);
      else if (op == ">")
        result = less(right, left);
      else
        result = !less(left, right);
    }
    if (!result) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

CallArgs Renderer::eval_args(const Expr& e, size_t first, const FramePtr& frame) {
  CallArgs args;
  for (size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], frame));
  for (const auto& [name, value] : e.keywords) args.keyword.emplace_back(name, eval(*value, frame));
  return args;
}

Value Renderer::eval_call(const Expr& e, const FramePtr& frame) {
  const Expr& callee_expr = *e.children[0];
  Value callee;
  if (callee_expr.kind == ExprKind::GetAttr) {  // obj.method(...): evaluated once, bound here
    const Value obj = eval(*callee_expr.children[0], frame);
    check_defined(obj, *callee_expr.children[0]);
    callee = get_attribute(obj, callee_expr.name);
  } else {
    callee = eval(callee_expr, frame);
  }
  check_defined(callee, callee_expr);
  check(callee.is(Type::Function), "'", type_name(callee), "' object is not callable");
  CallArgs args = eval_args(e, 1, frame);
  return call(callee, args);
}

Value Renderer::eval_filter(const Expr& e, const FramePtr& frame) {
  const Value subject = eval(*e.children[0], frame);
  CallArgs args = eval_args(e, 1, frame);
  return apply_filter(*this, e.name, subject, args);
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  const Function& f = callee.function();
  if (f.macro) return call_macro(f, args);
  return f.native(*this, args);
}

// A macro call: its parameters bound in a new scope under the one it was defined in; extra
// positional arguments go to `varargs`, unknown keywords to `kwargs`, as in jinja2.
Value Renderer::call_macro(const Function& f, CallArgs& args) {
  const Stmt& m = *f.macro;
  check(call_depth_ < options_.limits.max_call_depth, "macro '", m.name, "' called ", options_.limits.max_call_depth,
        " levels deep (RenderLimits::max_call_depth); is it recursing without end?");
  auto scope = std::make_shared<Frame>(f.closure);
  std::vector<bool> given(m.params.size(), false);
  std::vector<Value> varargs;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < m.params.size()) {
      scope->vars[m.params[i].first] = args.positional[i];
      given[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  Dict kwargs;
  for (auto& [name, value] : args.keyword) {
    bool matched = false;
    for (size_t i = 0; i < m.params.size(); ++i) {
      if (m.params[i].first != name) continue;
      check(!given[i], "macro '", m.name, "' got multiple values for argument '", name, "'");
      scope->vars[name] = value;
      given[i] = matched = true;
    }
    if (!matched) kwargs.set(Value(name), value);
  }
  ++call_depth_;
  struct Leave {
    int32_t& depth;
    ~Leave() { --depth; }
  } leave{call_depth_};
  for (size_t i = 0; i < m.params.size(); ++i) {
    if (given[i]) continue;
    scope->vars[m.params[i].first] = m.params[i].second
                                         ? eval(*m.params[i].second, scope)
                                         : Value::undefined("parameter '" + m.params[i].first + "' was not provided");
  }
  scope->vars["varargs"] = Value::tuple(std::move(varargs));
  scope->vars["kwargs"] = Value::dict(std::move(kwargs));
  return Value(capture(m.body, scope));
}

}  // namespace sentinel::jinja
