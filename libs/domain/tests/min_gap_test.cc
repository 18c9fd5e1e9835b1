// Minimum gap between automatic emails to one person (docs/min-gap.md): the rule (PlanTouch), the
// person's ledger fold, the identity of a person, the setting, the routing of the internal records,
// and a property test of the person stage in front of a sender stage that sends late.

#include "libs/domain/min_gap.h"

#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/contract.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/history.h"
#include "libs/domain/routing.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

QueuedSend Q(const std::string& id, absl::Time due, Calendar cal = Calendar()) {
  return QueuedSend{id, "s", due, std::move(cal)};
}

const absl::Duration kTwoDays = absl::Hours(48);

// ---- the rule ----

TEST_CASE(
    "Given a person never emailed, when two emails are due, then the earlier due goes now and the "
    "other waits for the notice of its send",
    "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);  // a Monday
  const TouchPlan plan =
      PlanTouch(std::nullopt, false, {Q("b", now - absl::Minutes(1)), Q("a", now)}, kTwoDays, now);
  REQUIRE(plan.forward.has_value());
  CHECK(*plan.forward == "b");
  CHECK_FALSE(plan.next_look.has_value());  // one in flight now: the notice wakes the stage
}

TEST_CASE("Given two emails due at the same instant, when planned, then the smaller id goes first",
          "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const TouchPlan plan = PlanTouch(std::nullopt, false, {Q("z", now), Q("m", now)}, kTwoDays, now);
  REQUIRE(plan.forward.has_value());
  CHECK(*plan.forward == "m");
}

TEST_CASE(
    "Given a person emailed a day ago and a gap of two days, when an email is due, then it waits "
    "until two days after the last send",
    "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const absl::Time last = now - absl::Hours(24);
  const TouchPlan plan = PlanTouch(last, false, {Q("a", now)}, kTwoDays, now);
  CHECK_FALSE(plan.forward.has_value());
  REQUIRE(plan.next_look.has_value());
  CHECK(*plan.next_look == last + kTwoDays);
  CHECK(*plan.allowed_from == last + kTwoDays);
}

TEST_CASE(
    "Given the gap ends outside the send window, when an email waits, then it looks again when "
    "the window opens",
    "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);  // Monday 10:00 UTC
  const absl::Time last = Utc(2026, 3, 1, 2);  // Sunday 02:00: allowed Tuesday 02:00
  const TouchPlan plan = PlanTouch(last, false, {Q("a", now, NineToFive("UTC"))}, kTwoDays, now);
  CHECK_FALSE(plan.forward.has_value());
  REQUIRE(plan.next_look.has_value());
  CHECK(*plan.next_look == Utc(2026, 3, 3, 9));
}

TEST_CASE("Given an email in flight at the sender stage, when another is due, then none goes",
          "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const TouchPlan plan = PlanTouch(std::nullopt, true, {Q("a", now)}, kTwoDays, now);
  CHECK_FALSE(plan.forward.has_value());
  CHECK_FALSE(plan.next_look.has_value());
}

TEST_CASE(
    "Given emails waiting for a gap and one in flight, when the gap is set to 0, then every "
    "waiting email that is due and inside its window is passed on at once in due order, and the "
    "stage looks again when the next one's window opens",
    "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);  // Monday 10:00 UTC
  const absl::Time last = now - absl::Hours(1);
  const std::vector<QueuedSend> queue = {
      Q("c", now - absl::Minutes(1)), Q("a", now - absl::Minutes(5)),
      Q("b", now - absl::Minutes(5)), Q("later", now + absl::Hours(2)),
      Q("night", now - absl::Hours(1), NineToFive("Asia/Tokyo"))};
  // Under the old gap of two days nothing goes: one is in flight.
  const TouchPlan before = PlanTouch(last, true, queue, kTwoDays, now);
  CHECK_FALSE(before.forward.has_value());
  CHECK(before.passed.empty());

  const TouchPlan plan = PlanTouch(last, true, queue, absl::ZeroDuration(), now);
  CHECK_FALSE(plan.forward.has_value());
  CHECK(plan.passed == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(plan.allowed_from.has_value());
  // 19:00 in Tokyo: "night" waits for 09:00 there (00:00 UTC Tuesday); "later" is due at 12:00.
  REQUIRE(plan.next_look.has_value());
  CHECK(*plan.next_look == now + absl::Hours(2));
}

TEST_CASE("Given no gap and nothing waiting, when planned, then nothing is passed and no look",
          "[min_gap]") {
  const absl::Time now = Utc(2026, 3, 2, 10);
  const TouchPlan plan = PlanTouch(now, false, {}, absl::ZeroDuration(), now);
  CHECK(plan.passed.empty());
  CHECK_FALSE(plan.forward.has_value());
  CHECK_FALSE(plan.next_look.has_value());
}

// ---- the ledger fold ----

TEST_CASE(
    "Given a person's queue with one in flight, when an entry passes two emails on with no gap, "
    "then they leave the queue, the one in flight stays in flight, and folding again changes "
    "nothing",
    "[min_gap]") {
  v1::SendLedgerEntry e1;
  e1.set_sender_key("c/person/00");
  e1.set_seq(1);
  *e1.mutable_at() = ToProto(Utc(2026, 3, 2, 10));
  for (const char* id : {"a", "b", "c", "d"})
    e1.add_queued()->mutable_email()->set_idempotency_key(id);
  e1.set_forwarded("a");
  SenderState st = EvolveSender(SenderState(), e1);
  v1::SendLedgerEntry e2;
  e2.set_sender_key("c/person/00");
  e2.set_seq(2);
  *e2.mutable_at() = ToProto(Utc(2026, 3, 2, 11));
  e2.add_passed("b");
  e2.add_passed("c");
  st = EvolveSender(st, e2);
  CHECK(st.in_flight == "a");
  CHECK(st.queue.size() == 1);
  CHECK(st.queue.count("d") == 1);
  const SenderState again = EvolveSender(st, e2);
  CHECK(again.seq == 2);
  CHECK(again.queue.size() == 1);
}

TEST_CASE(
    "Given a person's ledger, when an entry forwards an email and a later one settles it as sent, "
    "then the email is in flight, then the send time is the last send, and folding again changes "
    "nothing",
    "[min_gap]") {
  v1::SendLedgerEntry e1;
  e1.set_sender_key("c/person/00");
  e1.set_seq(1);
  *e1.mutable_at() = ToProto(Utc(2026, 3, 2, 10));
  e1.add_queued()->mutable_email()->set_idempotency_key("a");
  e1.add_queued()->mutable_email()->set_idempotency_key("b");
  e1.set_forwarded("a");
  SenderState st = EvolveSender(SenderState(), e1);
  CHECK(st.in_flight == "a");
  CHECK(st.queue.size() == 1);
  CHECK(st.queue.count("b") == 1);
  CHECK(EvolveSender(st, e1).seq == 1);  // a duplicate

  v1::SendLedgerEntry e2;
  e2.set_sender_key("c/person/00");
  e2.set_seq(2);
  *e2.mutable_at() = ToProto(Utc(2026, 3, 2, 11));
  e2.set_settled("a");
  *e2.mutable_last_sent_at() = ToProto(Utc(2026, 3, 2, 10, 30));
  e2.set_forwarded("b");  // settled first, then the next one forwarded
  st = EvolveSender(st, e2);
  CHECK(st.in_flight == "b");
  CHECK(st.queue.empty());
  REQUIRE(st.last_sent.has_value());
  CHECK(*st.last_sent == Utc(2026, 3, 2, 10, 30));
  const SenderState again = EvolveSender(st, e2);
  CHECK(again.in_flight == "b");
  CHECK(again.seq == 2);
}

// ---- identity, setting, routing ----

TEST_CASE(
    "Given addresses that differ in case and surrounding blanks, when keyed, then they are one "
    "person of one company",
    "[min_gap]") {
  CHECK(NormalizeAddress("  Ann@X.com\t") == "ann@x.com");
  CHECK(PersonKey("c", " Ann@X.com ") == PersonKey("c", "ann@x.com"));
  CHECK(PersonKey("c", "ann@x.com") != PersonKey("c", "bob@x.com"));
  CHECK(PersonKey("c", "ann@x.com") != PersonKey("d", "ann@x.com"));
  const std::string key = PersonKey("c", "a/sender/b#c@x.com");
  CHECK(IsPersonKey(key));
  CHECK_FALSE(IsSenderKey(key));
  CHECK(CompanyOfStageKey(key) == "c");
  CHECK(CompanyOfStageKey(SenderKey("c", "u1")) == "c");
}

TEST_CASE(
    "Given a sender whose user id holds the person marker, when its key is read, then it is that "
    "company's sender key, not a person key of another company",
    "[min_gap][send_limits]") {
  // Owner ids published straight to Kafka are not held to the API's id grammar.
  const std::string key = SenderKey("c", "u/person/d");
  CHECK(IsSenderKey(key));
  CHECK_FALSE(IsPersonKey(key));
  CHECK(CompanyOfStageKey(key) == "c");
  CHECK(CompanyOfStageKey("c/other") == "c/other");  // no marker: the key itself
}

TEST_CASE(
    "Given sending settings, when the minimum gap is negative or above 30 days, then they are "
    "refused naming the field, and 0 is off",
    "[min_gap]") {
  v1::CompanySendingSettings s;
  CHECK(MinGapOf(s) == absl::ZeroDuration());
  s.set_min_gap_between_emails_seconds(2 * 86400);
  CHECK(ValidateSendingSettings(s).ok());
  CHECK(MinGapOf(s) == kTwoDays);
  s.set_min_gap_between_emails_seconds(-1);
  CHECK(absl::StrContains(ValidateSendingSettings(s).message(), "min_gap_between_emails_seconds"));
  s.set_min_gap_between_emails_seconds(kMaxMinGapSeconds + 1);
  CHECK_FALSE(ValidateSendingSettings(s).ok());
  s.set_min_gap_between_emails_seconds(kMaxMinGapSeconds);
  CHECK(ValidateSendingSettings(s).ok());
  CHECK(FormatGap(kTwoDays) == "2d");
  CHECK(FormatGap(absl::Minutes(90)) == "1h30m");
}

v1::Envelope Request(const std::string& person_key, bool cleared) {
  v1::Envelope e = MakeEnvelope("r1", "c", Utc(2026, 3, 2, 10), "", "");
  v1::SendRequested* r = e.mutable_send_requested();
  r->mutable_email()->set_idempotency_key("c/deal/1#s#1/mail/email");
  r->mutable_email()->set_item_key("c/deal/1");
  r->mutable_email()->set_sender_user_id("u1");
  r->set_person_key(person_key);
  r->set_gap_cleared(cleared);
  return e;
}

TEST_CASE(
    "Given a send request that passes a person stage, when routed, then it goes to the person key "
    "until the person stage cleared it, then to the sender key",
    "[min_gap][contract]") {
  const std::string person = PersonKey("c", "ann@x.com");
  v1::Envelope to_person = Request(person, false);
  CHECK(RouteInput(to_person).sender_key == person);
  CHECK(CheckEnrollmentInputContract(to_person, person).ok());
  CHECK_FALSE(CheckEnrollmentInputContract(to_person, SenderKey("c", "u1")).ok());
  CHECK_FALSE(CheckEnrollmentInputContract(Request(PersonKey("d", "ann@x.com"), false),
                                           PersonKey("d", "ann@x.com"))
                  .ok());  // another company's person
  v1::Envelope to_sender = Request(person, true);
  CHECK(RouteInput(to_sender).sender_key == SenderKey("c", "u1"));
  CHECK(CheckEnrollmentInputContract(to_sender, SenderKey("c", "u1")).ok());

  v1::Envelope notice = MakeEnvelope("n1", "c", Utc(2026, 3, 2, 10), "", "");
  notice.mutable_send_outcome()->set_email_id("c/deal/1#s#1/mail/email");
  notice.mutable_send_outcome()->set_person_key(person);
  notice.mutable_send_outcome()->set_to_person_stage(true);
  CHECK(RouteInput(notice).scope == InputRoute::Scope::kSender);
  CHECK(RouteInput(notice).sender_key == person);
  CHECK(CheckEnrollmentInputContract(notice, person).ok());
  CHECK_FALSE(CheckEnrollmentInputContract(notice, "c/deal/1").ok());
}

TEST_CASE(
    "Given an enrollment whose email waits for the minimum gap, when it is removed, then the "
    "cancel goes to the person stage, and the history says why it waited",
    "[min_gap][enrollment]") {
  EnrollmentState st;
  st.item_key = "c/deal/1";
  st.sequence_id = "s";
  st.company_id = "c";
  st.enrollment_id = "c/deal/1#s#1";
  st.status = v1::ENROLLMENT_STATUS_IN_PROGRESS;
  const std::string person = PersonKey("c", "ann@x.com");
  v1::Envelope in = MakeEnvelope("o1", "c", Utc(2026, 3, 2, 10), "", "");
  v1::SendOutcome* o = in.mutable_send_outcome();
  o->mutable_ref()->set_enrollment_id(st.enrollment_id);
  o->mutable_ref()->set_item_key("c/deal/1");
  o->mutable_ref()->set_sequence_id("s");
  o->set_step_id("mail");
  o->set_email_id("c/deal/1#s#1/mail/email");
  o->set_kind(v1::SendOutcome::KIND_DEFERRED);
  *o->mutable_at() = ToProto(Utc(2026, 3, 3, 10, 14));
  o->set_reason(kDeferredMinGap);
  o->set_detail(absl::StrCat("last email to ann@x.com sent ", HistoryTime(Utc(2026, 3, 1, 10, 14)),
                             ", gap 2d"));
  o->set_sender_user_id("u1");
  o->set_person_key(person);
  auto d = DecideEnrollment(st, in, SequenceState(), Utc(2026, 3, 2, 10));
  REQUIRE(d.ok());
  REQUIRE(d->executor_events.size() == 1);
  // Every time of the line in one form, zone named (UTC): the detail's as the history's own.
  CHECK(DescribeExecutorEvent(d->executor_events[0]) ==
        "email of step mail deferred: min_gap (last email to ann@x.com sent "
        "2026-03-01T10:14:00Z, gap 2d at 2026-03-02T10:00:00Z); sends at 2026-03-03T10:14:00Z at "
        "the earliest");
  st = EvolveEnrollment(st, d->executor_events[0]);
  CHECK(st.deferred_reason == "min_gap");

  v1::Envelope remove = MakeEnvelope("rm", "c", Utc(2026, 3, 2, 11), "", "");
  remove.mutable_remove_requested()->mutable_target()->set_item_key("c/deal/1");
  remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s");
  auto removed = DecideEnrollment(st, remove, SequenceState(), Utc(2026, 3, 2, 11));
  REQUIRE(removed.ok());
  REQUIRE(removed->sender_inputs.size() == 1);
  CHECK(removed->sender_inputs[0].send_cancelled().person_key() == person);
  CHECK(RouteInput(removed->sender_inputs[0]).sender_key == person);
}

// ---- property: the person stage in front of a sender stage that sends late ----

const char* const kZones[] = {"UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"};

struct Email {
  QueuedSend q;
  absl::Duration sender_delay;  // how long the sender stage holds it once forwarded
};

struct Sent {
  std::string id;
  absl::Time forwarded;
  absl::Time at;
};

// Runs the person stage (PlanTouch, its state folded with EvolveSender) and a sender stage that
// sends each forwarded email after its delay (or drops it when `drop` names it), until nothing is
// left or `steps` decisions were made.
std::vector<Sent> Simulate(const std::vector<Email>& emails, absl::Duration gap,
                           const std::set<std::string>& drop, absl::Time start, int steps) {
  std::map<std::string, const Email*> by_id;
  for (const Email& e : emails) by_id[e.q.id] = &e;
  std::vector<Sent> sent;
  SenderState state;
  std::set<std::string> arrived;
  std::optional<absl::Time> in_flight_done;  // when the sender stage reports the one in flight
  absl::Time forwarded_at;
  absl::Time now = start;
  for (int i = 0; i < steps; ++i) {
    v1::SendLedgerEntry entry;
    entry.set_sender_key("c/person/x");
    entry.set_seq(state.seq + 1);
    *entry.mutable_at() = ToProto(now);
    for (const Email& e : emails) {
      if (e.q.due_at <= now && arrived.insert(e.q.id).second) {
        entry.add_queued()->mutable_email()->set_idempotency_key(e.q.id);
      }
    }
    if (in_flight_done.has_value() && *in_flight_done <= now) {
      entry.set_settled(state.in_flight);
      if (drop.count(state.in_flight) == 0) {
        *entry.mutable_last_sent_at() = ToProto(*in_flight_done);
        sent.push_back({state.in_flight, forwarded_at, *in_flight_done});
      }
      in_flight_done.reset();
    }
    // What the stage plans with: its queue with the new ones, the settled one no longer in flight.
    std::vector<QueuedSend> queue;
    for (const auto& [id, r] : state.queue) queue.push_back(by_id.at(id)->q);
    for (const v1::SendRequested& r : entry.queued()) {
      queue.push_back(by_id.at(r.email().idempotency_key())->q);
    }
    std::optional<absl::Time> last = state.last_sent;
    if (entry.has_last_sent_at()) last = FromProto(entry.last_sent_at());
    const bool busy = !state.in_flight.empty() && entry.settled().empty();
    const TouchPlan plan = PlanTouch(last, busy, queue, gap, now);
    if (plan.forward.has_value()) {
      entry.set_forwarded(*plan.forward);
      forwarded_at = now;
      in_flight_done = now + by_id.at(*plan.forward)->sender_delay;
      RC_ASSERT(AlignToWindow(now, by_id.at(*plan.forward)->q.calendar) == now);
      RC_ASSERT(by_id.at(*plan.forward)->q.due_at <= now);
    }
    state = EvolveSender(std::move(state), entry);
    std::optional<absl::Time> next = plan.next_look;
    if (in_flight_done.has_value() && (!next || *in_flight_done < *next)) next = in_flight_done;
    for (const Email& e : emails) {
      if (e.q.due_at > now && (!next || e.q.due_at < *next)) next = e.q.due_at;
    }
    if (!next.has_value()) break;
    RC_ASSERT(*next >= now);
    now = std::max(*next, now);
  }
  return sent;
}

TEST_CASE(
    "Random arrivals, sender delays, gaps, zones and send windows: consecutive sends to one person "
    "are never closer than the gap, every email is sent exactly once, and the decisions are "
    "deterministic",
    "[min_gap][property]") {
  rc::prop("the minimum gap holds", [] {
    const std::string zone =
        *rc::gen::elementOf(std::vector<std::string>(std::begin(kZones), std::end(kZones)));
    const absl::Duration gap = absl::Minutes(*rc::gen::inRange(1, 4 * 24 * 60));
    const absl::Time start = Utc(2026, 3, 1) + absl::Minutes(*rc::gen::inRange(0, 60 * 24 * 30));
    const int n = *rc::gen::inRange(1, 12);
    std::vector<Email> emails;
    std::set<std::string> drop;
    for (int i = 0; i < n; ++i) {
      Email e;
      e.q.id = absl::StrCat("e", *rc::gen::inRange(0, 1000), "-", i);
      e.q.sequence_id = absl::StrCat("s", *rc::gen::inRange(0, 3));
      e.q.due_at = start + absl::Minutes(*rc::gen::inRange(0, 10 * 24 * 60));
      e.q.calendar = *rc::gen::inRange(0, 2) == 0 ? Calendar() : NineToFive(zone);
      e.sender_delay = absl::Minutes(*rc::gen::inRange(0, 3 * 24 * 60));
      if (*rc::gen::inRange(0, 8) == 0) drop.insert(e.q.id);  // cancelled at the sender stage
      emails.push_back(std::move(e));
    }
    const std::vector<Sent> sent = Simulate(emails, gap, drop, start, 400);
    std::map<std::string, int> times;
    for (const Sent& s : sent) ++times[s.id];
    for (const Email& e : emails) {
      RC_ASSERT(times[e.q.id] == (drop.count(e.q.id) > 0 ? 0 : 1));
    }
    for (size_t i = 1; i < sent.size(); ++i) {
      RC_ASSERT(sent[i].at - sent[i - 1].at >= gap);
      RC_ASSERT(sent[i].forwarded >= sent[i - 1].at + gap);
    }
    // Deterministic: the emails in another order make the same decisions.
    std::vector<Email> reversed(emails.rbegin(), emails.rend());
    const std::vector<Sent> again = Simulate(reversed, gap, drop, start, 400);
    RC_ASSERT(again.size() == sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      RC_ASSERT(again[i].id == sent[i].id);
      RC_ASSERT(again[i].at == sent[i].at);
    }
  });
}

}  // namespace
}  // namespace sequences::domain
