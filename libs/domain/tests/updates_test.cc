// Which executor events are reported on the public enrollment-updates topic, and with what.
#include "libs/domain/updates.h"

#include <catch2/catch.hpp>

#include "libs/domain/envelope.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

const absl::Time kT0 = Utc(2024, 3, 4, 10);

// Folds every event of `d` into *s and returns the updates they give, in order.
std::vector<v1::EnrollmentUpdate> Apply(EnrollmentState* s, const Decision& d) {
  std::vector<v1::EnrollmentUpdate> out;
  for (const v1::Envelope& e : d.executor_events) {
    *s = EvolveEnrollment(std::move(*s), e);
    if (std::optional<v1::EnrollmentUpdate> u = EnrollmentUpdateFor(e, *s)) {
      CHECK(u->update_id() == e.event_id());
      CHECK(u->causation_id() == e.causation_id());
      CHECK(u->occurred_at().seconds() == e.occurred_at().seconds());
      out.push_back(*u);
    }
  }
  return out;
}

v1::Envelope Targeted(void (*set)(v1::Envelope*)) {
  v1::Envelope e = Input();
  set(&e);
  return e;
}

TEST_CASE(
    "Given an enrollment whose automatic email fails, is retried and removed, then enrolled, "
    "failed, retried and removed are updates with their reasons, scheduling, merge data and a "
    "rejected enroll request are not") {
  SequenceState seq = MakeSequence({EmailStep("mail", v1::DELAY_UNIT_MINUTES, 5, true)}, kT0);
  EnrollmentState s;
  std::vector<v1::EnrollmentUpdate> u = Apply(&s, Must(DecideEnrollment(s, Enroll(), seq, kT0)));
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_ENROLLED);
  CHECK(u[0].status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(u[0].ref().enrollment_id() == "c1/deal/42#s1#1");
  CHECK(u[0].ref().item_key() == "c1/deal/42");
  CHECK(u[0].owner_id() == "owner-1");
  CHECK(u[0].correlation_id() == "corr");

  // Enrolled again while active: EnrollmentRejected, which starts no enrollment: no update.
  CHECK(Apply(&s, Must(DecideEnrollment(s, Enroll("c1/deal/42", "r2"), seq, kT0))).empty());

  // Automated sending is off: the email fails when due.
  const absl::Time due = *NextDueAt(s);
  u = Apply(&s, Must(DecideStepDue(s, due, seq, due)));
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_FAILED);
  CHECK(u[0].status() == v1::ENROLLMENT_STATUS_FAILED);
  CHECK(u[0].failure_reason() == v1::FAILURE_REASON_AUTOMATED_SENDING_OFF);
  CHECK(u[0].step_id() == "mail");
  CHECK(u[0].causation_id() == absl::StrCat("c1/deal/42#s1#1/mail/due@", absl::ToUnixMicros(due)));

  // Repairing the data of a failed enrollment changes no status.
  CHECK(Apply(&s,
              Must(DecideEnrollment(
                  s, Targeted([](v1::Envelope* e) {
                    e->mutable_merge_data_updated()->set_item_key("c1/deal/42");
                    (*e->mutable_merge_data_updated()->mutable_merge_data())["person.first_name"] =
                        "Grace";
                  }),
                  seq, due)))
            .empty());

  u = Apply(&s, Must(DecideEnrollment(s, Targeted([](v1::Envelope* e) {
                                        auto* t = e->mutable_retry_requested()->mutable_target();
                                        t->set_item_key("c1/deal/42");
                                        t->set_sequence_id("s1");
                                      }),
                                      seq, due + absl::Minutes(1))));
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_RETRIED);
  CHECK(u[0].status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(u[0].step_id() == "mail");

  u = Apply(&s, Must(DecideEnrollment(s, Targeted([](v1::Envelope* e) {
                                        auto* t = e->mutable_remove_requested()->mutable_target();
                                        t->set_item_key("c1/deal/42");
                                        t->set_sequence_id("s1");
                                      }),
                                      seq, due + absl::Minutes(2))));
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_REMOVED);
  CHECK(u[0].status() == v1::ENROLLMENT_STATUS_REMOVED);
  CHECK(u[0].removal_reason() == v1::REMOVAL_REASON_REQUESTED);
}

TEST_CASE(
    "Given a paused sequence, when an item is enrolled, then enrolled and paused (cause "
    "sequence) are two updates, an edit that moves the pending step after the resume is none") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  v1::SequenceCommand pause = Command("s1");
  pause.mutable_pause();
  seq = testing::Apply(seq, pause, kT0);
  EnrollmentState s;
  std::vector<v1::EnrollmentUpdate> u = Apply(&s, Must(DecideEnrollment(s, Enroll(), seq, kT0)));
  REQUIRE(u.size() == 2);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_ENROLLED);
  CHECK(u[1].kind() == v1::ENROLLMENT_UPDATE_KIND_PAUSED);
  CHECK(u[1].pause_cause() == v1::PAUSE_CAUSE_SEQUENCE);
  CHECK(u[1].status() == v1::ENROLLMENT_STATUS_PAUSED);
  CHECK(u[1].pause_causes().size() == 1);

  v1::SequenceCommand resume = Command("s1");
  resume.mutable_resume();
  absl::StatusOr<std::vector<v1::Envelope>> resumed = DecideSequence(seq, resume, kT0);
  REQUIRE(resumed.ok());
  REQUIRE(resumed->size() == 1);
  seq = EvolveSequence(seq, resumed->front());
  u = Apply(&s, Must(DecideEnrollment(s, resumed->front(), seq, kT0 + absl::Hours(1))));
  REQUIRE(u.size() == 1);
  CHECK(u[0].kind() == v1::ENROLLMENT_UPDATE_KIND_RESUMED);
  CHECK(u[0].status() == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(u[0].pause_causes().empty());

  v1::SequenceCommand edit = Command("s1");
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("a", v1::DELAY_UNIT_HOURS, 5);
  absl::StatusOr<std::vector<v1::Envelope>> edited = DecideSequence(seq, edit, kT0);
  REQUIRE(edited.ok());
  const Decision d = Must(DecideEnrollment(s, edited->front(), seq, kT0 + absl::Hours(1)));
  REQUIRE(d.executor_events.size() == 1);
  CHECK(d.executor_events[0].has_step_scheduled());
  CHECK(Apply(&s, d).empty());
}

TEST_CASE("Events that are not executor events give no update") {
  CHECK_FALSE(EnrollmentUpdateFor(Enroll(), EnrollmentState{}).has_value());
  CHECK_FALSE(EnrollmentUpdateFor(v1::Envelope(), EnrollmentState{}).has_value());
}

}  // namespace
}  // namespace sequences::domain
