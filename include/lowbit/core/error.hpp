// lowbit::Error — the one exception type the library throws.
//
// Every failure on bad input (an unknown format name, a malformed file, a shape that does
// not fit, a value a format cannot encode) is reported as an Error whose message says what
// went wrong and where, so an engine can catch one type and show the message as it is.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  // `where` names the place (function, file, tensor, element); `what` says what is wrong.
  Error(std::string where, const std::string& what)
      : std::runtime_error("lowbit: " + where + ": " + what), where_(std::move(where)) {}

  const std::string& where() const noexcept { return where_; }

 private:
  std::string where_;
};

namespace detail {

// Builds a message from any streamable pieces: fail("npy::read", "bad magic in ", path).
template <class... Parts>
[[noreturn]] inline void fail(const std::string& where, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(where, os.str());
}

template <class... Parts>
inline void require(bool ok, const std::string& where, const Parts&... parts) {
  if (!ok) fail(where, parts...);
}

}  // namespace detail
}  // namespace lowbit
