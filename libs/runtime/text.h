#ifndef SEQUENCES_LIBS_RUNTIME_TEXT_H_
#define SEQUENCES_LIBS_RUNTIME_TEXT_H_

// Text from untrusted sources (metadata, request fields) made safe to check, log and echo.
// Pure functions; thread-safe.

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace sequences {

// True if `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// `s` as valid UTF-8 of at most about `max_bytes` bytes: every byte that is not part of a
// well-formed sequence becomes U+FFFD, and a longer text is cut at a character boundary and ends
// with "…(<n> bytes)" giving the original size.
std::string PrintableUtf8(absl::string_view s, size_t max_bytes);

// `s` as a JSON string literal, quotes included: '"' and '\\' escaped, \n \r \t as such, other
// control characters as \u00XX; every other byte passes through (make it valid UTF-8 first when
// it comes from outside).
std::string JsonQuote(absl::string_view s);

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_TEXT_H_
