#include "libs/runtime/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/runtime/text.h"

namespace sequences {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("SEQUENCES_LOG_LEVEL");
  absl::string_view v = env ? env : "info";
  if (v == "debug") return LogLevel::kDebug;
  if (v == "warning") return LogLevel::kWarning;
  if (v == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<LogLevel>& MinLevel() {
  static std::atomic<LogLevel> level{LevelFromEnv()};
  return level;
}

// Longest value a line carries: one bad call must not make a megabyte log line.
constexpr size_t kMaxValueBytes = 1024;

// A JSON string of `raw` made valid UTF-8 and cut to kMaxValueBytes (libs/runtime/text.h).
void AppendJsonString(std::string& out, absl::string_view raw) {
  out += JsonQuote(PrintableUtf8(raw, kMaxValueBytes));
}

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void SetMinLogLevel(LogLevel level) { MinLevel().store(level); }

void Log(LogLevel level, absl::string_view component, absl::string_view msg,
         std::initializer_list<LogField> fields) {
  if (level < MinLevel().load(std::memory_order_relaxed)) return;
  // Log lines carry wall-clock time by definition; this is an adapter, not domain code.
  std::string line = absl::StrCat(
      "{\"ts\":\"", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      "\",\"level\":\"", LevelName(level), "\",\"component\":");
  AppendJsonString(line, component);
  line += ",\"msg\":";
  AppendJsonString(line, msg);
  for (const LogField& f : fields) {
    line.push_back(',');
    AppendJsonString(line, f.key);
    line.push_back(':');
    AppendJsonString(line, f.value);
  }
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace sequences
