#include "libs/service/testing_clock.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "libs/runtime/log.h"

namespace sequences::service {

absl::StatusOr<absl::Duration> ReadClockOffset(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("testing clock file ", path, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string content(absl::StripAsciiWhitespace(text.str()));
  absl::Duration d;
  if (content.empty() || !absl::ParseDuration(content, &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("testing clock file ", path, " must hold a finite duration such as 90s, not '",
                     content.substr(0, 40), "'"));
  }
  return d;
}

absl::StatusOr<std::unique_ptr<OffsetFileClock>> OffsetFileClock::Open(std::string path) {
  absl::StatusOr<absl::Duration> offset = ReadClockOffset(path);
  if (!offset.ok()) return offset.status();
  return std::unique_ptr<OffsetFileClock>(new OffsetFileClock(std::move(path), *offset));
}

absl::Duration OffsetFileClock::offset() {
  absl::MutexLock lock(&mu_);
  return offset_;
}

absl::Time OffsetFileClock::Now() {
  const absl::Time wall = absl::Now();
  absl::MutexLock lock(&mu_);
  if (wall - read_at_ >= kReread) {
    absl::StatusOr<absl::Duration> offset = ReadClockOffset(path_);
    if (offset.ok()) offset_ = *offset;  // else: keep the last offset
    read_at_ = wall;
  }
  return wall + offset_;
}

bool OffsetFileClock::SleepUntil(absl::Time deadline, absl::Notification* wakeup) {
  while (true) {
    const absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) return true;
    const absl::Duration slice = std::min(left, kSleepSlice);
    if (wakeup == nullptr) {
      absl::SleepFor(slice);
    } else if (wakeup->WaitForNotificationWithTimeout(slice)) {
      return false;
    }
  }
}

absl::StatusOr<std::unique_ptr<Clock>> MakeClock(const std::string& testing_clock_file,
                                                 absl::string_view component) {
  if (testing_clock_file.empty()) return std::unique_ptr<Clock>(new RealClock());
  absl::StatusOr<std::unique_ptr<OffsetFileClock>> clock =
      OffsetFileClock::Open(testing_clock_file);
  if (!clock.ok()) return clock.status();
  Log(LogLevel::kWarning, component,
      "TESTING CLOCK: time is the wall clock plus the offset in a file a test controls; "
      "never run a deployment like this",
      {{"testing_clock_file", testing_clock_file},
       {"offset", absl::FormatDuration((*clock)->offset())}});
  return std::unique_ptr<Clock>(std::move(*clock));
}

}  // namespace sequences::service
