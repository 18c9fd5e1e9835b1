#include "libs/domain/stats.h"

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

using Key = std::tuple<StatCounter, std::string, std::string, std::string>;  // counter, step,
                                                                             // variant, reason

// Folds every executor event of `d` into `s`, adding up what each one moves; each event is also
// delivered a second time (as after a crash), which must move nothing.
void FoldCounting(EnrollmentState* s, const Decision& d, std::map<Key, int>* counts) {
  for (const v1::Envelope& e : d.executor_events) {
    for (const StatIncrement& i : StatIncrementsOf(*s, e)) {
      ++(*counts)[{i.counter, i.step_id, i.variant_id, i.reason}];
    }
    *s = EvolveEnrollment(std::move(*s), e);
    CHECK(StatIncrementsOf(*s, e).empty());
  }
}

TEST_CASE(
    "Given a task step that waits, an A/B draft and a reply, when the enrollment walks "
    "them, then each counter moves once at its step and variant, redeliveries none",
    "[stats]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  const SequenceState seq = MakeSequence({ActivityStep("call", v1::DELAY_UNIT_HOURS, 1, true),
                                          DraftAbStep("email", v1::DELAY_UNIT_HOURS, 1),
                                          ActivityStep("later", v1::DELAY_UNIT_DAYS, 3)},
                                         t0);
  std::map<Key, int> counts;
  EnrollmentState s;
  FoldCounting(&s, Must(DecideEnrollment(s, Enroll(), seq, t0)), &counts);
  FoldCounting(&s, Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))), &counts);

  v1::Envelope done = Input();
  v1::ActivityCompleted* c = done.mutable_activity_completed();
  c->set_item_key("c1/deal/42");
  c->set_sequence_id("s1");
  c->set_enrollment_id(s.enrollment_id);
  c->set_step_id("call");
  c->set_task_id(absl::StrCat(s.enrollment_id, "/call/task"));
  std::optional<StatIncrement> completed = TaskCompletedIncrement(done);
  REQUIRE(completed.has_value());
  CHECK(completed->step_id == "call");
  CHECK(completed->counter == StatCounter::kTaskCompleted);
  const absl::Time completed_at = t0 + absl::Hours(2);
  FoldCounting(&s, Must(DecideEnrollment(s, done, seq, completed_at)), &counts);
  FoldCounting(&s, Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))), &counts);
  const std::string variant = s.last_email_variant_id;
  REQUIRE((variant == "a" || variant == "b"));

  v1::Envelope reply = Input();
  reply.mutable_email_replied()->set_item_key("c1/deal/42");
  reply.mutable_email_replied()->set_sequence_id("s1");
  FoldCounting(&s, Must(DecideEnrollment(s, reply, seq, t0 + absl::Hours(5))), &counts);

  const std::map<Key, int> expected = {{{StatCounter::kEnrolled, "", "", ""}, 1},
                                       {{StatCounter::kReached, "call", "", ""}, 1},
                                       {{StatCounter::kTaskCreated, "call", "", ""}, 1},
                                       {{StatCounter::kReached, "email", variant, ""}, 1},
                                       {{StatCounter::kEmailDrafted, "email", variant, ""}, 1},
                                       {{StatCounter::kReplied, "email", variant, ""}, 1},
                                       {{StatCounter::kExited, "", "", "EXIT_REASON_REPLIED"}, 1}};
  CHECK(counts == expected);
}

// An automatic A/B email step (variants a and b).
v1::Step AutoAbStep(const std::string& id, v1::DelayUnit unit, int amount) {
  v1::Step s = DraftAbStep(id, unit, amount);
  s.mutable_email()->set_send_automatically(true);
  return s;
}

// The sender stage's (or person stage's) outcome for the enrollment: `email_id` of `step_id` waits.
v1::Envelope Deferred(const EnrollmentState& s, const std::string& step_id,
                      const std::string& reason) {
  v1::Envelope e = Input();
  v1::SendOutcome* o = e.mutable_send_outcome();
  o->mutable_ref()->set_enrollment_id(s.enrollment_id);
  o->mutable_ref()->set_item_key(s.item_key);
  o->mutable_ref()->set_sequence_id(s.sequence_id);
  o->set_step_id(step_id);
  o->set_email_id(absl::StrCat(s.enrollment_id, "/", step_id, "/email"));
  o->set_kind(v1::SendOutcome::KIND_DEFERRED);
  *o->mutable_at() = ToProto(Utc(2024, 3, 6));
  o->set_reason(reason);
  return e;
}

TEST_CASE(
    "Given two automatic A/B emails of one enrollment waiting at once, when their deferrals "
    "arrive after the next email step ran and the first is deferred again (min gap, then send "
    "limit), then deferred counts each email once, at its own step and variant",
    "[stats][send_limits]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  SequenceState seq = MakeSequence(
      {AutoAbStep("m1", v1::DELAY_UNIT_HOURS, 1), AutoAbStep("m2", v1::DELAY_UNIT_MINUTES, 0)}, t0);
  v1::SequenceCommand on = Command("s1");
  on.mutable_switch_automated_sending()->set_enabled(true);
  seq = Apply(std::move(seq), on, t0);
  v1::SequenceCommand grant = Command("s1");
  grant.set_actor_user_id("owner-1");
  grant.mutable_grant_consent()->set_user_id("owner-1");
  seq = Apply(std::move(seq), grant, t0);

  std::map<Key, int> counts;
  EnrollmentState s;
  FoldCounting(&s, Must(DecideEnrollment(s, Enroll(), seq, t0)), &counts);
  std::map<std::string, std::string> variant;  // step -> the variant its email was sent with
  for (int i = 0; i < 2; ++i) {
    const absl::Time due = *NextDueAt(s);
    const Decision d = Must(DecideStepDue(s, due, seq, due));
    REQUIRE(d.email_events.size() == 1);
    variant[d.email_events[0].email_send().step_id()] = d.email_events[0].email_send().variant_id();
    FoldCounting(&s, d, &counts);
  }
  REQUIRE(variant.size() == 2);
  REQUIRE(s.last_email_step_id == "m2");
  // m2 ran (a zero delay) before m1's deferral came back from its stage.
  FoldCounting(&s, Must(DecideEnrollment(s, Deferred(s, "m1", "min_gap"), seq, t0)), &counts);
  FoldCounting(&s, Must(DecideEnrollment(s, Deferred(s, "m2", "min_gap"), seq, t0)), &counts);
  // m1 passes the gap and its sender defers it again: still the one email.
  FoldCounting(&s, Must(DecideEnrollment(s, Deferred(s, "m1", "send_limit"), seq, t0)), &counts);

  std::map<Key, int> deferred;
  for (const auto& [key, n] : counts) {
    if (std::get<0>(key) == StatCounter::kDeferred) deferred[key] = n;
  }
  const std::map<Key, int> expected = {{{StatCounter::kDeferred, "m1", variant["m1"], ""}, 1},
                                       {{StatCounter::kDeferred, "m2", variant["m2"], ""}, 1}};
  for (const auto& [key, n] : deferred) {
    INFO("deferred at step " << std::get<1>(key) << " variant '" << std::get<2>(key) << "': " << n);
    CHECK(expected.count(key) > 0);
  }
  CHECK(deferred == expected);
}

TEST_CASE(
    "Given failures, when the enrollment fails at a step or bounces, then failed counts by "
    "reason at the step, a bounce counts at the last email step, a removal is an exit",
    "[stats]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  // No consent and automated sending off: the automatic email fails at fire time.
  const SequenceState seq = MakeSequence({EmailStep("draft", v1::DELAY_UNIT_HOURS, 1, false),
                                          EmailStep("auto", v1::DELAY_UNIT_HOURS, 1, true)},
                                         t0);
  std::map<Key, int> counts;
  EnrollmentState s;
  FoldCounting(&s, Must(DecideEnrollment(s, Enroll(), seq, t0)), &counts);
  FoldCounting(&s, Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))), &counts);
  FoldCounting(&s, Must(DecideStepDue(s, *NextDueAt(s), seq, *NextDueAt(s))), &counts);
  REQUIRE(s.status == v1::ENROLLMENT_STATUS_FAILED);
  CHECK(counts[{StatCounter::kFailed, "auto", "", "FAILURE_REASON_AUTOMATED_SENDING_OFF"}] == 1);
  CHECK(counts.count({StatCounter::kReached, "auto", "", ""}) == 0);

  v1::Envelope remove = Input();
  remove.mutable_remove_requested()->mutable_target()->set_item_key("c1/deal/42");
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
  FoldCounting(&s, Must(DecideEnrollment(s, remove, seq, t0 + absl::Hours(3))), &counts);
  CHECK(counts[{StatCounter::kExited, "", "", "REMOVAL_REASON_REQUESTED"}] == 1);

  // A second enrollment of another item bounces after its draft.
  std::map<Key, int> bounce_counts;
  EnrollmentState b;
  FoldCounting(&b, Must(DecideEnrollment(b, Enroll("c1/deal/43"), seq, t0)), &bounce_counts);
  FoldCounting(&b, Must(DecideStepDue(b, *NextDueAt(b), seq, *NextDueAt(b))), &bounce_counts);
  v1::Envelope bounce = Input();
  bounce.mutable_email_bounced()->set_item_key("c1/deal/43");
  bounce.mutable_email_bounced()->set_sequence_id("s1");
  FoldCounting(&b, Must(DecideEnrollment(b, bounce, seq, t0 + absl::Hours(2))), &bounce_counts);
  CHECK(bounce_counts[{StatCounter::kBounced, "draft", "", ""}] == 1);
  CHECK(bounce_counts[{StatCounter::kFailed, "draft", "", "FAILURE_REASON_BOUNCED"}] == 1);
}

TEST_CASE("An activity completion counts only for a task id the executor wrote for that item",
          "[stats]") {
  v1::Envelope e = Input();
  v1::ActivityCompleted* c = e.mutable_activity_completed();
  c->set_item_key("c1/deal/42");
  c->set_sequence_id("s1");
  c->set_enrollment_id("c1/deal/42#s1#1");
  c->set_step_id("call");
  c->set_task_id("c1/deal/42#s1#1/call/task");
  CHECK(TaskCompletedIncrement(e).has_value());
  c->set_task_id("c1/deal/42#s1#1/other/task");
  CHECK_FALSE(TaskCompletedIncrement(e).has_value());
  c->set_task_id("c1/deal/99#s1#1/call/task");
  c->set_enrollment_id("c1/deal/99#s1#1");
  CHECK_FALSE(TaskCompletedIncrement(e).has_value());
}

}  // namespace
}  // namespace sequences::domain
