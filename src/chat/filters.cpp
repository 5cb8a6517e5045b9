// Jinja's filters and tests (jinja2/filters.py, jinja2/tests.py) as chat templates use them, with
// transformers' tojson (json.dumps with ensure_ascii=False and no key sorting, indent allowed).
// Generators (map, select, ...) are returned as lists: templates only iterate, count or join them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "builtins.h"
#include "evaluator.h"
#include "python_text.h"

namespace sentinel::jinja {
namespace {

using FilterFn = Value (*)(Renderer&, const Value&, CallArgs&);

std::string text_of(Renderer& r, const Value& v) {
  std::string text = to_str(v, r.text_bounds());
  r.charge_text(text.size());
  return text;
}

int64_t length_of(const Value& v) {
  switch (v.type()) {
    case Type::Undefined:
      return 0;
    case Type::String:
      return py::length(v.str());
    case Type::List:
    case Type::Tuple:
      return static_cast<int64_t>(v.items().size());
    case Type::Dict:
      return static_cast<int64_t>(v.dict().size());
    default:
      fail("object of type '", type_name(v), "' has no len()");
  }
}

// jinja2's make_attrgetter: "a.b" looks up a then b; digits are list indices.
Value lookup_path(Renderer& r, const Value& item, const Value& attribute) {
  if (attribute.is_integer()) return get_item(r, item, attribute);
  check(attribute.is_string(), "attribute must be a str or an int, not ", type_name(attribute));
  Value v = item;
  for (const std::string& part : py::split(attribute.str(), std::string("."), -1)) {
    fail_if_undefined(v);
    int64_t index = 0;
    const auto parsed = std::from_chars(part.data(), part.data() + part.size(), index);
    const bool digits = !part.empty() && std::isdigit(static_cast<unsigned char>(part[0])) &&
                        parsed.ec == std::errc() && parsed.ptr == part.data() + part.size();
    v = digits ? get_item(r, v, Value(index)) : get_item(r, v, Value(part));
  }
  return v;
}

// Strings compare case-insensitively unless case_sensitive (jinja2's ignore_case).
Value sort_key(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value(py::lower(v.str())) : v;
}

Value list_of(std::vector<Value> items) { return Value::list(std::move(items)); }

Value f_tojson(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "tojson", {"indent", "ensure_ascii", "separators", "sort_keys"});
  JsonStyle style;
  if (const Value* indent = a.get(0); indent && !indent->is_none()) {
    style.indented = true;
    style.item_separator = ",";
    if (indent->is_string())
      style.indent = indent->str();
    else
      style.indent =
          std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(indent->integer(), 64))), ' ');
  }
  if (const Value* separators = a.get(2); separators && !separators->is_none()) {
    check(separators->is_sequence() && separators->items().size() == 2 && separators->items()[0].is_string() &&
              separators->items()[1].is_string(),
          "tojson: separators must be an (item_separator, key_separator) pair of strings");
    style.item_separator = separators->items()[0].str();
    style.key_separator = separators->items()[1].str();
  }
  style.ensure_ascii = a.get_or(1, Value(false)).truthy();
  style.sort_keys = a.get_or(3, Value(false)).truthy();
  std::string json = to_json(v, style, r.text_bounds());
  r.charge_text(json.size());
  return Value(std::move(json));
}

Value f_length(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "length");
  if (v.is_string()) r.charge_text(v.str().size());
  return Value(length_of(v));
}

Value f_trim(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "trim", {"chars"});
  std::optional<std::string> chars;
  if (a.get(0) && !a.get(0)->is_none()) chars = text_of(r, *a.get(0));
  std::string out = py::strip(text_of(r, v), chars, true, true);
  return v.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out));
}

Value f_string(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "string");
  return v.is_string() ? v : Value(text_of(r, v));
}

Value f_default(Renderer&, const Value& v, CallArgs& call) {
  const Args a(call, "default", {"default_value", "boolean"});
  if (v.is_undefined() || (a.get_or(1, Value(false)).truthy() && !v.truthy())) return a.get_or(0, Value(""));
  return v;
}

Value f_join(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "join", {"d", "attribute"});
  const std::string separator = a.get(0) ? text_of(r, *a.get(0)) : "";
  std::string out;
  bool first = true;
  for (const Value& item : iterate(r, v)) {
    if (!first) out += separator;
    first = false;
    out += text_of(r, a.get(1) && !a.get(1)->is_none() ? lookup_path(r, item, *a.get(1)) : item);
    r.check_text(out.size());
  }
  return Value(std::move(out));
}

Value f_items(Renderer&, const Value& v, CallArgs& call) {
  no_arguments(call, "items");
  if (v.is_undefined()) return Value::iterator({});
  check(v.is(Type::Dict), "Can only get item pairs from a mapping, not ", type_name(v));
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.dict().entries()) pairs.push_back(Value::tuple({key, value}));
  return Value::iterator(std::move(pairs));
}

Value f_list(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "list");
  std::vector<Value> items = iterate(r, v);
  r.check_list(items.size());
  return list_of(std::move(items));
}

// select / reject / selectattr / rejectattr: keep the items whose test (default: truthiness) is
// `keep`; with `by_attribute` the test looks at item.<attribute>.
Value select_items(Renderer& r, const Value& v, CallArgs& call, bool keep, bool by_attribute) {
  if (!v.truthy()) return Value::iterator({});  // jinja2: `if value:` before iterating, so none gives nothing
  const std::vector<Value> items = iterate(r, v);
  const size_t first_test_arg = by_attribute ? 1 : 0;
  check(!by_attribute || !call.positional.empty(), "Missing parameter for attribute name");
  std::optional<std::string> test;
  if (call.positional.size() > first_test_arg) {
    const Value& name = call.positional[first_test_arg];
    if (!name.is_string() || !is_test(name.str())) fail("no test named ", to_repr(name, r.text_bounds()));
    test = name.str();
  }
  CallArgs test_args;
  for (size_t i = first_test_arg + 1; i < call.positional.size(); ++i)
    test_args.positional.push_back(call.positional[i]);
  test_args.keyword = call.keyword;
  std::vector<Value> out;
  for (const Value& item : items) {
    r.step();
    const Value subject = by_attribute ? lookup_path(r, item, call.positional[0]) : item;
    CallArgs args = test_args;
    const bool passed = test ? apply_test(r, *test, subject, args) : subject.truthy();
    if (passed == keep) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_select(Renderer& r, const Value& v, CallArgs& c) { return select_items(r, v, c, true, false); }
Value f_reject(Renderer& r, const Value& v, CallArgs& c) { return select_items(r, v, c, false, false); }
Value f_selectattr(Renderer& r, const Value& v, CallArgs& c) { return select_items(r, v, c, true, true); }
Value f_rejectattr(Renderer& r, const Value& v, CallArgs& c) { return select_items(r, v, c, false, true); }

Value f_map(Renderer& r, const Value& v, CallArgs& call) {
  std::vector<Value> out;
  if (!v.truthy()) return Value::iterator({});  // jinja2: `if value:` before iterating
  if (call.positional.empty()) {
    const Args a(call, "map", {"attribute", "default"});
    check(a.get(0) != nullptr, "map requires a filter argument or attribute=");
    for (const Value& item : iterate(r, v)) {
      r.step();
      Value x = lookup_path(r, item, *a.get(0));
      out.push_back(x.is_undefined() && a.get(1) ? *a.get(1) : x);
    }
    return Value::iterator(std::move(out));
  }
  const Value name = call.positional[0];
  if (!name.is_string() || filter_support(name.str()) != Support::Yes)
    fail("map: no filter named ", to_repr(name, r.text_bounds()));
  CallArgs rest;
  rest.positional.assign(call.positional.begin() + 1, call.positional.end());
  rest.keyword = call.keyword;
  for (const Value& item : iterate(r, v)) {
    r.step();
    CallArgs args = rest;
    out.push_back(apply_filter(r, name.str(), item, args));
  }
  return Value::iterator(std::move(out));
}

Value f_first(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "first");
  if (v.is(Type::Iterator)) {  // next(iter(seq)): takes one item
    IteratorState& state = v.iterator_state();
    if (state.next < state.items.size()) return state.items[state.next++];
    return Value::undefined("No first item, sequence was empty.");
  }
  const std::vector<Value> items = iterate(r, v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "last");
  check(!v.is(Type::Iterator), "'", type_name(v), "' object is not reversible");
  const std::vector<Value> items = iterate(r, v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

// Markup in, Markup out (jinja2 calls the str method on soft_str(value), which keeps Markup).
Value same_kind(const Value& v, std::string s) {
  return v.is_markup() ? Value::markup(std::move(s)) : Value(std::move(s));
}

Value f_upper(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "upper");
  return same_kind(v, py::upper(text_of(r, v)));
}
Value f_lower(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "lower");
  return same_kind(v, py::lower(text_of(r, v)));
}
Value f_capitalize(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "capitalize");
  return same_kind(v, py::capitalize(text_of(r, v)));
}
Value f_title(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "title");
  return Value(py::jinja_title(text_of(r, v)));
}
Value f_safe(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "safe");
  return v.is_markup() ? v : Value::markup(text_of(r, v));
}

Value f_escape(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "escape");
  if (v.is_markup()) return v;
  std::string out = html_escape(text_of(r, v));
  r.check_text(out.size());
  return Value::markup(std::move(out));
}

Value f_replace(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "replace", {"old", "new", "count"});
  check(a.get(0) && a.get(1), "replace() needs the old and new strings");
  const int64_t count = a.get(2) && !a.get(2)->is_none() ? a.get(2)->integer() : -1;
  std::string out = py::replace(text_of(r, v), text_of(r, *a.get(0)), text_of(r, *a.get(1)), count);
  r.check_text(out.size());
  return Value(std::move(out));
}

// Python's int(str, base): whitespace, sign, '_' between digits, a 0x/0o/0b prefix matching the base.
std::optional<int64_t> parse_int(std::string text, int64_t base) {
  text = py::strip(text, std::nullopt, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  if (i + 1 < text.size() && text[i] == '0') {
    const char p = static_cast<char>(text[i + 1] | 0x20);
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) i += 2;
  }
  if (i >= text.size()) return std::nullopt;
  int64_t value = 0;
  for (bool last_digit = false; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_' && last_digit && i + 1 < text.size()) {
      last_digit = false;
      continue;
    }
    const int d = std::isdigit(static_cast<unsigned char>(c))   ? c - '0'
                  : std::isalpha(static_cast<unsigned char>(c)) ? (c | 0x20) - 'a' + 10
                                                                : 99;
    if (d >= base) return std::nullopt;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value)) return std::nullopt;
    last_digit = true;
  }
  return negative ? -value : value;
}

std::optional<double> parse_float(const std::string& text) {
  std::string t = py::strip(text, std::nullopt, true, true);
  t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return value;
}

Value f_int(Renderer&, const Value& v, CallArgs& call) {
  const Args a(call, "int", {"default", "base"});
  const Value fallback = a.get_or(0, Value(0));
  if (v.is_integer()) return Value(v.integer());
  if (v.is(Type::Float)) {
    const double f = v.number();
    return std::isfinite(f) && std::fabs(f) < 9.2e18 ? Value(static_cast<int64_t>(f)) : fallback;
  }
  if (v.is_string()) {
    const int64_t base = a.get(1) ? a.get(1)->integer() : 10;
    if (auto i = parse_int(v.str(), base)) return Value(*i);
    if (auto f = parse_float(v.str()); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18)
      return Value(static_cast<int64_t>(*f));
  }
  return fallback;
}

Value f_float(Renderer&, const Value& v, CallArgs& call) {
  const Args a(call, "float", {"default"});
  if (v.is_number()) return Value(v.number());
  if (v.is_string())
    if (auto f = parse_float(v.str())) return Value(*f);
  return a.get_or(0, Value(0.0));
}

Value f_abs(Renderer&, const Value& v, CallArgs& call) {
  no_arguments(call, "abs");
  fail_if_undefined(v);
  check(v.is_number(), "bad operand type for abs(): '", type_name(v), "'");
  if (v.is(Type::Float)) return Value(std::fabs(v.number()));
  check(v.integer() != INT64_MIN, "integer overflow in abs()");
  return Value(v.integer() < 0 ? -v.integer() : v.integer());
}

Value f_round(Renderer&, const Value& v, CallArgs& call) {
  const Args a(call, "round", {"precision", "method"});
  check(v.is_number(), "round: a number is required, not ", type_name(v));
  const int64_t precision = a.get(0) ? a.get(0)->integer() : 0;
  const std::string method = a.get(1) && a.get(1)->is_string() ? a.get(1)->str() : "common";
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.number() * scale;
  double rounded;
  if (method == "common")
    rounded = std::nearbyint(x);  // Python's round(): half to even
  else if (method == "floor")
    rounded = std::floor(x);
  else if (method == "ceil")
    rounded = std::ceil(x);
  else
    fail("round: method must be 'common', 'ceil' or 'floor'");
  return Value(rounded / scale);
}

Value f_reverse(Renderer& r, const Value& v, CallArgs& call) {
  no_arguments(call, "reverse");
  if (v.is_string()) {
    std::u32string cs = py::decode(v.str());
    std::reverse(cs.begin(), cs.end());
    return v.is_markup() ? Value::markup(py::encode(cs)) : Value(py::encode(cs));
  }
  std::vector<Value> items = iterate(r, v);
  std::reverse(items.begin(), items.end());
  // reversed(list) is an iterator; a generator is first made a list (jinja2's do_reverse).
  if (v.is_sequence()) return Value::iterator(std::move(items), "list_reverseiterator");
  if (v.is(Type::Dict)) return Value::iterator(std::move(items), "dict_reversekeyiterator");
  return list_of(std::move(items));
}

Value f_sort(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "sort", {"reverse", "case_sensitive", "attribute"});
  const bool reverse = a.get_or(0, Value(false)).truthy(), case_sensitive = a.get_or(1, Value(false)).truthy();
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : iterate(r, v)) {
    const Value key = a.get(2) && !a.get(2)->is_none() ? lookup_path(r, item, *a.get(2)) : item;
    keyed.emplace_back(sort_key(key, case_sensitive), item);
  }
  r.step(static_cast<int64_t>(keyed.size()));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? less(y.first, x.first) : less(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& [key, item] : keyed) out.push_back(std::move(item));
  return list_of(std::move(out));
}

Value f_dictsort(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "dictsort", {"case_sensitive", "by", "reverse"});
  check(v.is(Type::Dict), "dictsort: a mapping is required, not ", type_name(v));
  const bool case_sensitive = a.get_or(0, Value(false)).truthy(), reverse = a.get_or(2, Value(false)).truthy();
  const std::string by = a.get(1) ? text_of(r, *a.get(1)) : "key";
  check(by == "key" || by == "value", "You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> entries = v.dict().entries();
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    const Value kx = sort_key(by == "key" ? x.first : x.second, case_sensitive);
    const Value ky = sort_key(by == "key" ? y.first : y.second, case_sensitive);
    return reverse ? less(ky, kx) : less(kx, ky);
  });
  std::vector<Value> out;
  for (auto& [key, value] : entries) out.push_back(Value::tuple({key, value}));
  return list_of(std::move(out));
}

Value f_unique(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "unique", {"case_sensitive", "attribute"});
  const bool case_sensitive = a.get_or(0, Value(false)).truthy();
  std::vector<Value> out, seen;
  for (const Value& item : iterate(r, v)) {
    r.step(static_cast<int64_t>(seen.size()) + 1);
    const Value key =
        sort_key(a.get(1) && !a.get(1)->is_none() ? lookup_path(r, item, *a.get(1)) : item, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value extreme(Renderer& r, const Value& v, CallArgs& call, bool want_max) {
  const Args a(call, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool case_sensitive = a.get_or(0, Value(false)).truthy();
  std::optional<Value> best, best_key;
  for (const Value& item : iterate(r, v)) {
    const Value key =
        sort_key(a.get(1) && !a.get(1)->is_none() ? lookup_path(r, item, *a.get(1)) : item, case_sensitive);
    if (!best || (want_max ? less(*best_key, key) : less(key, *best_key))) {
      best = item;
      best_key = key;
    }
  }
  return best ? *best : Value::undefined("No aggregated item, sequence was empty.");
}
Value f_max(Renderer& r, const Value& v, CallArgs& c) { return extreme(r, v, c, true); }
Value f_min(Renderer& r, const Value& v, CallArgs& c) { return extreme(r, v, c, false); }

Value f_sum(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "sum", {"attribute", "start"});
  Value total = a.get_or(1, Value(0));
  for (const Value& item : iterate(r, v))
    total = binary_op(r, "+", total, a.get(0) && !a.get(0)->is_none() ? lookup_path(r, item, *a.get(0)) : item);
  return total;
}

Value f_indent(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "indent", {"width", "first", "blank"});
  const Value width = a.get_or(0, Value(4));
  const std::string indention =
      width.is_string() ? width.str()
                        : std::string(static_cast<size_t>(std::clamp<int64_t>(width.integer(), 0, 1024)), ' ');
  const bool first = a.get_or(1, Value(false)).truthy(), blank = a.get_or(2, Value(false)).truthy();
  // jinja2's do_indent: the first line only with first=True, blank lines only with blank=True.
  const std::vector<std::string> lines = py::splitlines(text_of(r, v) + "\n", false);
  std::string out = first ? indention : "";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i) {
      out += "\n";
      if (blank || !lines[i].empty()) out += indention;
    }
    out += lines[i];
    r.check_text(out.size());
  }
  return same_kind(v, std::move(out));
}

Value f_center(Renderer& r, const Value& v, CallArgs& call) {
  const Args a(call, "center", {"width"});
  const std::string s = text_of(r, v);
  const int64_t width = std::min<int64_t>(a.get_or(0, Value(80)).integer(), 1 << 20), n = py::length(s);
  if (width <= n) return Value(s);
  const int64_t pad = width - n, left = pad / 2 + (pad & width & 1);  // CPython's str.center
  return Value(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
}

Value f_format(Renderer& r, const Value& v, CallArgs& call) {
  check(call.keyword.empty(), "format: keyword arguments are not supported");
  const std::string out = percent_format(r, text_of(r, v), Value::tuple(call.positional), v.is_markup());
  return same_kind(v, out);
}

Value f_attr(Renderer&, const Value& v, CallArgs& call) {
  const Args a(call, "attr", {"name"});
  check(a.get(0) && a.get(0)->is_string(), "attr() needs an attribute name");
  fail_if_undefined(v);
  return get_attribute(v, a.get(0)->str());
}

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"unique", f_unique},
      {"upper", f_upper},
  };
  return table;
}

bool is_one_of(const std::string& name, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return name == n; });
}

}  // namespace

Support filter_support(const std::string& name) {
  if (filters().count(name)) return Support::Yes;
  if (is_one_of(name, {"batch", "filesizeformat", "forceescape", "groupby", "pprint", "random", "slice", "striptags",
                       "truncate", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr"}))
    return Support::NotImplemented;
  return Support::Unknown;
}

Value apply_filter(Renderer& r, const std::string& name, const Value& subject, CallArgs& args) {
  const auto it = filters().find(name);
  check(it != filters().end(),
        filter_support(name) == Support::NotImplemented ? "the Jinja filter '" : "no filter named '", name,
        filter_support(name) == Support::NotImplemented ? "' is not supported by this interpreter" : "'");
  return it->second(r, subject, args);
}

bool is_test(const std::string& name) {
  return is_one_of(name, {"defined",     "undefined", "none",     "boolean", "false",    "true",     "integer",
                          "float",       "number",    "string",   "mapping", "iterable", "sequence", "callable",
                          "sameas",      "escaped",   "in",       "eq",      "equalto",  "==",       "ne",
                          "!=",          "lt",        "lessthan", "<",       "le",       "<=",       "gt",
                          "greaterthan", ">",         "ge",       ">=",      "odd",      "even",     "divisibleby",
                          "lower",       "upper",     "filter",   "test"});
}

bool apply_test(Renderer& r, const std::string& name, const Value& v, CallArgs& call) {
  const Args a(call, name, {"other"});
  auto other = [&]() -> const Value& {
    check(a.get(0) != nullptr, "the test '", name, "' needs an argument");
    return *a.get(0);
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is(Type::Bool);
  if (name == "false") return v.is(Type::Bool) && !v.boolean();
  if (name == "true") return v.is(Type::Bool) && v.boolean();
  if (name == "integer") return v.is(Type::Int);
  if (name == "float") return v.is(Type::Float);
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is(Type::Dict);
  if (name == "iterable" || name == "sequence")  // jinja2's Undefined has __iter__, __len__ and __getitem__
    return v.is_undefined() || v.is_string() || v.is_sequence() || v.is(Type::Dict) ||
           (name == "iterable" && v.is(Type::Iterator));
  if (name == "callable") return v.is(Type::Function);
  if (name == "sameas") return v.same_as(other());
  if (name == "escaped") return false;
  if (name == "in") return contains(r, other(), v);
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, other());
  if (name == "ne" || name == "!=") return !equals(v, other());
  if (name == "lt" || name == "lessthan" || name == "<") return less(v, other());
  if (name == "le" || name == "<=") return !less(other(), v);
  if (name == "gt" || name == "greaterthan" || name == ">") return less(other(), v);
  if (name == "ge" || name == ">=") return !less(v, other());
  if (name == "odd" || name == "even") {
    fail_if_undefined(v);
    check(v.is_integer(), "the test '", name, "' needs an integer, not ", type_name(v));
    return (v.integer() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    check(v.is_integer() && other().is_integer() && other().integer() != 0, "divisibleby needs integers (and not 0)");
    return v.integer() % other().integer() == 0;
  }
  if (name == "lower" || name == "upper") {
    const std::string s = to_str(v, r.text_bounds());
    return py::all_of_class(s, name == "lower" ? 'l' : 'u');
  }
  if (name == "filter") return v.is_string() && filter_support(v.str()) == Support::Yes;  // 'upper' is filter
  if (name == "test") return v.is_string() && is_test(v.str());
  fail("no test named '", name, "'");
}

}  // namespace sentinel::jinja
