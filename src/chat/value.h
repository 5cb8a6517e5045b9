// Internal: the values a chat template computes with, modelled on the Python objects Jinja gives a
// template: undefined, None, bool, int, float, str (and markupsafe's Markup, which |safe makes),
// list, tuple, dict (insertion-ordered), namespace (the one mutable object), callables (builtins,
// bound methods, macros) and one-shot iterators (the generators that map, select, ... return).
// Containers are shared and immutable once built, as in transformers' ImmutableSandboxedEnvironment.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sentinel::jinja {

class Value;
class Renderer;
struct Frame;
struct Stmt;

class Dict;
struct Function;
struct IteratorState;
struct CallArgs;
using NativeFunction = std::function<Value(Renderer&, CallArgs&)>;

enum class Type : uint8_t {
  Undefined,
  None,
  Bool,
  Int,
  Float,
  String,
  List,
  Tuple,
  Dict,
  Namespace,
  Function,
  Iterator
};

class Value {
 public:
  Value() = default;  // undefined, without a name
  Value(bool b) : type_(Type::Bool), data_(b) {}
  Value(int64_t i) : type_(Type::Int), data_(i) {}
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f) : type_(Type::Float), data_(f) {}
  Value(std::string s) : type_(Type::String), data_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}

  // hint: what the error says when the undefined value is used ("'x' is undefined").
  static Value undefined(std::string hint);
  static Value none();
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value dict(Dict entries);
  static Value ns(Dict entries);
  static Value function(Function f);
  // markupsafe.Markup: a str that |safe or |escape made; `+`, `*` and `%` escape the plain str
  // they combine with (&, <, >, ", '), as Python does even without autoescaping.
  static Value markup(std::string s);
  static Value iterator(std::vector<Value> items, const char* kind = "generator");
  static Value from_json(const nlohmann::ordered_json& json);

  Type type() const { return type_; }
  bool is(Type t) const { return type_ == t; }
  bool is_undefined() const { return type_ == Type::Undefined; }
  bool is_none() const { return type_ == Type::None; }
  bool is_string() const { return type_ == Type::String; }
  bool is_sequence() const { return type_ == Type::List || type_ == Type::Tuple; }
  bool is_dict_like() const { return type_ == Type::Dict || type_ == Type::Namespace; }
  bool is_number() const { return type_ == Type::Bool || type_ == Type::Int || type_ == Type::Float; }
  bool is_integer() const { return type_ == Type::Bool || type_ == Type::Int; }  // Python: bool is an int

  // The accessors throw Error ("an int is required, got str") for a value of another type, so a
  // template that passes the wrong type to a filter gets an error, never undefined behaviour.
  bool boolean() const { return std::get<bool>(require(Type::Bool, Type::Bool, "a bool")); }
  int64_t integer() const;  // bool or int
  double number() const;    // bool, int or float as double
  const std::string& str() const {
    return *std::get<std::shared_ptr<const std::string>>(require(Type::String, Type::String, "a str"));
  }
  const std::vector<Value>& items() const {
    return *std::get<std::shared_ptr<const std::vector<Value>>>(require(Type::List, Type::Tuple, "a list or tuple"));
  }
  const Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(require(Type::Dict, Type::Namespace, "a dict")); }
  Dict& namespace_dict() const {
    return *std::get<std::shared_ptr<Dict>>(require(Type::Dict, Type::Namespace, "a namespace"));
  }
  const Function& function() const {
    return *std::get<std::shared_ptr<const Function>>(require(Type::Function, Type::Function, "a callable"));
  }
  IteratorState& iterator_state() const {
    return *std::get<std::shared_ptr<IteratorState>>(require(Type::Iterator, Type::Iterator, "an iterator"));
  }
  bool is_markup() const { return markup_; }
  const std::string& undefined_hint() const;

  bool truthy() const;  // Python's bool(x); undefined is false
  // Python's `is`: equal scalars (None, bools, numbers, strings), the same object otherwise.
  bool same_as(const Value& other) const;

 private:
  using Storage = std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<const std::string>,
                               std::shared_ptr<const std::vector<Value>>, std::shared_ptr<Dict>,
                               std::shared_ptr<const Function>, std::shared_ptr<IteratorState>>;
  const Storage& require(Type a, Type b, const char* what) const;  // data_ if the type is a or b

  Type type_ = Type::Undefined;
  bool markup_ = false;
  Storage data_;
};

// (Defined after Value, which they hold by value.)
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A builtin (range, namespace, ...), a bound method ('a b'.split), or a macro with the scope it
// was defined in (Jinja macros see that scope's later assignments, like Python closures).
struct Function {
  std::string name;
  NativeFunction native;
  const Stmt* macro = nullptr;
  std::shared_ptr<Frame> closure;
};

// Insertion-ordered map (Python dicts keep insertion order; JSON objects arrive so). Keys are
// str almost always; None, bool, int and float keys also work, equal as in Python (1 == 1.0 == True).
class Dict {
 public:
  const Value* find(std::string_view key) const;
  const Value* lookup(const Value& key) const;  // any hashable key
  void set(Value key, Value value);             // throws Error for an unhashable key (list, dict, ...)
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  void clear() { entries_.clear(); }
  void set_at(size_t i, Value value) { entries_[i].second = std::move(value); }  // i < size()

 private:
  std::vector<std::pair<Value, Value>> entries_;
};

// A Python iterator over precomputed items: truthy even when empty, no len(), not JSON
// serializable, and exhausted once iterated, like the generator a jinja2 filter returns.
struct IteratorState {
  std::vector<Value> items;
  size_t next = 0;
  const char* kind;  // Python's type name: "generator", "list_reverseiterator"
};

// Python's type(x).__name__, for error messages ('str', 'int', 'NoneType', 'dict', ...).
const char* type_name(const Value& v);

// Python's ==, and <; less() throws Error for types Python cannot order ('<' between int and str).
bool equals(const Value& a, const Value& b);
bool less(const Value& a, const Value& b);

// Bounds on text built from a value (str(), repr(), json): exceeding max_bytes or max_depth
// nesting throws Error, so a huge or self-containing value cannot exhaust memory or the stack.
struct TextBounds {
  size_t max_bytes;
  int max_depth = 256;
};
std::string to_str(const Value& v, const TextBounds& bounds);   // str(x): what {{ x }} writes
std::string to_repr(const Value& v, const TextBounds& bounds);  // repr(x): list items, dict keys
struct JsonStyle {
  std::string indent;     // empty: one line; else one item per line, indented by this per level
  bool indented = false;  // indent given (even indent=0, which still breaks lines)
  std::string item_separator = ", ", key_separator = ": ";
  bool ensure_ascii = false, sort_keys = false;
};
std::string to_json(const Value& v, const JsonStyle& style, const TextBounds& bounds);  // json.dumps
std::string html_escape(std::string_view text);                                         // markupsafe.escape: & < > " '

}  // namespace sentinel::jinja
