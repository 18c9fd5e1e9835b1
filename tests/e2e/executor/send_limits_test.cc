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
#include "tests/e2e/executor/harness.h"
#include "tests/support/steps.h"

namespace sequences::executor::e2e {
namespace {

using sequences::testing::EmailStep;
using testing::Enroll;
using testing::SequenceBuilder;

constexpr int kSequences = 5;
constexpr int kPerSequence = 12;
constexpr int kDailyLimit = 10;

v1::Envelope Limits(int daily, absl::Time now) {
  v1::Envelope e = domain::MakeEnvelope("c1-limits-1", "c1", now, "", "limits-1");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("c1");
  c->set_version(1);
  c->mutable_settings()->set_daily_limit_per_sender(daily);
  c->mutable_settings()->set_time_zone("UTC");
  return e;
}

// The UTC day an email was released (its envelope time: the sender stage's decision time).
absl::CivilDay DayOf(const v1::Envelope& e) {
  return absl::CivilDay(absl::UTCTimeZone().At(domain::FromProto(e.occurred_at())).cs);
}

struct Run {
  std::map<std::string, int> sent;        // email id -> times seen
  std::map<absl::CivilDay, int> per_day;  // released per UTC day
  // Per sequence and release day: the email ids.
  std::map<std::string, std::map<absl::CivilDay, std::vector<std::string>>> by_day;
};

Run Collect(const Reader& reader, const service::Topics& topics) {
  Run r;
  for (const Seen* s : reader.On(topics.email_events)) {
    const v1::EmailSend& m = s->event.email_send();
    if (++r.sent[m.idempotency_key()] > 1) continue;
    ++r.per_day[DayOf(s->event)];
    r.by_day[m.sequence_id()][DayOf(s->event)].push_back(m.idempotency_key());
  }
  return r;
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

// The scenario; with `two_and_kill`, two executor instances share the partitions and one of them
// is killed (kill -9) right after a day starts and restarted.
void Scenario(bool two_and_kill) {
  World w;
  w.UseTestClock();
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"), Limits(kDailyLimit, t0));
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
  for (int i = 0; i < kPerSequence; ++i) {
    for (const std::string& seq : sequence_ids) {
      const std::string item = absl::StrCat("c1/deal/", seq, "-", i);
      enrolls.push_back({item, Enroll(item, seq, version, w.Now())});
    }
  }
  auto exec = w.StartExecutor("a");
  std::unique_ptr<ChildProcess> other;
  if (two_and_kill) other = w.StartExecutor("b");
  w.PublishAll(w.topics().enrollment_events, enrolls);

  Reader reader({w.topics().email_events, w.topics().executor_events});
  auto count = [&](v1::Envelope::PayloadCase kind) {
    int n = 0;
    for (const Seen* s : reader.On(w.topics().executor_events))
      n += s->event.payload_case() == kind;
    return n;
  };
  constexpr int kTotal = kSequences * kPerSequence;
  // Day one: every email came due; the limit lets 10 out, the other 50 are deferred.
  REQUIRE(reader.PollUntil(
      [&] {
        return reader.On(w.topics().email_events).size() >= static_cast<size_t>(kDailyLimit) &&
               count(v1::Envelope::kEmailDeferred) >= kTotal - kDailyLimit;
      },
      absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));  // anything extra would show up now
  CHECK(reader.On(w.topics().email_events).size() == static_cast<size_t>(kDailyLimit));
  CHECK(count(v1::Envelope::kEmailDeferred) == kTotal - kDailyLimit);
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (!s->event.has_email_deferred()) continue;
    CHECK(s->event.email_deferred().reason() == "send_limit");
    CHECK(s->event.email_deferred().detail() ==
          absl::StrCat("sender owner-1: ", kDailyLimit, "/day reached"));
  }

  // Each following day releases the next 10, at the day's start.
  for (int day = 2; day <= kTotal / kDailyLimit; ++day) {
    const absl::Time now = w.Now();
    const absl::CivilDay today(absl::UTCTimeZone().At(now).cs);
    w.AdvanceClock(absl::FromCivil(today + 1, absl::UTCTimeZone()) - now + absl::Seconds(1));
    INFO("day " << day);
    if (two_and_kill && day == 3) {  // kill -9 while the day's releases are being decided
      exec->Kill();
      exec = w.StartExecutor("a");
    }
    REQUIRE(reader.PollUntil(
        [&] {
          return reader.On(w.topics().email_events).size() >=
                 static_cast<size_t>(kDailyLimit * day);
        },
        absl::Seconds(60)));
    reader.Poll(absl::Milliseconds(500));
    CHECK(reader.On(w.topics().email_events).size() == static_cast<size_t>(kDailyLimit * day));
  }
  REQUIRE(
      reader.PollUntil([&] { return count(v1::Envelope::kEmailReleased) >= kTotal - kDailyLimit; },
                       absl::Seconds(60)));
  reader.Poll(absl::Seconds(1));

  const Run run = Collect(reader, w.topics());
  CHECK(run.sent.size() == static_cast<size_t>(kTotal));  // none lost
  for (const auto& [id, n] : run.sent) {
    INFO(id);
    CHECK(n == 1);  // none twice
  }
  CHECK(run.per_day.size() == static_cast<size_t>(kTotal / kDailyLimit));
  for (const auto& [day, n] : run.per_day) CHECK(n == kDailyLimit);  // exactly the limit a day
  CHECK(count(v1::Envelope::kEmailReleased) == kTotal - kDailyLimit);
  // In due order within each sequence: an email released on a later day was due no earlier.
  std::map<std::string, absl::Time> due;
  for (const Seen* s : reader.On(w.topics().executor_events)) {
    if (s->event.has_step_executed()) {
      due[absl::StrCat(s->event.step_executed().ref().enrollment_id(), "/auto/email")] =
          domain::FromProto(s->event.step_executed().due_at());
    }
  }
  // The first day's 10 went out as they arrived. From then on every email waited: each day the
  // sender's queue is released round robin over the sequences (a fair share for each sequence
  // still waiting) and FIFO within a sequence (an email released on a later day was due no
  // earlier than those released before it).
  std::map<std::string, int> left;
  std::map<std::string, absl::Time> latest_released;
  for (const auto& [seq, days] : run.by_day) {
    for (const auto& [day, ids] : days) left[seq] += static_cast<int>(ids.size());
  }
  const absl::CivilDay first_day = run.per_day.begin()->first;
  for (const auto& [day, n] : run.per_day) {
    INFO("day " << day);
    int waiting = 0;
    for (const auto& [seq, l] : left) waiting += l > 0 ? 1 : 0;
    for (const auto& [seq, days] : run.by_day) {
      INFO(seq);
      auto it = days.find(day);
      const std::vector<std::string> ids =
          it == days.end() ? std::vector<std::string>() : it->second;
      if (day != first_day && left[seq] > 0) {
        CHECK(static_cast<int>(ids.size()) >= std::min(left[seq], kDailyLimit / waiting));
      }
      left[seq] -= static_cast<int>(ids.size());
      absl::Time earliest = absl::InfiniteFuture(), latest = absl::InfinitePast();
      for (const std::string& id : ids) {
        REQUIRE(due.count(id) == 1);
        earliest = std::min(earliest, due[id]);
        latest = std::max(latest, due[id]);
      }
      if (day != first_day && latest_released.count(seq) > 0 && !ids.empty()) {
        CHECK(latest_released[seq] <= earliest);
      }
      if (!ids.empty() && day != first_day) latest_released[seq] = latest;
    }
  }
  CHECK(exec->Terminate() == 0);
  if (other) CHECK(other->Terminate() == 0);
  if (!two_and_kill) CheckReplay(w, *exec);
}

TEST_CASE(
    "Given 5 sequences sharing one sender with a limit of 10 a day and 60 automatic emails due "
    "at once, when the days pass, then exactly 10 are sent per day, the rest wait (deferred: "
    "send_limit) and go out in due order, fairly across sequences, none lost, none twice") {
  Scenario(false);
}

TEST_CASE(
    "Given the same with two executor instances and one killed (kill -9) and restarted as a day "
    "starts, then still exactly 10 a day, in order, none lost, none twice") {
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
    std::vector<const v1::Envelope*> out;
    for (const Seen* s : reader.On(w.topics().executor_events)) {
      if (s->event.payload_case() == kind) out.push_back(&s->event);
    }
    return out;
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

v1::Envelope MinGap(absl::Duration gap, absl::Time now) {
  v1::Envelope e = domain::MakeEnvelope("c1-gap-1", "c1", now, "", "gap-1");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("c1");
  c->set_version(1);
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
    std::vector<const v1::Envelope*> out;
    for (const Seen* s : reader.On(w.topics().executor_events)) {
      if (s->event.payload_case() == kind) out.push_back(&s->event);
    }
    return out;
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

}  // namespace
}  // namespace sequences::executor::e2e
