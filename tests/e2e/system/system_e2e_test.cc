// The whole system end to end (tier e2e): a real sequence-api and a real step-executor process on
// the real broker. Every command goes through gRPC as the CRM's back ends send it; what the task
// service and the mailer would receive is read from the output topics with read_committed, and
// what users see is read back through the API.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/domain/envelope.h"
#include "libs/kafka/consumer.h"
#include "libs/service/topics.h"
#include "tests/e2e/api/api_process.h"
#include "tests/e2e/system/system_harness.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"

namespace sequences::testing {
namespace {

// --- the tests ---------------------------------------------------------------------------------

TEST_CASE(
    "Given a deal sequence with an activity, a draft email and an automatic email created "
    "through the API, when 20 deals are batch-enrolled through the API, then each step runs "
    "exactly once per deal, in order, never before its due time, and the overview shows every "
    "enrollment completed") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence = CreateSequence(
      api, "create-flow",
      {ActivityStep("call", 0), EmailStep("draft", 0, false), EmailStep("auto", 1, true)});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);

  constexpr int kItems = 20;
  std::vector<Item> items;
  for (int i = 0; i < kItems; ++i) items.push_back({absl::StrCat("d", i), owner});
  const absl::Time enrolled_at = sys.Now();
  BatchEnroll(api, sequence, items);

  Reader reader(
      {sys.topics().executor_events, sys.topics().task_events, sys.topics().email_events});
  // The calls and drafts go out at once; the automatic emails wait for their minute: none is
  // written before the executor's clock moves.
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= kItems; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  for (const Seen* s : reader.On(sys.topics().email_events)) {
    CHECK(s->event.email_send().step_id() == "draft");
  }
  sys.AdvanceClock(absl::Minutes(1));
  REQUIRE(reader.PollUntil(
      [&] { return CountEvents(reader, sys, v1::Envelope::kEnrollmentCompleted) >= kItems; },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(2));  // a duplicate or a stray effect would show up now

  // Exactly one task and one email per step and deal, counted by the consumers' dedup keys.
  std::map<std::string, int> effects;
  for (const Seen* s : reader.On(sys.topics().task_events)) ++effects[EffectId(s->event)];
  for (const Seen* s : reader.On(sys.topics().email_events)) ++effects[EffectId(s->event)];
  CHECK(reader.On(sys.topics().task_events).size() == kItems);
  CHECK(reader.On(sys.topics().email_events).size() == 2 * kItems);
  CHECK(effects.size() == 3 * kItems);
  for (const auto& [id, n] : effects) {
    INFO(id);
    CHECK(n == 1);
  }
  CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentCompleted) == kItems);
  CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentFailed) == 0);

  for (const Item& it : items) {
    const std::string key = ItemKey(it.id);
    INFO(key);
    const std::vector<v1::StepExecuted> executed = Executed(reader, sys, key);
    std::vector<std::string> order;
    std::map<std::string, v1::StepExecuted> by_effect;
    for (const v1::StepExecuted& x : executed) {
      order.push_back(x.step_id());
      by_effect[x.effect_id()] = x;
      CHECK(domain::FromProto(x.executed_at()) >= domain::FromProto(x.due_at()));
    }
    REQUIRE(order == std::vector<std::string>{"call", "draft", "auto"});
    // The delays as configured: the first two at once after enrollment, the automatic email
    // one minute after the draft.
    const absl::Time call_due = domain::FromProto(executed[0].due_at());
    const absl::Time draft_due = domain::FromProto(executed[1].due_at());
    const absl::Time auto_due = domain::FromProto(executed[2].due_at());
    CHECK(call_due >= enrolled_at);
    CHECK(draft_due >= call_due);
    CHECK(auto_due >= draft_due + absl::Minutes(1));

    // Every effect belongs to a step execution and became visible at or after the step's due
    // time: its Kafka timestamp (written inside the transaction) and the moment it was read.
    std::vector<const Seen*> out = reader.On(sys.topics().task_events, key);
    for (const Seen* s : reader.On(sys.topics().email_events, key)) out.push_back(s);
    REQUIRE(out.size() == 3);
    for (const Seen* s : out) {
      auto x = by_effect.find(EffectId(s->event));
      REQUIRE(x != by_effect.end());
      const absl::Time due = domain::FromProto(x->second.due_at());
      CHECK(sys.ServiceTime(s->message.timestamp) >= due - kKafkaResolution);
      CHECK(sys.ServiceTime(s->received_at) >= due);
    }

    const v1::TaskCreated& task = out[0]->event.task_created();
    CHECK(task.step_id() == "call");
    CHECK(task.assignee_user_id() == owner);
    CHECK(task.activity_type() == "call");
    const v1::EmailSend& draft = out[1]->event.email_send();
    const v1::EmailSend& automatic = out[2]->event.email_send();
    CHECK(draft.step_id() == "draft");  // email-events keep the item's order
    CHECK(draft.mode() == v1::EMAIL_MODE_DRAFT_FOR_REVIEW);
    CHECK(automatic.step_id() == "auto");
    CHECK(automatic.mode() == v1::EMAIL_MODE_AUTOMATIC);
    CHECK(automatic.sender_user_id() == owner);
    CHECK(automatic.recipient().email() == absl::StrCat("contact-", it.id, "@example.com"));
    CHECK(automatic.subject() == "Following up, " + FirstName(it.id));
    CHECK(automatic.body() == "Hi " + FirstName(it.id) + ", thanks for your time.");
  }

  // What the CRM shows.
  const v1::EnrollmentOverview overview = WaitForOverview(
      api, sequence, [](const v1::EnrollmentOverview& o) { return o.completed() == kItems; });
  INFO(overview.DebugString());
  CHECK(overview.completed() == kItems);
  CHECK(overview.total() == kItems);
  CHECK(overview.pending() == 0);
  CHECK(overview.in_progress() == 0);
  CHECK(overview.failed() == 0);
  const v1::Enrollment one = GetEnrollment(api, EnrollmentName(sequence, items[0].id));
  CHECK(one.status() == v1::ENROLLMENT_STATUS_COMPLETED);
  CHECK(std::vector<std::string>(one.executed_step_ids().begin(), one.executed_step_ids().end()) ==
        std::vector<std::string>{"call", "draft", "auto"});
  CHECK(sys.executor().Terminate() == 0);
}

TEST_CASE(
    "Given a user's deals waiting for a step one minute away, when the user's enrollments are "
    "paused through the API past that due time and then resumed, then the step does not fire "
    "while paused and fires exactly once after the resume, and only that user's deals pause") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence =
      CreateSequence(api, "create-pause", {ActivityStep("call", 0), ActivityStep("follow-up", 1)});
  const std::vector<Item> away = {{"a1", "rep-away"}, {"a2", "rep-away"}};
  const Item working = {"b1", "rep-working"};
  BatchEnroll(api, sequence, {away[0], away[1], working});

  Reader reader({sys.topics().executor_events, sys.topics().task_events});
  auto follow_ups = [&](const std::string& item_id) {
    int n = 0;
    for (const Seen* s : reader.On(sys.topics().task_events, ItemKey(item_id))) {
      n += s->event.task_created().step_id() == "follow-up" ? 1 : 0;
    }
    return n;
  };
  // The first step fired for all three; each now waits for its follow-up.
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().task_events).size() >= 3; },
                           absl::Seconds(60)));
  absl::Time original_due = absl::InfinitePast();
  absl::Time earliest_due = absl::InfiniteFuture();
  for (const Item& it : away) {
    const std::vector<v1::StepExecuted> x = Executed(reader, sys, ItemKey(it.id));
    REQUIRE(x.size() == 1);
    REQUIRE(x[0].next_step_id() == "follow-up");
    original_due = std::max(original_due, domain::FromProto(x[0].next_due_at()));
    earliest_due = std::min(earliest_due, domain::FromProto(x[0].next_due_at()));
  }
  for (const Item& it : away) {
    WaitForStatus(api, EnrollmentName(sequence, it.id), v1::ENROLLMENT_STATUS_IN_PROGRESS);
  }
  WaitForStatus(api, EnrollmentName(sequence, working.id), v1::ENROLLMENT_STATUS_IN_PROGRESS);

  // Time off, well before the follow-ups are due.
  v1::UserEnrollmentsRequest pause;
  pause.set_parent(absl::StrCat("companies/", kCompany));
  pause.set_user_id("rep-away");
  pause.set_request_id("time-off");
  pause.set_note("vacation");
  v1::UserEnrollmentsResponse paused;
  grpc::Status s = api.enrollments().PauseUserEnrollments(CallAs(kCompany).get(), pause, &paused);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK_FALSE(paused.consistency_token().empty());
  for (const Item& it : away) {
    WaitForStatus(api, EnrollmentName(sequence, it.id), v1::ENROLLMENT_STATUS_PAUSED);
  }
  CHECK(GetEnrollment(api, EnrollmentName(sequence, working.id)).status() ==
        v1::ENROLLMENT_STATUS_IN_PROGRESS);
  // The pause was decided before the follow-ups came due (else the test proves nothing).
  for (const Item& it : away) {
    for (const Seen* e : reader.On(sys.topics().executor_events, ItemKey(it.id))) {
      if (e->event.has_enrollment_paused()) {
        REQUIRE(domain::FromProto(e->event.enrollment_paused().paused_at()) < earliest_due);
      }
    }
  }

  CHECK(follow_ups(working.id) == 0);  // not before its due time

  // Past the original due time: the working user's follow-up fired, the paused ones did not.
  sys.AdvanceClock(original_due + absl::Seconds(10) - sys.Now());
  REQUIRE(reader.PollUntil([&] { return follow_ups(working.id) == 1; }, absl::Seconds(60)));
  reader.Poll(absl::Milliseconds(500));
  for (const Item& it : away) {
    INFO(it.id);
    CHECK(follow_ups(it.id) == 0);
    CHECK(GetEnrollment(api, EnrollmentName(sequence, it.id)).status() ==
          v1::ENROLLMENT_STATUS_PAUSED);
  }

  // Back from time off.
  const absl::Time resumed_at = sys.Now();
  v1::UserEnrollmentsRequest resume;
  resume.set_parent(pause.parent());
  resume.set_user_id("rep-away");
  resume.set_request_id("back-to-work");
  v1::UserEnrollmentsResponse resumed;
  s = api.enrollments().ResumeUserEnrollments(CallAs(kCompany).get(), resume, &resumed);
  INFO(s.error_message());
  REQUIRE(s.ok());
  for (const Item& it : away) {
    const v1::Enrollment e =
        WaitForStatus(api, EnrollmentName(sequence, it.id), v1::ENROLLMENT_STATUS_IN_PROGRESS);
    CHECK(e.pending_step_id() == "follow-up");
  }
  for (const Item& it : away) {
    REQUIRE(reader.PollUntil(
        [&] {
          return CountEvents(reader, sys, v1::Envelope::kEnrollmentResumed, ItemKey(it.id)) > 0;
        },
        absl::Seconds(30)));
  }
  // The pause stopped the delay's clock: the rest of the minute is still ahead.
  reader.Poll(absl::Milliseconds(500));
  CHECK(follow_ups(away[0].id) == 0);
  CHECK(follow_ups(away[1].id) == 0);
  sys.AdvanceClock(absl::Minutes(1));

  REQUIRE(
      reader.PollUntil([&] { return follow_ups(away[0].id) >= 1 && follow_ups(away[1].id) >= 1; },
                       absl::Seconds(90)));
  for (const Item& it : {away[0], away[1], working}) {
    WaitForStatus(api, EnrollmentName(sequence, it.id), v1::ENROLLMENT_STATUS_COMPLETED);
  }
  reader.Poll(absl::Seconds(2));  // a second firing would show up now

  for (const Item& it : away) {
    INFO(it.id);
    CHECK(follow_ups(it.id) == 1);
    const std::vector<v1::StepExecuted> x = Executed(reader, sys, ItemKey(it.id));
    REQUIRE(x.size() == 2);
    CHECK(x[1].step_id() == "follow-up");
    // After the resume, and later than it was originally due: the pause stopped the clock.
    CHECK(domain::FromProto(x[1].executed_at()) >= resumed_at);
    CHECK(domain::FromProto(x[1].due_at()) > original_due);
    for (const Seen* t : reader.On(sys.topics().task_events, ItemKey(it.id))) {
      if (t->event.task_created().step_id() != "follow-up") continue;
      CHECK(sys.ServiceTime(t->message.timestamp) >= resumed_at - kKafkaResolution);
      CHECK(sys.ServiceTime(t->received_at) >= resumed_at);
    }
    CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentPaused, ItemKey(it.id)) == 1);
    CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentResumed, ItemKey(it.id)) == 1);
  }
  CHECK(follow_ups(working.id) == 1);
  CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentPaused, ItemKey(working.id)) == 0);
  CHECK(reader.On(sys.topics().task_events).size() == 6);
  CHECK(sys.executor().Terminate() == 0);
}

TEST_CASE(
    "Given a deal waiting for an automatic email, when it is removed through the API before the "
    "email is due, then the email is never sent and the overview counts the enrollment removed") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence =
      CreateSequence(api, "create-remove", {ActivityStep("call", 0), EmailStep("auto", 1, true)});
  EnableAutomaticSending(api, sequence, "rep-1");
  const Item removed = {"r1", "rep-1"};
  const Item kept = {"k1", "rep-1"};  // the same steps, not removed: shows the email was due
  BatchEnroll(api, sequence, {removed, kept});

  Reader reader(
      {sys.topics().executor_events, sys.topics().task_events, sys.topics().email_events});
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().task_events).size() >= 2; },
                           absl::Seconds(60)));
  const std::vector<v1::StepExecuted> first = Executed(reader, sys, ItemKey(removed.id));
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].next_step_id() == "auto");
  const absl::Time email_due = domain::FromProto(first[0].next_due_at());
  WaitForStatus(api, EnrollmentName(sequence, removed.id), v1::ENROLLMENT_STATUS_IN_PROGRESS);

  v1::EnrollmentActionRequest remove;
  remove.set_name(EnrollmentName(sequence, removed.id));
  remove.set_request_id("remove-r1");
  v1::EnrollmentResponse resp;
  grpc::Status s = api.enrollments().RemoveEnrollment(CallAs(kCompany).get(), remove, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  const v1::Enrollment gone =
      WaitForStatus(api, EnrollmentName(sequence, removed.id), v1::ENROLLMENT_STATUS_REMOVED);
  CHECK(gone.removal_reason() == v1::REMOVAL_REASON_REQUESTED);
  REQUIRE(sys.Now() < email_due);  // removed before the email was due
  CHECK(reader.On(sys.topics().email_events).empty());

  // Past the removed one's due time: the kept deal's email goes out.
  sys.AdvanceClock(email_due + absl::Seconds(10) - sys.Now());
  REQUIRE(reader.PollUntil(
      [&] { return !reader.On(sys.topics().email_events, ItemKey(kept.id)).empty(); },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events, ItemKey(removed.id)).empty());
  CHECK(Executed(reader, sys, ItemKey(removed.id)).size() == 1);
  CHECK(CountEvents(reader, sys, v1::Envelope::kEnrollmentRemoved, ItemKey(removed.id)) == 1);
  CHECK(reader.On(sys.topics().email_events).size() == 1);

  const v1::EnrollmentOverview overview = WaitForOverview(
      api, sequence,
      [](const v1::EnrollmentOverview& o) { return o.removed() == 1 && o.completed() == 1; });
  INFO(overview.DebugString());
  CHECK(overview.removed() == 1);
  CHECK(overview.completed() == 1);
  CHECK(overview.in_progress() == 0);
  CHECK(overview.pending() == 0);
  CHECK(overview.total() == 2);
  CHECK(sys.executor().Terminate() == 0);
}

// The starter templates (libs/domain/templates.cc) ship call steps with such subjects.
TEST_CASE(
    "Given an activity step whose subject uses a merge field, as the starter templates' call "
    "steps do, when a deal with that merge data is enrolled through the API, then the task the "
    "CRM receives has the field filled in") {
  System sys;
  ApiProcess& api = sys.api();
  const std::string sequence = CreateSequence(
      api, "create-task-merge", {ActivityStep("call", 0, false, "Call {{person.first_name}}")});
  const Item item = {"m1", "rep-1"};
  BatchEnroll(api, sequence, {item});
  Reader reader({sys.topics().task_events});
  REQUIRE(reader.PollUntil([&] { return !reader.On(sys.topics().task_events).empty(); },
                           absl::Seconds(60)));
  const v1::TaskCreated& task = reader.On(sys.topics().task_events)[0]->event.task_created();
  CHECK(task.subject() == "Call " + FirstName(item.id));
  CHECK(sys.executor().Terminate() == 0);
}

}  // namespace
}  // namespace sequences::testing
