#ifndef SEQUENCES_TESTS_E2E_EXECUTOR_HARNESS_H_
#define SEQUENCES_TESTS_E2E_EXECUTOR_HARNESS_H_

// What the executor's e2e tests share: private topics per test, a publisher that writes
// envelopes as the API and the automation engine do (idempotent producer), real step-executor
// processes, and a read_committed reader of the output topics.
//
// Time: no test waits for a real minute. A test whose steps have minute delays calls
// World::UseTestClock() before starting executors; they then run with --testing_clock_file
// (libs/service/testing_clock.h, the test side in tests/support/test_clock.h: why a clock offset
// and not sub-minute delays), and AdvanceClock(d) moves their time forward. Such a test checks
// "not before its due time" by looking before it advances, and stamps its inputs with Now() (the
// executors' time). The other tests run their executors on the real clock.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "libs/domain/envelope.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/service/topics.h"
#include "services/step-executor/tests/builders.h"
#include "tests/support/health.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/test_clock.h"
#include "tests/support/topic_reader.h"

namespace sequences::executor::e2e {

using sequences::testing::Bootstrap;
using sequences::testing::ChildProcess;
using sequences::testing::HealthOf;
using sequences::testing::ServiceBinary;
using sequences::testing::TempDir;
using sequences::testing::UniqueName;
using sequences::testing::WaitForHealth;

inline constexpr int kPartitions = 4;

inline kafka::ClientConfig Client(const std::string& bootstrap = Bootstrap()) {
  kafka::ClientConfig c;
  c.bootstrap_servers = bootstrap;
  return c;
}

// A test's private world: its own topic prefix, consumer group and directories, on the shared
// test broker or on `bootstrap` (a fault test's private broker).
class World {
 public:
  explicit World(std::string bootstrap = Bootstrap())
      : bootstrap_(std::move(bootstrap)),
        prefix_(UniqueName("exec") + "."),
        topics_(service::Topics::WithPrefix(prefix_)) {
    auto admin = kafka::Admin::Create(Client(bootstrap_));
    REQUIRE(admin.ok());
    REQUIRE(service::EnsureTopics(**admin, topics_, kPartitions, absl::Seconds(30)).ok());
    // Long enough to ride out a fault test's broker outage.
    auto producer = kafka::Producer::Create(
        {.client = Client(bootstrap_), .delivery_timeout = absl::Seconds(120)});
    REQUIRE(producer.ok());
    producer_ = std::move(*producer);
    dir_ = TempDir("exec-e2e");
  }

  const service::Topics& topics() const { return topics_; }
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& prefix() const { return prefix_; }

  // Executors started from now on run on this test's clock (call before StartExecutor).
  void UseTestClock() { use_test_clock_ = true; }
  // Moves the executors' time forward (UseTestClock first).
  void AdvanceClock(absl::Duration d) {
    REQUIRE(use_test_clock_);
    clock_.Advance(d);
  }
  // The executors' time: the wall clock plus every advance so far.
  absl::Time Now() const { return clock_.Now(); }
  const sequences::testing::TestClock& clock() const { return clock_; }

  std::string DataDir(const std::string& instance) const {
    return absl::StrCat(dir_, "/", instance, "-state");
  }

  void Publish(const std::string& topic, const std::string& key, const v1::Envelope& e) {
    auto r = producer_->Send({topic, key, e.SerializeAsString()});
    INFO(r.status().ToString());
    REQUIRE(r.ok());
  }
  void PublishRaw(const std::string& topic, const std::string& key, const std::string& value) {
    REQUIRE(producer_->Send({topic, key, value}).ok());
  }
  void PublishSequence(const std::vector<v1::Envelope>& events) {
    for (const v1::Envelope& e : events) {
      std::string id;
      REQUIRE(domain::GetSequenceEventKey(e, &id, nullptr));
      Publish(topics_.sequence_events, id, e);
    }
  }
  // Many records without waiting for each report (for thousands of enrollments).
  void PublishAll(const std::string& topic,
                  const std::vector<std::pair<std::string, v1::Envelope>>& batch) {
    std::vector<kafka::Record> records;
    for (const auto& [key, e] : batch) records.push_back({topic, key, e.SerializeAsString()});
    for (const auto& r : producer_->SendAll(records)) REQUIRE(r.ok());
  }

  // Starts an executor process; waits until it joined the group and recovered.
  std::unique_ptr<ChildProcess> StartExecutor(const std::string& instance,
                                              std::vector<std::string> extra = {}) {
    std::unique_ptr<ChildProcess> p = LaunchExecutor(instance, std::move(extra));
    INFO("log " << p->log_path());
    REQUIRE(p->WaitForLog("\"msg\":\"running\"", absl::Seconds(60)));
    return p;
  }

  // Starts an executor process and returns at once (it warms up, then logs "running").
  std::unique_ptr<ChildProcess> LaunchExecutor(const std::string& instance,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {ServiceBinary("step-executor"),
                                     "--bootstrap_servers=" + bootstrap_,
                                     "--topic_prefix=" + prefix_,
                                     "--group_id=" + prefix_ + "executor",
                                     "--instance_id=" + instance,
                                     "--data_dir=" + DataDir(instance),
                                     absl::StrCat("--partitions=", kPartitions),
                                     "--metrics_interval=2s"};
    if (use_test_clock_) argv.push_back(clock_.Flag());
    for (auto& e : extra) argv.push_back(std::move(e));
    const std::string log = absl::StrCat(dir_, "/", instance, "-", ++starts_, ".log");
    auto p = ChildProcess::Start(argv, log);
    INFO("log " << log);
    REQUIRE(p.ok());
    return std::move(*p);
  }

 private:
  std::string bootstrap_;
  std::string prefix_;
  service::Topics topics_;
  std::unique_ptr<kafka::Producer> producer_;
  std::string dir_;
  int starts_ = 0;
  bool use_test_clock_ = false;
  sequences::testing::TestClock clock_;
};

using sequences::testing::Seen;
// Reads output topics (read_committed, from the beginning) of the default or a private broker.
class Reader : public sequences::testing::TopicReader {
 public:
  explicit Reader(const std::vector<std::string>& topics,
                  const std::string& bootstrap = Bootstrap())
      : TopicReader(topics, kPartitions, bootstrap) {}
};

// The side-effect id of a task or email event (its idempotency key).
inline std::string EffectId(const v1::Envelope& e) {
  if (e.has_task_created()) return e.task_created().task_id();
  if (e.has_email_send()) return e.email_send().idempotency_key();
  return "";
}

// An integer from the environment (long-run flags of the fault tests), or `fallback`.
inline int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// Enroll requests of deals c1/deal/<from>..<to-1> in `sequence_id` (version 1), keyed by item,
// requested `at` (a test clock's time, or now).
inline std::vector<std::pair<std::string, v1::Envelope>> Enrollments(const std::string& sequence_id,
                                                                     int from, int to,
                                                                     absl::Time at = absl::Now()) {
  std::vector<std::pair<std::string, v1::Envelope>> batch;
  for (int i = from; i < to; ++i) {
    const std::string item = absl::StrCat("c1/deal/", i);
    batch.push_back({item, testing::Enroll(item, sequence_id, 1, at)});
  }
  return batch;
}

// Every task/email effect id and how often a read_committed consumer saw it.
inline std::map<std::string, int> EffectCounts(const Reader& reader,
                                               const service::Topics& topics) {
  std::map<std::string, int> counts;
  for (const Seen* s : reader.On(topics.task_events)) ++counts[EffectId(s->event)];
  for (const Seen* s : reader.On(topics.email_events)) ++counts[EffectId(s->event)];
  return counts;
}

// The digest in the executor's "stopped" log line or in replay's JSON output, after `marker`.
inline std::string DigestIn(const std::string& text, const std::string& marker) {
  size_t at = text.rfind(marker);
  if (at == std::string::npos) return "";
  std::smatch m;
  std::string tail = text.substr(at);
  if (std::regex_search(tail, m, std::regex("\"digest\":\"([0-9a-f]{16})\""))) return m[1];
  return "";
}

}  // namespace sequences::executor::e2e

#endif  // SEQUENCES_TESTS_E2E_EXECUTOR_HARNESS_H_
