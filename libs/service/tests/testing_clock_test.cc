#include "libs/service/testing_clock.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace sequences::service {
namespace {

// A file in the temp directory holding `content`, removed at scope exit.
class OffsetFile {
 public:
  explicit OffsetFile(const std::string& content) {
    static int n = 0;
    path_ = absl::StrCat(std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp",
                         "/testing-clock-", getpid(), "-", ++n);
    Write(content);
  }
  ~OffsetFile() { std::remove(path_.c_str()); }
  void Write(const std::string& content) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << content;
    std::rename(tmp.c_str(), path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_CASE("given a clock file holding 90s, the testing clock runs 90 seconds ahead of the wall") {
  OffsetFile file("90s\n");
  auto clock = OffsetFileClock::Open(file.path());
  REQUIRE(clock.ok());
  CHECK((*clock)->offset() == absl::Seconds(90));
  const absl::Time before = absl::Now();
  const absl::Time now = (*clock)->Now();
  CHECK(now >= before + absl::Seconds(90));
  CHECK(now <= absl::Now() + absl::Seconds(90));
}

TEST_CASE("when a test writes a larger offset, a sleeper on the testing clock wakes at once") {
  OffsetFile file("0s");
  auto opened = OffsetFileClock::Open(file.path());
  REQUIRE(opened.ok());
  OffsetFileClock& clock = **opened;
  const absl::Time deadline = clock.Now() + absl::Hours(1);
  bool reached = false;
  std::thread sleeper([&] { reached = clock.SleepUntil(deadline, nullptr); });
  file.Write("1h1s");
  sleeper.join();  // an hour would time the test out
  CHECK(reached);
  CHECK(clock.Now() >= deadline);
  CHECK(clock.offset() == absl::Hours(1) + absl::Seconds(1));
}

TEST_CASE("a sleeper on the testing clock returns false when woken before its deadline") {
  OffsetFile file("0s");
  auto clock = OffsetFileClock::Open(file.path());
  REQUIRE(clock.ok());
  absl::Notification wakeup;
  wakeup.Notify();
  CHECK_FALSE((*clock)->SleepUntil((*clock)->Now() + absl::Hours(1), &wakeup));
}

TEST_CASE("a missing clock file or one that holds no duration is refused at start") {
  CHECK(OffsetFileClock::Open("/nonexistent/testing-clock").status().code() ==
        absl::StatusCode::kNotFound);
  OffsetFile garbage("soon");
  CHECK(OffsetFileClock::Open(garbage.path()).status().code() ==
        absl::StatusCode::kInvalidArgument);
  OffsetFile empty("");
  CHECK(OffsetFileClock::Open(empty.path()).status().code() == absl::StatusCode::kInvalidArgument);
  OffsetFile infinite("inf");
  CHECK(OffsetFileClock::Open(infinite.path()).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("content that stops parsing keeps the last offset read") {
  OffsetFile file("5s");
  auto clock = OffsetFileClock::Open(file.path());
  REQUIRE(clock.ok());
  file.Write("half-writ");
  absl::SleepFor(OffsetFileClock::kReread * 2);
  (*clock)->Now();
  CHECK((*clock)->offset() == absl::Seconds(5));
}

TEST_CASE("without a testing clock file, services run on the wall clock") {
  auto clock = MakeClock("", "test");
  REQUIRE(clock.ok());
  CHECK(dynamic_cast<RealClock*>(clock->get()) != nullptr);
  CHECK(MakeClock("/nonexistent/testing-clock", "test").status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sequences::service
