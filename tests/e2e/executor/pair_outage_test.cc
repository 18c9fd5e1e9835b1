// Two executor instances and a private broker that goes away at the worst moments the new
// mechanisms have (tier e2e, RESTARTS_BROKER: it kills and restarts its own broker):
//   1. while a rebalance is in progress (the second instance has just subscribed; cooperative
//      incremental rebalancing, its warm-up fold done a moment before), down longer than the
//      session timeout and the transaction timeout, while timer steps come due (test clock);
//   2. right after kill -9 of the instance that owns the sender stage's partition, as a company
//      day starts and the emails that waited for the send limit are being released;
//   3. the killed instance comes back with the state it had before the outage (its warm state is
//      stale: the survivor decided its partitions meanwhile) and takes partitions back.
// Neither instance is restarted because of the broker: each must serve again within a bounded
// time after the broker returns. Every step fires exactly once; exactly the limit is sent per
// company day, each email once.
//
// Sizes: small by default (about a minute here). Longer: SEQUENCES_PAIR_OUTAGE_ENROLLMENTS
// (timer enrollments per wave, default 150) and SEQUENCES_PAIR_OUTAGE_DOWN_SECONDS (default 8).
#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "libs/domain/send_limits.h"
#include "libs/kafka/types.h"
#include "tests/e2e/executor/harness.h"
#include "tests/support/broker.h"
#include "tests/support/http.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;
using sequences::testing::HttpGet;
using sequences::testing::PrivateBroker;

// The broker's smallest session timeout (group.min.session.timeout.ms) and a transaction timeout
// below the outage, so the outage outlasts both.
constexpr char kSessionTimeout[] = "--session_timeout=6s";
constexpr char kTransactionTimeout[] = "--transaction_timeout=5s";
constexpr int kDailyLimit = 10;
constexpr int kEmails = 3 * kDailyLimit;  // three company days of the limit

// An executor instance with its health (gRPC) and metrics (HTTP) addresses.
struct Instance {
  std::unique_ptr<ChildProcess> process;
  std::string health;
  int http_port = 0;
};

Instance Start(World& w, const std::string& id) {
  Instance i;
  i.process = w.StartExecutor(id, {"--health_port=0", "--http_port=0", kSessionTimeout,
                                   kTransactionTimeout, "--metrics_interval=1s"});
  const absl::StatusOr<int> health =
      i.process->WaitForPort("health server listening", "address", absl::Seconds(10));
  REQUIRE(health.ok());
  i.health = absl::StrCat("127.0.0.1:", *health);
  const absl::StatusOr<int> http =
      i.process->WaitForPort("http server listening", "url", absl::Seconds(10));
  REQUIRE(http.ok());
  i.http_port = *http;
  return i;
}

// The enrollment-events partitions the instance owns now (its per-partition lag series), or
// nullopt when it does not answer.
std::optional<std::set<int>> Owned(const Instance& i) {
  auto reply = HttpGet(i.http_port, "/metrics");
  if (!reply.ok() || reply->code != 200) return std::nullopt;
  std::set<int> owned;
  static const std::regex kLine(
      R"re(sequences_executor_input_lag_records\{[^}]*partition="(\d+)"[^}]*\})re");
  for (std::sregex_iterator it(reply->body.begin(), reply->body.end(), kLine), end; it != end;
       ++it) {
    owned.insert(std::stoi((*it)[1]));
  }
  return owned;
}

// Waits until every instance says SERVING and together they own all partitions, each partition
// once. False when that does not happen within `within` of the call.
bool WaitForServingSplit(const std::vector<const Instance*>& instances, absl::Duration within,
                         std::string* why) {
  const absl::Time until = absl::Now() + within;
  while (absl::Now() < until) {
    bool ok = true;
    std::map<int, int> owners;
    *why = "";
    for (const Instance* i : instances) {
      const std::string h = HealthOf(i->health);
      auto owned = Owned(*i);
      if (h != "SERVING" || !owned.has_value() || owned->empty()) {
        ok = false;
        absl::StrAppend(why, i->health, " ", h, " owns ", owned ? owned->size() : 0, "; ");
        continue;
      }
      for (int p : *owned) ++owners[p];
    }
    if (ok && static_cast<int>(owners.size()) == kPartitions) {
      bool once = true;
      for (const auto& [p, n] : owners) once = once && n == 1;
      if (once) return true;
      *why = "a partition owned twice";
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  return false;
}

v1::Envelope DailyLimit(int daily, absl::Time now) {
  v1::Envelope e = domain::MakeEnvelope("c1-limits-1", "c1", now, "", "limits-1");
  v1::CompanySendingSettingsChanged* c = e.mutable_company_sending_settings_changed();
  c->set_company_id("c1");
  c->set_version(1);
  c->mutable_settings()->set_daily_limit_per_sender(daily);
  c->mutable_settings()->set_time_zone("UTC");
  return e;
}

absl::Time NextUtcDay(absl::Time t) {
  return absl::FromCivil(absl::CivilDay(absl::UTCTimeZone().At(t).cs) + 1, absl::UTCTimeZone());
}

// Every effect id on the task and email topics and how often it was seen, and the emails'
// release days (UTC, the company's zone).
struct Effects {
  std::map<std::string, int> tasks;
  std::map<std::string, int> emails;
  std::map<absl::CivilDay, int> emails_per_day;
};

Effects Count(const Reader& reader, const service::Topics& topics) {
  Effects e;
  for (const Seen* s : reader.On(topics.task_events)) ++e.tasks[EffectId(s->event)];
  for (const Seen* s : reader.On(topics.email_events)) {
    if (++e.emails[EffectId(s->event)] == 1) {
      ++e.emails_per_day[absl::CivilDay(
          absl::UTCTimeZone().At(domain::FromProto(s->event.occurred_at())).cs)];
    }
  }
  return e;
}

int Duplicated(const std::map<std::string, int>& counts) {
  int n = 0;
  for (const auto& [id, k] : counts) n += k > 1 ? 1 : 0;
  return n;
}

TEST_CASE(
    "Two executors with the broker gone during a rebalance and right after kill -9 of the sender "
    "stage's owner, each time longer than the session and transaction timeouts: both serve again "
    "without a restart, every step fires exactly once, exactly the send limit goes out per day, "
    "and the killed instance's stale state is never decided on") {
  const int per_wave = EnvInt("SEQUENCES_PAIR_OUTAGE_ENROLLMENTS", 150);
  const absl::Duration down_for = absl::Seconds(EnvInt("SEQUENCES_PAIR_OUTAGE_DOWN_SECONDS", 8));
  PrivateBroker broker;
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  World w(broker.bootstrap());
  w.UseTestClock();
  // An hour into a UTC day (the company's), so a day's work never spills into the next.
  w.AdvanceClock(NextUtcDay(w.Now()) + absl::Hours(1) - w.Now());
  const absl::Time t0 = w.Now();
  w.Publish(w.topics().sequence_events, domain::CompanySettingsKey("c1"),
            DailyLimit(kDailyLimit, t0));
  // Timer steps: one at once, one an hour later (it comes due while the broker is away).
  SequenceBuilder timers("c1", "s-pair-timer");
  w.PublishSequence(timers.Create({ActivityStep("call", 0), ActivityStep("follow", 60)}, t0));
  // Automatic emails of one sender under a daily limit.
  SequenceBuilder mail("c1", "s-pair-mail");
  {
    std::vector<v1::Envelope> events = mail.Create({EmailStep("auto", 0, true)}, t0);
    for (auto& e : mail.AutomatedSending(true, t0)) events.push_back(e);
    for (auto& e : mail.Consent("owner-1", true, t0)) events.push_back(e);
    w.PublishSequence(events);
  }
  const int stage_partition =
      kafka::PartitionForKey(domain::SenderKey("c1", "owner-1"), kPartitions);
  int timer_enrollments = 0;
  auto timer_wave = [&] {
    std::vector<std::pair<std::string, v1::Envelope>> batch;
    for (int i = timer_enrollments; i < timer_enrollments + per_wave; ++i) {
      const std::string item = absl::StrCat("c1/deal/t", i);
      batch.push_back({item, Enroll(item, timers.id(), timers.state().version, w.Now())});
    }
    w.PublishAll(w.topics().enrollment_events, batch);
    timer_enrollments += per_wave;
  };

  std::map<std::string, Instance> exec;
  exec["a"] = Start(w, "a");
  REQUIRE(WaitForHealth(exec["a"].health, "SERVING", absl::Seconds(60)));
  timer_wave();
  {
    std::vector<std::pair<std::string, v1::Envelope>> batch;
    for (int i = 0; i < kEmails; ++i) {
      const std::string item = absl::StrCat("c1/deal/m", i);
      batch.push_back({item, Enroll(item, mail.id(), mail.state().version, w.Now())});
    }
    w.PublishAll(w.topics().enrollment_events, batch);
  }
  Reader reader({w.topics().task_events, w.topics().email_events, w.topics().executor_events},
                broker.bootstrap());
  auto deferred = [&] {
    return static_cast<int>(
        reader.Of(w.topics().executor_events, v1::Envelope::kEmailDeferred).size());
  };
  REQUIRE(reader.PollUntil(
      [&] {
        const Effects e = Count(reader, w.topics());
        return static_cast<int>(e.tasks.size()) >= per_wave &&
               static_cast<int>(e.emails.size()) >= kDailyLimit &&
               deferred() >= kEmails - kDailyLimit;
      },
      absl::Seconds(60)));

  // 1. The second instance subscribes (the cooperative rebalance starts) and the broker stops;
  // the first wave's second steps come due while it is away.
  timer_wave();
  exec["b"] = Start(w, "b");
  const absl::Time down_at = absl::Now();
  REQUIRE(broker.Stop().ok());
  w.AdvanceClock(absl::Minutes(61));
  CHECK(WaitForHealth(exec["a"].health, "NOT_SERVING", absl::Seconds(15)));
  absl::SleepFor(down_at + down_for - absl::Now());
  REQUIRE(broker.Start().ok());
  std::string why;
  {
    INFO("after the outage during the join: " << why);
    REQUIRE(WaitForServingSplit({&exec["a"], &exec["b"]}, absl::Seconds(60), &why));
  }
  for (auto& [id, i] : exec) REQUIRE(i.process->Running());
  // Wave 1: both steps; wave 2: the first (its second is an hour away).
  REQUIRE(reader.PollUntil(
      [&] { return static_cast<int>(Count(reader, w.topics()).tasks.size()) >= 3 * per_wave; },
      absl::Seconds(60)));

  // 2. As the next company day starts, kill -9 the sender stage's owner and the broker with it.
  std::string owner;
  for (auto& [id, i] : exec) {
    auto owned = Owned(i);
    REQUIRE(owned.has_value());
    if (owned->count(stage_partition) > 0) owner = id;
  }
  REQUIRE(!owner.empty());
  const std::string survivor = owner == "a" ? "b" : "a";
  INFO("sender stage partition " << stage_partition << " owned by " << owner);
  w.AdvanceClock(NextUtcDay(w.Now()) - w.Now() + absl::Seconds(1));
  exec[owner].process->Kill();
  REQUIRE(broker.Kill().ok());
  const absl::Time killed_at = absl::Now();
  w.AdvanceClock(absl::Minutes(61));  // wave 2's second steps come due while the broker is away
  absl::SleepFor(killed_at + down_for - absl::Now());
  REQUIRE(broker.Start().ok());
  // The survivor serves alone once the group gives up the dead member (its session timeout).
  {
    INFO("after the outage with the owner dead: " << why);
    REQUIRE(WaitForServingSplit({&exec[survivor]}, absl::Seconds(60), &why));
  }
  REQUIRE(exec[survivor].process->Running());
  REQUIRE(reader.PollUntil(
      [&] {
        const Effects e = Count(reader, w.topics());
        return static_cast<int>(e.tasks.size()) >= 4 * per_wave &&
               static_cast<int>(e.emails.size()) >= 2 * kDailyLimit;
      },
      absl::Seconds(60)));

  // 3. The killed instance comes back with its pre-outage state; partitions move back to it.
  exec[owner] = Start(w, owner);
  {
    INFO("after the killed instance came back: " << why);
    REQUIRE(WaitForServingSplit({&exec["a"], &exec["b"]}, absl::Seconds(60), &why));
  }
  // Wave 3 enrolled (its first steps fired) on both instances, then day 3: its second steps come
  // due, and the sender's last emails go out.
  timer_wave();
  REQUIRE(reader.PollUntil(
      [&] {
        return Count(reader, w.topics()).tasks.size() >=
               2 * static_cast<size_t>(timer_enrollments) - per_wave;
      },
      absl::Seconds(60)));
  w.AdvanceClock(NextUtcDay(w.Now()) - w.Now() + absl::Seconds(1));
  const size_t expected_tasks = 2 * static_cast<size_t>(timer_enrollments);
  const bool all = reader.PollUntil(
      [&] {
        const Effects e = Count(reader, w.topics());
        return e.tasks.size() >= expected_tasks && static_cast<int>(e.emails.size()) >= kEmails;
      },
      absl::Seconds(60));
  INFO(Count(reader, w.topics()).tasks.size()
       << " of " << expected_tasks << " tasks, " << Count(reader, w.topics()).emails.size()
       << " of " << kEmails << " emails");
  REQUIRE(all);
  reader.Poll(absl::Seconds(2));  // a duplicate or an extra email would arrive now

  const Effects e = Count(reader, w.topics());
  CHECK(e.tasks.size() == expected_tasks);
  CHECK(Duplicated(e.tasks) == 0);
  CHECK(e.emails.size() == static_cast<size_t>(kEmails));
  CHECK(Duplicated(e.emails) == 0);
  CHECK(reader.On(w.topics().task_events).size() == expected_tasks);
  CHECK(reader.On(w.topics().email_events).size() == static_cast<size_t>(kEmails));
  // Exactly the limit on each of the three company days.
  CHECK(e.emails_per_day.size() == 3);
  for (const auto& [day, n] : e.emails_per_day) {
    INFO("day " << day);
    CHECK(n == kDailyLimit);
  }
  // The sender's decisions form one unbroken ledger (no entry decided twice or lost).
  std::set<int64_t> ledger;
  for (const v1::Envelope* l :
       reader.Of(w.topics().executor_events, v1::Envelope::kSendLedgerEntry)) {
    CHECK(ledger.insert(l->send_ledger_entry().seq()).second);
  }
  REQUIRE(!ledger.empty());
  CHECK(*ledger.begin() == 1);
  CHECK(*ledger.rbegin() == static_cast<int64_t>(ledger.size()));
  for (auto& [id, i] : exec) CHECK(i.process->Terminate() == 0);
}

}  // namespace
}  // namespace sequences::executor::e2e
