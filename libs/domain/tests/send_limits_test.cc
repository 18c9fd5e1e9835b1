// Per-sender send limits: the release rule (PlanReleases), the sender's ledger fold and the
// company settings, as given/when/then cases and a property test over random queues.

#include "libs/domain/send_limits.h"

#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/domain/contract.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/history.h"
#include "libs/domain/routing.h"
#include "libs/domain/stats.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

QueuedSend Q(const std::string& id, const std::string& seq, absl::Time due,
             Calendar cal = Calendar()) {
  return QueuedSend{id, seq, due, std::move(cal)};
}

SendLimits Limits(int daily, int hourly = 0, const std::string& zone = "UTC") {
  SendLimits l;
  l.daily = daily;
  l.hourly = hourly;
  l.tz = Zone(zone);
  return l;
}

// ---- given/when/then ----

TEST_CASE("Given a sender under its daily limit, when due emails are planned, then all are sent",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const ReleasePlan plan = PlanReleases(
      {}, {Q("a", "s1", now), Q("b", "s1", now - absl::Minutes(1))}, "", Limits(200), now);
  CHECK(plan.released == std::vector<std::string>{"b", "a"});  // FIFO by due time
  CHECK_FALSE(plan.next_release.has_value());
  CHECK(plan.limit_reached.empty());
}

TEST_CASE(
    "Given 3/day and 5 due emails, when planned, then 3 are sent and the rest wait for the next "
    "day",
    "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  std::vector<QueuedSend> q;
  for (int i = 0; i < 5; ++i) q.push_back(Q(absl::StrCat("e", i), "s1", now));
  const ReleasePlan plan = PlanReleases({}, q, "", Limits(3), now);
  CHECK(plan.released == std::vector<std::string>{"e0", "e1", "e2"});
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Utc(2026, 3, 3));
  CHECK(plan.limit_reached == "3/day reached");
}

TEST_CASE("Given sends already counted today, when planned, then only the rest of the limit goes",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  SendCounters sent;
  sent.Add(Utc(2026, 3, 2, 1), 2);
  sent.Add(Utc(2026, 3, 1, 23), 5);  // yesterday: does not count
  const ReleasePlan plan = PlanReleases(
      sent, {Q("a", "s", now), Q("b", "s", now), Q("c", "s", now)}, "", Limits(3), now);
  CHECK(plan.released == std::vector<std::string>{"a"});
}

TEST_CASE("Given an hourly limit, when it is reached, then the rest wait for the next hour",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10, 20);
  const ReleasePlan plan = PlanReleases({}, {Q("a", "s", now), Q("b", "s", now), Q("c", "s", now)},
                                        "", Limits(100, 2), now);
  CHECK(plan.released.size() == 2);
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Utc(2026, 3, 2, 11));
  CHECK(plan.limit_reached == "2/hour reached");
}

TEST_CASE(
    "Given an hourly limit reached in Chatham's hour 03 just before its clocks go back from 03:45 "
    "to 02:45, when planned, then the next email goes at the change (hour 02 again, with room), "
    "not at 04:00",
    "[send_limits]") {
  // 2027-04-04 03:45 +13:45 (14:00Z) becomes 02:45 +12:45: the clock leaves hour 03 for hour 02.
  const SendLimits limits = Limits(10, 1, "Pacific/Chatham");
  const absl::Time now = Utc(2027, 4, 3, 13, 19);  // 03:04 +13:45, hour 03
  const absl::Time change = Utc(2027, 4, 3, 14);   // 02:45 +12:45, hour 02 again
  const ReleasePlan plan = PlanReleases({}, {Q("a", "s", now), Q("b", "s", now)}, "", limits, now);
  CHECK(plan.released == std::vector<std::string>{"a"});
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == change);
  // At the change hour 02 has room: nothing was sent while the clock showed it.
  SendCounters sent;
  sent.Add(now, 1);
  const ReleasePlan later = PlanReleases(sent, {Q("b", "s", now)}, "a", limits, change);
  CHECK(later.released == std::vector<std::string>{"b"});
  // Then the clock reaches hour 03 again (03:00 +12:45, 14:15Z): its first part held "a".
  sent.Add(change, 1);
  const ReleasePlan third =
      PlanReleases(sent, {Q("c", "s", change)}, "b", limits, change + absl::Minutes(5));
  CHECK(third.released.empty());
  REQUIRE(third.next_release.has_value());
  CHECK(*third.next_release == Utc(2027, 4, 3, 15, 15));  // 04:00 +12:45
}

TEST_CASE(
    "Given a flood in one sequence, when another sequence's email is due too, then it is sent "
    "in the first round (no sequence starves another)",
    "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  std::vector<QueuedSend> q;
  for (int i = 0; i < 50; ++i) q.push_back(Q(absl::StrCat("a", 10 + i), "flood", now));
  q.push_back(Q("b1", "quiet", now + absl::Seconds(-1)));
  const ReleasePlan plan = PlanReleases({}, q, "", Limits(4), now);
  CHECK(plan.released == std::vector<std::string>{"a10", "b1", "a11", "a12"});
}

TEST_CASE("Given the round robin position, when planned, then it starts after the last sequence",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const std::vector<QueuedSend> q = {Q("a", "s1", now), Q("b", "s2", now), Q("c", "s3", now)};
  CHECK(PlanReleases({}, q, "s2", Limits(1), now).released == std::vector<std::string>{"c"});
  CHECK(PlanReleases({}, q, "s3", Limits(1), now).released == std::vector<std::string>{"a"});
  CHECK(PlanReleases({}, q, "s3", Limits(1), now).last_sequence_id == "s1");
}

TEST_CASE(
    "Given the daily limit is reached and the sequence sends 9-17 New York on weekdays, when "
    "planned on Friday, then the next release is Monday 09:00 New York",
    "[send_limits]") {
  const Calendar cal = NineToFive("America/New_York");
  const absl::Time now = Local("America/New_York", 2026, 3, 6, 16);  // a Friday
  const ReleasePlan plan =
      PlanReleases({}, {Q("a", "s", now, cal), Q("b", "s", now, cal)}, "", Limits(1), now);
  CHECK(plan.released == std::vector<std::string>{"a"});
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Local("America/New_York", 2026, 3, 9, 9));
}

TEST_CASE(
    "Given capacity but a closed send window, when planned, then nothing is sent and it waits "
    "for the window without a limit reason",
    "[send_limits]") {
  const Calendar cal = NineToFive("UTC");
  const absl::Time now = Utc(2026, 3, 2, 20);  // Monday evening
  const ReleasePlan plan = PlanReleases({}, {Q("a", "s", now, cal)}, "", Limits(10), now);
  CHECK(plan.released.empty());
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Utc(2026, 3, 3, 9));
  CHECK(plan.limit_reached.empty());
}

TEST_CASE("Given the company's zone is Tokyo, when the limit is reached, then days are Tokyo days",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);  // 19:00 in Tokyo
  const ReleasePlan plan =
      PlanReleases({}, {Q("a", "s", now), Q("b", "s", now)}, "", Limits(1, 0, "Asia/Tokyo"), now);
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Local("Asia/Tokyo", 2026, 3, 3));
}

TEST_CASE("Given an email not due yet, when planned, then it is not sent and its due time is next",
          "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const ReleasePlan plan =
      PlanReleases({}, {Q("a", "s", now + absl::Minutes(5))}, "", Limits(10), now);
  CHECK(plan.released.empty());
  CHECK(plan.next_release == now + absl::Minutes(5));
}

v1::SendRequested Req(const std::string& id, const std::string& seq) {
  v1::SendRequested r;
  r.mutable_email()->set_idempotency_key(id);
  r.mutable_email()->set_sequence_id(seq);
  return r;
}

TEST_CASE(
    "Given a sender's ledger, when an entry is folded twice or out of order, then the state "
    "changes once",
    "[send_limits]") {
  v1::SendLedgerEntry e1;
  e1.set_sender_key("c/sender/u");
  e1.set_seq(1);
  *e1.mutable_at() = ToProto(Utc(2026, 3, 2, 10));
  *e1.add_queued() = Req("a", "s1");
  *e1.add_queued() = Req("b", "s2");
  e1.add_released("a");
  *e1.mutable_next_release_at() = ToProto(Utc(2026, 3, 3));
  v1::SendLedgerEntry e3 = e1;
  e3.set_seq(3);

  SenderState s = EvolveSender({}, e1);
  CHECK(s.queue.size() == 1);
  CHECK(s.queue.count("b") == 1);
  CHECK(s.last_sequence_id == "s1");
  CHECK(s.sent.SentSince(Utc(2026, 3, 2)) == 1);
  CHECK(s.next_release == Utc(2026, 3, 3));

  SenderState again = EvolveSender(s, e1);    // a duplicate
  SenderState skipped = EvolveSender(s, e3);  // a gap
  for (const SenderState* t : {&again, &skipped}) {
    CHECK(t->seq == 1);
    CHECK(t->queue.size() == 1);
    CHECK(t->sent.SentSince(Utc(2026, 3, 2)) == 1);
  }
}

TEST_CASE("Given sending settings, when validated, then limits and zones outside range are refused",
          "[send_limits]") {
  v1::CompanySendingSettings s;
  CHECK(ValidateSendingSettings(s).ok());
  CHECK(LimitsOf(s).daily == kDefaultDailySendLimit);
  CHECK(LimitsOf(s).hourly == 0);
  s.set_daily_limit_per_sender(-1);
  CHECK(ValidateSendingSettings(s).code() == absl::StatusCode::kInvalidArgument);
  s.set_daily_limit_per_sender(10);
  s.set_hourly_limit_per_sender(11);
  CHECK(absl::StrContains(ValidateSendingSettings(s).message(), "hourly_limit_per_sender"));
  s.set_hourly_limit_per_sender(5);
  s.set_time_zone("Mars/Olympus");
  CHECK(absl::StrContains(ValidateSendingSettings(s).message(), "time_zone"));
  s.set_time_zone("Europe/Berlin");
  CHECK(ValidateSendingSettings(s).ok());
}

TEST_CASE("Given settings events, when folded, then the first event of each version is kept",
          "[send_limits]") {
  auto ev = [](int64_t version, int daily) {
    v1::Envelope e;
    v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
    c->set_company_id("c");
    c->set_version(version);
    c->mutable_settings()->set_daily_limit_per_sender(daily);
    return e;
  };
  CompanySendingState s = EvolveCompanySending({}, ev(1, 10));
  s = EvolveCompanySending(s, ev(1, 99));  // another writer lost the race for version 1
  CHECK(s.settings.daily_limit_per_sender() == 10);
  s = EvolveCompanySending(s, ev(2, 20));
  CHECK(s.version == 2);
  CHECK(s.settings.daily_limit_per_sender() == 20);
}

// The enrollment of deal c/deal/1 in sequence s (company c), in `status`.
EnrollmentState DealEnrollment(v1::EnrollmentStatus status) {
  EnrollmentState st;
  st.item_key = "c/deal/1";
  st.sequence_id = "s";
  st.company_id = "c";
  st.enrollment_id = "c/deal/1#s#1";
  st.status = status;
  return st;
}

v1::Envelope Outcome(const std::string& enrollment_id, v1::SendOutcome::Kind kind) {
  v1::Envelope e = MakeEnvelope(absl::StrCat("out-", kind), "c", Utc(2026, 3, 2, 10), "", "");
  v1::SendOutcome* o = e.mutable_send_outcome();
  o->mutable_ref()->set_enrollment_id(enrollment_id);
  o->mutable_ref()->set_item_key("c/deal/1");
  o->mutable_ref()->set_sequence_id("s");
  o->set_step_id("mail");
  o->set_email_id(absl::StrCat(enrollment_id, "/mail/email"));
  o->set_kind(kind);
  *o->mutable_at() = ToProto(Utc(2026, 3, 3, 0));
  if (kind == v1::SendOutcome::KIND_DEFERRED) {
    o->set_reason(kDeferredSendLimit);
    o->set_detail("sender u1: 3/day reached");
  }
  o->set_sender_user_id("u1");
  return e;
}

TEST_CASE(
    "Given a completed enrollment whose last email waits, when the sender stage reports deferred "
    "then sent, then the enrollment shows why it waits, then clears it, and the history says so",
    "[send_limits][enrollment]") {
  EnrollmentState st = DealEnrollment(v1::ENROLLMENT_STATUS_COMPLETED);
  st.exit_reason = v1::EXIT_REASON_ALL_STEPS_DONE;
  st.last_email_step_id = "mail";

  auto deferred = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED),
                                   SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred.ok());
  REQUIRE(deferred->executor_events.size() == 1);
  const v1::Envelope& ev = deferred->executor_events[0];
  CHECK(absl::StrContains(DescribeExecutorEvent(ev), "deferred: send_limit"));
  CHECK(absl::StrContains(DescribeExecutorEvent(ev), "3/day reached"));
  CHECK(StatIncrementsOf(st, ev).size() == 1);
  CHECK(deferred->sender_inputs.empty());  // it ran all its steps: the email still goes
  st = EvolveEnrollment(st, ev);
  CHECK(st.deferred_reason == "send_limit");
  CHECK(st.deferred_until == Utc(2026, 3, 3));
  CHECK(StatIncrementsOf(st, ev).empty());  // the same email counts once

  auto sent = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_SENT),
                               SequenceState(), Utc(2026, 3, 3, 0));
  REQUIRE(sent.ok());
  REQUIRE(sent->executor_events.size() == 1);
  CHECK(absl::StrContains(DescribeExecutorEvent(sent->executor_events[0]), "sent at"));
  st = EvolveEnrollment(st, sent->executor_events[0]);
  CHECK(st.deferred_email_id.empty());

  auto other = DecideEnrollment(st, Outcome("c/deal/1#s#2", v1::SendOutcome::KIND_DEFERRED),
                                SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(other.ok());
  CHECK(other->empty());
}

TEST_CASE(
    "Given a send request, when its record key is not its sender key, then it breaks the contract",
    "[send_limits][contract]") {
  v1::Envelope e = MakeEnvelope("r1", "c", Utc(2026, 3, 2, 10), "", "");
  v1::EmailSend* m = e.mutable_send_requested()->mutable_email();
  m->set_idempotency_key("c/deal/1#s#1/mail/email");
  m->set_item_key("c/deal/1");
  m->set_sender_user_id("u1");
  CHECK(RouteInput(e).scope == InputRoute::Scope::kSender);
  CHECK(CheckEnrollmentInputContract(e, SenderKey("c", "u1")).ok());
  CHECK_FALSE(CheckEnrollmentInputContract(e, "c/deal/1").ok());
  m->set_item_key("other/deal/1");
  CHECK_FALSE(CheckEnrollmentInputContract(e, SenderKey("c", "u1")).ok());
}

TEST_CASE(
    "Given a queued request, when a ledger entry cancels it, then it leaves the queue uncounted "
    "and folding the entry again changes nothing",
    "[send_limits]") {
  v1::SendLedgerEntry e1;
  e1.set_sender_key("c/sender/u");
  e1.set_seq(1);
  *e1.mutable_at() = ToProto(Utc(2026, 3, 2, 10));
  *e1.add_queued() = Req("a", "s1");
  *e1.add_queued() = Req("b", "s2");
  *e1.add_queued() = Req("c", "s2");
  e1.add_released("a");
  *e1.mutable_next_release_at() = ToProto(Utc(2026, 3, 3));
  v1::SendLedgerEntry e2;
  e2.set_sender_key("c/sender/u");
  e2.set_seq(2);
  *e2.mutable_at() = ToProto(Utc(2026, 3, 2, 11));
  e2.add_cancelled("b");
  *e2.mutable_next_release_at() = ToProto(Utc(2026, 3, 3));

  SenderState s = EvolveSender(EvolveSender({}, e1), e2);
  CHECK(s.seq == 2);
  CHECK(s.queue.size() == 1);
  CHECK(s.queue.count("c") == 1);
  CHECK(s.sent.SentSince(Utc(2026, 3, 2)) == 1);  // a cancelled email is not a send
  CHECK(s.last_sequence_id == "s1");
  SenderState again = EvolveSender(s, e2);
  CHECK(again.queue.size() == 1);
  CHECK(again.seq == 2);
}

TEST_CASE(
    "Given an enrollment whose email waits for its sender, when the customer replies, then it "
    "asks the sender stage to cancel the email, and the cancellation clears the wait and shows "
    "in the history",
    "[send_limits][enrollment]") {
  EnrollmentState st = DealEnrollment(v1::ENROLLMENT_STATUS_IN_PROGRESS);
  auto deferred = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED),
                                   SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred.ok());
  REQUIRE(deferred->executor_events.size() == 1);
  CHECK(deferred->sender_inputs.empty());  // still running: the email goes when it may
  st = EvolveEnrollment(st, deferred->executor_events[0]);
  // The next step's email waits behind it.
  v1::Envelope next = Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED);
  next.set_event_id("out-next");
  next.mutable_send_outcome()->set_step_id("mail2");
  next.mutable_send_outcome()->set_email_id("c/deal/1#s#1/mail2/email");
  auto deferred2 = DecideEnrollment(st, next, SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred2.ok());
  REQUIRE(deferred2->executor_events.size() == 1);
  st = EvolveEnrollment(st, deferred2->executor_events[0]);

  v1::Envelope reply = MakeEnvelope("reply-1", "c", Utc(2026, 3, 2, 11), "", "");
  reply.mutable_email_replied()->set_item_key("c/deal/1");
  reply.mutable_email_replied()->set_sequence_id("s");
  auto replied = DecideEnrollment(st, reply, SequenceState(), Utc(2026, 3, 2, 11));
  REQUIRE(replied.ok());
  REQUIRE(replied->executor_events.size() == 1);
  CHECK(replied->executor_events[0].has_enrollment_completed());
  REQUIRE(replied->sender_inputs.size() == 2);  // both waiting emails
  CHECK(replied->sender_inputs[1].send_cancelled().email_id() == "c/deal/1#s#1/mail2/email");
  const v1::Envelope& cancel = replied->sender_inputs[0];
  REQUIRE(cancel.has_send_cancelled());
  CHECK(cancel.send_cancelled().email_id() == "c/deal/1#s#1/mail/email");
  CHECK(cancel.send_cancelled().step_id() == "mail");
  CHECK(cancel.send_cancelled().ref().enrollment_id() == st.enrollment_id);
  CHECK(RouteInput(cancel).sender_key == SenderKey("c", "u1"));
  CHECK(CheckEnrollmentInputContract(cancel, SenderKey("c", "u1")).ok());
  CHECK_FALSE(CheckEnrollmentInputContract(cancel, "c/deal/1").ok());
  for (const v1::Envelope& e : replied->executor_events) st = EvolveEnrollment(st, e);

  auto cancelled = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_CANCELLED),
                                    SequenceState(), Utc(2026, 3, 2, 11));
  REQUIRE(cancelled.ok());
  REQUIRE(cancelled->executor_events.size() == 1);
  CHECK(DescribeExecutorEvent(cancelled->executor_events[0]) ==
        "queued email of step mail cancelled: enrollment ended");
  st = EvolveEnrollment(st, cancelled->executor_events[0]);
  CHECK(st.waiting_emails.size() == 1);
  CHECK(st.waiting_emails.count("c/deal/1#s#1/mail2/email") == 1);
}

TEST_CASE(
    "Given an enrollment removed before it learned its email waits, when the deferral arrives, "
    "then it asks the sender stage to cancel the email",
    "[send_limits][enrollment]") {
  EnrollmentState st = DealEnrollment(v1::ENROLLMENT_STATUS_REMOVED);
  auto deferred = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED),
                                   SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred.ok());
  CHECK(deferred->executor_events.size() == 1);  // recorded, then cancelled
  REQUIRE(deferred->sender_inputs.size() == 1);
  CHECK(deferred->sender_inputs[0].send_cancelled().email_id() == "c/deal/1#s#1/mail/email");
  CHECK(deferred->sender_inputs[0].send_cancelled().sender_user_id() == "u1");
}

TEST_CASE(
    "Given an enrollment that failed at a later step, when the deferral of an earlier email "
    "arrives, then the email stays queued: a failure is not a stop by the person",
    "[send_limits][enrollment]") {
  EnrollmentState st = DealEnrollment(v1::ENROLLMENT_STATUS_FAILED);
  auto deferred = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED),
                                   SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred.ok());
  CHECK(deferred->executor_events.size() == 1);  // recorded
  CHECK(deferred->sender_inputs.empty());        // not cancelled
}

// ---- property: a simulated sender over random queues ----

const char* const kZones[] = {"UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
                              "Europe/Berlin"};

struct Simulated {
  std::vector<std::pair<std::string, absl::Time>> releases;  // id, when
  std::vector<std::string> unfair;                           // plans that broke fair share
};

// Runs the sender from `start` until every request is released (or `steps` plans): requests
// join the queue at their due time; the ledger is folded with EvolveSender.
Simulated Simulate(const std::vector<QueuedSend>& requests, const SendLimits& limits,
                   absl::Time start, int steps) {
  Simulated out;
  std::map<std::string, const QueuedSend*> by_id;
  for (const QueuedSend& q : requests) by_id[q.id] = &q;
  SenderState state;
  absl::Time now = start;
  int64_t seq = 0;
  std::set<std::string> arrived;
  for (int i = 0; i < steps && out.releases.size() < requests.size(); ++i) {
    v1::SendLedgerEntry entry;
    entry.set_sender_key("c/sender/u");
    entry.set_seq(++seq);
    *entry.mutable_at() = ToProto(now);
    for (const QueuedSend& q : requests) {
      if (q.due_at <= now && arrived.insert(q.id).second) {
        *entry.add_queued() = Req(q.id, q.sequence_id);
      }
    }
    SenderState with_new = state;
    for (const v1::SendRequested& r : entry.queued()) {
      with_new.queue.emplace(r.email().idempotency_key(), r);
    }
    std::vector<QueuedSend> queue;
    for (const auto& [id, r] : with_new.queue) queue.push_back(*by_id.at(id));
    const ReleasePlan plan = PlanReleases(state.sent, queue, state.last_sequence_id, limits, now);
    // Fair share: when some sequence keeps an eligible request, every sequence that had one got
    // at least floor(released / sequences) of the releases.
    std::map<std::string, int> eligible, got;
    for (const QueuedSend& q : queue) {
      if (q.due_at <= now && AlignToWindow(now, q.calendar) == now) ++eligible[q.sequence_id];
    }
    for (const std::string& id : plan.released) ++got[by_id.at(id)->sequence_id];
    bool left_over = false;
    for (const auto& [s, n] : eligible) left_over |= got[s] < n;
    if (left_over && !eligible.empty()) {
      const int share = static_cast<int>(plan.released.size() / eligible.size());
      for (const auto& [s, n] : eligible) {
        if (got[s] < std::min(n, share)) out.unfair.push_back(absl::StrCat(s, " at ", i));
      }
    }
    for (const std::string& id : plan.released) {
      entry.add_released(id);
      out.releases.push_back({id, now});
    }
    if (plan.next_release) *entry.mutable_next_release_at() = ToProto(*plan.next_release);
    state = EvolveSender(std::move(state), entry);
    // Next: the next release, or the next arrival, whichever is first.
    std::optional<absl::Time> next = plan.next_release;
    for (const QueuedSend& q : requests) {
      if (q.due_at > now && (!next || q.due_at < *next)) next = q.due_at;
    }
    if (!next) break;
    now = *next;
  }
  return out;
}

TEST_CASE(
    "Random queues: the limit is never exceeded in any day or hour, none is lost or sent twice, "
    "no sequence starves, and the decisions are deterministic",
    "[send_limits][property]") {
  rc::prop("send limits hold", [] {
    const std::string zone =
        *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones)));
    const int daily = *rc::gen::inRange(1, 12);
    const int hourly = *rc::gen::inRange(0, 2) == 0 ? 0 : *rc::gen::inRange(1, daily + 1);
    const SendLimits limits = Limits(daily, hourly, zone);
    const absl::Time start = Utc(2026, 3, 1) + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 30));
    const int sequences = *rc::gen::inRange(1, 5);
    std::map<std::string, Calendar> calendars;
    for (int s = 0; s < sequences; ++s) {
      const std::string id = absl::StrCat("s", s);
      calendars[id] = *rc::gen::inRange(0, 2) == 0 ? Calendar() : NineToFive(zone);
    }
    std::vector<QueuedSend> requests;
    const int n = *rc::gen::inRange(1, 60);
    for (int i = 0; i < n; ++i) {
      const std::string seq = absl::StrCat("s", *rc::gen::inRange(0, sequences));
      requests.push_back(Q(absl::StrCat("e", i), seq,
                           start + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 3)),
                           calendars[seq]));
    }
    const Simulated sim = Simulate(requests, limits, start, 5000);

    // None lost, none twice.
    std::set<std::string> ids;
    for (const auto& [id, at] : sim.releases) RC_ASSERT(ids.insert(id).second);
    RC_ASSERT(ids.size() == requests.size());
    // Never over the limit in any day or hour of the company's zone; never before due or outside
    // the send window.
    std::map<absl::CivilDay, int> per_day;
    std::map<absl::CivilHour, int> per_hour;
    std::map<std::string, const QueuedSend*> by_id;
    for (const QueuedSend& q : requests) by_id[q.id] = &q;
    for (const auto& [id, at] : sim.releases) {
      const absl::CivilSecond local = limits.tz.At(at).cs;
      RC_ASSERT(++per_day[absl::CivilDay(local)] <= daily);
      if (hourly > 0) RC_ASSERT(++per_hour[absl::CivilHour(local)] <= hourly);
      RC_ASSERT(by_id[id]->due_at <= at);
      RC_ASSERT(AlignToWindow(at, by_id[id]->calendar) == at);
    }
    RC_ASSERT(sim.unfair.empty());
    // Deterministic: the same requests in another order yield the same releases.
    std::vector<QueuedSend> reversed(requests.rbegin(), requests.rend());
    const Simulated again = Simulate(reversed, limits, start, 5000);
    RC_ASSERT(again.releases == sim.releases);
  });
}

// The queue in runs (one per sequence and time zone, each in (due time, id) order), as the
// executor keeps it in its store; `pulled` counts the requests the plan read.
std::vector<SendRun> RunsOf(const std::vector<QueuedSend>& queue,
                            const std::map<std::string, std::string>& zone_of, int* pulled) {
  std::map<std::pair<std::string, std::string>, std::vector<const QueuedSend*>> runs;
  for (const QueuedSend& q : queue) runs[{q.sequence_id, zone_of.at(q.id)}].push_back(&q);
  std::vector<SendRun> out;
  for (auto& [key, list] : runs) {
    std::sort(list.begin(), list.end(), [](const QueuedSend* a, const QueuedSend* b) {
      return a->due_at != b->due_at ? a->due_at < b->due_at : a->id < b->id;
    });
    auto items = std::make_shared<std::vector<const QueuedSend*>>(list);
    auto at = std::make_shared<size_t>(0);
    out.push_back({key.first, list.front()->calendar, [items, at, pulled] {
                     if (*at == items->size()) return std::optional<RunItem>();
                     ++*pulled;
                     const QueuedSend* q = (*items)[(*at)++];
                     return std::optional<RunItem>(RunItem{q->id, q->due_at});
                   }});
  }
  return out;
}

TEST_CASE(
    "Random queues kept in runs: PlanReleasesInRuns decides exactly as PlanReleases and reads "
    "at most one request per run besides those it releases",
    "[send_limits][property]") {
  rc::prop("runs plan the same, reading O(released + runs)", [] {
    const std::string company_zone =
        *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones)));
    const int daily = *rc::gen::inRange(1, 40);
    const int hourly = *rc::gen::inRange(0, 2) == 0 ? 0 : *rc::gen::inRange(1, daily + 1);
    const SendLimits limits = Limits(daily, hourly, company_zone);
    const absl::Time now = Utc(2026, 3, 1) + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 30));
    SendCounters sent;
    const int sends = *rc::gen::inRange(0, daily + 2);
    for (int i = 0; i < sends; ++i) sent.Add(now - absl::Minutes(*rc::gen::inRange(0, 60 * 30)));
    const int sequences = *rc::gen::inRange(1, 5);
    // A run per sequence and enrollment zone: the same sequence in two zones has two windows.
    std::map<std::pair<std::string, std::string>, Calendar> calendars;
    const std::vector<std::string> zones = {"UTC", "Asia/Kolkata", "America/New_York"};
    std::vector<QueuedSend> queue;
    std::map<std::string, std::string> zone_of;
    const int n = *rc::gen::inRange(0, 80);
    for (int i = 0; i < n; ++i) {
      const std::string seq = absl::StrCat("s", *rc::gen::inRange(0, sequences));
      const std::string zone = *rc::gen::elementOf(zones);
      auto c = calendars.find({seq, zone});
      if (c == calendars.end()) {
        c = calendars
                .emplace(std::make_pair(seq, zone),
                         *rc::gen::inRange(0, 2) == 0 ? Calendar() : NineToFive(zone))
                .first;
      }
      // Due in the last two days or the next one; some at the same instant (ties by id).
      const absl::Time due = now + absl::Minutes(*rc::gen::inRange(-60 * 48, 60 * 24) / 30 * 30);
      const std::string id = absl::StrCat("e", *rc::gen::inRange(0, 1000), "-", i);
      queue.push_back(Q(id, seq, due, c->second));
      zone_of[id] = zone;
    }
    const std::string last = *rc::gen::inRange(0, 2) == 0
                                 ? std::string()
                                 : absl::StrCat("s", *rc::gen::inRange(0, sequences));
    const ReleasePlan want = PlanReleases(sent, queue, last, limits, now);
    int pulled = 0;
    std::vector<SendRun> runs = RunsOf(queue, zone_of, &pulled);
    const size_t run_count = runs.size();
    const ReleasePlan got = PlanReleasesInRuns(sent, std::move(runs), last, limits, now);
    RC_ASSERT(got.released == want.released);
    RC_ASSERT(got.last_sequence_id == want.last_sequence_id);
    RC_ASSERT(got.next_release == want.next_release);
    RC_ASSERT(got.limit_reached == want.limit_reached);
    RC_ASSERT(static_cast<size_t>(pulled) <= got.released.size() + run_count);
  });
}

TEST_CASE(
    "Given 10,000 emails waiting in one run for a sender at its daily limit, when a new one is "
    "planned, then two requests are read, not the queue",
    "[send_limits]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  SendCounters sent;
  sent.Add(now - absl::Hours(1), 200);
  std::vector<QueuedSend> queue;
  std::map<std::string, std::string> zone_of;
  for (int i = 0; i < 10000; ++i) {
    queue.push_back(Q(absl::StrCat("w", 100000 + i), "s1", now - absl::Minutes(i % 500)));
    zone_of[queue.back().id] = "UTC";
  }
  queue.push_back(Q("new", "s2", now));
  zone_of["new"] = "UTC";
  int pulled = 0;
  const ReleasePlan plan =
      PlanReleasesInRuns(sent, RunsOf(queue, zone_of, &pulled), "", Limits(200), now);
  CHECK(plan.released.empty());
  CHECK(plan.limit_reached == "200/day reached");
  REQUIRE(plan.next_release.has_value());
  CHECK(*plan.next_release == Utc(2026, 3, 3));
  CHECK(pulled == 2);  // the head of each run
}

TEST_CASE(
    "Given a queued automatic email, when its release comes, then it is withheld if its sequence "
    "switched automated sending off, lost its sender's consent or was deleted, and an enrollment "
    "told so records the reason in its history",
    "[send_limits][enrollment]") {
  SequenceState seq;
  seq.exists = true;
  seq.automated_sending = true;
  seq.consented_users = {"u1", "u2"};
  CHECK_FALSE(WithheldAtSend(seq, "u1").has_value());

  SequenceState other_revoked = seq;
  other_revoked.consented_users.erase("u2");
  CHECK_FALSE(WithheldAtSend(other_revoked, "u1").has_value());  // another sender's consent
  std::optional<Withheld> w = WithheldAtSend(other_revoked, "u2");
  REQUIRE(w.has_value());
  CHECK(w->reason == "consent_missing");
  CHECK(w->detail == "user u2 revoked consent to automated sending for this sequence");

  SequenceState off = seq;
  off.automated_sending = false;
  REQUIRE(WithheldAtSend(off, "u1").has_value());
  CHECK(WithheldAtSend(off, "u1")->reason == "automated_sending_off");

  SequenceState deleted = seq;
  deleted.deleted = true;
  REQUIRE(WithheldAtSend(deleted, "u1").has_value());
  CHECK(WithheldAtSend(deleted, "u1")->reason == "sequence_deleted");

  // Not folded yet on this instance: not judged (the step's instance checked it when it fired).
  CHECK_FALSE(WithheldAtSend(SequenceState(), "u1").has_value());

  // The enrollment whose email waited learns it was withheld, and says why.
  EnrollmentState st = DealEnrollment(v1::ENROLLMENT_STATUS_IN_PROGRESS);
  auto deferred = DecideEnrollment(st, Outcome(st.enrollment_id, v1::SendOutcome::KIND_DEFERRED),
                                   SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(deferred.ok());
  for (const v1::Envelope& e : deferred->executor_events) st = EvolveEnrollment(st, e);
  CHECK_FALSE(st.deferred_email_id.empty());
  v1::Envelope withheld = Outcome(st.enrollment_id, v1::SendOutcome::KIND_CANCELLED);
  withheld.mutable_send_outcome()->set_reason(w->reason);
  withheld.mutable_send_outcome()->set_detail(w->detail);
  auto told = DecideEnrollment(st, withheld, SequenceState(), Utc(2026, 3, 3, 0));
  REQUIRE(told.ok());
  REQUIRE(told->executor_events.size() == 1);
  const v1::Envelope& event = told->executor_events[0];
  REQUIRE(event.has_email_cancelled());
  CHECK(event.email_cancelled().reason() == "consent_missing");
  CHECK(DescribeExecutorEvent(event) ==
        "queued email of step mail withheld at sending (consent_missing): user u2 revoked consent "
        "to automated sending for this sequence");
  st = EvolveEnrollment(st, event);
  CHECK(st.deferred_email_id.empty());                    // no longer shown as waiting
  CHECK(st.status == v1::ENROLLMENT_STATUS_IN_PROGRESS);  // the enrollment goes on
}

}  // namespace
}  // namespace sequences::domain
