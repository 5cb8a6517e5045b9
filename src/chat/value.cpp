// The template value type and its Python conversions (str, repr, json.dumps, ==, <); see value.h.
#include "value.h"

#include <algorithm>
#include <cmath>

#include "python_text.h"
#include "sentinel/core/error.h"

namespace sentinel::jinja {
namespace {

class TextWriter {
 public:
  explicit TextWriter(const TextBounds& bounds) : bounds_(bounds) {}
  void append(std::string_view s) {
    out_ += s;
    check_size();
  }
  void check_size() const {
    check(out_.size() <= bounds_.max_bytes, "a value's text exceeds the template output limit of ", bounds_.max_bytes,
          " bytes");
  }
  void enter() {
    check(++depth_ <= bounds_.max_depth, "a value nests deeper than ", bounds_.max_depth,
          " levels (a namespace that contains itself?)");
  }
  void leave() { --depth_; }
  std::string& out() { return out_; }

 private:
  const TextBounds& bounds_;
  std::string out_;
  int depth_ = 0;
};

std::string number_text(const Value& v) {
  switch (v.type()) {
    case Type::Bool:
      return v.boolean() ? "True" : "False";
    case Type::Int:
      return std::to_string(v.integer());
    default:
      return py::float_repr(v.number());
  }
}

void write_repr(TextWriter& w, const Value& v);

// json.dumps turns non-str keys into strings: 1 -> "1", True -> "true", None -> "null".
std::string json_key(const Value& key) {
  switch (key.type()) {
    case Type::String:
      return key.str();
    case Type::None:
      return "null";
    case Type::Bool:
      return key.boolean() ? "true" : "false";
    case Type::Int:
      return std::to_string(key.integer());
    default:
      return py::float_repr(key.number());
  }
}

void write_items(TextWriter& w, const std::vector<Value>& items, const char* open, const char* close, bool tuple) {
  w.enter();
  w.append(open);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) w.append(", ");
    write_repr(w, items[i]);
  }
  if (tuple && items.size() == 1) w.append(",");
  w.append(close);
  w.leave();
}

void write_dict(TextWriter& w, const Dict& d) {
  w.enter();
  w.append("{");
  bool first = true;
  for (const auto& [key, value] : d.entries()) {
    if (!first) w.append(", ");
    first = false;
    write_repr(w, key);
    w.append(": ");
    write_repr(w, value);
  }
  w.append("}");
  w.leave();
}

void write_repr(TextWriter& w, const Value& v) {
  switch (v.type()) {
    case Type::Undefined:
      w.append("Undefined");
      return;
    case Type::None:
      w.append("None");
      return;
    case Type::Bool:
    case Type::Int:
    case Type::Float:
      w.append(number_text(v));
      return;
    case Type::String:
      w.append(py::repr(v.str()));
      return;
    case Type::List:
      write_items(w, v.items(), "[", "]", false);
      return;
    case Type::Tuple:
      write_items(w, v.items(), "(", ")", true);
      return;
    case Type::Dict:
      write_dict(w, v.dict());
      return;
    case Type::Namespace:
      w.append("<Namespace ");
      write_dict(w, v.namespace_dict());
      w.append(">");
      return;
    case Type::Function:
      w.append("<function " + v.function().name + ">");
      return;
    case Type::Iterator:
      w.append(std::string("<") + v.iterator_state().kind + " object>");
      return;
  }
}

void write_json(TextWriter& w, const Value& v, const JsonStyle& style, int level) {
  auto newline = [&](int depth) {
    w.append("\n");
    for (int i = 0; i < depth; ++i) w.append(style.indent);
  };
  switch (v.type()) {
    case Type::None:
      w.append("null");
      return;
    case Type::Bool:
      w.append(v.boolean() ? "true" : "false");
      return;
    case Type::Int:
      w.append(std::to_string(v.integer()));
      return;
    case Type::Float: {
      const double f = v.number();
      w.append(std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : py::float_repr(f));
      return;
    }
    case Type::String:
      py::append_json_string(w.out(), v.str(), style.ensure_ascii);
      w.check_size();
      return;
    case Type::List:
    case Type::Tuple: {
      const auto& items = v.items();
      if (items.empty()) return w.append("[]");
      w.enter();
      w.append("[");
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) w.append(style.item_separator);
        if (style.indented) newline(level + 1);
        write_json(w, items[i], style, level + 1);
      }
      if (style.indented) newline(level);
      w.append("]");
      w.leave();
      return;
    }
    case Type::Dict: {
      std::vector<std::pair<std::string, const Value*>> entries;
      for (const auto& [key, value] : v.dict().entries()) entries.emplace_back(json_key(key), &value);
      if (entries.empty()) return w.append("{}");
      if (style.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      w.enter();
      w.append("{");
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) w.append(style.item_separator);
        if (style.indented) newline(level + 1);
        py::append_json_string(w.out(), entries[i].first, style.ensure_ascii);
        w.append(style.key_separator);
        write_json(w, *entries[i].second, style, level + 1);
      }
      if (style.indented) newline(level);
      w.append("}");
      w.leave();
      return;
    }
    default:
      fail("Object of type ", type_name(v), " is not JSON serializable");
  }
}

}  // namespace

// Linear: template dicts are messages and tool schemas, a few keys each.
const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

const Value* Dict::lookup(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : entries_)
    if (!k.is_string() && equals(k, key)) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  check(key.is_string() || key.is_number() || key.is_none(), "unhashable type: '", type_name(key), "'");
  for (auto& [k, v] : entries_) {
    if (k.type() == Type::String ? key.is_string() && k.str() == key.str() : !key.is_string() && equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

Value Value::markup(std::string s) {
  Value v(std::move(s));
  v.markup_ = true;
  return v;
}

Value Value::iterator(std::vector<Value> items, const char* kind) {
  Value v;
  v.type_ = Type::Iterator;
  v.data_ = std::make_shared<IteratorState>(IteratorState{std::move(items), 0, kind});
  return v;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Value Value::undefined(std::string hint) {
  Value v;
  v.data_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.type_ = Type::None;
  return v;
}

Value Value::list(std::vector<Value> items) {
  Value v;
  v.type_ = Type::List;
  v.data_ = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}

Value Value::tuple(std::vector<Value> items) {
  Value v = list(std::move(items));
  v.type_ = Type::Tuple;
  return v;
}

Value Value::dict(Dict entries) {
  Value v;
  v.type_ = Type::Dict;
  v.data_ = std::make_shared<Dict>(std::move(entries));
  return v;
}

Value Value::ns(Dict entries) {
  Value v = dict(std::move(entries));
  v.type_ = Type::Namespace;
  return v;
}

Value Value::function(Function f) {
  Value v;
  v.type_ = Type::Function;
  v.data_ = std::make_shared<const Function>(std::move(f));
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = json.get<uint64_t>();
      check(u <= static_cast<uint64_t>(INT64_MAX), "template variable: integer ", u, " is beyond 64-bit range");
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value(json.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(from_json(item));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [key, item] : json.items()) d.set(Value(key), from_json(item));
      return dict(std::move(d));
    }
    default:
      fail("template variables must be JSON values (null, bool, number, string, array, object), got ",
           json.type_name());
  }
}

const Value::Storage& Value::require(Type a, Type b, const char* what) const {
  if (type_ != a && type_ != b) fail(what, " is required, got ", type_name(*this));
  return data_;
}

int64_t Value::integer() const {
  if (type_ == Type::Bool) return std::get<bool>(data_);
  return std::get<int64_t>(require(Type::Int, Type::Int, "an int"));
}

double Value::number() const {
  switch (type_) {
    case Type::Bool:
      return std::get<bool>(data_) ? 1.0 : 0.0;
    case Type::Int:
      return static_cast<double>(std::get<int64_t>(data_));
    default:
      return std::get<double>(require(Type::Float, Type::Float, "a number"));
  }
}

const std::string& Value::undefined_hint() const {
  static const std::string kUnnamed = "the value is undefined";
  if (const auto* hint = std::get_if<std::shared_ptr<const std::string>>(&data_)) return **hint;
  return kUnnamed;
}

bool Value::truthy() const {
  switch (type_) {
    case Type::Undefined:
    case Type::None:
      return false;
    case Type::Bool:
      return boolean();
    case Type::Int:
      return integer() != 0;
    case Type::Float:
      return number() != 0;
    case Type::String:
      return !str().empty();
    case Type::List:
    case Type::Tuple:
      return !items().empty();
    case Type::Dict:
      return dict().size() > 0;
    case Type::Namespace:
    case Type::Function:
    case Type::Iterator:
      return true;
  }
  return false;
}

bool Value::same_as(const Value& other) const {
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::Undefined:
    case Type::None:
      return true;
    case Type::Bool:
    case Type::Int:
    case Type::Float:
    case Type::String:
      return equals(*this, other);
    default:
      return data_ == other.data_;
  }
}

const char* type_name(const Value& v) {
  switch (v.type()) {
    case Type::Undefined:
      return "Undefined";
    case Type::None:
      return "NoneType";
    case Type::Bool:
      return "bool";
    case Type::Int:
      return "int";
    case Type::Float:
      return "float";
    case Type::String:
      return "str";
    case Type::List:
      return "list";
    case Type::Tuple:
      return "tuple";
    case Type::Dict:
      return "dict";
    case Type::Namespace:
      return "Namespace";
    case Type::Function:
      return "function";
    case Type::Iterator:
      return v.iterator_state().kind;
  }
  return "object";
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer()) return a.integer() == b.integer();
    return a.number() == b.number();
  }
  if (a.type() != b.type()) return false;  // a list never equals a tuple, nor a str an int
  switch (a.type()) {
    case Type::Undefined:
    case Type::None:
      return true;
    case Type::String:
      return a.str() == b.str();
    case Type::List:
    case Type::Tuple: {
      const auto &x = a.items(), &y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case Type::Dict: {
      const Dict &x = a.dict(), &y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [key, value] : x.entries()) {
        const Value* other = y.lookup(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    default:
      return a.same_as(b);
  }
}

bool less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer()) return a.integer() < b.integer();
    return a.number() < b.number();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 byte order is code point order
  if (a.type() == b.type() && a.is_sequence()) {
    const auto &x = a.items(), &y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

std::string to_str(const Value& v, const TextBounds& bounds) {
  switch (v.type()) {
    case Type::Undefined:
      return "";
    case Type::String:
      return v.str();
    case Type::Bool:
    case Type::Int:
    case Type::Float:
      return number_text(v);
    default: {
      TextWriter w(bounds);
      write_repr(w, v);
      return std::move(w.out());
    }
  }
}

std::string to_repr(const Value& v, const TextBounds& bounds) {
  TextWriter w(bounds);
  write_repr(w, v);
  return std::move(w.out());
}

std::string to_json(const Value& v, const JsonStyle& style, const TextBounds& bounds) {
  TextWriter w(bounds);
  write_json(w, v, style, 0);
  return std::move(w.out());
}

}  // namespace sentinel::jinja
