// Send limits through the API (docs/send-limits.md): the company's setting, an email over the
// limit shown as deferred on GetEnrollment, in the history and in the step statistics, then sent
// the next day. Real sequence-api and step-executor processes over the real broker.
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

TEST_CASE(
    "Given a company limit of 2 automatic emails a day per sender, when 4 deals of one sender "
    "reach an automatic email, then 2 are sent, 2 show 'deferred: send_limit' on GetEnrollment, "
    "in their history and in the step statistics, and go out the next day") {
  System sys;
  ApiProcess& api = sys.api();

  v1::GetCompanySendingSettingsRequest get;
  get.set_parent(absl::StrCat("companies/", kCompany));
  v1::CompanySendingSettingsResponse settings;
  REQUIRE(api.sequences().GetCompanySendingSettings(CallAs(kCompany).get(), get, &settings).ok());
  CHECK(settings.settings().daily_limit_per_sender() == 200);  // the documented default
  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kCompany));
  set.set_request_id("limits-1");
  set.mutable_settings()->set_daily_limit_per_sender(2);
  grpc::Status s =
      api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(settings.version() == 1);

  const std::string sequence = CreateSequence(api, "create-limited", {EmailStep("auto", 0, true)});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);
  std::vector<Item> items;
  for (int i = 0; i < 4; ++i) items.push_back({absl::StrCat("d", i), owner});
  BatchEnroll(api, sequence, items);

  Reader reader({sys.topics().email_events});
  // The enrollments deferred so far. The read model folds asynchronously, so an enrollment the
  // batch just wrote may be NOT_FOUND at first: not deferred yet.
  auto deferred = [&] {
    std::vector<v1::Enrollment> out;
    for (const Item& it : items) {
      std::optional<v1::Enrollment> e = FindEnrollment(api, EnrollmentName(sequence, it.id));
      if (e.has_value() && e->has_deferred()) out.push_back(*e);
    }
    return out;
  };
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (deferred().size() < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(200));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 2; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events).size() == 2);
  const std::vector<v1::Enrollment> waiting = deferred();
  REQUIRE(waiting.size() == 2);
  const absl::CivilDay today(absl::UTCTimeZone().At(sys.Now()).cs);
  const absl::Time tomorrow = absl::FromCivil(today + 1, absl::UTCTimeZone());
  for (const v1::Enrollment& e : waiting) {
    INFO(e.DebugString());
    CHECK(e.deferred().reason() == "send_limit");
    CHECK(e.deferred().step_id() == "auto");
    CHECK(e.deferred().detail() == "sender rep-1: 2/day reached");
    CHECK(domain::FromProto(e.deferred().until()) == tomorrow);
    // The history says why.
    v1::ListEnrollmentEventsRequest list;
    list.set_name(e.name());
    v1::ListEnrollmentEventsResponse history;
    REQUIRE(api.enrollments().ListEnrollmentEvents(CallAs(kCompany).get(), list, &history).ok());
    bool explained = false;
    for (const v1::EnrollmentEvent& h : history.events()) {
      explained = explained || absl::StrContains(h.description(), "deferred: send_limit");
    }
    CHECK(explained);
  }
  v1::GetSequenceStatisticsRequest stats;
  stats.set_name(sequence);
  v1::SequenceStatistics st;
  REQUIRE(api.sequences().GetSequenceStatistics(CallAs(kCompany).get(), stats, &st).ok());
  int64_t deferred_total = 0;
  for (const v1::StepStatistics& row : st.steps()) {
    if (row.step_id() == "auto" && row.variant_id().empty()) deferred_total += row.deferred();
  }
  CHECK(deferred_total == 2);

  // The next day the two waiting emails go out, and the enrollments no longer show a wait.
  sys.AdvanceClock(tomorrow - sys.Now() + absl::Seconds(1));
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 4; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  CHECK(reader.On(sys.topics().email_events).size() == 4);
  const absl::Time cleared = absl::Now() + absl::Seconds(30);
  while (!deferred().empty() && absl::Now() < cleared) absl::SleepFor(absl::Milliseconds(200));
  CHECK(deferred().empty());
}

TEST_CASE(
    "Given a sender limited to 1 automatic email a day with a second one waiting, when the sender "
    "revokes consent through the API before the next day, then the waiting email never goes out "
    "and its enrollment's history says it was withheld at sending") {
  System sys;
  ApiProcess& api = sys.api();
  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kCompany));
  set.set_request_id("limits-1");
  set.mutable_settings()->set_daily_limit_per_sender(1);
  v1::CompanySendingSettingsResponse settings;
  REQUIRE(api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings).ok());

  const std::string sequence = CreateSequence(api, "create-revoked", {EmailStep("auto", 0, true)});
  const std::string owner = "rep-1";
  EnableAutomaticSending(api, sequence, owner);
  const std::vector<Item> items = {{"d0", owner}, {"d1", owner}};
  BatchEnroll(api, sequence, items);

  Reader reader({sys.topics().email_events});
  auto waiting = [&]() -> std::optional<v1::Enrollment> {
    for (const Item& it : items) {
      std::optional<v1::Enrollment> e = FindEnrollment(api, EnrollmentName(sequence, it.id));
      if (e.has_value() && e->has_deferred()) return e;
    }
    return std::nullopt;
  };
  const absl::Time until = absl::Now() + absl::Seconds(60);
  while (!waiting().has_value() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(200));
  const std::optional<v1::Enrollment> deferred = waiting();
  REQUIRE(deferred.has_value());
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().email_events).size() >= 1; },
                           absl::Seconds(30)));

  // The sender takes back consent; the step fired while it was given, the release comes after.
  v1::RevokeSendingConsentRequest revoke;
  revoke.set_name(sequence);
  revoke.set_request_id("revoke-rep-1");
  v1::SequenceResponse resp;
  grpc::Status s =
      api.sequences().RevokeSendingConsent(CallAs(kCompany, owner).get(), revoke, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  // The executor reads sequence-events on its own. A deal enrolled after the revocation names the
  // new sequence version, which the executor waits for: once that deal's email step has failed
  // for want of consent, the executor knows, and the day may turn.
  BatchEnroll(api, sequence, {{"after-revoke", owner}});
  const v1::Enrollment failed =
      WaitForStatus(api, EnrollmentName(sequence, "after-revoke"), v1::ENROLLMENT_STATUS_FAILED);
  CHECK(failed.failure_reason() == v1::FAILURE_REASON_CONSENT_MISSING);

  const absl::CivilDay today(absl::UTCTimeZone().At(sys.Now()).cs);
  const absl::Time tomorrow = absl::FromCivil(today + 1, absl::UTCTimeZone());
  sys.AdvanceClock(tomorrow - sys.Now() + absl::Seconds(1));
  // The enrollment learns its email was withheld (no wait shown any more)...
  const absl::Time cleared = absl::Now() + absl::Seconds(30);
  while (waiting().has_value() && absl::Now() < cleared) absl::SleepFor(absl::Milliseconds(200));
  CHECK_FALSE(waiting().has_value());
  v1::ListEnrollmentEventsRequest list;
  list.set_name(deferred->name());
  v1::ListEnrollmentEventsResponse history;
  REQUIRE(api.enrollments().ListEnrollmentEvents(CallAs(kCompany).get(), list, &history).ok());
  bool explained = false;
  for (const v1::EnrollmentEvent& h : history.events()) {
    explained = explained || absl::StrContains(h.description(),
                                               "withheld at sending (consent_missing): user rep-1 "
                                               "revoked consent");
  }
  CHECK(explained);
  // ... and the mailer never gets it, that day or the next.
  sys.AdvanceClock(absl::Hours(25));
  reader.Poll(absl::Seconds(3));
  CHECK(reader.On(sys.topics().email_events).size() == 1);
}

// What a consumer of the effect topics counts for one step of one sequence.
struct Counted {
  int64_t reached = 0;  // the step's effects (each step has one)
  int64_t tasks_created = 0;
  int64_t emails_drafted = 0;
  int64_t emails_sent = 0;  // automatic emails handed to the mailer
  int64_t deferred = 0;     // automatic emails released later than their step came due
  bool operator==(const Counted&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Counted& c) {
  return os << "{reached " << c.reached << ", tasks " << c.tasks_created << ", drafted "
            << c.emails_drafted << ", sent " << c.emails_sent << ", deferred " << c.deferred << "}";
}

// sequence id -> step id -> counts, from email-events and task-events alone (each effect id once).
std::map<std::string, std::map<std::string, Counted>> CountEffects(const Reader& reader,
                                                                   const System& sys) {
  std::map<std::string, std::map<std::string, Counted>> out;
  std::set<std::string> seen;
  for (const Seen* s : reader.On(sys.topics().task_events)) {
    const v1::TaskCreated& t = s->event.task_created();
    if (!seen.insert(t.task_id()).second) continue;
    Counted& c = out[t.sequence_id()][t.step_id()];
    ++c.reached;
    ++c.tasks_created;
  }
  for (const Seen* s : reader.On(sys.topics().email_events)) {
    const v1::EmailSend& m = s->event.email_send();
    if (!seen.insert(m.idempotency_key()).second) continue;
    Counted& c = out[m.sequence_id()][m.step_id()];
    ++c.reached;
    if (m.mode() == v1::EMAIL_MODE_DRAFT_FOR_REVIEW) {
      ++c.emails_drafted;
      continue;
    }
    ++c.emails_sent;
    // Sent at once, it leaves within seconds of its due time; a deferred one the next day.
    const absl::Duration waited =
        domain::FromProto(s->event.occurred_at()) - domain::FromProto(m.scheduled_at());
    if (waited > absl::Minutes(1)) ++c.deferred;
  }
  return out;
}

// sequence resource name -> step id -> the API's all-time counters of the step.
std::map<std::string, Counted> ApiCounts(ApiProcess& api, const std::string& sequence) {
  v1::GetSequenceStatisticsRequest req;
  req.set_name(sequence);
  v1::SequenceStatistics st;
  grpc::Status s = api.sequences().GetSequenceStatistics(CallAs(kCompany).get(), req, &st);
  INFO(s.error_message());
  REQUIRE(s.ok());
  std::map<std::string, Counted> out;
  for (const v1::StepStatistics& row : st.steps()) {
    Counted& c = out[row.step_id()];
    c.reached = row.reached();
    c.tasks_created = row.tasks_created();
    c.emails_drafted = row.emails_drafted();
    c.emails_sent = row.emails_sent();
    c.deferred = row.deferred();
  }
  return out;
}

TEST_CASE(
    "Given two sequences with tasks, drafts and automatic emails over a sender's limit of 3 a "
    "day, when every email has gone out over three days, then GetSequenceStatistics per sequence "
    "and step equals the counts a consumer takes from email-events and task-events "
    "(emails_sent, deferred, drafted, tasks, reached)") {
  System sys;
  ApiProcess& api = sys.api();
  // An hour into a UTC day, so the first day's sends never spill into the next.
  const absl::CivilDay start(absl::UTCTimeZone().At(sys.Now()).cs);
  sys.AdvanceClock(absl::FromCivil(start + 1, absl::UTCTimeZone()) + absl::Hours(1) - sys.Now());
  v1::SetCompanySendingSettingsRequest set;
  set.set_parent(absl::StrCat("companies/", kCompany));
  set.set_request_id("limits-3");
  set.mutable_settings()->set_daily_limit_per_sender(3);
  v1::CompanySendingSettingsResponse settings;
  grpc::Status s =
      api.sequences().SetCompanySendingSettings(CallAs(kCompany).get(), set, &settings);
  INFO(s.error_message());
  REQUIRE(s.ok());

  const std::string owner = "rep-1";
  // Every step due at once: 8 automatic emails of one sender, 3 a day.
  const std::string mixed =
      CreateSequence(api, "create-mixed",
                     {EmailStep("first", 0, true), ActivityStep("call", 0),
                      EmailStep("draft", 0, false), EmailStep("second", 0, true)});
  EnableAutomaticSending(api, mixed, owner);
  const std::string plain = CreateSequence(
      api, "create-plain", {ActivityStep("p-call", 0), EmailStep("p-draft", 0, false)});
  std::vector<Item> items;
  for (int i = 0; i < 4; ++i) items.push_back({absl::StrCat("m", i), owner});
  BatchEnroll(api, mixed, items);
  items.clear();
  for (int i = 0; i < 3; ++i) items.push_back({absl::StrCat("p", i), owner});
  BatchEnroll(api, plain, items);

  Reader reader({sys.topics().email_events, sys.topics().task_events});
  auto automatic = [&] {
    int n = 0;
    for (const Seen* e : reader.On(sys.topics().email_events)) {
      n += e->event.email_send().mode() == v1::EMAIL_MODE_AUTOMATIC ? 1 : 0;
    }
    return n;
  };
  // 3 today, 3 tomorrow, 2 the day after.
  for (int expected : {3, 6, 8}) {
    INFO("automatic emails " << expected);
    REQUIRE(reader.PollUntil([&] { return automatic() >= expected; }, absl::Seconds(60)));
    reader.Poll(absl::Milliseconds(500));
    CHECK(automatic() == expected);
    const absl::CivilDay today(absl::UTCTimeZone().At(sys.Now()).cs);
    sys.AdvanceClock(absl::FromCivil(today + 1, absl::UTCTimeZone()) - sys.Now() +
                     absl::Seconds(1));
  }
  REQUIRE(reader.PollUntil([&] { return reader.On(sys.topics().task_events).size() >= 7; },
                           absl::Seconds(30)));
  reader.Poll(absl::Seconds(1));
  const auto effects = CountEffects(reader, sys);
  // The figures the run must have produced, so the comparison below compares something.
  const std::string mixed_id = mixed.substr(mixed.rfind('/') + 1);
  const std::string plain_id = plain.substr(plain.rfind('/') + 1);
  REQUIRE(effects.count(mixed_id) == 1);
  REQUIRE(effects.count(plain_id) == 1);
  const std::map<std::string, Counted>& m = effects.at(mixed_id);
  CHECK(m.at("first").emails_sent + m.at("second").emails_sent == 8);
  CHECK(m.at("first").deferred + m.at("second").deferred == 5);

  for (const auto& [sequence, id] : {std::pair{mixed, mixed_id}, std::pair{plain, plain_id}}) {
    INFO(sequence);
    // The read model follows the log: wait until it has caught up, then compare.
    std::map<std::string, Counted> stats;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    do {
      stats = ApiCounts(api, sequence);
      if (stats == effects.at(id)) break;
      absl::SleepFor(absl::Milliseconds(200));
    } while (absl::Now() < deadline);
    for (const auto& [step, counted] : effects.at(id)) {
      INFO("step " << step);
      CHECK(stats[step] == counted);
    }
    CHECK(stats.size() == effects.at(id).size());
  }
}

}  // namespace
}  // namespace sequences::testing
