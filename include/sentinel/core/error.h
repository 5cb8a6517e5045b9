// The one exception type of the library. Every failure that a caller can fix (a bad file,
// a bad option, a shape mismatch) throws sentinel::Error with a message that names the bad
// value and says what to do. Expected outcomes (end of text, context full) are return values.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sentinel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

// Throws Error with the parts streamed together: fail("tensor '", name, "' has ", n, " dims").
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(detail::concat(std::forward<Parts>(parts)...));
}

// check(cond, parts...): fail(parts...) unless cond. The parts are only formatted on failure.
template <typename... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) fail(std::forward<Parts>(parts)...);
}

}  // namespace sentinel
