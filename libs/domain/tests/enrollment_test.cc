#include "libs/domain/enrollment.h"

#include <catch2/catch.hpp>

#include "libs/domain/enrollment_preview.h"
#include "libs/domain/routing.h"
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

namespace sequences::domain {
namespace {

using namespace testing;

const absl::Time kT0 = Utc(2024, 3, 4, 10);  // a Monday

// Enrolls "c1/deal/42" in `seq` at kT0.
EnrollmentState Enrolled(const SequenceState& seq, const std::string& tz = "") {
  return Fold({}, Must(DecideEnrollment({}, Enroll("c1/deal/42", "r1", tz), seq, kT0)));
}

SequenceState Cmd(SequenceState s, void (*set)(v1::SequenceCommand*)) {
  v1::SequenceCommand c = Command("s1");
  set(&c);
  return Apply(std::move(s), c, kT0);
}

SequenceState WithAutomation(SequenceState s) {
  s = Cmd(std::move(s),
          [](v1::SequenceCommand* c) { c->mutable_switch_automated_sending()->set_enabled(true); });
  v1::SequenceCommand grant = Command("s1");
  grant.set_actor_user_id("owner-1");
  grant.mutable_grant_consent()->set_user_id("owner-1");
  return Apply(std::move(s), grant, kT0);
}

// Fires the pending step at its due time (plus `late`), folds, returns the decision.
Decision Fire(EnrollmentState* s, const SequenceState& seq,
              absl::Duration late = absl::ZeroDuration()) {
  const absl::Time due = *NextDueAt(*s);
  Decision d = Must(DecideStepDue(*s, due, seq, due + late));
  *s = Fold(*s, d);
  return d;
}

v1::Envelope ItemInput(void (*set)(v1::Envelope*)) {
  v1::Envelope e = Input();
  set(&e);
  return e;
}

v1::FailureReason FailureOf(const Decision& d) {
  REQUIRE(d.executor_events.size() == 1);
  REQUIRE(d.executor_events[0].has_enrollment_failed());
  return d.executor_events[0].enrollment_failed().reason();
}

// ---- enroll ----

TEST_CASE("Given the same request id twice, then only one enrollment starts", "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  CHECK(Must(DecideEnrollment(s, Enroll("c1/deal/42", "r1"), seq, kT0)).empty());
  CHECK(CheckEnroll(s, Enroll("c1/deal/42", "r1").enroll_requested(), seq).ok());
}

TEST_CASE("Given an active enrollment, when enrolled again, then rejected already_enrolled",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  Decision d = Must(DecideEnrollment(s, Enroll("c1/deal/42", "r2"), seq, kT0));
  REQUIRE(d.executor_events.size() == 1);
  CHECK(d.executor_events[0].enrollment_rejected().reason() ==
        v1::REJECTION_REASON_ALREADY_ENROLLED);
  CHECK(CheckEnroll(s, Enroll("c1/deal/42", "r2").enroll_requested(), seq).code() ==
        absl::StatusCode::kAlreadyExists);
  s = Fold(s, d);
  CHECK(s.request_ids.count("r2") == 1);
  CHECK(Must(DecideEnrollment(s, Enroll("c1/deal/42", "r2"), seq, kT0)).empty());
}

TEST_CASE("Given a lead, when enrolled in a deal sequence, then rejected wrong_entity_kind",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  Decision d = Must(DecideEnrollment({}, Enroll("c1/lead/7"), seq, kT0));
  CHECK(d.executor_events.at(0).enrollment_rejected().reason() ==
        v1::REJECTION_REASON_WRONG_ENTITY_KIND);
  CHECK(CheckEnroll({}, Enroll("c1/lead/7").enroll_requested(), seq).code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("Given no or a deleted sequence, when enrolled, then rejected", "[enrollment]") {
  CHECK(Must(DecideEnrollment({}, Enroll(), SequenceState{}, kT0))
            .executor_events.at(0)
            .enrollment_rejected()
            .reason() == v1::REJECTION_REASON_SEQUENCE_NOT_FOUND);
  CHECK(CheckEnroll({}, Enroll().enroll_requested(), {}).code() == absl::StatusCode::kNotFound);
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  seq = Cmd(seq, [](v1::SequenceCommand* c) { c->mutable_delete_(); });
  CHECK(Must(DecideEnrollment({}, Enroll(), seq, kT0))
            .executor_events.at(0)
            .enrollment_rejected()
            .reason() == v1::REJECTION_REASON_SEQUENCE_DELETED);
}

TEST_CASE("Given an ended enrollment, re-enrollment follows the sequence's rule", "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  Fire(&s, seq);
  REQUIRE(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
  Decision never = Must(DecideEnrollment(s, Enroll("c1/deal/42", "r2"), seq, kT0));
  CHECK(never.executor_events.at(0).enrollment_rejected().reason() ==
        v1::REJECTION_REASON_REENROLLMENT_NOT_ALLOWED);
  seq.settings.set_reenrollment(v1::REENROLLMENT_RULE_WHEN_NOT_ACTIVE);
  Decision again = Must(DecideEnrollment(s, Enroll("c1/deal/42", "r2"), seq, kT0));
  REQUIRE(again.executor_events.at(0).has_enrollment_started());
  s = Fold(s, again);
  CHECK(s.enrollment_id == "c1/deal/42#s1#2");
  CHECK(s.enrollment_count == 2);
  CHECK(s.executed_step_ids.empty());
}

TEST_CASE("Given a malformed enroll record, then INVALID_ARGUMENT (dead-letter)", "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  CHECK(DecideEnrollment({}, Enroll("no-key"), seq, kT0).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(DecideEnrollment({}, Enroll("c1/deal/1", ""), seq, kT0).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("Given an enroll request for a newer sequence version, the executor must defer it",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  v1::Envelope e = Enroll();
  e.mutable_enroll_requested()->set_sequence_version(2);
  CHECK(RequiredSequenceVersion(e) == 2);
  CHECK_FALSE(SequenceReadyFor(seq, e));
  CHECK_FALSE(SequenceReadyFor(SequenceState{}, e));
  e.mutable_enroll_requested()->set_sequence_version(1);
  CHECK(SequenceReadyFor(seq, e));
  CHECK_FALSE(RequiredSequenceVersion(Input()).has_value());
}

TEST_CASE("Given a sequence without steps, when enrolled, then it completes at once",
          "[enrollment]") {
  SequenceState seq = MakeSequence({}, kT0);
  EnrollmentState s = Enrolled(seq);
  CHECK(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
  CHECK(s.exit_reason == v1::EXIT_REASON_ALL_STEPS_DONE);
}

TEST_CASE("The time zone is the recipient's, recorded at start", "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_DAYS, 1)}, kT0);
  EnrollmentState s = Enrolled(seq, "Asia/Kolkata");
  CHECK(s.time_zone == "Asia/Kolkata");
  CHECK(NextDueAt(s) == kT0 + absl::Hours(24));
}

// ---- firing ----

TEST_CASE("Given an automatic email with consent, when due, then EmailSend with a stable key",
          "[enrollment][email]") {
  SequenceState seq = WithAutomation(
      MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true, "Hi {{person.first_name}}",
                              "<b>{{person.first_name}}</b>")},
                   kT0));
  EnrollmentState s = Enrolled(seq);
  const absl::Time due = *NextDueAt(s);
  Decision d1 = Must(DecideStepDue(s, due, seq, due));
  Decision d2 = Must(DecideStepDue(s, due, seq, due));
  REQUIRE(d1.email_events.size() == 1);
  const v1::EmailSend& m = d1.email_events[0].email_send();
  CHECK(m.idempotency_key() == "c1/deal/42#s1#1/e/email");
  CHECK(m.mode() == v1::EMAIL_MODE_AUTOMATIC);
  CHECK(m.subject() == "Hi Ada");
  CHECK(m.sender_user_id() == "owner-1");
  CHECK(m.recipient().email() == "ada@example.com");
  CHECK(d1.email_events[0].SerializeAsString() == d2.email_events[0].SerializeAsString());
  CHECK(d1.executor_events[0].event_id() == d2.executor_events[0].event_id());
  s = Fold(s, d1);
  CHECK(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
}

TEST_CASE(
    "Given automated sending off, when an automatic email is due, then failed "
    "automated_sending_off",
    "[enrollment][email]") {
  SequenceState seq = MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true)}, kT0);
  EnrollmentState s = Enrolled(seq);
  CHECK(FailureOf(Fire(&s, seq)) == v1::FAILURE_REASON_AUTOMATED_SENDING_OFF);
  CHECK(s.status == v1::ENROLLMENT_STATUS_FAILED);
  CHECK(s.failed_step_id == "e");
  CHECK_FALSE(NextDueAt(s).has_value());
}

TEST_CASE(
    "Given consent revoked, when an automatic email is due, then failed consent_missing, "
    "retry after granting sends it",
    "[enrollment][email]") {
  SequenceState seq =
      WithAutomation(MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true)}, kT0));
  EnrollmentState s = Enrolled(seq);
  SequenceState revoked =
      Cmd(seq, [](v1::SequenceCommand* c) { c->mutable_revoke_consent()->set_user_id("owner-1"); });
  CHECK(FailureOf(Fire(&s, revoked)) == v1::FAILURE_REASON_CONSENT_MISSING);
  // Retry with consent granted again.
  v1::Envelope retry = ItemInput([](v1::Envelope* e) {
    e->mutable_retry_requested()->mutable_target()->set_item_key("c1/deal/42");
    e->mutable_retry_requested()->mutable_target()->set_sequence_id("s1");
  });
  const absl::Time later = kT0 + absl::Hours(5);
  Decision r = Must(DecideEnrollment(s, retry, seq, later));
  REQUIRE(r.executor_events.at(0).has_enrollment_retried());
  s = Fold(s, r);
  CHECK(s.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(NextDueAt(s) == later);  // the delay had elapsed already
  Decision d = Must(DecideStepDue(s, later, seq, later));
  CHECK(d.email_events.size() == 1);
}

TEST_CASE("Given an unfilled merge field, an automatic email fails naming it, a draft keeps it",
          "[enrollment][email]") {
  SequenceState seq = WithAutomation(MakeSequence(
      {EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true, "Hi {{person.title}}", "x")}, kT0));
  EnrollmentState s = Enrolled(seq);
  Decision d = Fire(&s, seq);
  CHECK(FailureOf(d) == v1::FAILURE_REASON_MISSING_MERGE_FIELD);
  CHECK(d.executor_events[0].enrollment_failed().missing_merge_field() == "person.title");
  CHECK(d.email_events.empty());

  SequenceState draft = WithAutomation(MakeSequence(
      {EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, false, "Hi {{person.title}}", "x")}, kT0));
  EnrollmentState s2 = Enrolled(draft);
  Decision d2 = Fire(&s2, draft);
  REQUIRE(d2.email_events.size() == 1);
  CHECK(d2.email_events[0].email_send().mode() == v1::EMAIL_MODE_DRAFT_FOR_REVIEW);
  CHECK(d2.email_events[0].email_send().subject() == "Hi {{person.title}}");
}

TEST_CASE("Given merge data updated, the automatic email renders the new value",
          "[enrollment][email]") {
  SequenceState seq = WithAutomation(MakeSequence(
      {EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true, "Hi {{person.title}}", "x")}, kT0));
  EnrollmentState s = Enrolled(seq);
  v1::Envelope upd = ItemInput([](v1::Envelope* e) {
    e->mutable_merge_data_updated()->set_item_key("c1/deal/42");
    (*e->mutable_merge_data_updated()->mutable_merge_data())["person.title"] = "Dr";
  });
  s = Fold(s, Must(DecideEnrollment(s, upd, seq, kT0)));
  CHECK(s.merge_data.at("person.title") == "Dr");
  CHECK(Fire(&s, seq).email_events.at(0).email_send().subject() == "Hi Dr");
}

TEST_CASE("Given no recipient address, an email step fails recipient_missing", "[enrollment]") {
  SequenceState seq = MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, false)}, kT0);
  v1::Envelope enroll = Enroll();
  enroll.mutable_enroll_requested()->mutable_recipient()->clear_email();
  EnrollmentState s = Fold({}, Must(DecideEnrollment({}, enroll, seq, kT0)));
  CHECK(FailureOf(Fire(&s, seq)) == v1::FAILURE_REASON_RECIPIENT_MISSING);
}

v1::Envelope Retry() {
  return ItemInput([](v1::Envelope* e) {
    e->mutable_retry_requested()->mutable_target()->set_item_key("c1/deal/42");
    e->mutable_retry_requested()->mutable_target()->set_sequence_id("s1");
  });
}

TEST_CASE(
    "Given an enrollment failed on a missing merge field, when the merge data is updated and it "
    "is retried, then the email renders the new value",
    "[enrollment][repair]") {
  SequenceState seq = WithAutomation(MakeSequence(
      {EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, true, "Hi {{person.title}}", "x")}, kT0));
  EnrollmentState s = Enrolled(seq);
  REQUIRE(FailureOf(Fire(&s, seq)) == v1::FAILURE_REASON_MISSING_MERGE_FIELD);
  REQUIRE(s.status == v1::ENROLLMENT_STATUS_FAILED);

  v1::Envelope upd = ItemInput([](v1::Envelope* e) {
    e->mutable_merge_data_updated()->set_item_key("c1/deal/42");
    e->mutable_merge_data_updated()->set_sequence_id("s1");
    (*e->mutable_merge_data_updated()->mutable_merge_data())["person.title"] = "Dr";
  });
  Decision repaired = Must(DecideEnrollment(s, upd, seq, kT0 + absl::Hours(1)));
  REQUIRE(repaired.executor_events.size() == 1);
  s = Fold(s, repaired);
  CHECK(s.status == v1::ENROLLMENT_STATUS_FAILED);  // repaired, not restarted by itself
  CHECK(s.merge_data.at("person.title") == "Dr");
  // The same update again changes nothing.
  CHECK(Must(DecideEnrollment(s, upd, seq, kT0 + absl::Hours(1))).empty());

  s = Fold(s, Must(DecideEnrollment(s, Retry(), seq, kT0 + absl::Hours(2))));
  REQUIRE(s.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  Decision d = Fire(&s, seq);
  REQUIRE(d.email_events.size() == 1);
  CHECK(d.email_events[0].email_send().subject() == "Hi Dr");
}

TEST_CASE(
    "Given an enrollment failed for no recipient, when the recipient is updated and it is "
    "retried, then the email goes to the new address",
    "[enrollment][repair]") {
  SequenceState seq = MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, false)}, kT0);
  v1::Envelope enroll = Enroll();
  enroll.mutable_enroll_requested()->mutable_recipient()->clear_email();
  EnrollmentState s = Fold({}, Must(DecideEnrollment({}, enroll, seq, kT0)));
  REQUIRE(FailureOf(Fire(&s, seq)) == v1::FAILURE_REASON_RECIPIENT_MISSING);

  v1::Envelope upd = ItemInput([](v1::Envelope* e) {
    e->mutable_merge_data_updated()->set_item_key("c1/deal/42");
    e->mutable_merge_data_updated()->set_sequence_id("s1");
    e->mutable_merge_data_updated()->mutable_recipient()->set_email("grace@example.com");
  });
  s = Fold(s, Must(DecideEnrollment(s, upd, seq, kT0 + absl::Hours(1))));
  CHECK(s.recipient.email() == "grace@example.com");
  s = Fold(s, Must(DecideEnrollment(s, Retry(), seq, kT0 + absl::Hours(2))));
  Decision d = Fire(&s, seq);
  REQUIRE(d.email_events.size() == 1);
  CHECK(d.email_events[0].email_send().recipient().email() == "grace@example.com");
}

TEST_CASE("Given a failed enrollment, when removal is requested, then it is removed",
          "[enrollment][repair]") {
  SequenceState seq = MakeSequence({EmailStep("e", v1::DELAY_UNIT_MINUTES, 5, false)}, kT0);
  v1::Envelope enroll = Enroll();
  enroll.mutable_enroll_requested()->mutable_recipient()->clear_email();
  EnrollmentState s = Fold({}, Must(DecideEnrollment({}, enroll, seq, kT0)));
  REQUIRE(FailureOf(Fire(&s, seq)) == v1::FAILURE_REASON_RECIPIENT_MISSING);
  v1::Envelope rm = ItemInput([](v1::Envelope* e) {
    e->mutable_remove_requested()->mutable_target()->set_item_key("c1/deal/42");
    e->mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
    e->mutable_remove_requested()->set_requested_by("u9");
  });
  s = Fold(s, Must(DecideEnrollment(s, rm, seq, kT0 + absl::Hours(1))));
  CHECK(s.status == v1::ENROLLMENT_STATUS_REMOVED);
  CHECK(s.removal_reason == v1::REMOVAL_REASON_REQUESTED);
  // A removed enrollment is neither repaired nor retried.
  v1::Envelope upd = ItemInput([](v1::Envelope* e) {
    e->mutable_merge_data_updated()->set_item_key("c1/deal/42");
    e->mutable_merge_data_updated()->mutable_recipient()->set_email("grace@example.com");
  });
  CHECK(Must(DecideEnrollment(s, upd, seq, kT0 + absl::Hours(2))).empty());
  CHECK(Must(DecideEnrollment(s, Retry(), seq, kT0 + absl::Hours(2))).empty());
}

TEST_CASE(
    "Given a step that waits for completion, the next step is scheduled from the "
    "completion",
    "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0, true),
                                    ActivityStep("b", v1::DELAY_UNIT_HOURS, 1)},
                                   kT0);
  EnrollmentState s = Enrolled(seq);
  Decision d = Fire(&s, seq);
  REQUIRE(d.executor_events.size() == 2);
  CHECK(d.executor_events[1].has_waiting_for_activity());
  CHECK_FALSE(NextDueAt(s).has_value());
  v1::Envelope other = ItemInput([](v1::Envelope* e) {
    e->mutable_activity_completed()->set_task_id("someone-else");
    e->mutable_activity_completed()->set_item_key("c1/deal/42");
    e->mutable_activity_completed()->set_sequence_id("s1");
  });
  CHECK(Must(DecideEnrollment(s, other, seq, kT0)).empty());
  v1::Envelope done = other;
  done.mutable_activity_completed()->set_task_id("c1/deal/42#s1#1/a/task");
  const absl::Time completed = kT0 + absl::Hours(30);
  s = Fold(s, Must(DecideEnrollment(s, done, seq, completed)));
  CHECK(NextDueAt(s) == completed + absl::Hours(1));
}

TEST_CASE(
    "Given an activity completed at an instant with nanoseconds, when the next step is scheduled, "
    "then its due time is a whole microsecond and the timer named by it decides again the same",
    "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0, true),
                                    ActivityStep("b", v1::DELAY_UNIT_MINUTES, 5)},
                                   kT0);
  EnrollmentState s = Enrolled(seq);
  Fire(&s, seq);
  v1::Envelope done = ItemInput([](v1::Envelope* e) {
    e->mutable_activity_completed()->set_task_id("c1/deal/42#s1#1/a/task");
    e->mutable_activity_completed()->set_item_key("c1/deal/42");
    e->mutable_activity_completed()->set_sequence_id("s1");
  });
  const absl::Time completed = kT0 + absl::Hours(2) + absl::Nanoseconds(123456789);
  *done.mutable_activity_completed()->mutable_completed_at() = ToProto(completed);
  const absl::Time now = kT0 + absl::Hours(3);
  const Decision d = Must(DecideEnrollment(s, done, seq, now));
  REQUIRE(d.executor_events.size() == 1);
  const absl::Time due = FromProto(d.executor_events[0].step_scheduled().due_at());
  CHECK(due == absl::FromUnixMicros(absl::ToUnixMicros(due)));
  // Never before the delay ended: rounded up, not down.
  CHECK(due >= completed + absl::Minutes(5));
  CHECK(due - (completed + absl::Minutes(5)) < absl::Microseconds(1));
  s = Fold(s, d);
  // The timer id carries microseconds ("/due@<micros>"): firing with exactly that time executes.
  const absl::Time timer = absl::FromUnixMicros(absl::ToUnixMicros(*NextDueAt(s)));
  const Decision fired = Must(DecideStepDue(s, timer, seq, timer));
  REQUIRE(!fired.executor_events.empty());
  CHECK(fired.executor_events[0].step_executed().step_id() == "b");
}

TEST_CASE(
    "Given an activity with a due time, the task is due at that local time on the day it "
    "fires",
    "[enrollment]") {
  v1::Step a = ActivityStep("a", v1::DELAY_UNIT_DAYS, 1);
  a.mutable_activity()->mutable_due_time()->set_hours(16);
  a.mutable_activity()->mutable_assignee()->set_user_id("u7");
  SequenceState seq = MakeSequence({a}, kT0);
  EnrollmentState s = Enrolled(seq, "Europe/Berlin");
  const v1::TaskCreated t = Fire(&s, seq).task_events.at(0).task_created();
  CHECK(t.assignee_user_id() == "u7");
  CHECK(t.time_zone() == "Europe/Berlin");
  CHECK(t.due_date().day() == 5);
  CHECK(FromProto(t.due_at()) == Local("Europe/Berlin", 2024, 3, 5, 16));
}

TEST_CASE("Given the sequence not folded yet, a due step answers UNAVAILABLE (retry later)",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 1)}, kT0);
  EnrollmentState s = Enrolled(seq);
  CHECK(DecideStepDue(s, *NextDueAt(s), SequenceState{}, kT0 + absl::Hours(1)).status().code() ==
        absl::StatusCode::kUnavailable);
}

// ---- exits, removal ----

TEST_CASE("Given exit conditions, the enrollment ends with the matching reason", "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  struct Case {
    v1::ItemOutcomeKind kind;
    v1::EnrollmentStatus status;
  };
  for (const Case& c : {Case{v1::ITEM_OUTCOME_KIND_DEAL_WON, v1::ENROLLMENT_STATUS_COMPLETED},
                        Case{v1::ITEM_OUTCOME_KIND_DEAL_LOST, v1::ENROLLMENT_STATUS_COMPLETED},
                        Case{v1::ITEM_OUTCOME_KIND_LEAD_CONVERTED, v1::ENROLLMENT_STATUS_COMPLETED},
                        Case{v1::ITEM_OUTCOME_KIND_ITEM_DELETED, v1::ENROLLMENT_STATUS_REMOVED}}) {
    EnrollmentState s = Enrolled(seq);
    v1::Envelope e = Input();
    e.mutable_item_outcome()->set_item_key("c1/deal/42");
    e.mutable_item_outcome()->set_kind(c.kind);
    s = Fold(s, Must(DecideEnrollment(s, e, seq, kT0)));
    CHECK(s.status == c.status);
    CHECK_FALSE(NextDueAt(s).has_value());
    // A timer for the old due time is now a no-op.
    CHECK(Must(DecideStepDue(s, kT0 + absl::Hours(2), seq, kT0 + absl::Hours(2))).empty());
  }
}

TEST_CASE("Given a reply, the enrollment completes replied, a bounce fails it bounced",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  v1::Envelope replied =
      ItemInput([](v1::Envelope* e) { e->mutable_email_replied()->set_item_key("c1/deal/42"); });
  EnrollmentState r = Fold(s, Must(DecideEnrollment(s, replied, seq, kT0)));
  CHECK(r.exit_reason == v1::EXIT_REASON_REPLIED);
  v1::Envelope bounced = ItemInput([](v1::Envelope* e) {
    e->mutable_email_bounced()->set_item_key("c1/deal/42");
    e->mutable_email_bounced()->set_sequence_id("s1");
  });
  EnrollmentState b = Fold(s, Must(DecideEnrollment(s, bounced, seq, kT0)));
  CHECK(b.failure_reason == v1::FAILURE_REASON_BOUNCED);
  // Another sequence's reply does not touch it.
  replied.mutable_email_replied()->set_sequence_id("s2");
  CHECK(Must(DecideEnrollment(s, replied, seq, kT0)).empty());
}

TEST_CASE("Given remove requested, the enrollment is removed, removing again is a no-op",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  v1::Envelope rm = ItemInput([](v1::Envelope* e) {
    e->mutable_remove_requested()->mutable_target()->set_item_key("c1/deal/42");
    e->mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
    e->mutable_remove_requested()->set_requested_by("u9");
  });
  s = Fold(s, Must(DecideEnrollment(s, rm, seq, kT0)));
  CHECK(s.status == v1::ENROLLMENT_STATUS_REMOVED);
  CHECK(s.removal_reason == v1::REMOVAL_REASON_REQUESTED);
  CHECK(Must(DecideEnrollment(s, rm, seq, kT0)).empty());
}

TEST_CASE("Given the sequence deleted, enrollments are removed, a due step also removes",
          "[enrollment]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 2)}, kT0);
  EnrollmentState s = Enrolled(seq);
  v1::SequenceCommand del = Command("s1");
  del.mutable_delete_();
  const v1::Envelope deleted = DecideSequence(seq, del, kT0)->at(0);
  EnrollmentState r = Fold(s, Must(DecideEnrollment(s, deleted, seq, kT0)));
  CHECK(r.removal_reason == v1::REMOVAL_REASON_SEQUENCE_DELETED);
  SequenceState gone = EvolveSequence(seq, deleted);
  Decision d = Fire(&s, gone);
  CHECK(d.executor_events.at(0).enrollment_removed().reason() ==
        v1::REMOVAL_REASON_SEQUENCE_DELETED);
}

// ---- pause / resume ----

TEST_CASE("Given a pause, the delay clock stops, on resume the remaining delay continues",
          "[enrollment][pause]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 4)}, kT0);
  EnrollmentState s = Enrolled(seq);
  v1::Envelope pause = ItemInput([](v1::Envelope* e) {
    e->mutable_pause_requested()->mutable_target()->mutable_item_in_sequence()->set_item_key(
        "c1/deal/42");
    e->mutable_pause_requested()->mutable_target()->mutable_item_in_sequence()->set_sequence_id(
        "s1");
  });
  s = Fold(s, Must(DecideEnrollment(s, pause, seq, kT0 + absl::Hours(1))));
  CHECK(s.status == v1::ENROLLMENT_STATUS_PAUSED);
  CHECK_FALSE(NextDueAt(s).has_value());
  CHECK(Must(DecideStepDue(s, kT0 + absl::Hours(4), seq, kT0 + absl::Hours(4))).empty());
  v1::Envelope resume = pause;
  *resume.mutable_resume_requested()->mutable_target() = pause.pause_requested().target();
  s = Fold(s, Must(DecideEnrollment(s, resume, seq, kT0 + absl::Hours(11))));
  CHECK(s.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  // 1 hour elapsed before the pause, 3 remain after the resume.
  CHECK(NextDueAt(s) == kT0 + absl::Hours(14));
  CHECK(Fire(&s, seq).task_events.size() == 1);
}

TEST_CASE("Given several pause causes, the enrollment resumes only when all are lifted",
          "[enrollment][pause]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 4)}, kT0);
  EnrollmentState s = Enrolled(seq);
  v1::Envelope owner_pause = ItemInput([](v1::Envelope* e) {
    e->mutable_pause_requested()->mutable_target()->set_owner_id("owner-1");
  });
  CHECK(RouteInput(owner_pause).scope == InputRoute::Scope::kOwner);
  s = Fold(s, Must(DecideEnrollment(s, owner_pause, seq, kT0)));
  SequenceState paused_seq = Cmd(seq, [](v1::SequenceCommand* c) { c->mutable_pause(); });
  v1::SequenceCommand pc = Command("s1");
  pc.mutable_pause();
  const v1::Envelope seq_paused = DecideSequence(seq, pc, kT0)->at(0);
  s = Fold(s, Must(DecideEnrollment(s, seq_paused, paused_seq, kT0)));
  CHECK(s.pause_causes.size() == 2);
  v1::Envelope owner_resume = ItemInput([](v1::Envelope* e) {
    e->mutable_resume_requested()->mutable_target()->set_owner_id("owner-1");
  });
  s = Fold(s, Must(DecideEnrollment(s, owner_resume, paused_seq, kT0 + absl::Hours(1))));
  CHECK(s.status == v1::ENROLLMENT_STATUS_PAUSED);
  v1::SequenceCommand rc = Command("s1");
  rc.mutable_resume();
  const v1::Envelope seq_resumed = DecideSequence(paused_seq, rc, kT0)->at(0);
  s = Fold(s, Must(DecideEnrollment(s, seq_resumed, EvolveSequence(paused_seq, seq_resumed),
                                    kT0 + absl::Hours(2))));
  CHECK(s.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);
  CHECK(NextDueAt(s) == kT0 + absl::Hours(6));
}

TEST_CASE(
    "Given an awaited activity reported done only after a pause that began after it was done, "
    "then the pause stops the next step's delay clock too",
    "[enrollment][pause]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0, true),
                                    ActivityStep("b", v1::DELAY_UNIT_HOURS, 4)},
                                   kT0);
  EnrollmentState s = Enrolled(seq);
  Fire(&s, seq);  // "a" at kT0, waiting for its activity
  v1::Envelope pause = ItemInput([](v1::Envelope* e) {
    e->mutable_pause_requested()->mutable_target()->set_owner_id("owner-1");
  });
  v1::Envelope resume = ItemInput([](v1::Envelope* e) {
    e->mutable_resume_requested()->mutable_target()->set_owner_id("owner-1");
  });
  // Done at kT0+1h; the owner's time off from kT0+2h to kT0+12h; reported at kT0+13h.
  s = Fold(s, Must(DecideEnrollment(s, pause, seq, kT0 + absl::Hours(2))));
  s = Fold(s, Must(DecideEnrollment(s, resume, seq, kT0 + absl::Hours(12))));
  v1::Envelope done = ItemInput([](v1::Envelope* e) {
    e->mutable_activity_completed()->set_task_id("c1/deal/42#s1#1/a/task");
    e->mutable_activity_completed()->set_item_key("c1/deal/42");
    e->mutable_activity_completed()->set_sequence_id("s1");
  });
  *done.mutable_activity_completed()->mutable_completed_at() = ToProto(kT0 + absl::Hours(1));
  s = Fold(s, Must(DecideEnrollment(s, done, seq, kT0 + absl::Hours(13))));
  // 1 hour of "b"'s 4 ran before the pause, 3 after it: kT0+12h+3h (not kT0+1h+4h, at once).
  CHECK(NextDueAt(s) == kT0 + absl::Hours(15));
  CHECK(Must(DecideStepDue(s, kT0 + absl::Hours(15), seq, kT0 + absl::Hours(14))).empty());
  // Done during the pause (at kT0+5h), reported after it: 4 hours from the resume.
  EnrollmentState during = Enrolled(seq);
  Fire(&during, seq);
  during = Fold(during, Must(DecideEnrollment(during, pause, seq, kT0 + absl::Hours(2))));
  during = Fold(during, Must(DecideEnrollment(during, resume, seq, kT0 + absl::Hours(12))));
  *done.mutable_activity_completed()->mutable_completed_at() = ToProto(kT0 + absl::Hours(5));
  during = Fold(during, Must(DecideEnrollment(during, done, seq, kT0 + absl::Hours(13))));
  CHECK(NextDueAt(during) == kT0 + absl::Hours(16));
}

TEST_CASE(
    "Given a step already overdue when a pause arrives, on resume it fires once and the steps "
    "after it keep their delays (no burst)",
    "[enrollment][pause]") {
  SequenceState seq = MakeSequence(
      {ActivityStep("a", v1::DELAY_UNIT_HOURS, 1), ActivityStep("b", v1::DELAY_UNIT_HOURS, 1),
       ActivityStep("c", v1::DELAY_UNIT_HOURS, 1)},
      kT0);
  EnrollmentState s = Enrolled(seq);  // "a" due kT0+1h; the executor is down until kT0+9h
  v1::Envelope pause = ItemInput([](v1::Envelope* e) {
    e->mutable_pause_requested()->mutable_target()->set_owner_id("owner-1");
  });
  v1::Envelope resume = ItemInput([](v1::Envelope* e) {
    e->mutable_resume_requested()->mutable_target()->set_owner_id("owner-1");
  });
  // Back up, the pause is decided before the overdue timer; resumed at kT0+20h.
  s = Fold(s, Must(DecideEnrollment(s, pause, seq, kT0 + absl::Hours(9))));
  CHECK(Must(DecideStepDue(s, kT0 + absl::Hours(1), seq, kT0 + absl::Hours(9))).empty());
  s = Fold(s, Must(DecideEnrollment(s, resume, seq, kT0 + absl::Hours(20))));
  CHECK(NextDueAt(s) == kT0 + absl::Hours(20));
  CHECK(Fire(&s, seq).executor_events.at(0).step_executed().step_id() == "a");
  CHECK(NextDueAt(s) == kT0 + absl::Hours(21));
  CHECK(Fire(&s, seq).executor_events.at(0).step_executed().step_id() == "b");
  CHECK(NextDueAt(s) == kT0 + absl::Hours(22));
}

TEST_CASE("Given a paused sequence, a due step does not fire: the enrollment pauses",
          "[enrollment][pause]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 4)}, kT0);
  EnrollmentState s = Enrolled(seq);
  SequenceState paused = Cmd(seq, [](v1::SequenceCommand* c) { c->mutable_pause(); });
  Decision d = Fire(&s, paused);
  CHECK(d.task_events.empty());
  CHECK(d.executor_events.at(0).enrollment_paused().cause() == v1::PAUSE_CAUSE_SEQUENCE);
  CHECK(s.status == v1::ENROLLMENT_STATUS_PAUSED);
}

TEST_CASE("Given a send window, resume re-aligns to the window instead of firing at once",
          "[enrollment][pause]") {
  v1::SequenceCommand c = CreateCommand("s1", {ActivityStep("a", v1::DELAY_UNIT_HOURS, 1)});
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r =
        c.mutable_create()->mutable_settings()->mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(9);
    r->mutable_end()->set_hours(17);
  }
  SequenceState seq = Apply({}, c, kT0);
  EnrollmentState s = Enrolled(seq);  // Monday 10:00 UTC, due 11:00
  SequenceState paused = Cmd(seq, [](v1::SequenceCommand* c) { c->mutable_pause(); });
  v1::SequenceCommand pc = Command("s1");
  pc.mutable_pause();
  s = Fold(s, Must(DecideEnrollment(s, DecideSequence(seq, pc, kT0)->at(0), paused,
                                    kT0 + absl::Minutes(30))));
  // Resumed Monday 20:00 (outside the window): 30 minutes remain, then the window -> Tue 09:00.
  v1::SequenceCommand rc = Command("s1");
  rc.mutable_resume();
  const v1::Envelope resumed = DecideSequence(paused, rc, kT0)->at(0);
  s = Fold(
      s, Must(DecideEnrollment(s, resumed, EvolveSequence(paused, resumed), Utc(2024, 3, 4, 20))));
  CHECK(NextDueAt(s) == Utc(2024, 3, 5, 9));
}

TEST_CASE(
    "Given a timer that fires late, after the window closed, the step runs then and the next "
    "step counts its delay from that execution, re-aligned to the window (no burst)",
    "[enrollment][window]") {
  v1::SequenceCommand c = CreateCommand("s1", {ActivityStep("a", v1::DELAY_UNIT_HOURS, 6),
                                               ActivityStep("b", v1::DELAY_UNIT_MINUTES, 0),
                                               ActivityStep("c", v1::DELAY_UNIT_HOURS, 1)});
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r =
        c.mutable_create()->mutable_settings()->mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(9);
    r->mutable_end()->set_hours(17);
  }
  SequenceState seq = Apply({}, c, kT0);
  EnrollmentState s = Enrolled(seq);  // Monday 10:00 UTC, "a" due 16:00
  REQUIRE(NextDueAt(s) == Utc(2024, 3, 4, 16));
  // The executor was down: the timer fires at 19:30, after the window closed at 17:00. The window
  // applies to due times; the late step runs now (an automatic email would still wait for its
  // window in the sender stage, docs/send-limits.md).
  CHECK(Fire(&s, seq, absl::Hours(3) + absl::Minutes(30)).task_events.size() == 1);
  // "b" (0 minutes) is due at the next opening, not at once; "c" an hour after "b" ran.
  CHECK(NextDueAt(s) == Utc(2024, 3, 5, 9));
  Fire(&s, seq);
  CHECK(NextDueAt(s) == Utc(2024, 3, 5, 10));
}

// ---- edits ----

TEST_CASE(
    "Given a step inserted before the position, it is not run, a deleted pending step is "
    "skipped",
    "[enrollment][edit]") {
  SequenceState seq = MakeSequence(
      {ActivityStep("a", v1::DELAY_UNIT_HOURS, 1), ActivityStep("b", v1::DELAY_UNIT_HOURS, 2),
       ActivityStep("c", v1::DELAY_UNIT_HOURS, 3)},
      kT0);
  EnrollmentState s = Enrolled(seq);
  Fire(&s, seq);  // a executed, b pending
  REQUIRE(s.pending_step_id == "b");
  // New steps: x inserted before a, b deleted, c kept.
  v1::SequenceCommand edit = Command("s1");
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("x", v1::DELAY_UNIT_HOURS, 1);
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("a", v1::DELAY_UNIT_HOURS, 1);
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("c", v1::DELAY_UNIT_HOURS, 3);
  const v1::EditImpact impact =
      PreviewEdit(s, seq,
                  std::vector<v1::Step>(edit.replace_steps().steps().begin(),
                                        edit.replace_steps().steps().end()),
                  kT0 + absl::Hours(1));
  CHECK(impact.not_run_step_ids_size() == 1);
  CHECK(impact.not_run_step_ids(0) == "x");
  CHECK(impact.skipped_step_ids_size() == 1);
  CHECK(impact.skipped_step_ids(0) == "b");
  CHECK(impact.pending_step_id_before() == "b");
  CHECK(impact.pending_step_id_after() == "c");
  CHECK(FromProto(impact.due_at_after()) == kT0 + absl::Hours(4));

  const v1::Envelope replaced = DecideSequence(seq, edit, kT0)->at(0);
  SequenceState edited = EvolveSequence(seq, replaced);
  Decision d = Must(DecideEnrollment(s, replaced, edited, kT0 + absl::Hours(1)));
  REQUIRE(d.executor_events.size() == 1);
  CHECK(d.executor_events[0].step_scheduled().step_id() == "c");
  s = Fold(s, d);
  CHECK(NextDueAt(s) == kT0 + absl::Hours(4));
  Fire(&s, edited);
  CHECK(s.executed_step_ids == std::vector<std::string>{"a", "c"});
  CHECK(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
}

TEST_CASE(
    "Given an enrollment waiting for an activity, when an edit is previewed and then applied, "
    "then the preview shows it still waiting, as the executor leaves it",
    "[enrollment][edit]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0, true),
                                    ActivityStep("b", v1::DELAY_UNIT_MINUTES, 5)},
                                   kT0);
  EnrollmentState s = Enrolled(seq);
  Fire(&s, seq);
  REQUIRE(!s.waiting_task_id.empty());
  v1::SequenceCommand edit = Command("s1");
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0, true);
  *edit.mutable_replace_steps()->add_steps() = ActivityStep("b", v1::DELAY_UNIT_MINUTES, 1);
  const std::vector<v1::Step> steps(edit.replace_steps().steps().begin(),
                                    edit.replace_steps().steps().end());
  const absl::Time now = kT0 + absl::Hours(1);
  const v1::EditImpact impact = PreviewEdit(s, seq, steps, now);
  CHECK(impact.pending_step_id_after().empty());
  CHECK_FALSE(impact.has_due_at_after());
  CHECK_FALSE(impact.completes());
  // Upcoming: b, a minute after the activity is completed (assumed now).
  REQUIRE(impact.upcoming_size() == 1);
  CHECK(impact.upcoming(0).step_id() == "b");
  CHECK(FromProto(impact.upcoming(0).due_at()) == now + absl::Minutes(1));

  const v1::Envelope replaced = DecideSequence(seq, edit, now)->at(0);
  const SequenceState edited = EvolveSequence(seq, replaced);
  const EnrollmentState after = Fold(s, Must(DecideEnrollment(s, replaced, edited, now)));
  CHECK(after.pending_step_id == impact.pending_step_id_after());
  CHECK_FALSE(NextDueAt(after).has_value());
  CHECK(after.waiting_task_id == s.waiting_task_id);
}

TEST_CASE("Given an edit the executor did not fan out, the fire-time check reschedules",
          "[enrollment][edit]") {
  SequenceState seq = MakeSequence(
      {ActivityStep("a", v1::DELAY_UNIT_HOURS, 1), ActivityStep("b", v1::DELAY_UNIT_HOURS, 2)},
      kT0);
  EnrollmentState s = Enrolled(seq);
  seq.steps[0].mutable_delay()->set_amount(5);  // the pending step's delay grew
  Decision d = Fire(&s, seq);
  CHECK(d.task_events.empty());
  CHECK(NextDueAt(s) == kT0 + absl::Hours(5));
  CHECK(Fire(&s, seq).task_events.size() == 1);
}

TEST_CASE("Given a changed pending step, its new content is used when it fires",
          "[enrollment][edit]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 1)}, kT0);
  EnrollmentState s = Enrolled(seq);
  seq.steps[0].mutable_activity()->set_subject("New subject");
  CHECK(Fire(&s, seq).task_events.at(0).task_created().subject() == "New subject");
}

TEST_CASE(
    "Given an activity whose subject and note use merge fields, when it fires, the task has the "
    "filled ones filled and the unfilled ones as written",
    "[enrollment][render]") {
  SequenceState seq = MakeSequence({ActivityStep("a", v1::DELAY_UNIT_HOURS, 1)}, kT0);
  seq.steps[0].mutable_activity()->set_subject("Call {{person.first_name}}");
  seq.steps[0].mutable_activity()->set_note("Ask about {{deal.title}}");
  EnrollmentState s = Enrolled(seq);  // merge data: person.first_name = Ada
  const v1::TaskCreated task = Fire(&s, seq).task_events.at(0).task_created();
  CHECK(task.subject() == "Call Ada");
  CHECK(task.note() == "Ask about {{deal.title}}");
}

// ---- routing ----

TEST_CASE("Inputs route to one enrollment, an item, a sequence or an owner", "[enrollment]") {
  CHECK(RouteInput(Enroll()).scope == InputRoute::Scope::kItemInSequence);
  v1::Envelope outcome = Input();
  outcome.mutable_item_outcome()->set_item_key("c1/deal/42");
  CHECK(RouteInput(outcome).scope == InputRoute::Scope::kItem);
  CHECK(RouteInput(outcome).item_key == "c1/deal/42");
  v1::Envelope deleted = Input();
  deleted.mutable_sequence_deleted()->set_sequence_id("s1");
  CHECK(RouteInput(deleted).scope == InputRoute::Scope::kSequence);
  CHECK(RouteInput(Input()).scope == InputRoute::Scope::kNone);
  CHECK(EnrollmentKey("c1/deal/42", "s1") == "c1/deal/42#s1");
}

}  // namespace
}  // namespace sequences::domain
