// What the API's health and metrics say of the broker (Ops), with a question that a test answers,
// holds stuck, or releases, on a simulated clock. The real question against a real broker is
// covered by the e2e tier (api_broker_fault_test: killed, stopped and frozen brokers).
#include "services/sequence-api/ops.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "services/sequence-api/tests/api_harness.h"
#include "tests/support/eventually.h"

namespace sequences::api {
namespace {

using testing::Eventually;
using unit::kT0;
using unit::kTopics;

// The broker answers: reachable, and sequence-events partition 0 holds offsets [0, 5) that the
// (empty) read model has not folded.
BrokerAnswer Answered() {
  BrokerAnswer a;
  a.reachable = true;
  a.ends.emplace();
  (*a.ends)[{kTopics.sequence_events, 0}] = {.low = 0, .high = 5};
  return a;
}

// A question the test controls: answers `Answered()` until `stuck` is set, then blocks until
// `release` is notified. Shared with the probe's thread.
struct Broker {
  std::atomic<bool> stuck{false};
  std::atomic<bool> reachable{true};
  std::atomic<int> asked{0};
  absl::Notification release;
  std::function<BrokerAnswer()> Question() {
    return [this] {
      ++asked;
      if (stuck) release.WaitForNotification();
      BrokerAnswer a = Answered();
      a.reachable = reachable;
      if (!a.reachable) a.ends.reset();
      return a;
    };
  }
};

bool Shows(Ops& ops, const std::string& line) {
  return absl::StrContains(ops.PrometheusText(), line + "\n");
}

// Ops over a fresh read model, asking `broker` on a simulated clock from its construction on.
// Declared in this order so that Ops (and its probe's thread) goes before the broker it asks; a
// test whose broker is stuck releases it before the end.
struct Fixture {
  explicit Fixture(bool reachable = true, bool stuck = false) {
    broker.reachable = reachable;
    broker.stuck = stuck;
    ops = std::make_unique<Ops>(OpsOptions{.topics = kTopics}, *rm, broker.Question(), clock);
  }
  // Waits until the loop has taken the broker's first answer (the lag of Answered()).
  void FirstAnswerTaken() {
    REQUIRE(Eventually(
        [&] { return ops->Refresh() && Shows(*ops, "sequences_api_read_model_lag_records 5"); }));
  }
  std::unique_ptr<ReadModel> rm = unit::OpenReadModel();
  SimulatedClock clock{kT0};
  Broker broker;
  std::unique_ptr<Ops> ops;
};

TEST_CASE(
    "given a broker that answers, when the loop refreshes, then it is reachable and the metrics "
    "show the read model's lag from the partition ends") {
  Fixture f;
  f.FirstAnswerTaken();
  CHECK(Shows(*f.ops, "sequences_api_broker_reachable 1"));
}

TEST_CASE(
    "given a broker whose answer gets stuck (a request that outlives its timeout), when more than "
    "5 s pass on the clock, then the loop is told unreachable without waiting for it, and "
    "reachable again once it answers") {
  Fixture f;
  f.FirstAnswerTaken();
  f.broker.stuck = true;
  f.clock.Advance(absl::Seconds(1));  // the next question is asked, and does not return
  REQUIRE(Eventually([&] { return f.broker.asked == 2; }));
  f.clock.Advance(absl::Seconds(4));  // the latest answer is 5 s old: still fresh
  CHECK(f.ops->Refresh());
  f.clock.Advance(absl::Seconds(1));
  CHECK_FALSE(f.ops->Refresh());
  CHECK(Shows(*f.ops, "sequences_api_broker_reachable 0"));
  // An unknown lag is left out rather than made up.
  CHECK_FALSE(absl::StrContains(f.ops->PrometheusText(), "sequences_api_read_model_lag_records"));
  CHECK_FALSE(f.ops->Ready().ok());
  f.broker.stuck = false;
  f.broker.release.Notify();
  CHECK(Eventually([&] { return f.ops->Refresh(); }));
  CHECK(Shows(*f.ops, "sequences_api_broker_reachable 1"));
}

TEST_CASE(
    "given a broker that says no (a metadata request that fails), when the loop refreshes, then "
    "it is unreachable at once, with no lag") {
  Fixture f(/*reachable=*/false);
  REQUIRE(Eventually([&] { return f.broker.asked >= 1; }));
  CHECK(Eventually([&] { return !f.ops->Refresh(); }));
  CHECK(Shows(*f.ops, "sequences_api_broker_reachable 0"));
  CHECK_FALSE(absl::StrContains(f.ops->PrometheusText(), "sequences_api_read_model_lag_records"));
}

TEST_CASE(
    "given a broker that never answers the first question, then a starting API counts it "
    "reachable for 5 s (not reported down while it asks) and unreachable after") {
  Fixture f(/*reachable=*/true, /*stuck=*/true);
  REQUIRE(Eventually([&] { return f.broker.asked == 1; }));
  CHECK(f.ops->Refresh());
  f.clock.Advance(absl::Seconds(5));
  CHECK(f.ops->Refresh());
  f.clock.Advance(absl::Seconds(1));
  CHECK_FALSE(f.ops->Refresh());
  f.broker.release.Notify();  // lets the probe's thread end with the test
}

}  // namespace
}  // namespace sequences::api
