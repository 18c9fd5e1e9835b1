// What the API's health and metrics say of the broker (Ops), with a question that a test answers,
// holds stuck, or releases, on a simulated clock. The real question against a real broker is
// covered by the e2e tier (api_broker_fault_test: killed, stopped and frozen brokers).
#include "services/sequence-api/ops.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <memory>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "tests/support/process.h"

namespace sequences::api {
namespace {

const service::Topics kTopics = service::Topics::WithPrefix("t.");
const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

std::unique_ptr<ReadModel> OpenFresh() {
  auto rm = ReadModel::Open(
      {.data_dir = testing::TempDir("ops") + "/db", .kafka = {}, .topics = kTopics});
  REQUIRE(rm.ok());
  return std::move(*rm);
}

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

template <typename Fn>
bool Eventually(Fn ready) {
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!ready()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

bool Shows(Ops& ops, const std::string& line) {
  return absl::StrContains(ops.PrometheusText(), line + "\n");
}

TEST_CASE(
    "given a broker that answers, when the loop refreshes, then it is reachable and the metrics "
    "show the read model's lag from the partition ends") {
  auto rm = OpenFresh();
  SimulatedClock clock(kT0);
  Broker broker;
  Ops ops({.topics = kTopics}, *rm, broker.Question(), clock);
  REQUIRE(Eventually(
      [&] { return ops.Refresh() && Shows(ops, "sequences_api_read_model_lag_records 5"); }));
  CHECK(Shows(ops, "sequences_api_broker_reachable 1"));
}

TEST_CASE(
    "given a broker whose answer gets stuck (a request that outlives its timeout), when more than "
    "5 s pass on the clock, then the loop is told unreachable without waiting for it, and "
    "reachable again once it answers") {
  auto rm = OpenFresh();
  SimulatedClock clock(kT0);
  Broker broker;
  Ops ops({.topics = kTopics}, *rm, broker.Question(), clock);
  REQUIRE(Eventually(
      [&] { return ops.Refresh() && Shows(ops, "sequences_api_read_model_lag_records 5"); }));
  broker.stuck = true;
  clock.Advance(absl::Seconds(1));  // the next question is asked, and does not return
  REQUIRE(Eventually([&] { return broker.asked == 2; }));
  clock.Advance(absl::Seconds(4));  // the latest answer is 5 s old: still fresh
  CHECK(ops.Refresh());
  clock.Advance(absl::Seconds(1));
  CHECK_FALSE(ops.Refresh());
  CHECK(Shows(ops, "sequences_api_broker_reachable 0"));
  // An unknown lag is left out rather than made up.
  CHECK_FALSE(absl::StrContains(ops.PrometheusText(), "sequences_api_read_model_lag_records"));
  CHECK_FALSE(ops.Ready().ok());
  broker.stuck = false;
  broker.release.Notify();
  CHECK(Eventually([&] { return ops.Refresh(); }));
  CHECK(Shows(ops, "sequences_api_broker_reachable 1"));
}

TEST_CASE(
    "given a broker that says no (a metadata request that fails), when the loop refreshes, then "
    "it is unreachable at once, with no lag") {
  auto rm = OpenFresh();
  SimulatedClock clock(kT0);
  Broker broker;
  broker.reachable = false;
  Ops ops({.topics = kTopics}, *rm, broker.Question(), clock);
  REQUIRE(Eventually([&] { return broker.asked >= 1; }));
  CHECK(Eventually([&] { return !ops.Refresh(); }));
  CHECK(Shows(ops, "sequences_api_broker_reachable 0"));
  CHECK_FALSE(absl::StrContains(ops.PrometheusText(), "sequences_api_read_model_lag_records"));
}

TEST_CASE(
    "given a broker that never answers the first question, then a starting API counts it "
    "reachable for 5 s (not reported down while it asks) and unreachable after") {
  auto rm = OpenFresh();
  SimulatedClock clock(kT0);
  Broker broker;
  broker.stuck = true;
  {
    Ops ops({.topics = kTopics}, *rm, broker.Question(), clock);
    REQUIRE(Eventually([&] { return broker.asked == 1; }));
    CHECK(ops.Refresh());
    clock.Advance(absl::Seconds(5));
    CHECK(ops.Refresh());
    clock.Advance(absl::Seconds(1));
    CHECK_FALSE(ops.Refresh());
    broker.release.Notify();  // lets the probe's thread end with the test
  }
}

}  // namespace
}  // namespace sequences::api
