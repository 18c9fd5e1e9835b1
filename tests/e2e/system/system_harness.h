#ifndef SEQUENCES_TESTS_E2E_SYSTEM_SYSTEM_HARNESS_H_
#define SEQUENCES_TESTS_E2E_SYSTEM_SYSTEM_HARNESS_H_

// The whole system for e2e tests: a real sequence-api and a real step-executor process on private
// topics of the real broker, a read_committed reader of the topics, and API calls (steps:
// tests/support/steps.h).
//
// Time: no test waits for a real minute. The executor runs on the test's clock
// (--testing_clock_file; tests/support/test_clock.h says why a clock offset and not sub-minute
// delays): System::AdvanceClock(d) moves its time forward, System::Now() is its time, and
// ServiceTime() maps a wall-clock moment (a record timestamp, a receive time) to it. The API stays
// on the wall clock (its time is gRPC deadlines and request bookkeeping).

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/domain/envelope.h"
#include "libs/kafka/consumer.h"
#include "libs/service/topics.h"
#include "tests/e2e/api/api_process.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/steps.h"
#include "tests/support/test_clock.h"
#include "tests/support/topic_reader.h"

namespace sequences::testing {

constexpr char kCompany[] = "acme";
// ApiProcess creates the topics with --partitions=3; the executor is told the same.
constexpr int kPartitions = 3;
// Kafka timestamps have millisecond resolution.
constexpr absl::Duration kKafkaResolution = absl::Milliseconds(1);

// One test's whole system: private topics, a sequence-api and a step-executor process.
class System {
 public:
  // `api_flags` and `executor_flags` are added to each service's command line.
  explicit System(std::vector<std::string> api_flags = {},
                  std::vector<std::string> executor_flags = {})
      : prefix_(UniqueName("system") + "."),
        topics_(service::Topics::WithPrefix(prefix_)),
        dir_(TempDir("system-e2e")) {
    api_ = std::make_unique<ApiProcess>(prefix_, dir_ + "/api", std::move(api_flags));  // topics
    const std::string instance = UniqueName("executor");
    std::vector<std::string> argv = {ServiceBinary("step-executor"),
                                     "--bootstrap_servers=" + Bootstrap(),
                                     "--topic_prefix=" + prefix_,
                                     "--group_id=" + UniqueName("executors"),
                                     "--instance_id=" + instance,
                                     "--data_dir=" + dir_ + "/executor",
                                     absl::StrCat("--partitions=", kPartitions),
                                     "--metrics_interval=2s",
                                     clock_.Flag()};
    argv.insert(argv.end(), executor_flags.begin(), executor_flags.end());
    auto process = ChildProcess::Start(argv, dir_ + "/executor.log");
    INFO(process.status().ToString());
    REQUIRE(process.ok());
    executor_ = std::move(*process);
    const bool running = executor_->WaitForLog("\"msg\":\"running\"", absl::Seconds(60));
    INFO(executor_->Log());
    REQUIRE(running);
  }
  ~System() {
    if (executor_ != nullptr && executor_->Running()) executor_->Terminate();
  }

  ApiProcess& api() { return *api_; }
  // Another sequence-api instance on the same topics (its own read model), as a second replica
  // behind a load balancer would be.
  std::unique_ptr<ApiProcess> AnotherApi(const std::string& name) {
    return std::make_unique<ApiProcess>(prefix_, dir_ + "/" + name);
  }
  ChildProcess& executor() { return *executor_; }
  const service::Topics& topics() const { return topics_; }

  // Moves the executor's time forward by `d`.
  void AdvanceClock(absl::Duration d) { clock_.Advance(d); }
  // The executor's time now.
  absl::Time Now() const { return clock_.Now(); }
  // The executor's time at wall-clock time `wall`.
  absl::Time ServiceTime(absl::Time wall) const { return clock_.ServiceTime(wall); }

 private:
  TestClock clock_;
  std::string prefix_;
  service::Topics topics_;
  std::string dir_;
  std::unique_ptr<ApiProcess> api_;
  std::unique_ptr<ChildProcess> executor_;
};

// Reads the system's topics (read_committed, from the beginning).
class Reader : public TopicReader {
 public:
  explicit Reader(const std::vector<std::string>& topics) : TopicReader(topics, kPartitions) {}
};

// The side-effect id of a task or email record (what a consumer deduplicates by).
inline std::string EffectId(const v1::Envelope& e) {
  if (e.has_task_created()) return e.task_created().task_id();
  if (e.has_email_send()) return e.email_send().idempotency_key();
  return "";
}

// StepExecuted events of one item, in log order.
inline std::vector<v1::StepExecuted> Executed(const Reader& reader, const System& sys,
                                              const std::string& item_key) {
  std::vector<v1::StepExecuted> out;
  for (const Seen* s : reader.On(sys.topics().executor_events, item_key)) {
    if (s->event.has_step_executed()) out.push_back(s->event.step_executed());
  }
  return out;
}

inline int CountEvents(const Reader& reader, const System& sys, v1::Envelope::PayloadCase payload,
                       const std::string& item_key = "") {
  int n = 0;
  for (const Seen* s : reader.On(sys.topics().executor_events, item_key)) {
    n += s->event.payload_case() == payload ? 1 : 0;
  }
  return n;
}

// --- calls (the steps come from tests/support/steps.h) ---------------------------------------

// Creates a deal sequence through the API; returns its resource name.
inline std::string CreateSequence(ApiProcess& api, const std::string& request_id,
                                  const std::vector<v1::Step>& steps) {
  v1::CreateSequenceRequest req;
  req.set_parent(absl::StrCat("companies/", kCompany));
  req.set_request_id(request_id);
  v1::Sequence* s = req.mutable_sequence();
  s->set_display_name("Follow up after demo");
  s->set_entity_kind(v1::ENTITY_KIND_DEAL);
  for (const v1::Step& step : steps) *s->add_steps() = step;
  v1::SequenceResponse resp;
  grpc::Status status = api.sequences().CreateSequence(CallAs(kCompany).get(), req, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return resp.sequence().name();
}

// Switches automated sending on and grants `sender`'s consent, both through the API.
inline void EnableAutomaticSending(ApiProcess& api, const std::string& name,
                                   const std::string& sender) {
  v1::SwitchAutomatedSendingRequest on;
  on.set_name(name);
  on.set_enabled(true);
  on.set_request_id("automated-on");
  v1::SequenceResponse resp;
  grpc::Status s = api.sequences().SwitchAutomatedSending(CallAs(kCompany).get(), on, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(resp.sequence().automated_sending());
  v1::GrantSendingConsentRequest consent;
  consent.set_name(name);
  consent.set_request_id("consent-" + sender);
  s = api.sequences().GrantSendingConsent(CallAs(kCompany, sender).get(), consent, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  const auto& consented = resp.sequence().consented_user_ids();
  CHECK(std::find(consented.begin(), consented.end(), sender) != consented.end());
}

struct Item {
  std::string id;
  std::string owner;
};

inline std::string FirstName(const std::string& item_id) { return "Ada-" + item_id; }

// Enrolls the items with one BatchEnroll call; every item must be accepted. `allow_incomplete`:
// items the sequence is certain to fail on are enrolled anyway (to be repaired later).
inline void BatchEnroll(ApiProcess& api, const std::string& name, const std::vector<Item>& items,
                        bool allow_incomplete = false) {
  v1::BatchEnrollRequest batch;
  batch.set_parent(name);
  for (const Item& it : items) {
    v1::EnrollItem* item = batch.add_items();
    item->set_entity_kind(v1::ENTITY_KIND_DEAL);
    item->set_item_id(it.id);
    item->set_owner_id(it.owner);
    item->set_request_id("enroll-" + it.id);
    item->mutable_recipient()->set_email(absl::StrCat("contact-", it.id, "@example.com"));
    item->mutable_recipient()->set_name("Contact " + it.id);
    (*item->mutable_merge_data())["person.first_name"] = FirstName(it.id);
    item->set_allow_incomplete(allow_incomplete);
  }
  v1::BatchEnrollResponse resp;
  grpc::Status s = api.enrollments().BatchEnroll(CallAs(kCompany).get(), batch, &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  for (const v1::BatchEnrollResult& r : resp.results()) {
    INFO(r.DebugString());
    CHECK(r.status().code() == 0);
  }
  REQUIRE(resp.accepted_count() == static_cast<int>(items.size()));
}

inline std::string EnrollmentName(const std::string& sequence, const std::string& item_id) {
  return absl::StrCat(sequence, "/enrollments/deal:", item_id);
}
inline std::string ItemKey(const std::string& item_id) {
  return absl::StrCat(kCompany, "/deal/", item_id);
}

// GetEnrollment, or nullopt while the read model has not folded the enrollment yet (NOT_FOUND
// just after the write: the read model folds asynchronously).
inline std::optional<v1::Enrollment> FindEnrollment(ApiProcess& api, const std::string& name) {
  v1::GetEnrollmentRequest req;
  req.set_name(name);
  v1::Enrollment e;
  grpc::Status s = api.enrollments().GetEnrollment(CallAs(kCompany).get(), req, &e);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return std::nullopt;
  INFO(name << ": " << s.error_message());
  REQUIRE(s.ok());
  return e;
}

inline v1::Enrollment GetEnrollment(ApiProcess& api, const std::string& name) {
  std::optional<v1::Enrollment> e = FindEnrollment(api, name);
  INFO(name << ": not found");
  REQUIRE(e.has_value());
  return *e;
}

// Polls GetEnrollment until it shows `status` (the read model folds asynchronously, so the
// enrollment may be NOT_FOUND at first); bounded.
inline v1::Enrollment WaitForStatus(ApiProcess& api, const std::string& name,
                                    v1::EnrollmentStatus status,
                                    absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::Enrollment e;
  grpc::Status s;
  do {
    v1::GetEnrollmentRequest req;
    req.set_name(name);
    e.Clear();
    s = api.enrollments().GetEnrollment(CallAs(kCompany).get(), req, &e);
    if (s.ok() && e.status() == status && !e.pending()) return e;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  INFO(name << " expected " << v1::EnrollmentStatus_Name(status) << ", is " << s.error_message()
            << " " << e.DebugString());
  REQUIRE(e.status() == status);
  return e;
}

inline v1::EnrollmentOverview Overview(ApiProcess& api, const std::string& sequence) {
  v1::GetEnrollmentOverviewRequest req;
  req.set_parent(sequence);
  v1::EnrollmentOverview overview;
  grpc::Status s = api.enrollments().GetEnrollmentOverview(CallAs(kCompany).get(), req, &overview);
  INFO(s.error_message());
  REQUIRE(s.ok());
  return overview;
}

// Polls the overview until `done(overview)`; bounded. Returns the last overview.
template <typename F>
inline v1::EnrollmentOverview WaitForOverview(ApiProcess& api, const std::string& sequence,
                                              F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  v1::EnrollmentOverview o = Overview(api, sequence);
  while (!done(o) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    o = Overview(api, sequence);
  }
  return o;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_E2E_SYSTEM_SYSTEM_HARNESS_H_
