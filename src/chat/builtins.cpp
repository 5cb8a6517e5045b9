// Attribute and item lookup (jinja2.sandbox's getattr/getitem), Python's arithmetic operators and
// iteration, and transformers' globals. Methods are in methods.cpp, filters and tests in filters.cpp.
#include "builtins.h"

#include <cmath>
#include <ctime>

#include "evaluator.h"
#include "python_text.h"

namespace sentinel::jinja {
namespace {

// jinja2's object_type_repr, for the hints of undefined values.
std::string object_type(const Value& v) {
  if (v.is_none()) return "None";
  return std::string(type_name(v)) + " object";
}

Value missing_attribute(const Value& obj, const std::string& name) {
  std::string hint = "'";  // (built step by step: GCC 12 warns falsely on "literal" + std::string&&)
  hint += object_type(obj);
  hint += "' has no attribute '";
  hint += name;
  hint += "'";
  return Value::undefined(std::move(hint));
}

int64_t to_index(const Value& v, const char* what) {
  check(v.is_integer(), what, " indices must be integers or None, not ", type_name(v));
  return v.integer();
}

const std::string& string_arg(const Value* v, const char* function) {
  check(v != nullptr, function, "() is missing a required argument");
  check(v->is_string(), function, "() argument must be str, not ", type_name(*v));
  return v->str();
}

// strftime with the C locale, which is what Python's datetime.strftime gives in transformers.
std::string format_time(const std::tm& time, const std::string& format) {
  check(format.size() <= 1024, "strftime_now: the format is longer than 1024 bytes");
  if (format.empty()) return "";
  std::vector<char> buffer(format.size() * 16 + 64);
  const size_t n = std::strftime(buffer.data(), buffer.size(), format.c_str(), &time);
  check(n > 0 || format.empty(), "strftime_now: cannot format '", format, "'");
  return std::string(buffer.data(), n);
}

Value make_range(Renderer& r, CallArgs& call) {
  const Args a(call, "range", {"start", "stop", "step"});
  check(a.get(0) != nullptr, "range expected at least 1 argument, got 0");
  int64_t start = 0, stop = 0, step = 1;
  if (a.get(1)) {
    start = to_index(*a.get(0), "range()");
    stop = to_index(*a.get(1), "range()");
    if (a.get(2)) step = to_index(*a.get(2), "range()");
  } else {
    stop = to_index(*a.get(0), "range()");
  }
  check(step != 0, "range() arg 3 must not be zero");
  const long double n = std::max<long double>(0, std::ceil((static_cast<long double>(stop) - start) / step));
  check(n <= 100000, "range too big: chat templates (jinja2's sandbox) allow at most 100000 items, got ",
        static_cast<int64_t>(n));
  r.check_list(static_cast<size_t>(n));
  std::vector<Value> items;
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) items.emplace_back(start + i * step);
  return Value::list(std::move(items));
}

// dict(mapping, **kw) and namespace(mapping, **kw).
Dict mapping_from(const CallArgs& call, const char* function) {
  check(call.positional.size() <= 1, function, "() takes at most one positional argument (a mapping)");
  Dict d;
  if (!call.positional.empty()) {
    const Value& m = call.positional[0];
    check(m.is_dict_like(), function, "() positional argument must be a mapping, not ", type_name(m));
    const Dict& source = m.is(Type::Dict) ? m.dict() : m.namespace_dict();
    for (const auto& [key, value] : source.entries()) d.set(key, value);
  }
  for (const auto& [key, value] : call.keyword) d.set(Value(key), value);
  return d;
}

}  // namespace

Args::Args(const CallArgs& call, std::string_view function, std::initializer_list<std::string_view> params)
    : bound_(params.size(), nullptr) {
  check(call.positional.size() <= params.size(), function, "() takes at most ", params.size(), " argument",
        params.size() == 1 ? "" : "s", " (", call.positional.size(), " given)");
  for (size_t i = 0; i < call.positional.size(); ++i) bound_[i] = &call.positional[i];
  for (const auto& [name, value] : call.keyword) {
    size_t i = 0;
    for (std::string_view p : params) {
      if (p == name) break;
      ++i;
    }
    check(i < params.size(), function, "() got an unexpected keyword argument '", name, "'");
    check(bound_[i] == nullptr, function, "() got multiple values for argument '", name, "'");
    bound_[i] = &value;
  }
}

void no_arguments(const CallArgs& call, std::string_view function) {
  const size_t n = call.positional.size() + call.keyword.size();
  check(n == 0, function, "() takes no arguments (", n, " given)");
}

void fail_if_undefined(const Value& v) {
  if (v.is_undefined()) fail(v.undefined_hint());
}

std::vector<Value> iterate(Renderer& r, const Value& v) {
  switch (v.type()) {
    case Type::Undefined:
      return {};
    case Type::Iterator: {  // consumed: a second loop over the same generator sees nothing
      IteratorState& state = v.iterator_state();
      r.charge_items(state.items.size() - state.next);
      std::vector<Value> rest(state.items.begin() + static_cast<std::ptrdiff_t>(state.next), state.items.end());
      state.next = state.items.size();
      return rest;
    }
    case Type::List:
    case Type::Tuple:
      r.charge_items(v.items().size());
      return v.items();
    case Type::Dict: {
      r.charge_items(v.dict().size());
      std::vector<Value> keys;
      for (const auto& entry : v.dict().entries()) keys.push_back(entry.first);
      return keys;
    }
    case Type::String: {
      const std::u32string cs = py::decode(v.str());
      r.check_list(cs.size());
      r.step(static_cast<int64_t>(cs.size()));
      std::vector<Value> chars;
      chars.reserve(cs.size());
      for (char32_t c : cs) chars.emplace_back(py::encode(std::u32string(1, c)));
      return chars;
    }
    default:
      fail("'", type_name(v), "' object is not iterable");
  }
}

bool contains(Renderer& r, const Value& container, const Value& item) {
  switch (container.type()) {
    case Type::Undefined:
      return false;
    case Type::String:
      check(item.is_string(), "'in <string>' requires string as left operand, not ", type_name(item));
      r.charge_text(container.str().size());
      return container.str().find(item.str()) != std::string::npos;
    case Type::List:
    case Type::Tuple:
      r.charge_items(container.items().size());
      for (const Value& v : container.items())
        if (equals(v, item)) return true;
      return false;
    case Type::Dict:
      return (item.is_string() || item.is_number() || item.is_none()) && container.dict().lookup(item) != nullptr;
    case Type::Iterator: {  // consumes up to and including the match, as Python does
      IteratorState& state = container.iterator_state();
      while (state.next < state.items.size())
        if (equals(state.items[state.next++], item)) return true;
      return false;
    }
    default:
      fail("argument of type '", type_name(container), "' is not iterable");
  }
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (std::optional<Value> method = bound_method(obj, name)) return *method;
  if (obj.is(Type::Dict)) {
    if (const Value* v = obj.dict().find(name)) return *v;
  } else if (obj.is(Type::Namespace)) {
    if (const Value* v = obj.namespace_dict().find(name)) return *v;
  }
  return missing_attribute(obj, name);
}

Value get_item(Renderer& r, const Value& obj, const Value& key) {
  if (key.is_integer() && (obj.is_sequence() || obj.is_string())) {
    int64_t i = key.integer();
    if (obj.is_sequence()) {
      const auto n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      r.charge_text(i < 0 ? obj.str().size()
                          : std::min<size_t>(obj.str().size(), static_cast<size_t>(i) * 4));  // the walk
      if (std::optional<std::string> c = py::code_point_at(obj.str(), i)) return Value(std::move(*c));
    }
    return Value::undefined(object_type(obj) + " has no element " + std::to_string(key.integer()));
  }
  if (obj.is(Type::Dict) && (key.is_string() || key.is_number() || key.is_none()))
    if (const Value* v = obj.dict().lookup(key)) return *v;
  if (key.is_string()) return get_attribute(obj, key.str());
  return Value::undefined(object_type(obj) + " has no element " + to_repr(key, r.text_bounds()));
}

Value slice(Renderer& r, const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  check(obj.is_sequence() || obj.is_string(), "'", type_name(obj), "' object is not subscriptable");
  const int64_t step = step_v.is_none() ? 1 : to_index(step_v, "slice");
  check(step != 0, "slice step cannot be zero");
  if (obj.is_string()) r.charge_text(obj.str().size());
  const std::u32string chars = obj.is_string() ? py::decode(obj.str()) : std::u32string();
  const int64_t n = obj.is_string() ? static_cast<int64_t>(chars.size()) : static_cast<int64_t>(obj.items().size());
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    int64_t i = to_index(v, "slice");
    if (i < 0)
      i = std::max<int64_t>(i + n, step < 0 ? -1 : 0);
    else if (i >= n)
      i = step < 0 ? n - 1 : n;
    return i;
  };
  const int64_t start = adjust(start_v, step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(stop_v, step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
    picks.push_back(i);
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  r.step(static_cast<int64_t>(picks.size()));
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : picks) out += chars[static_cast<size_t>(i)];
    return Value(py::encode(out));
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return obj.is(Type::Tuple) ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value negate(const Value& v) {
  fail_if_undefined(v);
  check(v.is_number(), "bad operand type for unary -: '", type_name(v), "'");
  if (v.is(Type::Float)) return Value(-v.number());
  check(v.integer() != INT64_MIN, "integer overflow in unary -");
  return Value(-v.integer());
}

std::string percent_format(Renderer& r, const std::string& format, const Value& args, bool escape) {
  std::vector<Value> values = args.is(Type::Tuple) ? args.items() : std::vector<Value>{args};
  std::string out;
  size_t used = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    check(i + 1 < format.size(), "incomplete format");
    const char spec = format[++i];
    if (spec == '%') {
      out += '%';
      continue;
    }
    check(spec == 's' || spec == 'r' || spec == 'd' || spec == 'i', "unsupported format character '", spec,
          "' (chat templates may use %s %r %d %i %%)");
    check(used < values.size(), "not enough arguments for format string");
    const Value& v = values[used++];
    auto text = [&](std::string s) { return escape && !v.is_markup() ? html_escape(s) : s; };
    if (spec == 's')
      out += text(to_str(v, r.text_bounds()));
    else if (spec == 'r')
      out += text(to_repr(v, r.text_bounds()));
    else {
      check(v.is_number(), "%", spec, " format: a real number is required, not ", type_name(v));
      if (v.is(Type::Float))
        check(std::isfinite(v.number()) && std::fabs(v.number()) < 9.2e18, "%", spec, " format: ", v.number(),
              " is out of range");
      out += std::to_string(v.is(Type::Float) ? static_cast<int64_t>(v.number()) : v.integer());
    }
    r.check_text(out.size());
  }
  check(used == values.size(), "not all arguments converted during string formatting");
  return out;
}

Value binary_op(Renderer& r, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string out = to_str(a, r.text_bounds());
    out += to_str(b, r.text_bounds());
    r.check_text(out.size());
    r.charge_text(out.size());
    return Value(std::move(out));
  }
  fail_if_undefined(a);
  fail_if_undefined(b);
  const bool numbers = a.is_number() && b.is_number();
  const bool integers = a.is_integer() && b.is_integer();
  auto unsupported = [&]() -> Value {
    fail("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
  };
  int64_t result = 0;
  if (op == "+") {
    if (integers) {
      check(!__builtin_add_overflow(a.integer(), b.integer(), &result), "integer overflow in +");
      return Value(result);
    }
    if (numbers) return Value(a.number() + b.number());
    if (a.is_string()) {
      check(b.is_string(), "can only concatenate str (not \"", type_name(b), "\") to str");
      r.check_text(a.str().size() + b.str().size());
      r.charge_text(a.str().size() + b.str().size());
      if (a.is_markup() || b.is_markup())  // Markup.__add__ / __radd__ escape the plain side
        return Value::markup((a.is_markup() ? a.str() : html_escape(a.str())) +
                             (b.is_markup() ? b.str() : html_escape(b.str())));
      return Value(a.str() + b.str());
    }
    if (a.is_sequence() && a.type() == b.type()) {
      r.check_list(a.items().size() + b.items().size());
      r.charge_items(a.items().size() + b.items().size());
      std::vector<Value> items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return a.is(Type::Tuple) ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    if (a.is_sequence()) fail("can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ", type_name(a));
    return unsupported();
  }
  if (op == "-") {
    if (integers) {
      check(!__builtin_sub_overflow(a.integer(), b.integer(), &result), "integer overflow in -");
      return Value(result);
    }
    return numbers ? Value(a.number() - b.number()) : unsupported();
  }
  if (op == "*") {
    if (integers) {
      check(!__builtin_mul_overflow(a.integer(), b.integer(), &result), "integer overflow in *");
      return Value(result);
    }
    if (numbers) return Value(a.number() * b.number());
    const Value& seq = b.is_integer() ? a : b;
    const Value& count = b.is_integer() ? b : a;
    if (!count.is_integer() || !(seq.is_string() || seq.is_sequence())) return unsupported();
    const int64_t n = std::max<int64_t>(0, count.integer());
    if (seq.is_string()) {
      size_t total = 0;
      check(!__builtin_mul_overflow(static_cast<size_t>(n), seq.str().size(), &total), "string repetition overflows");
      r.check_text(total);
      r.charge_text(total);
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.str();
      return seq.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out));
    }
    size_t total = 0;
    check(!__builtin_mul_overflow(static_cast<size_t>(n), seq.items().size(), &total), "list repetition overflows");
    r.check_list(total);
    r.charge_items(total);
    std::vector<Value> items;
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.items().begin(), seq.items().end());
    return seq.is(Type::Tuple) ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (op == "%" && a.is_string()) {
    if (!a.is_markup()) return Value(percent_format(r, a.str(), b));
    return Value::markup(percent_format(r, a.str(), b, /*escape=*/true));
  }
  if (!numbers) return unsupported();
  if (op == "/") {
    check(b.number() != 0, "division by zero");
    return Value(a.number() / b.number());
  }
  if (op == "//" || op == "%") {
    check(b.number() != 0, "integer division or modulo by zero");
    if (integers) {
      const int64_t x = a.integer(), y = b.integer();
      check(!(x == INT64_MIN && y == -1), "integer overflow in ", op);
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
        --q;
        m += y;
      }
      return op == "//" ? Value(q) : Value(m);
    }
    // CPython's float_divmod.
    const double x = a.number(), y = b.number();
    double m = std::fmod(x, y);
    double div = (x - m) / y;
    if (m != 0) {
      if ((y < 0) != (m < 0)) {
        m += y;
        div -= 1.0;
      }
    } else {
      m = std::copysign(0.0, y);
    }
    double floor_div = std::copysign(0.0, x / y);
    if (div != 0) {
      floor_div = std::floor(div);
      if (div - floor_div > 0.5) floor_div += 1.0;
    }
    return op == "//" ? Value(floor_div) : Value(m);
  }
  if (op == "**") {
    if (integers && b.integer() >= 0) {
      int64_t base = a.integer(), exp = b.integer();
      result = 1;
      while (exp > 0) {
        if (exp & 1) check(!__builtin_mul_overflow(result, base, &result), "integer overflow in **");
        exp >>= 1;
        if (exp > 0) check(!__builtin_mul_overflow(base, base, &base), "integer overflow in **");
      }
      return Value(result);
    }
    return Value(std::pow(a.number(), b.number()));
  }
  return unsupported();
}

void add_globals(Frame& frame) {
  auto add = [&](const char* name, NativeFunction f) {
    frame.vars[name] = Value::function({name, std::move(f), nullptr, nullptr});
  };
  add("range", make_range);
  add("raise_exception", [](Renderer& r, CallArgs& call) -> Value {
    const Args a(call, "raise_exception", {"message"});
    throw TemplateRaised(a.get(0) ? to_str(*a.get(0), r.text_bounds()) : "");
  });
  add("strftime_now", [](Renderer& r, CallArgs& call) -> Value {
    const Args a(call, "strftime_now", {"format"});
    return Value(format_time(r.now(), string_arg(a.get(0), "strftime_now")));
  });
  add("namespace", [](Renderer& r, CallArgs& call) -> Value {
    Dict d = mapping_from(call, "namespace");
    for (const auto& entry : d.entries())
      check(entry.first.str().empty() || entry.first.str()[0] != '_', "chat templates cannot store ",
            "underscore-prefixed attributes on a namespace, but got '", entry.first.str(), "'");
    Value ns = Value::ns(std::move(d));
    r.adopt_namespace(ns);
    return ns;
  });
  add("dict", [](Renderer&, CallArgs& call) -> Value { return Value::dict(mapping_from(call, "dict")); });
}

}  // namespace sentinel::jinja
