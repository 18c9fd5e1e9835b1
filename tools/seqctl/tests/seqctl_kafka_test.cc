// seqctl against the live broker: the records it publishes land where the executor reads them,
// and what it reads back (decode, history) is the log's content.
#include <algorithm>
#include <catch2/catch.hpp>
#include <set>

#include "absl/time/time.h"
#include "libs/domain/contract.h"
#include "libs/domain/envelope.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "tests/support/kafka_env.h"
#include "tools/seqctl/seqctl.h"

namespace sequences::seqctl {
namespace {

using testing::Bootstrap;
using testing::UniqueName;

kafka::ClientConfig Client() { return {.bootstrap_servers = Bootstrap()}; }

// Our six topics under a prefix of their own, 3 partitions each.
service::Topics NewTopics() {
  const service::Topics topics = service::Topics::WithPrefix(UniqueName("seqctl") + ".");
  auto admin = kafka::Admin::Create(Client());
  REQUIRE(admin.ok());
  REQUIRE(service::EnsureTopics(**admin, topics, 3, absl::Seconds(30)).ok());
  return topics;
}

std::unique_ptr<kafka::Producer> NewProducer() {
  auto producer = kafka::Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  return std::move(*producer);
}

kafka::DeliveryReport Send(kafka::Producer& producer, const std::string& topic,
                           const std::string& key, const v1::Envelope& e) {
  auto report = producer.Send({.topic = topic, .key = key, .value = e.SerializeAsString()});
  INFO(report.status().ToString());
  REQUIRE(report.ok());
  return *report;
}

v1::Envelope EnrollRequest(const std::string& id, const std::string& item_key,
                           const std::string& sequence_id) {
  v1::Envelope e = domain::MakeEnvelope(id, "acme", absl::Now(), "", id);
  e.mutable_enroll_requested()->set_item_key(item_key);
  e.mutable_enroll_requested()->set_sequence_id(sequence_id);
  e.mutable_enroll_requested()->set_request_id(id);
  return e;
}

v1::Envelope Started(const std::string& id, const std::string& item_key,
                     const std::string& sequence_id) {
  v1::Envelope e = domain::MakeEnvelope(id, "acme", absl::Now(), "", id);
  v1::EnrollmentRef* ref = e.mutable_enrollment_started()->mutable_ref();
  ref->set_item_key(item_key);
  ref->set_sequence_id(sequence_id);
  ref->set_enrollment_id(item_key + "#" + sequence_id + "#1");
  return e;
}

v1::Envelope Task(const std::string& id, const std::string& item_key,
                  const std::string& sequence_id) {
  v1::Envelope e = domain::MakeEnvelope(id, "acme", absl::Now(), "", id);
  e.mutable_task_created()->set_item_key(item_key);
  e.mutable_task_created()->set_sequence_id(sequence_id);
  e.mutable_task_created()->set_task_id(id);
  return e;
}

std::vector<std::string> EventIds(const std::vector<kafka::Message>& messages) {
  std::vector<std::string> ids;
  for (const kafka::Message& m : messages) {
    v1::Envelope e;
    REQUIRE(e.ParseFromString(m.value));
    ids.push_back(e.event_id());
  }
  return ids;
}

TEST_CASE(
    "Given an item with an enroll request, when seqctl publishes its outcome, then the record "
    "lands on the item's partition and decodes back as a contract-abiding outcome") {
  const service::Topics topics = NewTopics();
  auto producer = NewProducer();
  // What the API writes for the item (keyed by the item key), and another item's record.
  const kafka::DeliveryReport enroll = Send(*producer, topics.enrollment_events, "acme/deal/42",
                                            EnrollRequest("e-1", "acme/deal/42", "s1"));
  Send(*producer, topics.enrollment_events, "acme/deal/43",
       EnrollRequest("e-2", "acme/deal/43", "s1"));

  RealClock clock;
  auto record = OutcomeRecord(topics,
                              {.company_id = "acme",
                               .item = "deal:42",
                               .kind = v1::ITEM_OUTCOME_KIND_DEAL_WON,
                               .request_id = "crm-1"},
                              clock.Now());
  REQUIRE(record.ok());
  auto published = producer->Send(*record);
  REQUIRE(published.ok());
  CHECK(published->partition == enroll.partition);

  std::vector<kafka::Message> read;
  REQUIRE(ReadToEnd({.client = Client()}, {topics.enrollment_events}, clock,
                    [&](const kafka::Message& m) { read.push_back(m); })
              .ok());
  REQUIRE(read.size() == 3);  // every partition read to its end
  auto outcome = std::find_if(read.begin(), read.end(), [&](const kafka::Message& m) {
    return m.offset == published->offset && m.partition == published->partition;
  });
  REQUIRE(outcome != read.end());
  CHECK(outcome->key == "acme/deal/42");
  v1::Envelope e;
  REQUIRE(e.ParseFromString(outcome->value));
  CHECK(domain::CheckEnrollmentInputContract(e, outcome->key).ok());
  const std::string json = RecordJson(*outcome);
  CHECK(json.find("\"kind\":\"ITEM_OUTCOME_KIND_DEAL_WON\"") != std::string::npos);
  CHECK(json.find("\"key\":\"acme/deal/42\"") != std::string::npos);
}

TEST_CASE(
    "Given records of two items and two sequences across the topics, when seqctl reads an "
    "enrollment's history, then it gets exactly that enrollment's records in time order") {
  const service::Topics topics = NewTopics();
  auto producer = NewProducer();
  Send(*producer, topics.enrollment_events, "acme/deal/42",
       EnrollRequest("in-s1", "acme/deal/42", "s1"));
  Send(*producer, topics.enrollment_events, "acme/deal/42",
       EnrollRequest("in-s2", "acme/deal/42", "s2"));
  Send(*producer, topics.enrollment_events, "acme/deal/43",
       EnrollRequest("in-other", "acme/deal/43", "s1"));
  Send(*producer, topics.executor_events, "acme/deal/42", Started("ex-s1", "acme/deal/42", "s1"));
  Send(*producer, topics.executor_events, "acme/deal/42", Started("ex-s2", "acme/deal/42", "s2"));
  Send(*producer, topics.executor_events, "acme/deal/43",
       Started("ex-other", "acme/deal/43", "s1"));
  Send(*producer, topics.task_events, "acme/deal/42", Task("task-s1", "acme/deal/42", "s1"));
  Send(*producer, topics.task_events, "acme/deal/43", Task("task-other", "acme/deal/43", "s1"));
  v1::Envelope outcome = domain::MakeEnvelope("outcome", "acme", absl::Now(), "", "");
  outcome.mutable_item_outcome()->set_item_key("acme/deal/42");
  outcome.mutable_item_outcome()->set_kind(v1::ITEM_OUTCOME_KIND_DEAL_LOST);
  Send(*producer, topics.enrollment_events, "acme/deal/42", outcome);

  RealClock clock;
  auto ref = ParseEnrollment("acme", "sequences/s1/enrollments/deal:42");
  REQUIRE(ref.ok());
  auto history = History({.client = Client()}, topics, *ref, clock);
  REQUIRE(history.ok());
  const std::vector<std::string> ids = EventIds(*history);
  CHECK(std::multiset<std::string>(ids.begin(), ids.end()) ==
        std::multiset<std::string>{"in-s1", "ex-s1", "task-s1", "outcome"});
  CHECK(std::is_sorted(
      history->begin(), history->end(),
      [](const kafka::Message& a, const kafka::Message& b) { return a.timestamp < b.timestamp; }));

  // The whole item: both sequences, never the other item.
  auto item = History({.client = Client()}, topics, {.item_key = "acme/deal/42"}, clock);
  REQUIRE(item.ok());
  const std::vector<std::string> item_ids = EventIds(*item);
  CHECK(std::multiset<std::string>(item_ids.begin(), item_ids.end()) ==
        std::multiset<std::string>{"in-s1", "in-s2", "ex-s1", "ex-s2", "task-s1", "outcome"});
}

TEST_CASE(
    "Given a topic that does not exist, when seqctl reads it, then it fails instead of "
    "printing nothing") {
  RealClock clock;
  const absl::Status s =
      ReadToEnd({.client = Client()}, {UniqueName("missing")}, clock, [](const kafka::Message&) {});
  CHECK(!s.ok());
}

}  // namespace
}  // namespace sequences::seqctl
