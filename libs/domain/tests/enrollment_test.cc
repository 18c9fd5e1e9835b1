#include "libs/domain/enrollment.h"

#include <catch2/catch.hpp>

#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

TEST_CASE("Given a sequence, when an item is enrolled, then it starts with the first step due",
          "[enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, t0);
  Decision d = Must(DecideEnrollment(EnrollmentState{}, Enroll(), seq, t0));
  REQUIRE(d.executor_events.size() == 1);
  const v1::EnrollmentStarted& started = d.executor_events[0].enrollment_started();
  CHECK(started.ref().enrollment_id() == "c1/deal/42#s1#1");
  CHECK(started.first_step_id() == "a");
  CHECK(FromProto(started.first_due_at()) == t0 + absl::Hours(2));
  EnrollmentState s = Fold(EnrollmentState{}, d);
  CHECK(s.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(NextDueAt(s) == t0 + absl::Hours(2));
}

TEST_CASE(
    "Given a due activity step, when the timer fires, then the step executes and a task is "
    "created",
    "[enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence(
      {ActivityStep("a", v1::DELAY_UNIT_HOURS, 2), ActivityStep("b", v1::DELAY_UNIT_DAYS, 1)}, t0);
  EnrollmentState s = Fold({}, Must(DecideEnrollment({}, Enroll(), seq, t0)));
  const absl::Time due = *NextDueAt(s);
  Decision d = Must(DecideStepDue(s, due, seq, due));
  REQUIRE(d.task_events.size() == 1);
  const v1::TaskCreated& task = d.task_events[0].task_created();
  CHECK(task.task_id() == "c1/deal/42#s1#1/a/task");
  CHECK(task.assignee_user_id() == "owner-1");
  CHECK(task.priority() == v1::PRIORITY_HIGH);
  REQUIRE(d.executor_events.size() == 1);
  CHECK(d.executor_events[0].step_executed().next_step_id() == "b");
  s = Fold(s, d);
  CHECK(s.executed_step_ids == std::vector<std::string>{"a"});
  CHECK(NextDueAt(s) == due + absl::Hours(24));
}

TEST_CASE("Given a stale due time, when the timer fires, then nothing happens", "[enrollment]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, t0);
  EnrollmentState s = Fold({}, Must(DecideEnrollment({}, Enroll(), seq, t0)));
  CHECK(Must(DecideStepDue(s, t0 + absl::Hours(1), seq, t0 + absl::Hours(3))).empty());
  CHECK(Must(DecideStepDue(s, t0 + absl::Hours(2), seq, t0 + absl::Hours(1))).empty());
}

}  // namespace
}  // namespace sequences::domain
