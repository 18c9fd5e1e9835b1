#include "services/step-executor/batch_sizer.h"

#include <catch2/catch.hpp>

namespace sequences::executor {
namespace {

constexpr absl::Duration kQuick = absl::Milliseconds(40);  // well within the budget

BatchSizer Sizer(int min, int max, absl::Duration budget = absl::Milliseconds(250)) {
  return BatchSizer({.min = min, .max = max, .budget = budget});
}

TEST_CASE("given a new sizer, when nothing was observed yet, then batches start at the minimum") {
  CHECK(Sizer(500, 5000).limit() == 500);
}

TEST_CASE(
    "given a backlog (every batch full) that the machine decides within the budget, when batches "
    "commit, then the limit doubles each time up to the ceiling and never beyond it") {
  BatchSizer s = Sizer(500, 5000);
  std::vector<int> limits;
  for (int i = 0; i < 6; ++i) {
    s.Observe(/*full=*/true, s.limit(), kQuick);
    limits.push_back(s.limit());
  }
  CHECK(limits == std::vector<int>{1000, 2000, 4000, 5000, 5000, 5000});
}

TEST_CASE(
    "given a large limit after a backlog, when batches take less than was allowed (light load), "
    "then the limit halves per batch down to the minimum") {
  BatchSizer s = Sizer(500, 8000);
  for (int i = 0; i < 4; ++i) s.Observe(true, s.limit(), kQuick);
  REQUIRE(s.limit() == 8000);
  std::vector<int> limits;
  for (int i = 0; i < 5; ++i) {
    s.Observe(/*full=*/false, /*taken=*/30, kQuick);
    limits.push_back(s.limit());
  }
  CHECK(limits == std::vector<int>{4000, 2000, 1000, 500, 500});
}

TEST_CASE(
    "given a large limit, when a batch that was not full still took most of it, then the limit "
    "stays at what it took rather than halving below it") {
  BatchSizer s = Sizer(500, 8000);
  for (int i = 0; i < 4; ++i) s.Observe(true, s.limit(), kQuick);
  s.Observe(/*full=*/false, /*taken=*/7000, kQuick);
  CHECK(s.limit() == 7000);
}

TEST_CASE(
    "given a full batch that took twice the budget (a slow or shared machine), when it commits, "
    "then the next limit is the share that fits the budget, however full it was") {
  BatchSizer s = Sizer(500, 8000, absl::Milliseconds(200));
  for (int i = 0; i < 3; ++i) s.Observe(true, s.limit(), kQuick);
  REQUIRE(s.limit() == 4000);
  s.Observe(/*full=*/true, 4000, absl::Milliseconds(400));
  CHECK(s.limit() == 2000);
  // A stall far beyond the budget does not take the limit below the minimum.
  s.Observe(true, 2000, absl::Seconds(30));
  CHECK(s.limit() == 500);
}

TEST_CASE(
    "given a minimum equal to the maximum, when anything is observed, then the limit is fixed "
    "(the executor's behaviour before adaptive batches)") {
  BatchSizer s = Sizer(500, 500);
  s.Observe(true, 500, kQuick);
  CHECK(s.limit() == 500);
  s.Observe(false, 1, kQuick);
  CHECK(s.limit() == 500);
  s.Observe(true, 500, absl::Seconds(5));
  CHECK(s.limit() == 500);
}

TEST_CASE(
    "given options out of range, when the sizer is built, then it clamps them: a minimum of at "
    "least 1 and a maximum of at least the minimum") {
  BatchSizer s = Sizer(0, -3, absl::ZeroDuration());
  CHECK(s.options().min == 1);
  CHECK(s.options().max == 1);
  CHECK(s.options().budget > absl::ZeroDuration());
  s.Observe(true, 1, kQuick);
  CHECK(s.limit() == 1);
}

TEST_CASE(
    "given the same observations, when two sizers see them, then they choose the same limits "
    "(the controller is a pure function of what it is told)") {
  BatchSizer a = Sizer(100, 10000, absl::Milliseconds(250));
  BatchSizer b = Sizer(100, 10000, absl::Milliseconds(250));
  const struct {
    bool full;
    int taken;
    absl::Duration took;
  } seen[] = {{true, 100, kQuick},
              {true, 200, absl::Milliseconds(90)},
              {true, 400, absl::Milliseconds(300)},
              {false, 50, kQuick},
              {true, 166, absl::Milliseconds(10)}};
  for (const auto& o : seen) {
    a.Observe(o.full, o.taken, o.took);
    b.Observe(o.full, o.taken, o.took);
    CHECK(a.limit() == b.limit());
  }
  CHECK(a.limit() == 332);
}

}  // namespace
}  // namespace sequences::executor
