// Per-sender send limits end to end (docs/send-limits.md): real step-executor processes, the real
// broker, the executors on a test clock moved a day at a time.

#include "libs/domain/send_limits.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "libs/domain/history.h"
#include "libs/domain/min_gap.h"
#include "tests/e2e/executor/harness.h"
#include "tests/support/steps.h"

namespace sequences::executor::e2e {
namespace {

using sequences::testing::EmailStep;
using testing::Enroll;
using testing::SequenceBuilder;

constexpr int kSequences = 5;
// The company's zone: its days (not UTC's) are the ones the limit counts. Half an hour off UTC and
// without daylight saving time, so a day of the wrong zone would show.
constexpr char kCompanyZone[] = "Asia/Kolkata";

// The figures: 1,000 emails (200 per sequence) of one sender at 100 a day, 10 days (about
// 15 s per scenario on the shared test machine).
struct Scale {
  int per_sequence = 200;
  int daily_limit = 100;
  int total() const { return kSequences * per_sequence; }
  int days() const { return (total() + daily_limit - 1) / daily_limit; }
};

absl::TimeZone CompanyZone() {
  absl::TimeZone tz;
  REQUIRE(absl::LoadTimeZone(kCompanyZone, &tz));
  return tz;
}

v1::Envelope Limits(int daily, absl::Time now, const std::string& zone = "UTC") {
  v1::Envelope e = domain::MakeEnvelope("c1-limits-1", "c1", now, "", "limits-1");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("c1");
  c->set_version(1);
  c->mutable_settings()->set_daily_limit_per_sender(daily);
  c->mutable_settings()->set_time_zone(zone);
  return e;
}

// The day in `tz` an email was released (its envelope time: the sender stage's decision time).
absl::CivilDay DayOf(const v1::Envelope& e, absl::TimeZone tz = absl::UTCTimeZone()) {
  return absl::CivilDay(tz.At(domain::FromProto(e.occurred_at())).cs);
}

// The start of the day after `now`'s in `tz`.
absl::Time NextDayStart(absl::Time now, absl::TimeZone tz) {
  return absl::FromCivil(absl::CivilDay(tz.At(now).cs) + 1, tz);
}

struct Run {
  std::map<std::string, int> sent;  // email id -> times seen
  // Company day -> sequence -> emails released that day.
  std::map<absl::CivilDay, std::map<std::string, int>> per_day;
};

Run Collect(const Reader& reader, const service::Topics& topics,
            absl::TimeZone tz = absl::UTCTimeZone()) {
  Run r;
  for (const Seen* s : reader.On(topics.email_events)) {
    const v1::EmailSend& m = s->event.email_send();
    if (++r.sent[m.idempotency_key()] > 1) continue;
    ++r.per_day[DayOf(s->event, tz)][m.sequence_id()];
  }
  return r;
}

// The emails released from the sender's queue after waiting (not sent as they arrived), in the
// order the sender stage released them: its ledger entries in `seq` order (each entry once, no
// gap), each entry's releases in order.
std::vector<std::string> QueueReleaseOrder(const Reader& reader, const service::Topics& topics) {
  std::map<int64_t, const v1::SendLedgerEntry*> ledger;
  for (const Seen* s : reader.On(topics.executor_events)) {
    if (!s->event.has_send_ledger_entry()) continue;
    const v1::SendLedgerEntry& e = s->event.send_ledger_entry();
    auto [it, fresh] = ledger.emplace(e.seq(), &e);
    INFO("ledger entry " << e.seq());
    CHECK(fresh);  // one committed decision per entry: a killed instance's were aborted
  }
  std::vector<std::string> order;
  int64_t expected = 1;
  for (const auto& [seq, entry] : ledger) {
    CHECK(seq == expected++);
    std::set<std::string> arrived;
    for (const v1::SendRequested& q : entry->queued()) arrived.insert(q.email().idempotency_key());
    for (const std::string& id : entry->released()) {
      if (arrived.count(id) == 0) order.push_back(id);
    }
  }
  return order;
}

// Replay: the same state from the log, and every decision (the sender stage's releases and
// cancellations included) decided again the same.
void CheckReplay(World& w, ChildProcess& exec) {
  const std::string live = DigestIn(exec.Log(), "\"msg\":\"stopped\"");
  REQUIRE(!live.empty());
  const std::string dir = w.DataDir("replay-dry");
  auto replay = ChildProcess::Start(
      {ServiceBinary("step-executor"), "replay", "--bootstrap_servers=" + w.bootstrap(),
       "--topic_prefix=" + w.prefix(), "--from=beginning", "--data_dir=" + dir, "--dry_run"},
      dir + ".log");
  REQUIRE(replay.ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  while ((*replay)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  const int code = (*replay)->Terminate();
  const std::string log = (*replay)->Log();
  INFO("replay output: " << log);
  CHECK(code == 0);
  CHECK(DigestIn(log, "{\"digest\"") == live);
  CHECK(log.find("\"decisions_differing\":0,") != std::string::npos);
  CHECK(log.find("\"executor_events_undecodable\":0,") != std::string::npos);
}

// The scenario: every email comes due on the first day, kSequences sequences share one sender,
// the company's days are those of kCompanyZone. With `two_and_kill`, two executor instances
// share the partitions and each is killed (kill -9) once, right after a day starts (a on the
// third day, b on the fifth), and restarted.
void Scenario(bool two_and_kill) {
  const Scale scale;
  const int total = scale.total();
  const int limit = scale.daily_limit;
  const absl::TimeZone tz = CompanyZone();
  World w;
  w.UseTestClock();
  // Start an hour into a company day, so the first day's work never spills into the next.
  w.AdvanceClock(NextDayStart(w.Now(), tz) + absl::Hours(1) - w.Now());
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            Limits(limit, t0, kCompanyZone));
  std::vector<std::string> sequence_ids;
  int64_t version = 0;
  for (int s = 0; s < kSequences; ++s) {
    SequenceBuilder seq("c1", absl::StrCat("s-lim-", s));
    std::vector<v1::Envelope> events = seq.Create({EmailStep("auto", 0, true)}, t0);
    for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
    for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
    w.PublishSequence(events);
    sequence_ids.push_back(seq.id());
    version = seq.state().version;
  }
  // Enrolled one after the other, so due times (and the FIFO order within a sequence) differ.
  std::vector<std::pair<std::string, v1::Envelope>> enrolls;
  std::set<std::string> items;
  for (int i = 0; i < scale.per_sequence; ++i) {
    for (const std::string& seq : sequence_ids) {
      const std::string item = absl::StrCat("c1/deal/", seq, "-", i);
      items.insert(item);
      enrolls.push_back({item, Enroll(item, seq, version, w.Now())});
    }
  }
  std::map<std::string, std::unique_ptr<ChildProcess>> execs;
  execs["a"] = w.StartExecutor("a");
  if (two_and_kill) execs["b"] = w.StartExecutor("b");
  w.PublishAll(w.topics().enrollment_events, enrolls);

  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto count = [&](v1::Envelope::PayloadCase kind) {
    return static_cast<int>(reader.Of(w.topics().executor_events, kind).size());
  };
  auto emails = [&] { return static_cast<int>(reader.On(w.topics().email_events).size()); };
  // Day one: every email came due; the limit lets `limit` out, the rest are deferred.
  REQUIRE(reader.PollUntil(
      [&] { return emails() >= limit && count(v1::Envelope::kEmailDeferred) >= total - limit; },
      absl::Seconds(120)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  CHECK(emails() == limit);
  CHECK(count(v1::Envelope::kEmailDeferred) == total - limit);
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (!s->event.has_email_deferred()) continue;
    CHECK(s->event.email_deferred().reason() == "send_limit");
    CHECK(s->event.email_deferred().detail() ==
          absl::StrCat("sender owner-1: ", limit, "/day reached"));
  }

  // Each following day of the company's zone releases the next `limit`, at the day's start.
  for (int day = 2; day <= scale.days(); ++day) {
    w.AdvanceClock(NextDayStart(w.Now(), tz) - w.Now() + absl::Seconds(1));
    INFO("day " << day);
    // kill -9 while the day's releases are being decided; each instance once.
    const std::string victim = !two_and_kill ? "" : day == 3 ? "a" : day == 5 ? "b" : "";
    if (!victim.empty()) {
      execs[victim]->Kill();
      execs[victim] = w.StartExecutor(victim);
    }
    const int expected = std::min(total, limit * day);
    REQUIRE(reader.PollUntil([&] { return emails() >= expected; }, absl::Seconds(60)));
    reader.Poll(absl::Milliseconds(500));
    CHECK(emails() == expected);
  }
  REQUIRE(reader.PollUntil([&] { return count(v1::Envelope::kEmailReleased) >= total - limit; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  CHECK(count(v1::Envelope::kEmailReleased) == total - limit);

  // Every enrollment's email exactly once, with its step's correlation id.
  std::map<std::string, absl::Time> due;           // email id -> when its step came due
  std::map<std::string, std::string> correlation;  // email id -> its step's
  std::map<std::string, std::string> sequence_of;  // email id -> sequence
  std::set<std::string> items_run;
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (!s->event.has_step_executed()) continue;
    const v1::StepExecuted& x = s->event.step_executed();
    const std::string id = absl::StrCat(x.ref().enrollment_id(), "/auto/email");
    due[id] = domain::FromProto(x.due_at());
    correlation[id] = s->event.correlation_id();
    sequence_of[id] = x.ref().sequence_id();
    items_run.insert(x.ref().item_key());
  }
  CHECK(items_run == items);
  CHECK(due.size() == static_cast<size_t>(total));
  const Run run = Collect(reader, w.topics(), tz);
  CHECK(run.sent.size() == static_cast<size_t>(total));  // none lost
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);  // none twice
    CHECK(due.count(id) == 1);
  }
  for (const Seen* s : reader.On(w.topics().email_events)) {
    INFO(s->event.email_send().idempotency_key());
    CHECK(!s->event.correlation_id().empty());
    CHECK(s->event.correlation_id() == correlation[s->event.email_send().idempotency_key()]);
  }

  // Exactly the limit each day of the company's zone (the last day: what is left); from the
  // second day on, the day's releases are split evenly (+-1) over the sequences still waiting.
  REQUIRE(run.per_day.size() == static_cast<size_t>(scale.days()));
  std::map<std::string, int> left;
  for (const std::string& seq : sequence_ids) left[seq] = scale.per_sequence;
  int sent_before = 0;
  for (const auto& [day, by_sequence] : run.per_day) {
    INFO("day " << day);
    int n = 0, most = 0;
    for (const auto& [seq, k] : by_sequence) {
      n += k;
      most = std::max(most, k);
    }
    CHECK(n == std::min(limit, total - sent_before));
    if (sent_before > 0) {
      for (const auto& [seq, l] : left) {
        INFO(seq << " had " << l << " waiting");
        auto it = by_sequence.find(seq);
        const int k = it == by_sequence.end() ? 0 : it->second;
        if (l > 0) CHECK(k >= std::min(l, most - 1));
      }
    }
    for (const auto& [seq, k] : by_sequence) left[seq] -= k;
    sent_before += n;
  }
  // Deferred in order: the emails that waited left the queue FIFO by due time within each
  // sequence.
  const std::vector<std::string> order = QueueReleaseOrder(reader, w.topics());
  CHECK(order.size() == static_cast<size_t>(total - limit));
  std::map<std::string, absl::Time> last_due;
  for (const std::string& id : order) {
    INFO(id);
    REQUIRE(due.count(id) == 1);
    const std::string& seq = sequence_of[id];
    if (last_due.count(seq) > 0) CHECK(last_due[seq] <= due[id]);
    last_due[seq] = due[id];
  }
  for (auto& [name, exec] : execs) CHECK(exec->Terminate() == 0);
  if (!two_and_kill) CheckReplay(w, *execs["a"]);
}

TEST_CASE(
    "Given 5 sequences sharing one sender with a limit of 100 a day and 1,000 automatic emails "
    "due at once, when the company's days pass, then exactly 100 are sent per day, the rest wait "
    "(deferred: send_limit) and go out FIFO within each sequence, evenly across sequences, none "
    "lost, none twice") {
  Scenario(false);
}

TEST_CASE(
    "Given the same with two executor instances, each killed (kill -9) and restarted once as a "
    "day starts, then still exactly 100 a day, in order, evenly, none lost, none twice") {
  Scenario(true);
}

TEST_CASE(
    "Given a sender over its limit with emails queued, when one of their customers replies, then "
    "that queued email is never sent, the others are sent the next day exactly once, and replay "
    "decides the same") {
  constexpr int kEnrollments = 4;
  constexpr int kLimit = 2;
  World w;
  w.UseTestClock();
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"), Limits(kLimit, t0));
  SequenceBuilder seq("c1", "s-cancel");
  // A second step a month later keeps the enrollment running, so the reply ends it.
  std::vector<v1::Envelope> events =
      seq.Create({EmailStep("auto", 0, true), EmailStep("later", 30 * 24 * 60, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  w.PublishSequence(events);
  auto exec = w.StartExecutor("a");
  std::vector<std::string> items;
  for (int i = 0; i < kEnrollments; ++i) {
    items.push_back(absl::StrCat("c1/deal/cancel-", i));
    w.Publish(w.topics().enrollment_events, items.back(),
              Enroll(items.back(), seq.id(), seq.state().version, w.Now()));
  }
  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto events_of = [&](v1::Envelope::PayloadCase kind) {
    return reader.Of(w.topics().executor_events, kind);
  };
  REQUIRE(reader.PollUntil(
      [&] { return events_of(v1::Envelope::kEmailDeferred).size() >= kEnrollments - kLimit; },
      absl::Seconds(60)));
  const v1::EmailDeferred waiting = events_of(v1::Envelope::kEmailDeferred)[0]->email_deferred();

  v1::Envelope reply = domain::MakeEnvelope("reply-cancel-1", "c1", w.Now(), "", "reply-cancel-1");
  reply.mutable_email_replied()->set_item_key(waiting.ref().item_key());
  reply.mutable_email_replied()->set_sequence_id(seq.id());
  w.Publish(w.topics().enrollment_events, waiting.ref().item_key(), reply);
  REQUIRE(reader.PollUntil([&] { return !events_of(v1::Envelope::kEmailCancelled).empty(); },
                           absl::Seconds(60)));
  const v1::EmailCancelled cancelled =
      events_of(v1::Envelope::kEmailCancelled)[0]->email_cancelled();
  CHECK(cancelled.email_id() == waiting.email_id());
  CHECK(cancelled.ref().enrollment_id() == waiting.ref().enrollment_id());

  // The next day the limit lets the rest out: every queued email but the cancelled one.
  const absl::CivilDay today(absl::UTCTimeZone().At(w.Now()).cs);
  w.AdvanceClock(absl::FromCivil(today + 1, absl::UTCTimeZone()) - w.Now() + absl::Seconds(1));
  REQUIRE(reader.PollUntil(
      [&] { return events_of(v1::Envelope::kEmailReleased).size() >= kEnrollments - kLimit - 1; },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  const Run run = Collect(reader, w.topics());
  CHECK(run.sent.size() == static_cast<size_t>(kEnrollments - 1));
  CHECK(run.sent.count(waiting.email_id()) == 0);
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);
  }
  CHECK(events_of(v1::Envelope::kEmailReleased).size() == kEnrollments - kLimit - 1);
  CHECK(events_of(v1::Envelope::kEmailCancelled).size() == 1);
  CHECK(exec->Terminate() == 0);
  CheckReplay(w, *exec);
}

// ---- minimum gap between emails to one person (docs/min-gap.md) ----

v1::Envelope MinGap(absl::Duration gap, absl::Time now, int64_t version = 1) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat("c1-gap-", version), "c1", now, "",
                                        absl::StrCat("gap-", version));
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("c1");
  c->set_version(version);
  c->mutable_settings()->set_min_gap_between_emails_seconds(absl::ToInt64Seconds(gap));
  return e;
}

// One person (ada@example.com, written three ways) enrolled in 3 sequences whose emails come due
// at once, another person (bob@example.com) in one of them, a gap of 2 days. With
// `two_and_kill`, two executor instances share the partitions and one is killed (kill -9) and
// restarted while the second email to ada is due.
void MinGapScenario(bool two_and_kill) {
  constexpr absl::Duration kGap = absl::Hours(48);
  World w;
  w.UseTestClock();
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"), MinGap(kGap, t0));
  std::vector<std::pair<std::string, v1::Envelope>> enrolls;
  const std::vector<std::string> ada = {"ada@example.com", " Ada@Example.com", "ADA@example.com "};
  for (int s = 0; s < 3; ++s) {
    SequenceBuilder seq("c1", absl::StrCat("s-gap-", s));
    std::vector<v1::Envelope> events = seq.Create({EmailStep("auto", 0, true)}, t0);
    for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
    for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
    w.PublishSequence(events);
    // Three deals of one person (the same address, spelled differently).
    const std::string item = absl::StrCat("c1/deal/ada-", s);
    v1::Envelope e = Enroll(item, seq.id(), seq.state().version, t0);
    e.mutable_enroll_requested()->mutable_recipient()->set_email(ada[s]);
    enrolls.push_back({item, e});
    if (s == 0) {
      v1::Envelope b = Enroll("c1/deal/bob", seq.id(), seq.state().version, t0, "Bob");
      b.mutable_enroll_requested()->mutable_recipient()->set_email("bob@example.com");
      enrolls.push_back({"c1/deal/bob", b});
    }
  }
  auto exec = w.StartExecutor("a");
  std::unique_ptr<ChildProcess> other;
  if (two_and_kill) other = w.StartExecutor("b");
  w.PublishAll(w.topics().enrollment_events, enrolls);

  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto events_of = [&](v1::Envelope::PayloadCase kind) {
    return reader.Of(w.topics().executor_events, kind);
  };
  auto emails = [&] { return reader.On(w.topics().email_events).size(); };
  // At once: one email to ada and bob's; ada's other two wait for the gap.
  REQUIRE(reader.PollUntil(
      [&] { return emails() >= 2 && events_of(v1::Envelope::kEmailDeferred).size() >= 2; },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  CHECK(emails() == 2);
  REQUIRE(events_of(v1::Envelope::kEmailDeferred).size() == 2);
  for (const v1::Envelope* e : events_of(v1::Envelope::kEmailDeferred)) {
    CHECK(e->email_deferred().reason() == "min_gap");
    CHECK(absl::StrContains(e->email_deferred().detail(), "ada@example.com"));
    CHECK(absl::StrContains(e->email_deferred().detail(), "gap 2d"));
    CHECK(absl::StartsWith(e->email_deferred().ref().item_key(), "c1/deal/ada-"));
  }
  // A day later: still nothing (the gap is two days).
  w.AdvanceClock(absl::Hours(24));
  reader.Poll(absl::Seconds(2));
  CHECK(emails() == 2);
  // Two days after the first send: the second; two more days: the third.
  for (int n = 3; n <= 4; ++n) {
    INFO("email " << n);
    w.AdvanceClock(n == 3 ? absl::Hours(24) + absl::Seconds(1) : kGap + absl::Seconds(1));
    if (two_and_kill && n == 3) {  // kill -9 while the second email to ada is due
      exec->Kill();
      exec = w.StartExecutor("a");
    }
    REQUIRE(
        reader.PollUntil([&] { return emails() >= static_cast<size_t>(n); }, absl::Seconds(60)));
    reader.Poll(absl::Milliseconds(500));
    CHECK(emails() == static_cast<size_t>(n));
  }
  REQUIRE(reader.PollUntil([&] { return events_of(v1::Envelope::kEmailReleased).size() >= 2; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));

  const Run run = Collect(reader, w.topics());
  CHECK(run.sent.size() == 4);  // none lost
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);  // none twice
  }
  // Ada's emails at least the gap apart on the executor's clock; bob's at once.
  std::vector<absl::Time> to_ada;
  for (const Seen* s : reader.On(w.topics().email_events)) {
    const v1::EmailSend& m = s->event.email_send();
    const absl::Time at = domain::FromProto(s->event.occurred_at());
    if (m.item_key() == "c1/deal/bob") {
      CHECK(at < t0 + absl::Hours(1));
    } else {
      to_ada.push_back(at);
    }
  }
  REQUIRE(to_ada.size() == 3);
  std::sort(to_ada.begin(), to_ada.end());
  for (size_t i = 1; i < to_ada.size(); ++i) {
    INFO("email " << i);
    CHECK(to_ada[i] - to_ada[i - 1] >= kGap);
  }
  CHECK(events_of(v1::Envelope::kEmailReleased).size() == 2);
  CHECK(exec->Terminate() == 0);
  if (other) CHECK(other->Terminate() == 0);
  if (!two_and_kill) CheckReplay(w, *exec);
}

TEST_CASE(
    "Given a minimum gap of 2 days and one person enrolled in 3 sequences whose emails come due "
    "at once, when the days pass, then the emails go out 2 days apart (deferred: min_gap), none "
    "lost, none twice, another person is not delayed, and replay decides the same") {
  MinGapScenario(false);
}

TEST_CASE(
    "Given the same with two executor instances and one killed (kill -9) and restarted while the "
    "second email is due, then still 2 days apart, none lost, none twice") {
  MinGapScenario(true);
}

TEST_CASE(
    "Given two emails to one person waiting for a gap of 2 days after a first one was sent, when "
    "the company sets the gap to 0, then both go out at once without the clock moving, a new "
    "email to the person goes no earlier than them, none lost, none twice, and replay decides the "
    "same, also with the executor's clock ahead of the change's record time") {
  World w;
  w.UseTestClock();
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            MinGap(absl::Hours(48), t0));
  std::vector<SequenceBuilder> sequences;
  for (int s = 0; s < 4; ++s) {
    sequences.emplace_back("c1", absl::StrCat("s-gap0-", s));
    SequenceBuilder& seq = sequences.back();
    std::vector<v1::Envelope> events = seq.Create({EmailStep("auto", 0, true)}, t0);
    for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
    for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
    w.PublishSequence(events);
  }
  auto enroll_ada = [&](int s) {
    const std::string item = absl::StrCat("c1/deal/ada-", s);
    v1::Envelope e = Enroll(item, sequences[s].id(), sequences[s].state().version, w.Now());
    e.mutable_enroll_requested()->mutable_recipient()->set_email("ada@example.com");
    w.Publish(w.topics().enrollment_events, item, e);
  };
  auto exec = w.StartExecutor("a");
  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto events_of = [&](v1::Envelope::PayloadCase kind) {
    return reader.Of(w.topics().executor_events, kind);
  };
  auto emails = [&] {
    std::vector<std::string> items;  // in the order the mailer receives them
    for (const Seen* s : reader.On(w.topics().email_events))
      items.push_back(s->event.email_send().item_key());
    return items;
  };
  // The first email goes at once; two more, a little later, wait for the gap after it.
  enroll_ada(0);
  REQUIRE(reader.PollUntil([&] { return emails().size() >= 1; }, absl::Seconds(60)));
  const absl::Time first_sent =
      domain::FromProto(reader.On(w.topics().email_events)[0]->event.occurred_at());
  // The executor's clock moves ahead of the broker's: the change below then has a record
  // timestamp before the decisions made under the gap, which replay's dry run must still decide
  // under the gap (each ledger entry records its settings version).
  w.AdvanceClock(absl::Minutes(10));
  enroll_ada(1);
  enroll_ada(2);
  REQUIRE(reader.PollUntil([&] { return events_of(v1::Envelope::kEmailDeferred).size() >= 2; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));
  CHECK(emails().size() == 1);
  for (const v1::Envelope* e : events_of(v1::Envelope::kEmailDeferred)) {
    CHECK(e->email_deferred().reason() == "min_gap");
    // The time in the history's form, its zone named.
    CHECK(e->email_deferred().detail() == absl::StrCat("last email to ada@example.com sent ",
                                                       domain::HistoryTime(first_sent),
                                                       ", gap 2d"));
  }

  // The gap is switched off and, right behind the change, a new email to the person comes due:
  // the two that waited go now (the clock does not move), and the new one not before them.
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            MinGap(absl::ZeroDuration(), w.Now(), 2));
  enroll_ada(3);
  REQUIRE(reader.PollUntil([&] { return emails().size() >= 4; }, absl::Seconds(60)));
  REQUIRE(reader.PollUntil([&] { return events_of(v1::Envelope::kEmailReleased).size() >= 2; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  const Run run = Collect(reader, w.topics());
  CHECK(run.sent.size() == 4);  // none lost
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);  // none twice
  }
  std::map<std::string, absl::Time> sent_at;  // item -> when the mailer got its email
  for (const Seen* s : reader.On(w.topics().email_events)) {
    sent_at[s->event.email_send().item_key()] = domain::FromProto(s->event.occurred_at());
  }
  REQUIRE(sent_at.size() == 4);
  CHECK(sent_at["c1/deal/ada-1"] < first_sent + absl::Hours(1));  // not after the old gap
  CHECK(sent_at["c1/deal/ada-2"] < first_sent + absl::Hours(1));
  CHECK(sent_at["c1/deal/ada-3"] >= sent_at["c1/deal/ada-1"]);  // not overtaken
  CHECK(sent_at["c1/deal/ada-3"] >= sent_at["c1/deal/ada-2"]);
  std::set<std::string> released;  // told "sent" after waiting
  for (const v1::Envelope* e : events_of(v1::Envelope::kEmailReleased)) {
    released.insert(e->email_released().ref().item_key());
  }
  CHECK(released.count("c1/deal/ada-1") == 1);
  CHECK(released.count("c1/deal/ada-2") == 1);
  CHECK(exec->Terminate() == 0);
  CheckReplay(w, *exec);
}

// ---- adversarial: tenants, and a settings change racing the emails ----

v1::Envelope Settings(const std::string& company, int64_t version, int daily, absl::Duration gap,
                      absl::Time now) {
  v1::Envelope e = domain::MakeEnvelope(absl::StrCat(company, "-settings-", version), company, now,
                                        "", absl::StrCat("settings-", company, "-", version));
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id(company);
  c->set_version(version);
  c->mutable_settings()->set_daily_limit_per_sender(daily);
  c->mutable_settings()->set_min_gap_between_emails_seconds(absl::ToInt64Seconds(gap));
  return e;
}

TEST_CASE(
    "Given companies c1 and c2 whose senders share the user id owner-1 and whose customers share "
    "an address, each with a limit of 1 a day and a gap of 2 days, when c1's sender reached its "
    "limit and c1's gap holds its next email to the address, then c2's email to the address goes "
    "at once, and c2's own limit still holds") {
  World w;
  w.UseTestClock();
  const absl::Time t0 = w.Now();
  for (const char* company : {"c1", "c2"}) {
    w.Publish(w.topics().sequence_events, domain::CompanySettingsKey(company),
              Settings(company, 1, 1, absl::Hours(48), t0));
  }
  std::map<std::string, SequenceBuilder> sequences;  // "c1-0" ... "c2-1"
  for (const char* company : {"c1", "c2"}) {
    for (int s = 0; s < 2; ++s) {
      const std::string name = absl::StrCat(company, "-", s);
      SequenceBuilder& seq =
          sequences.emplace(name, SequenceBuilder(company, absl::StrCat("s-tenant-", name)))
              .first->second;
      std::vector<v1::Envelope> events = seq.Create({EmailStep("auto", 0, true)}, t0);
      for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
      for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
      w.PublishSequence(events);
    }
  }
  auto enroll = [&](const std::string& company, int s, const std::string& who,
                    const std::string& address) {
    const SequenceBuilder& seq = sequences.at(absl::StrCat(company, "-", s));
    const std::string item = absl::StrCat(company, "/deal/", who);
    v1::Envelope e = Enroll(item, seq.id(), seq.state().version, w.Now());
    e.set_company_id(company);
    e.mutable_enroll_requested()->mutable_recipient()->set_email(address);
    w.Publish(w.topics().enrollment_events, item, e);
  };
  auto exec = w.StartExecutor("a");
  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto sent = [&] {
    std::set<std::string> items;
    for (const Seen* s : reader.On(w.topics().email_events))
      items.insert(s->event.email_send().item_key());
    return items;
  };
  auto deferred = [&] {
    std::map<std::string, v1::EmailDeferred> by_item;
    for (const Seen* s : reader.On(w.topics().executor_events)) {
      if (s->event.has_email_deferred())
        by_item[s->event.email_deferred().ref().item_key()] = s->event.email_deferred();
    }
    return by_item;
  };
  // c1: ann's first email goes; her second waits for c1's gap, bob's for c1's limit.
  enroll("c1", 0, "ann-0", "ann@example.com");
  REQUIRE(reader.PollUntil([&] { return sent().size() >= 1; }, absl::Seconds(60)));
  enroll("c1", 1, "ann-1", "ann@example.com");
  enroll("c1", 1, "bob", "bob@example.com");
  REQUIRE(reader.PollUntil([&] { return deferred().size() >= 2; }, absl::Seconds(60)));
  // c2: the same sender id, the same address (spelled otherwise): not c1's limit, not c1's gap.
  enroll("c2", 0, "ann-0", "Ann@Example.com");
  REQUIRE(reader.PollUntil([&] { return sent().size() >= 2; }, absl::Seconds(60)));
  // c2's own limit of 1 is now reached: its next email waits, for c2's limit.
  enroll("c2", 1, "carl", "carl@example.com");
  REQUIRE(reader.PollUntil([&] { return deferred().size() >= 3; }, absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now

  CHECK(sent() == std::set<std::string>{"c1/deal/ann-0", "c2/deal/ann-0"});
  const std::map<std::string, v1::EmailDeferred> waits = deferred();
  REQUIRE(waits.size() == 3);
  CHECK(waits.at("c1/deal/ann-1").reason() == "min_gap");
  CHECK(absl::StartsWith(waits.at("c1/deal/ann-1").person_key(), "c1/person/"));
  CHECK(waits.at("c1/deal/bob").reason() == "send_limit");
  CHECK(waits.at("c2/deal/carl").reason() == "send_limit");
  CHECK(waits.at("c2/deal/carl").detail() == "sender owner-1: 1/day reached");
  // The stages' state is per company: every ledger entry's key names one company, each its own.
  std::set<std::string> stage_keys;
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (s->event.has_send_ledger_entry()) {
      const std::string& key = s->event.send_ledger_entry().sender_key();
      CHECK(absl::StartsWith(key, s->event.company_id() + "/"));
      stage_keys.insert(key);
    }
  }
  CHECK(stage_keys.count(domain::SenderKey("c1", "owner-1")) == 1);
  CHECK(stage_keys.count(domain::SenderKey("c2", "owner-1")) == 1);
  CHECK(stage_keys.count(domain::PersonKey("c1", "ann@example.com")) == 1);
  CHECK(stage_keys.count(domain::PersonKey("c2", "ann@example.com")) == 1);
  CHECK(exec->Terminate() == 0);
}

TEST_CASE(
    "Given a sender limited to 4 a day and 10 automatic emails coming due, when the company lowers "
    "the limit to 2 while they are being decided, then at most 4 go the first day, exactly 2 each "
    "following day, none lost, none twice") {
  constexpr int kEmails = 10;
  World w;
  w.UseTestClock();
  const absl::TimeZone utc = absl::UTCTimeZone();
  // An hour into a UTC day, so the first day's work never spills into the next.
  w.AdvanceClock(NextDayStart(w.Now(), utc) + absl::Hours(1) - w.Now());
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            Settings("c1", 1, 4, absl::ZeroDuration(), t0));
  SequenceBuilder seq("c1", "s-race");
  std::vector<v1::Envelope> events = seq.Create({EmailStep("auto", 0, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  w.PublishSequence(events);
  auto exec = w.StartExecutor("a");
  std::vector<std::pair<std::string, v1::Envelope>> enrolls;
  for (int i = 0; i < kEmails; ++i) {
    const std::string item = absl::StrCat("c1/deal/race-", i);
    enrolls.push_back({item, Enroll(item, seq.id(), seq.state().version, t0)});
  }
  // The change races the emails: published right behind them, not after they settled.
  w.PublishAll(w.topics().enrollment_events, enrolls);
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            Settings("c1", 2, 2, absl::ZeroDuration(), w.Now()));

  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto emails = [&] { return static_cast<int>(reader.On(w.topics().email_events).size()); };
  auto deferrals = [&] {
    int n = 0;
    for (const Seen* s : reader.On(w.topics().executor_events)) n += s->event.has_email_deferred();
    return n;
  };
  REQUIRE(reader.PollUntil([&] { return emails() + deferrals() >= kEmails; }, absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  const int first_day = emails();
  CHECK(first_day >= 2);
  CHECK(first_day <= 4);
  CHECK(first_day + deferrals() == kEmails);  // each one either sent or told it waits
  int expected = first_day;
  for (int day = 2; expected < kEmails; ++day) {
    INFO("day " << day);
    w.AdvanceClock(NextDayStart(w.Now(), utc) - w.Now() + absl::Seconds(1));
    expected = std::min(kEmails, expected + 2);
    REQUIRE(reader.PollUntil([&] { return emails() >= expected; }, absl::Seconds(60)));
    reader.Poll(absl::Milliseconds(500));
    CHECK(emails() == expected);  // the lower limit, never the old one
  }
  const Run run = Collect(reader, w.topics());
  CHECK(run.sent.size() == static_cast<size_t>(kEmails));  // none lost
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);  // none twice
  }
  for (const auto& [day, by_sequence] : run.per_day) {
    INFO("day " << day);
    if (day == DayOf(reader.On(w.topics().email_events)[0]->event)) continue;
    CHECK(by_sequence.at(seq.id()) <= 2);
  }
  CHECK(exec->Terminate() == 0);
}

// ---- deciding in the writer's batch (docs/send-limits.md) ----

// One executor instance (it owns every partition), a sender limit of 100 a day and 3 emails due at
// once, with or without a minimum gap (each email to its own person, so none waits for it). Each
// email's EmailSend must carry the decision time of the batch that ran its step (its
// StepExecuted's envelope time) exactly when the instance decides the stages in that batch: a
// later batch, after a trip through enrollment-events and a commit, decides at a later instant of
// the executor's clock. Returns how many emails had their step's decision time.
int ReleasedWithTheirStep(bool gap, bool decide_in_batch) {
  constexpr int kEmails = 3;
  World w;
  const absl::Time t0 = w.Now();
  v1::Envelope settings = Limits(100, t0);
  if (gap) {
    settings.mutable_company_sending_settings_changed()
        ->mutable_settings()
        ->set_min_gap_between_emails_seconds(3600);
  }
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"), settings);
  SequenceBuilder seq("c1", "s-in-batch");
  std::vector<v1::Envelope> events =
      seq.Create({EmailStep("auto", 0, true), EmailStep("later", 30 * 24 * 60, true)}, t0);
  for (auto& e : seq.AutomatedSending(true, t0)) events.push_back(e);
  for (auto& e : seq.Consent("owner-1", true, t0)) events.push_back(e);
  w.PublishSequence(events);
  auto exec = w.StartExecutor(
      "a", {absl::StrCat("--decide_stages_in_batch=", decide_in_batch ? "true" : "false")});
  for (int i = 0; i < kEmails; ++i) {
    const std::string item = absl::StrCat("c1/deal/in-batch-", i);
    v1::Envelope e = Enroll(item, seq.id(), seq.state().version, w.Now());
    e.mutable_enroll_requested()->mutable_recipient()->set_email(absl::StrCat("p", i, "@x.io"));
    w.Publish(w.topics().enrollment_events, item, e);
  }
  Reader reader({w.topics().email_events, w.topics().executor_events});
  REQUIRE(reader.PollUntil([&] { return reader.On(w.topics().email_events).size() >= kEmails; },
                           absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));                   // anything extra would show up now
  std::map<std::string, absl::Time> step_decided;  // by effect id (the email's id)
  // Per email: the ledger entries that queued it at its sender stage, released it, and with the
  // gap forwarded it from its person stage and settled it there (the notice of the send). Each
  // record is decided once, in the batch that wrote it or when consumed, never both.
  std::map<std::string, std::map<std::string, int>> decisions;
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (s->event.has_step_executed() && s->event.step_executed().step_id() == "auto") {
      step_decided[s->event.step_executed().effect_id()] =
          domain::FromProto(s->event.occurred_at());
    }
    if (!s->event.has_send_ledger_entry()) continue;
    const v1::SendLedgerEntry& entry = s->event.send_ledger_entry();
    const bool person = domain::IsPersonKey(entry.sender_key());
    for (const v1::SendRequested& r : entry.queued()) {
      ++decisions[r.email().idempotency_key()][person ? "person queued" : "sender queued"];
    }
    for (const std::string& id : entry.released()) ++decisions[id]["released"];
    if (!entry.forwarded().empty()) ++decisions[entry.forwarded()]["forwarded"];
    if (!entry.settled().empty()) ++decisions[entry.settled()]["settled"];
  }
  const std::map<std::string, int> once =
      gap ? std::map<std::string, int>{{"forwarded", 1},
                                       {"person queued", 1},
                                       {"released", 1},
                                       {"sender queued", 1},
                                       {"settled", 1}}
          : std::map<std::string, int>{{"released", 1}, {"sender queued", 1}};
  CHECK(decisions.size() == kEmails);
  for (const auto& [id, counts] : decisions) {
    INFO(id);
    CHECK(counts == once);
  }
  CHECK(reader.On(w.topics().email_events).size() == kEmails);  // none twice
  int with_step = 0;
  for (const Seen* s : reader.On(w.topics().email_events)) {
    auto it = step_decided.find(s->event.email_send().idempotency_key());
    REQUIRE(it != step_decided.end());
    with_step += domain::FromProto(s->event.occurred_at()) == it->second;
  }
  CHECK(exec->Terminate() == 0);
  CheckReplay(w, *exec);
  return with_step;
}

TEST_CASE(
    "Given one executor instance owning every partition and a sender under its limit, when "
    "automatic emails come due, then each is released in the transaction that runs its step (its "
    "decision time), also through a person stage with a minimum gap, and replay decides the "
    "same") {
  CHECK(ReleasedWithTheirStep(/*gap=*/false, /*decide_in_batch=*/true) == 3);
  CHECK(ReleasedWithTheirStep(/*gap=*/true, /*decide_in_batch=*/true) == 3);
}

TEST_CASE(
    "Given the same instance with --decide_stages_in_batch=false, when the emails come due, then "
    "each is released by a later batch, after its request went through enrollment-events") {
  CHECK(ReleasedWithTheirStep(/*gap=*/false, /*decide_in_batch=*/false) == 0);
}

}  // namespace
}  // namespace sequences::executor::e2e
