// The methods of str, dict and list that chat templates call ('a b'.split(), d.get(k), ...), as
// bound methods; modifying ones (list.append, dict.pop, ...) are refused as transformers' sandbox
// refuses them. Python's semantics come from python_text.h.
#include <charconv>
#include <initializer_list>
#include <optional>

#include "builtins.h"
#include "evaluator.h"
#include "python_text.h"

namespace sentinel::jinja {
namespace {

int64_t to_index(const Value& v, const char* what) {
  check(v.is_integer(), what, " indices must be integers or None, not ", type_name(v));
  return v.integer();
}

std::optional<std::string> optional_string(const Value* v, const char* what) {
  if (!v || v->is_none()) return std::nullopt;
  check(v->is_string(), what, " must be None or a str, not ", type_name(*v));
  return v->str();
}

const std::string& string_arg(const Value* v, const char* function) {
  check(v != nullptr, function, "() is missing a required argument");
  check(v->is_string(), function, "() argument must be str, not ", type_name(*v));
  return v->str();
}

Value string_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// str.startswith / endswith with a str or a tuple of them.
bool affix_match(const std::string& self, const Value& affix, bool at_start) {
  auto one = [&](const Value& a) {
    check(a.is_string(), at_start ? "startswith" : "endswith", " first arg must be str or a tuple of str, not ",
          type_name(a));
    const std::string& s = a.str();
    if (s.size() > self.size()) return false;
    return at_start ? self.compare(0, s.size(), s) == 0 : self.compare(self.size() - s.size(), s.size(), s) == 0;
  };
  if (affix.is_sequence()) {
    for (const Value& a : affix.items())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

// str.format: {} {0} {name} and {{ }}; format specs and conversions are not supported.
std::string str_format(Renderer& r, const std::string& format, const CallArgs& args) {
  std::string out;
  size_t next_auto = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if ((c == '{' || c == '}') && i + 1 < format.size() && format[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    check(c != '}', "str.format: single '}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = format.find('}', i);
    check(close != std::string::npos, "str.format: single '{' encountered in format string");
    const std::string field = format.substr(i + 1, close - i - 1);
    check(field.find_first_of(":!.[") == std::string::npos, "str.format: field '{", field,
          "}' uses a format spec, conversion or lookup, which is not supported");
    const Value* value = nullptr;
    if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
      size_t index = next_auto;
      if (field.empty()) {
        ++next_auto;
      } else {
        const auto parsed = std::from_chars(field.data(), field.data() + field.size(), index);
        check(parsed.ec == std::errc() && parsed.ptr == field.data() + field.size(), "str.format: bad field '{", field,
              "}'");
      }
      check(index < args.positional.size(), "str.format: replacement index ", index, " out of range");
      value = &args.positional[index];
    } else {
      for (const auto& [name, v] : args.keyword)
        if (name == field) value = &v;
      check(value != nullptr, "str.format: no argument named '", field, "'");
    }
    out += to_str(*value, r.text_bounds());
    r.check_text(out.size());
    i = close;
  }
  return out;
}

Value str_method(Renderer& r, const Value& self_value, const std::string& name, CallArgs& call) {
  const std::string& self = self_value.str();
  r.charge_text(self.size());
  // Markup's own methods return Markup (markupsafe wraps them); the rest return plain str.
  auto same_kind = [&](std::string s) {
    return self_value.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s));
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Args a(call, name, {"chars"});
    return same_kind(py::strip(self, optional_string(a.get(0), "chars"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    const Args a(call, name, {"sep", "maxsplit"});
    const int64_t max_split = a.get(1) ? to_index(*a.get(1), "maxsplit") : -1;
    const auto sep = optional_string(a.get(0), "sep");
    auto parts = name == "split" ? py::split(self, sep, max_split) : py::rsplit(self, sep, max_split);
    r.check_list(parts.size());
    return string_list(std::move(parts));
  }
  if (name == "splitlines") {
    const Args a(call, name, {"keepends"});
    return string_list(py::splitlines(self, a.get_or(0, Value(false)).truthy()));
  }
  if (name == "startswith" || name == "endswith") {
    const Args a(call, name, {"prefix"});
    check(a.get(0) != nullptr, name, "() takes at least 1 argument (0 given)");
    return Value(affix_match(self, *a.get(0), name == "startswith"));
  }
  if (name == "upper") return same_kind(py::upper(self));
  if (name == "lower") return same_kind(py::lower(self));
  if (name == "title") return same_kind(py::title(self));
  if (name == "capitalize") return same_kind(py::capitalize(self));
  if (name == "replace") {
    const Args a(call, name, {"old", "new", "count"});
    const int64_t count = a.get(2) ? to_index(*a.get(2), "count") : -1;
    std::string out = py::replace(self, string_arg(a.get(0), "replace"), string_arg(a.get(1), "replace"), count);
    r.check_text(out.size());
    return Value(std::move(out));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const Args a(call, name, {"sub"});
    const int64_t at = py::find(self, string_arg(a.get(0), name.c_str()), name[0] == 'r');
    check(at >= 0 || name.find("index") == std::string::npos, "substring not found");
    return Value(at);
  }
  if (name == "count") {
    const Args a(call, name, {"sub"});
    return Value(py::count(self, string_arg(a.get(0), "count")));
  }
  if (name == "join") {
    const Args a(call, name, {"iterable"});
    check(a.get(0) != nullptr, "join() takes exactly one argument (0 given)");
    std::string out;
    size_t i = 0;
    for (const Value& item : iterate(r, *a.get(0))) {
      check(item.is_string(), "sequence item ", i, ": expected str instance, ", type_name(item), " found");
      if (i++) out += self;
      out += item.str();
      r.check_text(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(str_format(r, self, call));
  if (name == "isdigit") return Value(py::all_of_class(self, 'd'));
  if (name == "isalpha") return Value(py::all_of_class(self, 'a'));
  if (name == "isspace") return Value(py::all_of_class(self, 's'));
  if (name == "isupper") return Value(py::all_of_class(self, 'u'));
  if (name == "islower") return Value(py::all_of_class(self, 'l'));
  if (name == "removeprefix" || name == "removesuffix") {
    const Args a(call, name, {"affix"});
    const std::string& affix = string_arg(a.get(0), name.c_str());
    const bool prefix = name == "removeprefix";
    if (affix_match(self, Value(affix), prefix))
      return Value(prefix ? self.substr(affix.size()) : self.substr(0, self.size() - affix.size()));
    return Value(self);
  }
  fail("'str' object has no attribute '", name, "'");
}

Value dict_method(const Dict& self, const std::string& name, CallArgs& call) {
  if (name == "get") {
    const Args a(call, name, {"key", "default"});
    check(a.get(0) != nullptr, "get expected at least 1 argument, got 0");
    if (const Value* v = self.lookup(*a.get(0))) return *v;
    return a.get_or(1, Value::none());
  }
  no_arguments(call, name);
  std::vector<Value> out;
  out.reserve(self.size());
  for (const auto& [key, value] : self.entries()) {
    if (name == "items")
      out.push_back(Value::tuple({key, value}));
    else if (name == "keys")
      out.push_back(key);
    else
      out.push_back(value);
  }
  if (name == "copy") return Value::dict(self);
  return Value::list(std::move(out));
}

Value list_method(const std::vector<Value>& self, const std::string& name, CallArgs& call) {
  const Args a(call, name, {"value"});
  check(a.get(0) != nullptr, name, "() takes exactly one argument (0 given)");
  int64_t count = 0;
  for (size_t i = 0; i < self.size(); ++i) {
    if (!equals(self[i], *a.get(0))) continue;
    if (name == "index") return Value(static_cast<int64_t>(i));
    ++count;
  }
  if (name != "count") fail(to_repr(*a.get(0), {1 << 16}), " is not in list");
  return Value(count);
}

bool is_one_of(const std::string& name, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (name == n) return true;
  return false;
}

}  // namespace

std::optional<Value> bound_method(const Value& obj, const std::string& name) {
  static const std::initializer_list<const char*> kStr = {
      "strip",    "lstrip",  "rstrip",  "split",   "rsplit",       "splitlines",  "startswith",
      "endswith", "upper",   "lower",   "title",   "capitalize",   "replace",     "find",
      "rfind",    "index",   "rindex",  "count",   "join",         "format",      "isdigit",
      "isalpha",  "isspace", "isupper", "islower", "removeprefix", "removesuffix"};
  static const std::initializer_list<const char*> kUnsafe = {
      "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", "popitem", "setdefault", "update"};
  NativeFunction native;
  if (obj.is_string() && is_one_of(name, kStr)) {
    native = [obj, name](Renderer& r, CallArgs& args) { return str_method(r, obj, name, args); };
  } else if (obj.is(Type::Dict) && is_one_of(name, {"get", "items", "keys", "values", "copy"})) {
    native = [obj, name](Renderer&, CallArgs& args) { return dict_method(obj.dict(), name, args); };
  } else if (obj.is_sequence() && is_one_of(name, {"index", "count"})) {
    native = [obj, name](Renderer&, CallArgs& args) { return list_method(obj.items(), name, args); };
  } else if ((obj.is_sequence() || obj.is(Type::Dict)) && is_one_of(name, kUnsafe)) {
    const std::string type = type_name(obj);
    native = [type, name](Renderer&, CallArgs&) -> Value {
      fail("access to attribute '", name, "' of '", type, "' object is unsafe: chat templates cannot modify ",
           "values (transformers renders them in an immutable sandbox)");
    };
  } else {
    return std::nullopt;
  }
  return Value::function({std::string(type_name(obj)) + "." + name, std::move(native), nullptr, nullptr});
}

}  // namespace sentinel::jinja
