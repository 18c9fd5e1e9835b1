// Broker outages under load: a private broker (never the shared test broker) is killed with
// kill -9 and restarted on the same data, stopped cleanly and restarted, or frozen (SIGSTOP: its
// connections stay open and nothing answers) and thawed, again and again, while enrollments flow.
// The executor process is never restarted: it must resume by itself every time (also after an
// outage longer than its session timeout, after which its static membership is fenced and it
// rebuilds its Kafka clients), every step must fire exactly once, and its health must tell the
// truth: NOT_SERVING while it cannot consume, SERVING again after.
//
// Sizes: CI-sized by default (3 outages, one of each kind). Longer:
//   SEQUENCES_BROKER_OUTAGES=10 SEQUENCES_BROKER_OUTAGE_ENROLLMENTS=500 ./deploy/local/test.sh -R
//   Broker
#include <catch2/catch.hpp>
#include <cstdlib>

#include "tests/e2e/executor/harness.h"
#include "tests/support/broker.h"

namespace sequences::executor::e2e {
namespace {

using namespace sequences::executor::testing;
using sequences::testing::FreePort;
using sequences::testing::PrivateBroker;

// The smallest session timeout the broker accepts by default (group.min.session.timeout.ms), so
// a "long" outage need not last long.
constexpr absl::Duration kSessionTimeout = absl::Seconds(6);

TEST_CASE(
    "Broker killed with kill -9, stopped cleanly or frozen, then back on the same data, again and "
    "again under load: the executor resumes by itself every time, fires every step exactly once, "
    "and its health says NOT_SERVING while it cannot consume") {
  const int outages = EnvInt("SEQUENCES_BROKER_OUTAGES", 3);
  const int per_wave = EnvInt("SEQUENCES_BROKER_OUTAGE_ENROLLMENTS", 300);
  const absl::Time t0 = absl::Now();
  PrivateBroker broker;
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  World w(broker.bootstrap());
  SequenceBuilder seq("c1", "s-outage");
  w.PublishSequence(
      seq.Create({ActivityStep("call", 0), EmailStep("draft", 0, false), ActivityStep("follow", 0)},
                 absl::Now()));

  auto exec = w.StartExecutor(
      "a",
      {"--health_port=0", absl::StrCat("--session_timeout=", absl::FormatDuration(kSessionTimeout)),
       "--metrics_interval=1s"});
  const absl::StatusOr<int> health_port =
      exec->WaitForPort("health server listening", "address", absl::Seconds(10));
  REQUIRE(health_port.ok());
  const std::string health = absl::StrCat("127.0.0.1:", *health_port);
  REQUIRE(WaitForHealth(health, "SERVING", absl::Seconds(60)));

  int published = 0;
  for (int k = 0; k < outages; ++k) {
    INFO("outage " << k + 1);
    // A wave of enrollments (3 steps each, all due at once): the executor is busy when the
    // broker goes.
    w.PublishAll(w.topics().enrollment_events,
                 Enrollments(seq.id(), published, published + per_wave));
    published += per_wave;
    absl::SleepFor(absl::Milliseconds(300));
    // In turn: kill -9 and a down time past the session timeout (the member is fenced); a clean
    // stop and a short down time; a freeze past the session timeout (requests sent and never
    // answered; on thaw the broker finds the member's session and transaction expired).
    enum Kind { kKill, kStop, kFreeze };
    const Kind kind = static_cast<Kind>(k % 3);
    INFO((kind == kKill ? "kill -9" : kind == kStop ? "clean stop" : "freeze"));
    const absl::Time down_at = absl::Now();
    if (kind == kKill) {
      REQUIRE(broker.Kill().ok());
    } else if (kind == kStop) {
      REQUIRE(broker.Stop().ok());
    } else {
      REQUIRE(broker.Freeze().ok());
    }
    const absl::Duration down_for =
        kind == kStop ? absl::Seconds(2) : kSessionTimeout + absl::Seconds(4);
    // It cannot consume: health must say so while the broker is away.
    // (The broker stays down until then, or for down_for if that is longer.)
    CHECK(WaitForHealth(health, "NOT_SERVING", down_for + absl::Seconds(10)));
    absl::SleepFor(down_at + down_for - absl::Now());
    REQUIRE((kind == kFreeze ? broker.Thaw() : broker.Start()).ok());
    // The same process resumes by itself.
    REQUIRE(WaitForHealth(health, "SERVING", absl::Seconds(90)));
    REQUIRE(exec->Running());
  }
  w.PublishAll(w.topics().enrollment_events,
               Enrollments(seq.id(), published, published + per_wave));
  published += per_wave;

  Reader reader({w.topics().task_events, w.topics().email_events}, broker.bootstrap());
  const size_t expected = static_cast<size_t>(published) * 3;
  REQUIRE(reader.PollUntil([&] { return reader.seen().size() >= expected; }, absl::Seconds(90)));
  reader.Poll(absl::Seconds(3));  // a duplicate would arrive now
  std::map<std::string, int> counts;
  for (const Seen* s : reader.On(w.topics().task_events)) ++counts[EffectId(s->event)];
  for (const Seen* s : reader.On(w.topics().email_events)) ++counts[EffectId(s->event)];
  CHECK(counts.size() == expected);
  int duplicated = 0;
  for (const auto& [id, n] : counts) duplicated += n > 1 ? 1 : 0;
  CHECK(duplicated == 0);
  CHECK(reader.seen().size() == expected);
  CHECK(HealthOf(health) == "SERVING");

  // SIGTERM is honoured while the broker is frozen (its requests are never answered, where a
  // killed broker refuses connections at once), within a bounded time.
  REQUIRE(broker.Freeze().ok());
  CHECK(WaitForHealth(health, "NOT_SERVING", absl::Seconds(15)));
  const absl::Time term_at = absl::Now();
  CHECK(exec->Terminate(absl::Seconds(30)) == 0);
  CHECK(absl::Now() - term_at < absl::Seconds(20));
  INFO("took " << absl::FormatDuration(absl::Now() - t0));
}

}  // namespace
}  // namespace sequences::executor::e2e
