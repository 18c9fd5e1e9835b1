#ifndef SEQUENCES_LIBS_RUNTIME_LOG_H_
#define SEQUENCES_LIBS_RUNTIME_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sequences {

// Structured logs: one JSON object per line on stderr,
//   {"ts":"2026-11-28T08:46:12.123Z","level":"info","component":"executor","msg":"...","k":"v"}
// so operators can grep them and log shippers can parse them. Our Abseil (20220623) predates
// absl/log, and Debian has no structured logger for C++ that is lighter than this function.
//
// Every key and value is written as valid UTF-8 (malformed bytes become U+FFFD) and cut to 1 KiB,
// so a line stays parseable and bounded whatever a caller sent.
//
// Thread-safety: each call writes one whole line atomically with respect to other Log calls.
enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct LogField {
  absl::string_view key;
  std::string value;
  template <typename T>
  LogField(absl::string_view k, const T& v) : key(k), value(absl::StrCat(v)) {}
  LogField(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  LogField(absl::string_view k, const char* v) : key(k), value(v) {}
  LogField(absl::string_view k, const std::string& v) : key(k), value(v) {}
};

void Log(LogLevel level, absl::string_view component, absl::string_view msg,
         std::initializer_list<LogField> fields = {});

// Lines below this level are dropped (default kInfo; SEQUENCES_LOG_LEVEL=debug|info|warning|error).
void SetMinLogLevel(LogLevel level);

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_LOG_H_
