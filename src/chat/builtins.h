// Internal: what a template can call: Jinja's filters and tests (filters.cpp), the methods of
// str / dict / list that chat templates use (methods.cpp), attribute and item lookup with Jinja's
// fallbacks, the arithmetic operators, and the globals transformers provides (raise_exception,
// strftime_now, namespace, ...) (builtins.cpp). Modifying methods (list.append, dict.pop, ...) are
// refused as transformers' immutable sandbox does.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "value.h"

namespace sentinel::jinja {

enum class Support { Yes, NotImplemented, Unknown };
Support filter_support(const std::string& name);
bool is_test(const std::string& name);

Value apply_filter(Renderer& r, const std::string& name, const Value& subject, CallArgs& args);
bool apply_test(Renderer& r, const std::string& name, const Value& subject, CallArgs& args);

// A method of a str, dict or list bound to its object ('a b'.split), or nullopt if the type has no
// such method. Methods that would modify the object are refused when called (methods.cpp).
std::optional<Value> bound_method(const Value& obj, const std::string& name);

// obj.name (Jinja: the attribute, else the item) and obj[key] (the item, else the attribute).
// Missing: an undefined value that says what was missing. Neither accepts an undefined obj.
Value get_attribute(const Value& obj, const std::string& name);
Value get_item(Renderer& r, const Value& obj, const Value& key);
Value slice(Renderer& r, const Value& obj, const Value& start, const Value& stop, const Value& step);

// The elements a for loop visits: list/tuple items, dict keys, string characters; undefined: none.
// Counts them against the render's steps and list bound (a 60 MB string is 60 M characters).
std::vector<Value> iterate(Renderer& r, const Value& v);
bool contains(Renderer& r, const Value& container, const Value& item);  // Python's `item in container`
Value binary_op(Renderer& r, const std::string& op, const Value& a, const Value& b);
Value negate(const Value& v);
// Python's str % args with %s %r %d %i %%: Jinja's % operator on a string, and |format.
// escape: the format is Markup, whose % escapes the arguments.
std::string percent_format(Renderer& r, const std::string& format, const Value& args, bool escape = false);

// The global functions: range, namespace, dict, raise_exception, strftime_now.
void add_globals(Frame& frame);

// Binds call arguments to named parameters, like a Python signature without *args.
class Args {
 public:
  Args(const CallArgs& call, std::string_view function, std::initializer_list<std::string_view> params);
  const Value* get(size_t i) const { return i < bound_.size() ? bound_[i] : nullptr; }
  Value get_or(size_t i, Value fallback) const { return get(i) ? *get(i) : std::move(fallback); }

 private:
  std::vector<const Value*> bound_;
};

// Throws Error if the call passes any argument ("upper() takes no arguments (1 given)").
void no_arguments(const CallArgs& call, std::string_view function);

// Throws Error if v is undefined, with the value's hint as the message ("'x' is undefined"),
// as jinja2's Undefined does when a template uses it (attribute, item, call, arithmetic).
void fail_if_undefined(const Value& v);

}  // namespace sentinel::jinja
