// sequence-api across broker outages (tier "e2e"): a private broker (never the shared test
// broker) is killed with kill -9, then stopped cleanly, and restarted on the same data each time,
// while calls keep coming. Every write answered OK must be durable (a new instance folding the log
// from zero lists it); every other answer must be UNAVAILABLE or DEADLINE_EXCEEDED, given within
// the call's deadline; and the same API process must serve writes again after each restart.
#include <catch2/catch.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/broker.h"
#include "tests/support/health.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/steps.h"

namespace sequences::testing {
namespace {

constexpr char kCompany[] = "acme";

v1::CreateSequenceRequest Create(const std::string& request_id) {
  v1::CreateSequenceRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_request_id(request_id);
  v1::Sequence* s = req.mutable_sequence();
  s->set_display_name(absl::StrCat("Outage ", request_id));
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  *s->add_steps() = InDays(ActivityStep("call-1", 1));
  return req;
}

TEST_CASE(
    "Across a broker kill -9 and a clean stop, each followed by a restart on the same data, "
    "every API write is durable when answered OK, otherwise UNAVAILABLE or DEADLINE_EXCEEDED "
    "within its deadline, and the API writes again after each restart") {
  PrivateBroker broker;
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  const std::string prefix = UniqueName("api-outage") + ".";
  const std::string dir = TempDir("api-outage");
  std::set<std::string> acknowledged;  // sequence names answered OK
  int refused = 0;
  int n = 0;
  {
    ApiProcess api(prefix, dir + "/api",
                   {"--bootstrap_servers=" + broker.bootstrap(), "--delivery_timeout_ms=4000"});
    // One call with a `deadline`; checks the answer's kind and timing.
    auto call = [&](absl::Duration deadline) {
      v1::SequenceResponse resp;
      const absl::Time start = absl::Now();
      grpc::Status s = api.sequences().CreateSequence(
          CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(),
          Create(absl::StrCat("req-", ++n)), &resp);
      const absl::Duration took = absl::Now() - start;
      INFO("call " << n << ": " << s.error_code() << " " << s.error_message() << " after "
                   << absl::FormatDuration(took));
      CHECK(took < deadline + absl::Seconds(1));
      if (s.ok()) {
        acknowledged.insert(resp.sequence().name());
      } else {
        ++refused;
        CHECK((s.error_code() == grpc::StatusCode::UNAVAILABLE ||
               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED));
      }
      return s.ok();
    };
    REQUIRE(call(absl::Seconds(10)));
    CHECK(HealthOf(api.address()) == "SERVING");
    for (int k = 0; k < 2; ++k) {
      INFO("outage " << k + 1);
      if (k == 0) {
        REQUIRE(broker.Kill().ok());
      } else {
        REQUIRE(broker.Stop().ok());
      }
      // Calls while it is down: a long deadline (the producer gives up first: UNAVAILABLE) and a
      // short one (the deadline ends first: DEADLINE_EXCEEDED).
      call(absl::Seconds(8));
      call(absl::Seconds(1));
      // Health tells the truth: a load balancer stops sending calls here while the broker is down.
      CHECK(WaitForHealth(api.address(), "NOT_SERVING", absl::Seconds(15)));
      REQUIRE(broker.Start().ok());
      // The same process writes again, soon.
      bool wrote = false;
      const absl::Time until = absl::Now() + absl::Seconds(60);
      while (!wrote && absl::Now() < until) wrote = call(absl::Seconds(10));
      REQUIRE(wrote);
      CHECK(WaitForHealth(api.address(), "SERVING", absl::Seconds(15)));
    }
    CHECK(refused >= 2);
    CHECK(api.process().Terminate() == 0);
  }
  // Durable: a fresh instance folding the log from zero lists every acknowledged sequence.
  ApiProcess rebuilt(prefix, dir + "/rebuilt", {"--bootstrap_servers=" + broker.bootstrap()});
  v1::ListSequencesRequest list;
  list.set_parent(absl::StrCat("companies/", kCompany));
  list.set_page_size(100);
  v1::ListSequencesResponse listed;
  REQUIRE(rebuilt.sequences().ListSequences(CallAs(kCompany).get(), list, &listed).ok());
  std::set<std::string> found;
  for (const v1::Sequence& s : listed.sequences()) found.insert(s.name());
  for (const std::string& name : acknowledged) {
    INFO(name);
    CHECK(found.count(name) == 1);
  }
}

}  // namespace
}  // namespace sequences::testing
