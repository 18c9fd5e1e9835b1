// UpdateSequence without expected_version (tier e2e, the real sequence-api process): a caller who
// names no version is never refused ABORTED, however many callers update the sequence at once.
// (It used to fill expected_version in from a read outside the sequence's lock, so concurrent
// callers conflicted on a version none of them had asked for.)
#include <catch2/catch.hpp>
#include <future>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"

namespace sequences::testing {
namespace {

TEST_CASE(
    "Given one API instance and eight callers updating one sequence at once without "
    "expected_version, then every update is acknowledged, none ABORTED, each at its own "
    "version") {
  const std::string prefix = UniqueName("update-concurrency") + ".";
  ApiProcess api(prefix, TempDir("update-concurrency-e2e") + "/data");
  v1::CreateSequenceRequest create;
  create.set_parent("companies/acme");
  create.set_request_id("create");
  create.mutable_sequence()->set_display_name("Concurrent");
  create.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
  v1::SequenceResponse created;
  grpc::Status s = api.sequences().CreateSequence(CallAs("acme").get(), create, &created);
  INFO(s.error_message());
  REQUIRE(s.ok());

  constexpr int kCallers = 8;
  constexpr int kRounds = 4;
  // Each caller returns "code version" per update (no Catch assertions in threads).
  auto caller = [&](int who) {
    std::vector<std::string> results;
    for (int round = 0; round < kRounds; ++round) {
      v1::UpdateSequenceRequest req;
      req.mutable_sequence()->set_name(created.sequence().name());
      req.mutable_sequence()->set_display_name(absl::StrCat("caller-", who, "-", round));
      req.mutable_update_mask()->add_paths("display_name");
      req.set_request_id(absl::StrCat("update-", who, "-", round));
      v1::SequenceResponse resp;
      grpc::Status st = api.sequences().UpdateSequence(CallAs("acme").get(), req, &resp);
      results.push_back(st.ok() ? absl::StrCat("OK ", resp.sequence().version())
                                : absl::StrCat(st.error_code(), " ", st.error_message()));
    }
    return results;
  };
  std::vector<std::future<std::vector<std::string>>> running;
  for (int who = 0; who < kCallers; ++who) {
    running.push_back(std::async(std::launch::async, caller, who));
  }
  std::set<std::string> versions;
  for (auto& r : running) {
    for (const std::string& result : r.get()) {
      INFO(result);
      CHECK(result.rfind("OK ", 0) == 0);
      CHECK(versions.insert(result).second);  // one acknowledgement per version
    }
  }
  CHECK(versions.size() == kCallers * kRounds);
}

}  // namespace
}  // namespace sequences::testing
