// GGUF metadata values: construction, checked conversions and the short display form.
// Parsing them from bytes is gguf.cpp's job.
#include <cctype>
#include <cstdio>
#include <iterator>
#include <limits>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/io/gguf.h"

namespace sentinel {
namespace {

bool is_unsigned_type(GgufValueType t) {
  return t == GgufValueType::UINT8 || t == GgufValueType::UINT16 || t == GgufValueType::UINT32 ||
         t == GgufValueType::UINT64;
}

bool is_signed_type(GgufValueType t) {
  return t == GgufValueType::INT8 || t == GgufValueType::INT16 || t == GgufValueType::INT32 ||
         t == GgufValueType::INT64;
}

bool is_float_type(GgufValueType t) { return t == GgufValueType::FLOAT32 || t == GgufValueType::FLOAT64; }

// 'text' with quotes, backslashes and control bytes escaped, cut after about max_chars bytes
// (at a UTF-8 character boundary, so the display stays valid UTF-8 when the value is).
std::string quote(const std::string& text, size_t max_chars = 80) {
  std::string out = "'";
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool continuation = (c & 0xc0) == 0x80;
    if (i >= max_chars && !continuation) {
      out += "...";
      break;
    }
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);  // UTF-8 continuation bytes pass through untouched
    }
  }
  return out + "'";
}

std::string plural_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::STRING: return "strings";
    case GgufValueType::ARRAY: return "arrays";
    case GgufValueType::BOOL: return "bools";
    default: {
      std::string name = gguf_value_type_name(t);  // "[3 int32: 1, 2, 3]"
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return name;
    }
  }
}

}  // namespace

std::string gguf_value_type_name(GgufValueType type) {
  static const char* const names[] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32", "INT32",  "FLOAT32",
                                      "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64", "FLOAT64"};
  const auto index = static_cast<uint32_t>(type);
  return index < std::size(names) ? names[index] : "type " + std::to_string(index);
}

GgufValue GgufValue::make_uint(GgufValueType type, uint64_t value) {
  check(is_unsigned_type(type), "make_uint needs an unsigned GGUF type, not ", gguf_value_type_name(type));
  GgufValue v;
  v.type_ = type;
  v.scalar_.u = value;
  return v;
}

GgufValue GgufValue::make_int(GgufValueType type, int64_t value) {
  check(is_signed_type(type), "make_int needs a signed GGUF type, not ", gguf_value_type_name(type));
  GgufValue v;
  v.type_ = type;
  v.scalar_.i = value;
  return v;
}

GgufValue GgufValue::make_float(GgufValueType type, double value) {
  check(is_float_type(type), "make_float needs FLOAT32 or FLOAT64, not ", gguf_value_type_name(type));
  GgufValue v;
  v.type_ = type;
  v.scalar_.f = value;
  return v;
}

GgufValue GgufValue::make_bool(bool value) {
  GgufValue v;
  v.type_ = GgufValueType::BOOL;
  v.scalar_.u = value ? 1 : 0;
  return v;
}

GgufValue GgufValue::make_string(std::string value) {
  GgufValue v;
  v.type_ = GgufValueType::STRING;
  v.string_ = std::move(value);
  return v;
}

GgufValue GgufValue::make_array(GgufValueType element_type, std::vector<GgufValue> elements) {
  for (const GgufValue& e : elements)
    check(e.type_ == element_type, "GGUF array of ", gguf_value_type_name(element_type), " holds a ",
          gguf_value_type_name(e.type_), " element");
  GgufValue v;
  v.type_ = GgufValueType::ARRAY;
  v.element_type_ = element_type;
  v.array_ = std::move(elements);
  return v;
}

bool GgufValue::is_integer() const { return is_unsigned_type(type_) || is_signed_type(type_); }

bool GgufValue::is_float() const { return is_float_type(type_); }

int64_t GgufValue::as_int() const {
  if (is_signed_type(type_)) return scalar_.i;
  check(is_unsigned_type(type_), "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not an integer");
  check(scalar_.u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "GGUF value ", scalar_.u,
        " (UINT64) does not fit in int64");
  return static_cast<int64_t>(scalar_.u);
}

uint64_t GgufValue::as_uint() const {
  if (is_unsigned_type(type_)) return scalar_.u;
  check(is_signed_type(type_), "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not an integer");
  check(scalar_.i >= 0, "GGUF value ", scalar_.i, " is negative; expected an unsigned integer");
  return static_cast<uint64_t>(scalar_.i);
}

double GgufValue::as_float() const {
  if (is_float_type(type_)) return scalar_.f;
  if (is_signed_type(type_)) return static_cast<double>(scalar_.i);
  check(is_unsigned_type(type_), "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not a number");
  return static_cast<double>(scalar_.u);
}

bool GgufValue::as_bool() const {
  check(type_ == GgufValueType::BOOL, "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not BOOL");
  return scalar_.u != 0;
}

const std::string& GgufValue::as_string() const {
  check(type_ == GgufValueType::STRING, "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not STRING");
  return string_;
}

GgufValueType GgufValue::array_type() const {
  check(type_ == GgufValueType::ARRAY, "GGUF value ", to_display(3), " is ", gguf_value_type_name(type_),
        ", not ARRAY");
  return element_type_;
}

const std::vector<GgufValue>& GgufValue::as_array() const {
  array_type();  // throws unless an array
  return array_;
}

std::vector<std::string> GgufValue::as_string_array() const {
  check(array_type() == GgufValueType::STRING, "GGUF value ", to_display(3), " is not an array of strings");
  std::vector<std::string> out;
  out.reserve(array_.size());
  for (const GgufValue& e : array_) out.push_back(e.string_);
  return out;
}

std::vector<int64_t> GgufValue::as_int_array() const {
  const GgufValueType t = array_type();
  check(is_unsigned_type(t) || is_signed_type(t), "GGUF value ", to_display(3), " is not an array of integers");
  std::vector<int64_t> out;
  out.reserve(array_.size());
  for (const GgufValue& e : array_) out.push_back(e.as_int());
  return out;
}

std::vector<double> GgufValue::as_float_array() const {
  const GgufValueType t = array_type();
  check(is_float_type(t) || is_unsigned_type(t) || is_signed_type(t), "GGUF value ", to_display(3),
        " is not an array of numbers");
  std::vector<double> out;
  out.reserve(array_.size());
  for (const GgufValue& e : array_) out.push_back(e.as_float());
  return out;
}

std::string GgufValue::to_display(size_t max_items) const {
  std::ostringstream out;
  if (is_unsigned_type(type_)) {
    out << scalar_.u;
  } else if (is_signed_type(type_)) {
    out << scalar_.i;
  } else if (is_float_type(type_)) {
    out.precision(type_ == GgufValueType::FLOAT32 ? 9 : 17);  // enough digits to round-trip
    out << scalar_.f;
  } else if (type_ == GgufValueType::BOOL) {
    out << (scalar_.u != 0 ? "true" : "false");
  } else if (type_ == GgufValueType::STRING) {
    out << quote(string_);
  } else {
    out << "[" << array_.size() << " " << plural_type_name(element_type_);
    for (size_t i = 0; i < array_.size() && i < max_items; ++i)
      out << (i == 0 ? ": " : ", ") << array_[i].to_display(max_items);
    if (array_.size() > max_items) out << ", ...";
    out << "]";
  }
  return out.str();
}

}  // namespace sentinel
