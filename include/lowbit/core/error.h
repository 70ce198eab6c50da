// One exception type for everything that goes wrong with user input or files.
//
// Why one type: the CLI turns any lowbit::Error into a single line on stderr and exit
// code 2 (DESIGN.md, "Errors"), so every throw site must say *where* (file, tensor,
// byte offset, field) and *what was expected versus found* in its message. Context is
// prepended as it propagates outwards with `with_context`, e.g.
//   "model.safetensors: tensor 'w': shape [2,3] x F32 needs 24 bytes, data_offsets span 20".
#pragma once

#include <stdexcept>
#include <string>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  Error(const std::string& where, const std::string& message)
      : std::runtime_error(where.empty() ? message : where + ": " + message) {}

  // A new Error whose message is "context: <this message>".
  Error with_context(const std::string& context) const { return Error(context, what()); }
};

// Throws Error(where, message) unless `condition` holds. Keeps validation code flat.
inline void require(bool condition, const std::string& where, const std::string& message) {
  if (!condition) throw Error(where, message);
}

}  // namespace lowbit
