// Both services on a three-node KRaft cluster (replication factor 3, min.insync.replicas=2) while
// nodes die (tier "cluster", opt-in: SEQUENCES_CLUSTER_TESTS=1 ./deploy/local/test.sh -L cluster).
// Under a steady stream of Enroll calls, the node leading most enrollment partitions is killed
// with kill -9 and brought back; then two of the three nodes are killed. Every enrolled deal's
// step must fire exactly once; the API must keep acknowledging with two nodes up, and with one
// node up answer only UNAVAILABLE or DEADLINE_EXCEEDED (never OK: min.insync.replicas=2 cannot
// be met).
//
// SEQUENCES_CLUSTER_FAULT_SECONDS (default 10) sets how long the load runs with a node down.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/api/api_process.h"
#include "tests/e2e/system/system_harness.h"
#include "tests/support/cluster.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/topic_reader.h"

namespace sequences::testing {
namespace {

// One Enroll call and its answer.
struct Outcome {
  std::string item;
  grpc::StatusCode code;
  absl::Duration took;
  absl::Duration deadline;
};

grpc::StatusCode EnrollOne(ApiProcess& api, const std::string& sequence, const std::string& item,
                           absl::Duration deadline) {
  v1::EnrollRequest req;
  req.set_parent(sequence);
  v1::EnrollItem* it = req.mutable_item();
  it->set_entity_kind(v1::ENTITY_KIND_DEAL);
  it->set_item_id(item);
  it->set_owner_id("rep-1");
  it->set_request_id("enroll-" + item);
  v1::EnrollmentResponse resp;
  return api.enrollments()
      .Enroll(CallAs(kCompany, "u1", absl::ToDoubleSeconds(deadline)).get(), req, &resp)
      .error_code();
}

// Enrolls new deals one after another on its own thread, recording every answer.
class Load {
 public:
  Load(ApiProcess& api, std::string sequence) : api_(api), sequence_(std::move(sequence)) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_.load(); ++i) {
        const std::string item = absl::StrCat("c", i);
        const absl::Duration deadline = absl::Seconds(8);
        const absl::Time start = absl::Now();
        const grpc::StatusCode code = EnrollOne(api_, sequence_, item, deadline);
        std::lock_guard<std::mutex> lock(mu_);
        outcomes_.push_back({item, code, absl::Now() - start, deadline});
        if (code != grpc::StatusCode::OK) absl::SleepFor(absl::Milliseconds(200));
      }
    });
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Outcome> outcomes() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_;
  }
  int OkSince(size_t from) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (size_t i = from; i < outcomes_.size(); ++i) n += outcomes_[i].code == grpc::StatusCode::OK;
    return n;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_.size();
  }

 private:
  ApiProcess& api_;
  std::string sequence_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Outcome> outcomes_;
  std::thread thread_;
};

bool Refusal(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAVAILABLE || c == grpc::StatusCode::DEADLINE_EXCEEDED;
}

TEST_CASE(
    "On a three-node cluster under load, kill -9 of the leader of the busiest partitions and its "
    "return lose and duplicate nothing and the API keeps acknowledging, and with one node left the "
    "API refuses every write") {
  const char* env = std::getenv("SEQUENCES_CLUSTER_FAULT_SECONDS");
  const absl::Duration outage = absl::Seconds(env != nullptr ? std::atoi(env) : 10);
  PrivateCluster cluster;
  REQUIRE(cluster.Start().ok());
  const std::string prefix = UniqueName("cluster") + ".";
  const service::Topics topics = service::Topics::WithPrefix(prefix);
  const std::string dir = TempDir("cluster-fault");
  ApiProcess api(prefix, dir + "/api",
                 {"--bootstrap_servers=" + cluster.bootstrap(), "--delivery_timeout_ms=6000"});
  CHECK(api.process().Log().find("\"replication_factor\":\"3\"") != std::string::npos);
  CHECK(api.process().Log().find("\"min_insync_replicas\":\"2\"") != std::string::npos);
  auto executor = ChildProcess::Start(
      {ServiceBinary("step-executor"), "--bootstrap_servers=" + cluster.bootstrap(),
       "--topic_prefix=" + prefix, "--group_id=" + UniqueName("executors"),
       "--instance_id=" + UniqueName("executor"), "--data_dir=" + dir + "/executor",
       absl::StrCat("--partitions=", kPartitions)},
      dir + "/executor.log");
  REQUIRE(executor.ok());
  REQUIRE((*executor)->WaitForLog("\"msg\":\"running\"", absl::Seconds(60)));
  const std::string sequence = CreateSequence(api, "create-cluster", {ActivityStep("call", 0)});

  Load load(api, sequence);
  absl::SleepFor(absl::Seconds(2));
  REQUIRE(load.OkSince(0) > 0);

  // The node that leads most enrollment partitions, kill -9.
  auto leaders = cluster.Leaders(topics.enrollment_events);
  REQUIRE(leaders.ok());
  std::map<int, int> led;
  for (const auto& [partition, node] : *leaders) ++led[node];
  int victim = 1;
  for (const auto& [node, n] : led) victim = n > led[victim] ? node : victim;
  INFO("killing node " << victim);
  REQUIRE(cluster.KillNode(victim).ok());
  const size_t at_kill = load.size();
  absl::SleepFor(outage);
  const int ok_with_two = load.OkSince(at_kill);
  CHECK(ok_with_two > 0);
  REQUIRE(cluster.StartNode(victim).ok());
  absl::SleepFor(absl::Seconds(2));
  load.Stop();

  // One node left: no write can reach two in-sync replicas.
  const int a = victim % 3 + 1;
  const int b = a % 3 + 1;
  REQUIRE(cluster.KillNode(a).ok());
  REQUIRE(cluster.KillNode(b).ok());
  std::vector<Outcome> lonely;
  for (int i = 0; i < 3; ++i) {
    const std::string item = absl::StrCat("lonely", i);
    const absl::Time start = absl::Now();
    lonely.push_back({item, EnrollOne(api, sequence, item, absl::Seconds(8)), absl::Now() - start,
                      absl::Seconds(8)});
  }
  REQUIRE(cluster.StartNode(a).ok());
  REQUIRE(cluster.StartNode(b).ok());
  // Writes work again.
  bool wrote = false;
  const absl::Time until = absl::Now() + absl::Seconds(60);
  for (int i = 0; !wrote && absl::Now() < until; ++i) {
    wrote = EnrollOne(api, sequence, absl::StrCat("after", i), absl::Seconds(8)) ==
            grpc::StatusCode::OK;
    if (wrote) lonely.push_back({absl::StrCat("after", i), grpc::StatusCode::OK, {}, {}});
  }
  REQUIRE(wrote);

  std::set<std::string> acknowledged;
  std::vector<Outcome> all = load.outcomes();
  for (const Outcome& o : all) {
    INFO(o.item << " answered " << o.code << " after " << absl::FormatDuration(o.took));
    CHECK((o.code == grpc::StatusCode::OK || Refusal(o.code)));
    CHECK(o.took < o.deadline + absl::Seconds(1));
    if (o.code == grpc::StatusCode::OK) acknowledged.insert(ItemKey(o.item));
  }
  for (size_t i = 0; i < 3; ++i) {
    INFO("one node up: " << lonely[i].item << " answered " << lonely[i].code);
    CHECK(Refusal(lonely[i].code));
    CHECK(lonely[i].took < lonely[i].deadline + absl::Seconds(1));
  }
  acknowledged.insert(ItemKey(lonely.back().item));

  // Every acknowledged deal gets its task exactly once; no deal gets two.
  TopicReader reader({topics.task_events}, kPartitions, cluster.bootstrap());
  std::map<std::string, int> tasks;  // item key -> tasks
  auto count = [&] {
    tasks.clear();
    for (const Seen& s : reader.seen()) ++tasks[s.message.key];
  };
  auto covered = [&] {
    count();
    for (const std::string& k : acknowledged) {
      if (tasks.count(k) == 0) return false;
    }
    return true;
  };
  reader.PollUntil(covered, absl::Seconds(90));
  reader.Poll(absl::Seconds(2));  // a duplicate would show up now
  count();
  INFO(acknowledged.size() << " acknowledged, " << tasks.size() << " deals with a task, "
                           << ok_with_two << " acknowledged with two nodes");
  for (const std::string& k : acknowledged) {
    INFO(k);
    CHECK(tasks[k] == 1);
  }
  for (const auto& [k, n] : tasks) {
    INFO(k);
    CHECK(n == 1);
  }
  CHECK((*executor)->Running());
  CHECK((*executor)->Terminate() == 0);
  CHECK(api.process().Terminate() == 0);
  REQUIRE(cluster.Stop().ok());
}

}  // namespace
}  // namespace sequences::testing
