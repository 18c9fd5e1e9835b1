// Per-step statistics of the read model, checked against counts taken another way: the effect
// records (task-events, email-events) and enrollment starts the domain's decider produced for the
// same history, which is fed to the read model as executor-events (part of it delivered twice).
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/envelope.h"
#include "libs/domain/tests/builders.h"
#include "services/sequence-api/read_model.h"
#include "tests/support/process.h"

namespace sequences::api {
namespace {

using namespace domain::testing;

const service::Topics kTopics = service::Topics::WithPrefix("t.");

// `events` as executor-events records over 3 partitions, in order (offsets need only grow per
// partition).
std::vector<kafka::Message> ExecutorRecords(const std::vector<v1::Envelope>& events) {
  std::vector<kafka::Message> records;
  for (size_t i = 0; i < events.size(); ++i) {
    kafka::Message m;
    m.topic = kTopics.executor_events;
    m.partition = static_cast<int32_t>(i % 3);
    m.offset = static_cast<int64_t>(i);
    m.value = events[i].SerializeAsString();
    records.push_back(std::move(m));
  }
  return records;
}

struct Expected {
  int enrolled = 0;
  std::map<std::string, int> tasks;                                      // step -> TaskCreated
  std::map<std::string, int> drafts;                                     // step -> EmailSend
  std::map<std::pair<std::string, std::string>, int> drafts_by_variant;  // step, variant
  int removed = 0;
};

TEST_CASE(
    "Given 60 enrollments walking a sequence over two days, when the read model folds their "
    "executor events (some twice), then its statistics equal the effects the decider "
    "produced, per step, per variant and per day",
    "[statistics]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  const domain::SequenceState seq = MakeSequence(
      {ActivityStep("call", v1::DELAY_UNIT_HOURS, 1), DraftAbStep("email", v1::DELAY_UNIT_DAYS, 1),
       ActivityStep("last", v1::DELAY_UNIT_DAYS, 1)},
      t0);
  std::vector<v1::Envelope> events;
  Expected all, first_day;
  const std::string day1 = "2024-03-04";
  for (int i = 0; i < 60; ++i) {
    domain::EnrollmentState s;
    auto take = [&](const domain::Decision& d, absl::Time at) {
      for (v1::Envelope e : d.executor_events) {
        *e.mutable_occurred_at() = domain::ToProto(at);
        if (e.has_enrollment_started()) {
          ++all.enrolled;
          if (absl::FormatTime("%Y-%m-%d", at, absl::UTCTimeZone()) == day1) ++first_day.enrolled;
        }
        if (e.has_enrollment_removed()) ++all.removed;
        s = domain::EvolveEnrollment(std::move(s), e);
        events.push_back(std::move(e));
      }
      const bool on_day1 = absl::FormatTime("%Y-%m-%d", at, absl::UTCTimeZone()) == day1;
      for (const v1::Envelope& t : d.task_events) {
        ++all.tasks[t.task_created().step_id()];
        if (on_day1) ++first_day.tasks[t.task_created().step_id()];
      }
      for (const v1::Envelope& m : d.email_events) {
        ++all.drafts[m.email_send().step_id()];
        ++all.drafts_by_variant[{m.email_send().step_id(), m.email_send().variant_id()}];
      }
    };
    take(Must(domain::DecideEnrollment(s, Enroll(absl::StrCat("c1/deal/", i)), seq, t0)), t0);
    const int steps_to_run = i % 4;  // 0..3 steps
    for (int k = 0; k < steps_to_run; ++k) {
      const absl::Time due = *domain::NextDueAt(s);
      take(Must(domain::DecideStepDue(s, due, seq, due)), due);
    }
    if (i % 5 == 0 && s.IsActive()) {
      v1::Envelope remove = Input();
      remove.mutable_remove_requested()->mutable_target()->set_item_key(
          absl::StrCat("c1/deal/", i));
      remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
      take(Must(domain::DecideEnrollment(s, remove, seq, t0 + absl::Hours(72))),
           t0 + absl::Hours(72));
    }
  }

  auto rm = ReadModel::Open(
      {.data_dir = sequences::testing::TempDir("stats") + "/db", .kafka = {}, .topics = kTopics});
  REQUIRE(rm.ok());
  const std::vector<kafka::Message> records = ExecutorRecords(events);
  const size_t half = records.size() / 2;
  REQUIRE((*rm)->Apply({records.data(), half + 10}).ok());
  REQUIRE((*rm)->Apply({records.data() + half, records.size() - half}).ok());  // 10 again
  REQUIRE((*rm)->Apply(records).ok());                                         // all again

  absl::StatusOr<v1::SequenceStatistics> stats =
      (*rm)->Statistics("s1", "", {"call", "email", "last"});
  REQUIRE(stats.ok());
  CHECK(stats->total().enrolled() == all.enrolled);
  CHECK(all.enrolled == 60);
  int exits_removed = 0;
  for (const auto& [reason, n] : stats->total().exits()) {
    if (reason == "REMOVAL_REASON_REQUESTED") exits_removed = static_cast<int>(n);
  }
  CHECK(exits_removed == all.removed);
  REQUIRE(stats->steps_size() == 3);
  CHECK(stats->steps(0).step_id() == "call");
  CHECK(stats->steps(0).tasks_created() == all.tasks["call"]);
  CHECK(stats->steps(0).reached() == all.tasks["call"]);
  CHECK(stats->steps(1).step_id() == "email");
  CHECK(stats->steps(1).emails_drafted() == all.drafts["email"]);
  CHECK(stats->steps(2).tasks_created() == all.tasks["last"]);
  REQUIRE(stats->variants_size() == 2);
  for (const v1::StepStatistics& v : stats->variants()) {
    INFO("variant " << v.variant_id());
    CHECK(v.step_id() == "email");
    CHECK(v.emails_drafted() == all.drafts_by_variant[{"email", v.variant_id()}]);
    CHECK(v.emails_drafted() > 0);
  }

  absl::StatusOr<v1::SequenceStatistics> day =
      (*rm)->Statistics("s1", day1, {"call", "email", "last"});
  REQUIRE(day.ok());
  CHECK(day->total().enrolled() == first_day.enrolled);
  REQUIRE(day->steps_size() >= 1);
  CHECK(day->steps(0).tasks_created() == first_day.tasks["call"]);
  CHECK(first_day.tasks["call"] == all.tasks["call"]);  // 1 hour after a 10:00 start
  for (const v1::StepStatistics& s : day->steps()) CHECK(s.step_id() != "last");  // day 3+
}

TEST_CASE("A completed task counts once, and only from the sequence's own company",
          "[statistics]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  auto rm = ReadModel::Open({.data_dir = sequences::testing::TempDir("stats-tasks") + "/db",
                             .kafka = {},
                             .topics = kTopics});
  REQUIRE(rm.ok());
  v1::Envelope created = domain::MakeEnvelope("s1@1", "c1", t0, "", "create-1");
  v1::SequenceCreated* c = created.mutable_sequence_created();
  c->set_sequence_id("s1");
  c->set_version(1);
  c->set_name("Demo");
  c->set_owner_id("u1");
  c->set_entity_kind(v1::ENTITY_KIND_DEAL);
  auto completion = [&](const std::string& company, const std::string& id) {
    v1::Envelope e = domain::MakeEnvelope(id, company, t0, "", id);
    v1::ActivityCompleted* a = e.mutable_activity_completed();
    const std::string item_key = company + "/deal/42";
    a->set_item_key(item_key);
    a->set_sequence_id("s1");
    a->set_enrollment_id(item_key + "#s1#1");
    a->set_step_id("call");
    a->set_task_id(item_key + "#s1#1/call/task");
    kafka::Message m;
    m.topic = kTopics.enrollment_events;
    m.key = item_key;
    m.value = e.SerializeAsString();
    return m;
  };
  std::vector<kafka::Message> records = {completion("c1", "done-1"), completion("c1", "done-2"),
                                         completion("c2", "forged-1")};
  kafka::Message seq_record;
  seq_record.topic = kTopics.sequence_events;
  seq_record.value = created.SerializeAsString();
  REQUIRE((*rm)->Apply({seq_record}).ok());
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].offset = static_cast<int64_t>(i);
    REQUIRE((*rm)->Apply({records[i]}).ok());
  }
  absl::StatusOr<v1::SequenceStatistics> stats = (*rm)->Statistics("s1", "", {"call"});
  REQUIRE(stats.ok());
  REQUIRE(stats->steps_size() == 1);
  // The same task reported twice (two request ids) counts once; company c2's forged report of a
  // task in c1's sequence counts nothing.
  CHECK(stats->steps(0).tasks_completed() == 1);
}

// The UTC date of `t`, written independently of the read model ("YYYY-MM-DD").
std::string UtcDate(absl::Time t) {
  const absl::CivilSecond c = absl::UTCTimeZone().At(t).cs;
  return absl::StrFormat("%04d-%02d-%02d", c.year(), c.month(), c.day());
}

// Counts of one (step, variant) row as a consumer of the effect topics would take them.
struct Row {
  int reached = 0, drafted = 0, tasks = 0, replied = 0;
};

TEST_CASE(
    "Given New York enrollments whose A/B draft runs in the local evening of the days DST starts "
    "and ends, and weights edited after it ran, when the read model folds their events (twice), "
    "then each day row counts the events of that UTC date, the days add up to all time, replies "
    "count at the variant that was sent, and the totals agree with GetEnrollmentOverview",
    "[statistics]") {
  // Step "mail" one local day after the start, "call" two hours after it.
  domain::SequenceState seq = MakeSequence(
      {DraftAbStep("mail", v1::DELAY_UNIT_DAYS, 1), ActivityStep("call", v1::DELAY_UNIT_HOURS, 2)},
      Utc(2026, 3, 1), "America/New_York");
  const absl::TimeZone ny = Zone("America/New_York");
  std::vector<v1::Envelope> events;
  std::map<std::string, std::map<std::pair<std::string, std::string>, Row>> by_day;  // "all" too
  std::map<std::string, int> enrolled_by_day;
  int removed = 0, replied = 0, finished = 0, in_progress = 0, local_date_differs = 0;
  constexpr int kItems = 48;
  for (int i = 0; i < kItems; ++i) {
    // Starts from 18:00 local, every 10 minutes, on the Saturdays before DST starts (March 8)
    // and ends (November 1): the step runs a day later, a 23- or 25-hour day.
    const absl::CivilDay start_day =
        i < kItems / 2 ? absl::CivilDay(2026, 3, 7) : absl::CivilDay(2026, 10, 31);
    const absl::Time start =
        absl::FromCivil(absl::CivilSecond(start_day.year(), start_day.month(), start_day.day(), 18,
                                          (i % (kItems / 2)) * 10, 0),
                        ny);
    const std::string item = absl::StrCat("c1/deal/", i);
    domain::EnrollmentState s;
    auto take = [&](const domain::Decision& d, absl::Time at) {
      for (v1::Envelope e : d.executor_events) {
        *e.mutable_occurred_at() = domain::ToProto(at);
        if (e.has_enrollment_started()) ++enrolled_by_day[UtcDate(at)];
        s = domain::EvolveEnrollment(std::move(s), e);
        events.push_back(std::move(e));
      }
      for (const std::string& day : {std::string("all"), UtcDate(at)}) {
        for (const v1::Envelope& t : d.task_events) {
          ++by_day[day][{t.task_created().step_id(), ""}].tasks;
          ++by_day[day][{t.task_created().step_id(), ""}].reached;
        }
        for (const v1::Envelope& m : d.email_events) {
          const std::string& step = m.email_send().step_id();
          for (const std::string& variant : {std::string(), m.email_send().variant_id()}) {
            ++by_day[day][{step, variant}].drafted;
            ++by_day[day][{step, variant}].reached;
          }
        }
      }
    };
    take(Must(domain::DecideEnrollment(s, Enroll(item, "r1", "America/New_York"), seq, start)),
         start);
    const absl::Time mail_at = *domain::NextDueAt(s);
    take(Must(domain::DecideStepDue(s, mail_at, seq, mail_at)), mail_at);
    REQUIRE(!s.last_email_variant_id.empty());
    if (absl::FormatCivilTime(absl::CivilDay(ny.At(mail_at).cs)) != UtcDate(mail_at)) {
      ++local_date_differs;
    }
    if (i % 3 == 0) {
      // The weights now favour the variant this enrollment did not get; it replies later: the
      // reply counts at the variant it was sent.
      domain::SequenceState edited = seq;
      for (v1::EmailVariant& v : *edited.steps[0].mutable_email()->mutable_variants()) {
        v.set_weight(v.id() == s.last_email_variant_id ? 1 : 1000);
      }
      v1::Envelope reply = Input();
      reply.mutable_email_replied()->set_item_key(item);
      reply.mutable_email_replied()->set_sequence_id("s1");
      const std::string sent_variant = s.last_email_variant_id;
      const absl::Time at = mail_at + absl::Hours(1);
      take(Must(domain::DecideEnrollment(s, reply, edited, at)), at);
      REQUIRE(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
      for (const std::string& day : {std::string("all"), UtcDate(at)}) {
        ++by_day[day][{"mail", ""}].replied;
        ++by_day[day][{"mail", sent_variant}].replied;
      }
      ++replied;
    } else if (i % 3 == 1) {
      v1::Envelope remove = Input();
      remove.mutable_remove_requested()->mutable_target()->set_item_key(item);
      remove.mutable_remove_requested()->mutable_target()->set_sequence_id("s1");
      take(Must(domain::DecideEnrollment(s, remove, seq, mail_at + absl::Minutes(30))),
           mail_at + absl::Minutes(30));
      ++removed;
    } else if (i % 2 == 0) {
      const absl::Time call_at = *domain::NextDueAt(s);
      take(Must(domain::DecideStepDue(s, call_at, seq, call_at)), call_at);
      REQUIRE(s.status == v1::ENROLLMENT_STATUS_COMPLETED);
      ++finished;
    } else {
      ++in_progress;  // the call is not due yet
    }
  }
  // The scenario tells the days apart: many steps ran on another local date than UTC date.
  REQUIRE(local_date_differs >= kItems / 2);

  auto rm = ReadModel::Open({.data_dir = sequences::testing::TempDir("stats-dst") + "/db",
                             .kafka = {},
                             .topics = kTopics});
  REQUIRE(rm.ok());
  const std::vector<kafka::Message> records = ExecutorRecords(events);
  REQUIRE((*rm)->Apply(records).ok());
  REQUIRE((*rm)->Apply(records).ok());  // delivered again: nothing counts twice

  auto check = [&](const std::string& day) {
    INFO("day " << day);
    absl::StatusOr<v1::SequenceStatistics> stats =
        (*rm)->Statistics("s1", day == "all" ? "" : day, {"mail", "call"});
    REQUIRE(stats.ok());
    CHECK(stats->total().enrolled() ==
          (day == "all" ? kItems : (enrolled_by_day.count(day) ? enrolled_by_day[day] : 0)));
    std::map<std::pair<std::string, std::string>, Row> got;
    for (const auto* list : {&stats->steps(), &stats->variants()}) {
      for (const v1::StepStatistics& r : *list) {
        Row& row = got[{r.step_id(), r.variant_id()}];
        row.reached = static_cast<int>(r.reached());
        row.drafted = static_cast<int>(r.emails_drafted());
        row.tasks = static_cast<int>(r.tasks_created());
        row.replied = static_cast<int>(r.replied());
      }
    }
    auto& want = by_day[day];
    CHECK(got.size() == want.size());
    for (const auto& [key, row] : want) {
      INFO("step " << key.first << " variant " << key.second);
      CHECK(got[key].reached == row.reached);
      CHECK(got[key].drafted == row.drafted);
      CHECK(got[key].tasks == row.tasks);
      CHECK(got[key].replied == row.replied);
    }
    return stats->total();
  };
  const v1::StepStatistics total = check("all");
  std::set<std::string> days;
  for (const auto& [day, rows] : by_day) days.insert(day);
  for (const auto& [day, n] : enrolled_by_day) days.insert(day);
  days.erase("all");
  // The UTC dates around them count nothing.
  days.insert("2026-03-07");
  days.insert("2026-03-10");
  days.insert("2026-10-31");
  days.insert("2026-11-03");
  int enrolled_over_days = 0;
  for (const std::string& day : days) {
    if (day == "all") continue;
    enrolled_over_days += static_cast<int>(check(day).enrolled());
  }
  CHECK(enrolled_over_days == kItems);

  // The same enrollments as GetEnrollmentOverview counts them.
  absl::StatusOr<v1::EnrollmentOverview> overview = (*rm)->Overview("c1", "s1");
  REQUIRE(overview.ok());
  CHECK(overview->total() == total.enrolled());
  std::map<std::string, int64_t> exits(total.exits().begin(), total.exits().end());
  CHECK(exits["EXIT_REASON_REPLIED"] == replied);
  CHECK(exits["EXIT_REASON_ALL_STEPS_DONE"] == finished);
  CHECK(overview->completed() == replied + finished);
  CHECK(overview->removed() == exits["REMOVAL_REASON_REQUESTED"]);
  CHECK(overview->removed() == removed);
  CHECK(overview->in_progress() == in_progress);
  int64_t ended = 0;
  for (const auto& [reason, n] : exits) ended += n;
  CHECK(overview->in_progress() + overview->paused() == total.enrolled() - ended);
}

TEST_CASE("An item's history is its executor events in log order, paged by offset", "[history]") {
  const absl::Time t0 = Utc(2024, 3, 4, 10);
  const domain::SequenceState seq = MakeSequence(
      {ActivityStep("a", v1::DELAY_UNIT_HOURS, 1), ActivityStep("b", v1::DELAY_UNIT_HOURS, 1)}, t0);
  std::vector<v1::Envelope> events;
  domain::EnrollmentState s;
  auto take = [&](const domain::Decision& d) {
    for (const v1::Envelope& e : d.executor_events) {
      s = domain::EvolveEnrollment(std::move(s), e);
      events.push_back(e);
    }
  };
  take(Must(domain::DecideEnrollment(s, Enroll("c1/deal/7"), seq, t0)));
  take(Must(domain::DecideStepDue(s, *domain::NextDueAt(s), seq, *domain::NextDueAt(s))));
  take(Must(domain::DecideStepDue(s, *domain::NextDueAt(s), seq, *domain::NextDueAt(s))));
  REQUIRE(events.size() >= 3);

  auto rm = ReadModel::Open(
      {.data_dir = sequences::testing::TempDir("history") + "/db", .kafka = {}, .topics = kTopics});
  REQUIRE(rm.ok());
  std::vector<kafka::Message> records;
  for (size_t i = 0; i < events.size(); ++i) {
    kafka::Message m;
    m.topic = kTopics.executor_events;
    m.offset = static_cast<int64_t>(10 + 2 * i);  // gaps, as other keys' records leave
    m.value = events[i].SerializeAsString();
    records.push_back(std::move(m));
  }
  REQUIRE((*rm)->Apply(records).ok());
  auto first = (*rm)->EnrollmentEvents("c1/deal/7", "s1", -1, 2);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 2);
  CHECK((*first)[0].first == 10);
  CHECK((*first)[0].second.event_id() == events[0].event_id());
  CHECK((*first)[1].second.event_id() == events[1].event_id());
  auto rest = (*rm)->EnrollmentEvents("c1/deal/7", "s1", (*first)[1].first, 100);
  REQUIRE(rest.ok());
  REQUIRE(rest->size() == events.size() - 2);
  CHECK(rest->front().second.event_id() == events[2].event_id());
  CHECK((*rm)->EnrollmentEvents("c1/deal/8", "s1", -1, 100)->empty());
}

}  // namespace
}  // namespace sequences::api
