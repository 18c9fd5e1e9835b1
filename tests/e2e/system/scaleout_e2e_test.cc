// Two sequence-api instances on the same topics (tier e2e): concurrent updates of one sequence
// through both never acknowledge an update that the log then ignores.
#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/sequence.h"
#include "tests/e2e/system/system_harness.h"

namespace sequences::testing {
namespace {

struct Acked {
  int64_t version;
  std::string display_name;
};

TEST_CASE("two API instances updating one sequence at once never acknowledge a lost update") {
  const std::string prefix = UniqueName("scaleout") + ".";
  const std::string dir = TempDir("scaleout-e2e");
  ApiProcess first(prefix, dir + "/api-1");
  ApiProcess second(prefix, dir + "/api-2");
  const std::string name = CreateSequence(first, "scaleout-create", {ActivityStep("call-1", 60)});

  constexpr int kRounds = 15;
  auto writer = [&](ApiProcess& api, const std::string& who) {
    std::vector<Acked> acked;
    std::vector<std::string> failures;
    for (int round = 0; round < kRounds; ++round) {
      v1::UpdateSequenceRequest req;
      req.mutable_sequence()->set_name(name);
      req.mutable_sequence()->set_display_name(absl::StrCat(who, "-", round));
      req.mutable_update_mask()->add_paths("display_name");
      req.set_request_id(absl::StrCat(who, "-", round));
      // A client retries ABORTED (a conflict) with the same request id, as the API asks.
      for (int attempt = 0; attempt < 20; ++attempt) {
        v1::SequenceResponse resp;
        grpc::Status s = api.sequences().UpdateSequence(CallAs(kCompany).get(), req, &resp);
        if (s.ok()) {
          acked.push_back({resp.sequence().version(), resp.sequence().display_name()});
          break;
        }
        if (s.error_code() != grpc::StatusCode::ABORTED &&
            s.error_code() != grpc::StatusCode::UNAVAILABLE) {
          failures.push_back(absl::StrCat(s.error_code(), " ", s.error_message()));
          break;
        }
      }
    }
    return std::make_pair(acked, failures);
  };
  auto a = std::async(std::launch::async, writer, std::ref(first), "first");
  auto b = std::async(std::launch::async, writer, std::ref(second), "second");
  auto [acked_a, failures_a] = a.get();
  auto [acked_b, failures_b] = b.get();
  CHECK(failures_a.empty());
  CHECK(failures_b.empty());
  std::vector<Acked> acked = acked_a;
  acked.insert(acked.end(), acked_b.begin(), acked_b.end());
  CHECK(acked.size() == 2 * kRounds);

  // The log as every reader folds it: the first event of each version wins.
  Reader reader({prefix + "sequence-events"});
  domain::SequenceState state;
  std::map<int64_t, std::string> names;
  auto fold = [&] {
    for (const Seen* s : reader.On(prefix + "sequence-events")) {
      const int64_t before = state.version;
      state = domain::EvolveSequence(std::move(state), s->event);
      if (state.version != before) names[state.version] = state.name;
    }
    return static_cast<int>(names.size()) >= 1 + 2 * kRounds;
  };
  reader.PollUntil(fold, absl::Seconds(30));
  std::map<int64_t, std::string> claimed;
  for (const Acked& ack : acked) {
    INFO("acknowledged version " << ack.version << " as " << ack.display_name);
    CHECK(claimed.emplace(ack.version, ack.display_name).second);  // one OK per version
    CHECK(names[ack.version] == ack.display_name);                 // and it is what the log kept
  }
}

}  // namespace
}  // namespace sequences::testing
