#ifndef SEQUENCES_TESTS_SUPPORT_TEST_CLOCK_H_
#define SEQUENCES_TESTS_SUPPORT_TEST_CLOCK_H_

// The test's side of the step executor's --testing_clock_file (libs/service/testing_clock.h):
// e2e scenarios with minute-long step delays move the executor's time forward instead of waiting
// for it, so no e2e test waits for a real minute.
//
// Why a clock offset in a file, and not sub-minute delay units: the delays, due times and fire-time
// checks the tests assert stay exactly the ones users configure (DELAY_UNIT_MINUTES and up), the
// API's validation is untouched, and a test decides when time moves, so "not before its due time"
// is checked by looking before moving the clock. The executor re-reads the file every 10 ms and
// waits at most --flush_interval (50 ms) between looks at its due index, so a jump is acted on at
// once. The API stays on the wall clock: its time is gRPC deadlines and request bookkeeping, which
// must agree with the callers' real clock; no API decision depends on step delays.
//
// Time in a test that uses it: Now() is the executor's time (wall clock + offset). Kafka record
// timestamps and TopicReader receive times are wall-clock; ServiceTime() maps them to the
// executor's time (the offset in force at that moment: a record written just after an advance
// may map a few milliseconds late, never early, so "at or after its due time" stays a sound
// check). Advance only while the executor runs steadily (not during a start or a rebalance):
// recovery gives up after 60 s of its clock without progress.
//
// Not thread-safe: use it from the test's thread.

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace sequences::testing {

class TestClock {
 public:
  TestClock() : path_(TempDir("test-clock") + "/offset") { Write(); }

  // The flag that puts a step-executor on this clock.
  std::string Flag() const { return "--testing_clock_file=" + path_; }
  const std::string& path() const { return path_; }

  absl::Duration offset() const { return offset_; }
  // The executor's time now.
  absl::Time Now() const { return absl::Now() + offset_; }

  // Moves the executor's time forward by `d` (> 0). Services see it within about 10 ms.
  void Advance(absl::Duration d) {
    REQUIRE(d > absl::ZeroDuration());
    offset_ += d;
    // Noted before the write (so nothing the new offset stamped maps to the old one), down to
    // Kafka's millisecond timestamps.
    advances_.push_back({absl::FromUnixMillis(absl::ToUnixMillis(absl::Now())), offset_});
    Write();
  }

  // The executor's time at wall-clock time `wall` (a record timestamp, a receive time).
  absl::Time ServiceTime(absl::Time wall) const {
    absl::Duration offset = absl::ZeroDuration();
    for (const auto& [at, o] : advances_) {
      if (at <= wall) offset = o;
    }
    return wall + offset;
  }

 private:
  // Atomically: the executor never reads a half-written offset.
  void Write() {
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << absl::FormatDuration(offset_) << "\n";
      REQUIRE(out.good());
    }
    REQUIRE(std::rename(tmp.c_str(), path_.c_str()) == 0);
  }

  std::string path_;
  absl::Duration offset_ = absl::ZeroDuration();
  // (wall-clock time the offset was written, the offset from then on)
  std::vector<std::pair<absl::Time, absl::Duration>> advances_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_TEST_CLOCK_H_
