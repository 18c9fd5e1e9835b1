#ifndef SEQUENCES_LIBS_SERVICE_TESTING_CLOCK_H_
#define SEQUENCES_LIBS_SERVICE_TESTING_CLOCK_H_

// FOR END-TO-END TESTS ONLY: a Clock that e2e tests can move forward, so a scenario with a
// one-minute step delay runs in a second instead of waiting for a real minute.
//
// The clock is the wall clock plus an offset that a test writes into a file: the file holds one
// absl duration ("0s", "1m30s", "90s"; surrounding whitespace ignored). Now() re-reads the file
// at most every kReread (one small file read), so a jump written by the test is seen by
// every thread of the service within about kReread; SleepUntil wakes in slices of at most
// kSleepSlice to notice a jump. A test advances the clock by writing a larger offset (atomically:
// write a temporary file and rename it over the path; tests/support/test_clock.h does).
//
// The step executor takes it with --testing_clock_file=PATH (services/step-executor/README.md,
// "Testing clock"); main() logs a warning line at start when it is in use. It must never be used
// in production: a service on it decides step due times on a time nobody outside the test agrees
// with. Production code never constructs it; only main() does, and only when the flag is given.
//
// Errors: Open refuses a missing or unreadable file and content that is not a duration. Later
// unreadable content (a test writing without rename) keeps the last offset read.
//
// Thread-safety: safe to call from any thread.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/runtime/clock.h"

namespace sequences::service {

class OffsetFileClock final : public Clock {
 public:
  static constexpr absl::Duration kReread = absl::Milliseconds(10);
  static constexpr absl::Duration kSleepSlice = absl::Milliseconds(20);

  // Reads `path` once (it must exist and hold a duration).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OffsetFileClock>> Open(std::string path);

  absl::Time Now() override;
  bool SleepUntil(absl::Time deadline, absl::Notification* wakeup) override;

  // The offset last read (what Now() adds to the wall clock).
  absl::Duration offset();

 private:
  explicit OffsetFileClock(std::string path, absl::Duration offset)
      : path_(std::move(path)), offset_(offset) {}

  std::string path_;
  absl::Mutex mu_;
  absl::Duration offset_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // wall-clock time of the read
};

// The offset a testing clock file holds, or InvalidArgument/NotFound.
[[nodiscard]] absl::StatusOr<absl::Duration> ReadClockOffset(const std::string& path);

// The clock a service's main() runs on: the RealClock when `testing_clock_file` is empty (always,
// in production); otherwise the OffsetFileClock on that file, after logging a warning under
// `component` that the service runs on a testing clock.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Clock>> MakeClock(
    const std::string& testing_clock_file, absl::string_view component);

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_TESTING_CLOCK_H_
