#ifndef SEQUENCES_SERVICES_SEQUENCE_API_TESTS_API_HARNESS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_TESTS_API_HARNESS_H_

// One Api in one process, for the API's unit-tier tests: the real Api, read model and RocksDB
// store, with a loopback event log in place of the broker (loopback_event_log.h) and a simulated
// clock. A test binary derives its own Harness from ApiHarness to add what it counts or publishes.

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "libs/runtime/clock.h"
#include "services/sequence-api/api.h"
#include "services/sequence-api/tests/loopback_event_log.h"
#include "services/sequence-api/tokens.h"
#include "tests/support/process.h"
#include "tests/support/requests.h"

namespace sequences::api::unit {

inline const service::Topics kTopics = service::Topics::WithPrefix("t.");
// Before the wall clock on purpose: the read model waits on wall time (absl::Mutex), so a wait for
// a write the read model has not applied gives up at once instead of after max_read_wait.
inline const absl::Time kT0 = absl::FromUnixSeconds(1600000000);
inline constexpr int kEnrollmentPartitions = 3;

inline ApiOptions DefaultOptions() {
  ApiOptions o;
  o.topics = kTopics;
  return o;
}

// A fresh read model in a new temporary directory.
inline std::unique_ptr<ReadModel> OpenReadModel() {
  auto rm = ReadModel::Open({.data_dir = sequences::testing::TempDir("api-unit") + "/db",
                             .kafka = {},
                             .topics = kTopics});
  REQUIRE(rm.ok());
  return std::move(*rm);
}

// One Api over a fresh read model and a loopback log (enrollment-events: kEnrollmentPartitions).
struct ApiHarness {
  explicit ApiHarness(ApiOptions options = DefaultOptions())
      : read_model(OpenReadModel()),
        log(*read_model, {{kTopics.enrollment_events, kEnrollmentPartitions}}),
        api(std::move(options), log, *read_model, clock, signer) {}

  SimulatedClock clock{kT0};
  TokenSigner signer{{{.id = "k1", .secret = "0123456789abcdef0123"}}};
  std::unique_ptr<ReadModel> read_model;
  LoopbackEventLog log;
  Api api;
};

inline CallContext As(const std::string& company, const std::string& user = "u1") {
  return {.company_id = company, .user_id = user};
}

// Creates testing::CreateRequest's sequence for `company` under `request_id`; its name.
inline std::string CreateSequence(ApiHarness& h, const std::string& company,
                                  const std::string& request_id) {
  absl::StatusOr<v1::SequenceResponse> r =
      h.api.CreateSequence(As(company), sequences::testing::CreateRequest(company, request_id));
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return r->sequence().name();
}

// The last component of a resource name (a sequence's id).
inline std::string IdOf(const std::string& name) { return name.substr(name.rfind('/') + 1); }

}  // namespace sequences::api::unit

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_TESTS_API_HARNESS_H_
