#include "libs/runtime/background_probe.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>

#include "absl/time/clock.h"
#include "tests/support/eventually.h"

namespace sequences {
namespace {

using testing::Eventually;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE(
    "given a question that answers, when the probe runs, then Latest holds the newest answer "
    "with the clock's time, and the question is asked again one interval after each answer") {
  SimulatedClock clock(kStart);
  auto asked = std::make_shared<std::atomic<int>>(0);
  BackgroundProbe<int> probe([asked] { return ++*asked; }, clock, absl::Seconds(1));
  REQUIRE(Eventually([&] { return probe.Latest().has_value(); }));
  CHECK(probe.Latest()->value == 1);
  CHECK(probe.Latest()->at == kStart);
  // Not asked again before the interval has passed on the clock.
  absl::SleepFor(absl::Milliseconds(20));
  CHECK(*asked == 1);
  clock.Advance(absl::Seconds(1));
  REQUIRE(Eventually([&] { return probe.Latest()->value == 2; }));
  CHECK(probe.Latest()->at == kStart + absl::Seconds(1));
}

TEST_CASE(
    "given a question that gets stuck, then Latest keeps the last answer and its time (the caller "
    "sees it age), the destructor returns after its grace, and the stuck question ending later "
    "frees what it holds") {
  SimulatedClock clock(kStart);
  auto release = std::make_shared<absl::Notification>();
  auto held = std::make_shared<int>(0);  // owned by the question; freed with the thread's state
  std::weak_ptr<int> held_watch = held;
  auto asked = std::make_shared<std::atomic<int>>(0);
  {
    BackgroundProbe<int> probe(
        [asked, release, held] {
          if (++*asked > 1) release->WaitForNotification();  // stuck from the second question on
          return asked->load();
        },
        clock, absl::Seconds(1), /*join_grace=*/absl::Milliseconds(50));
    held.reset();
    REQUIRE(Eventually([&] { return probe.Latest().has_value(); }));
    clock.Advance(absl::Seconds(1));
    REQUIRE(Eventually([&] { return *asked == 2; }));
    clock.Advance(absl::Seconds(30));
    absl::SleepFor(absl::Milliseconds(20));
    REQUIRE(probe.Latest().has_value());
    CHECK(probe.Latest()->value == 1);
    CHECK(clock.Now() - probe.Latest()->at == absl::Seconds(31));
  }  // the destructor returns while the question is still stuck
  CHECK_FALSE(held_watch.expired());
  release->Notify();
  CHECK(Eventually([&] { return held_watch.expired(); }));
}

}  // namespace
}  // namespace sequences
