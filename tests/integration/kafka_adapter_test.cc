// The Kafka adapter against the live local broker (tier "kafka").
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <set>

#include "absl/time/clock.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/status.h"
#include "libs/kafka/transactional_producer.h"
#include "tests/support/kafka_env.h"

namespace sequences::kafka {
namespace {

using sequences::testing::Bootstrap;
using sequences::testing::UniqueName;

ClientConfig Client() {
  ClientConfig c;
  c.bootstrap_servers = Bootstrap();
  return c;
}

std::string NewTopic(const std::string& prefix, int partitions) {
  auto admin = Admin::Create(Client());
  REQUIRE(admin.ok());
  std::string name = UniqueName(prefix);
  REQUIRE((*admin)->EnsureTopics({{name, partitions}}, absl::Seconds(10)).ok());
  return name;
}

// A transactional producer with a fresh id, initialised.
std::unique_ptr<TransactionalProducer> NewTransactionalProducer() {
  auto txn =
      TransactionalProducer::Create({.client = Client(), .transactional_id = UniqueName("t")});
  REQUIRE(txn.ok());
  REQUIRE((*txn)->Init(absl::Seconds(10)).ok());
  return std::move(*txn);
}

std::unique_ptr<Consumer> NewConsumer(bool read_committed, const std::string& group = "") {
  ConsumerConfig config;
  config.client = Client();
  config.read_committed = read_committed;
  config.group_id = group;
  config.partition_eof = true;
  auto consumer = Consumer::Create(config);
  REQUIRE(consumer.ok());
  return std::move(*consumer);
}

// Reads every partition of `topic` from the beginning until each reports end-of-partition.
std::vector<Message> ReadAll(Consumer& consumer, const std::string& topic, int partitions) {
  std::vector<TopicPartitionOffset> assignment;
  for (int p = 0; p < partitions; ++p) assignment.push_back({topic, p, kOffsetBeginning});
  absl::Status assigned = consumer.Assign(assignment);
  INFO(assigned.ToString());
  REQUIRE(assigned.ok());
  std::set<int> at_end;
  std::vector<Message> out;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (static_cast<int>(at_end.size()) < partitions && absl::Now() < deadline) {
    auto m = consumer.Poll(absl::Milliseconds(200));
    REQUIRE(m.ok());
    if (!m->has_value()) continue;
    if ((*m)->eof) {
      at_end.insert((*m)->partition);
    } else {
      out.push_back(std::move(**m));
    }
  }
  REQUIRE(static_cast<int>(at_end.size()) == partitions);
  return out;
}

std::vector<std::string> Values(const std::vector<Message>& messages) {
  std::vector<std::string> v;
  for (const auto& m : messages) v.push_back(m.value);
  std::sort(v.begin(), v.end());
  return v;
}

TEST_CASE("produced records come back with key, value, headers, and one partition per key") {
  std::string topic = NewTopic("roundtrip", 3);
  auto producer = Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  std::vector<Record> records;
  for (int i = 0; i < 30; ++i) {
    records.push_back(
        {topic, absl::StrCat("item-", i % 5), absl::StrCat("value-", i), {{"h", absl::StrCat(i)}}});
  }
  auto reports = (*producer)->SendAll(records);
  for (const auto& r : reports) REQUIRE(r.ok());

  auto consumer = NewConsumer(true);
  std::vector<Message> got = ReadAll(*consumer, topic, 3);
  REQUIRE(got.size() == 30);
  std::map<std::string, std::set<int>> partitions_of_key;
  for (const Message& m : got) {
    partitions_of_key[m.key].insert(m.partition);
    int i = std::stoi(m.value.substr(6));
    CHECK(m.key == absl::StrCat("item-", i % 5));
    REQUIRE(m.FindHeader("h") != nullptr);
    CHECK(*m.FindHeader("h") == absl::StrCat(i));
  }
  for (const auto& [key, parts] : partitions_of_key) CHECK(parts.size() == 1);
}

TEST_CASE(
    "a record produced by key lands on PartitionForKey's partition (the executor writes a send "
    "stage's records there explicitly, next to its ledger)") {
  const int kPartitions = 6;
  std::string topic = NewTopic("by-key", kPartitions);
  auto producer = Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  std::vector<Record> records;
  for (int i = 0; i < 60; ++i) {
    records.push_back({topic, absl::StrCat("c", i % 7, "/sender/user-", i), "v", {}});
  }
  auto reports = (*producer)->SendAll(records);
  REQUIRE(reports.size() == records.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    REQUIRE(reports[i].ok());
    INFO(records[i].key);
    CHECK(reports[i]->partition == PartitionForKey(records[i].key, kPartitions));
  }
}

TEST_CASE("the idempotent producer reports delivery only once the broker holds the record") {
  std::string topic = NewTopic("acked", 1);
  auto producer = Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  auto consumer = NewConsumer(true);
  for (int i = 0; i < 5; ++i) {
    auto report = (*producer)->Send({topic, "k", absl::StrCat("v", i)});
    REQUIRE(report.ok());
    CHECK(report->offset == i);
    // At the moment of the report the broker already serves the record.
    auto marks = consumer->QueryWatermarks({topic, 0}, absl::Seconds(5));
    REQUIRE(marks.ok());
    CHECK(marks->high > report->offset);
  }
  CHECK((*producer)->OutstandingCount() == 0);
}

TEST_CASE("a committed transaction is visible to read_committed consumers, an aborted one is not") {
  std::string topic = NewTopic("txn", 2);
  auto txn = NewTransactionalProducer();
  TransactionalProducer& p = *txn;

  REQUIRE(p.Begin().ok());
  REQUIRE(p.Produce({topic, "a", "committed-1"}).ok());
  REQUIRE(p.Produce({topic, "b", "committed-2"}).ok());
  REQUIRE(p.Commit(absl::Seconds(10)).ok());

  REQUIRE(p.Begin().ok());
  REQUIRE(p.Produce({topic, "a", "aborted-1"}).ok());
  REQUIRE(p.Produce({topic, "b", "aborted-2"}).ok());
  REQUIRE(p.Flush(absl::Seconds(10)).ok());  // the aborted records reach the log
  REQUIRE(p.Abort(absl::Seconds(10)).ok());

  REQUIRE(p.Begin().ok());
  REQUIRE(p.Produce({topic, "a", "committed-3"}).ok());
  REQUIRE(p.Commit(absl::Seconds(10)).ok());

  auto committed = NewConsumer(true);
  CHECK(Values(ReadAll(*committed, topic, 2)) ==
        std::vector<std::string>{"committed-1", "committed-2", "committed-3"});
  // The aborted records are in the log: a read_uncommitted consumer sees them.
  auto uncommitted = NewConsumer(false);
  CHECK(Values(ReadAll(*uncommitted, topic, 2)).size() == 5);
}

TEST_CASE(
    "a read_committed consumer that has read a committed transaction's records is positioned past "
    "its marker, at the partition's end, though the last record's offset + 1 is not") {
  std::string topic = NewTopic("txnpos", 1);
  auto txn = NewTransactionalProducer();
  TransactionalProducer& p = *txn;
  REQUIRE(p.Begin().ok());
  REQUIRE(p.Produce({topic, "a", "r0"}).ok());
  REQUIRE(p.Produce({topic, "a", "r1"}).ok());
  REQUIRE(p.Commit(absl::Seconds(10)).ok());

  auto consumer = NewConsumer(true);
  const std::vector<Message> read = ReadAll(*consumer, topic, 1);
  REQUIRE(read.size() == 2);
  auto marks = consumer->QueryWatermarks({topic, 0}, absl::Seconds(10));
  REQUIRE(marks.ok());
  CHECK(marks->high == read.back().offset + 2);  // the commit marker takes an offset
  auto position = consumer->Position({{topic, 0}});
  REQUIRE(position.ok());
  REQUIRE(position->size() == 1);
  CHECK((*position)[0].offset == marks->high);
}

TEST_CASE("offsets sent in a transaction become the group's committed offsets only on commit") {
  std::string input = NewTopic("offsets-in", 1);
  std::string output = NewTopic("offsets-out", 1);
  auto producer = Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  for (int i = 0; i < 4; ++i) REQUIRE((*producer)->Send({input, "k", absl::StrCat(i)}).ok());

  std::string group = UniqueName("group");
  ConsumerConfig config;
  config.client = Client();
  config.group_id = group;
  auto consumer_or = Consumer::Create(config);
  REQUIRE(consumer_or.ok());
  Consumer& consumer = **consumer_or;
  bool assigned = false;
  REQUIRE(consumer
              .Subscribe({input}, {.on_assigned =
                                       [&](const std::vector<TopicPartition>& parts) {
                                         assigned = !parts.empty();
                                         return std::vector<TopicPartitionOffset>{};
                                       },
                                   .on_revoked = [](const std::vector<TopicPartition>&) {}})
              .ok());
  std::vector<Message> got;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (got.size() < 4 && absl::Now() < deadline) {
    auto batch = consumer.PollBatch(10, absl::Milliseconds(200));
    REQUIRE(batch.ok());
    for (auto& m : *batch) got.push_back(std::move(m));
  }
  REQUIRE(assigned);
  REQUIRE(got.size() == 4);

  auto txn = NewTransactionalProducer();

  // Aborted: offsets after the first two records are not committed.
  REQUIRE(txn->Begin().ok());
  REQUIRE(txn->Produce({output, "k", "x"}).ok());
  REQUIRE(txn->SendOffsets({{input, 0, 2}}, consumer.GroupMetadata(), absl::Seconds(10)).ok());
  REQUIRE(txn->Abort(absl::Seconds(10)).ok());
  auto committed = consumer.Committed({{input, 0}}, absl::Seconds(10));
  REQUIRE(committed.ok());
  CHECK((*committed)[0].offset < 0);  // nothing committed yet

  // Committed: the group's offset is the one sent.
  REQUIRE(txn->Begin().ok());
  REQUIRE(txn->Produce({output, "k", "y"}).ok());
  REQUIRE(txn->SendOffsets({{input, 0, 4}}, consumer.GroupMetadata(), absl::Seconds(10)).ok());
  REQUIRE(txn->Commit(absl::Seconds(10)).ok());
  committed = consumer.Committed({{input, 0}}, absl::Seconds(10));
  REQUIRE(committed.ok());
  CHECK((*committed)[0].offset == 4);
  consumer.Close();
}

TEST_CASE("a transactional producer looks up its output topics at Init and names a missing one") {
  std::string topic = NewTopic("out", 2);
  auto ready = TransactionalProducer::Create(
      {.client = Client(), .transactional_id = UniqueName("t"), .output_topics = {topic}});
  REQUIRE(ready.ok());
  absl::Status init = (*ready)->Init(absl::Seconds(10));
  INFO(init.ToString());
  REQUIRE(init.ok());
  REQUIRE((*ready)->Begin().ok());
  REQUIRE((*ready)->Produce({topic, "k", "v"}).ok());
  REQUIRE((*ready)->Commit(absl::Seconds(10)).ok());

  // The broker here never creates topics on demand: a missing output topic stops Init, with
  // the topic's name, instead of stalling the first transaction.
  const std::string missing = UniqueName("missing");
  auto refused = TransactionalProducer::Create(
      {.client = Client(), .transactional_id = UniqueName("t"), .output_topics = {missing}});
  REQUIRE(refused.ok());
  absl::Status s = (*refused)->Init(absl::Seconds(5));
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(std::string(s.message()), Catch::Contains(missing));
}

TEST_CASE("a second producer with the same transactional id fences the first") {
  std::string topic = NewTopic("fence", 1);
  std::string id = UniqueName("t");
  auto first = TransactionalProducer::Create({.client = Client(), .transactional_id = id});
  REQUIRE(first.ok());
  REQUIRE((*first)->Init(absl::Seconds(10)).ok());
  REQUIRE((*first)->Begin().ok());
  REQUIRE((*first)->Produce({topic, "k", "zombie"}).ok());

  auto second = TransactionalProducer::Create({.client = Client(), .transactional_id = id});
  REQUIRE(second.ok());
  REQUIRE((*second)->Init(absl::Seconds(10)).ok());
  absl::Status zombie_commit = (*first)->Commit(absl::Seconds(10));
  REQUIRE_FALSE(zombie_commit.ok());
  CHECK(IsFatal(zombie_commit));

  auto consumer = NewConsumer(true);
  CHECK(ReadAll(*consumer, topic, 1).empty());
}

TEST_CASE(
    "a static member whose group.instance.id another consumer takes over reports a fatal error "
    "that stays") {
  const std::string topic = NewTopic("fenced", 2);
  const std::string group = UniqueName("fenced-group");
  auto member = [&](bool* assigned) {
    ConsumerConfig config;
    config.client = Client();
    config.group_id = group;
    config.session_timeout = absl::Seconds(6);
    config.client.overrides["group.instance.id"] = "instance-1";
    auto consumer = Consumer::Create(config);
    REQUIRE(consumer.ok());
    RebalanceListener listener;
    listener.on_assigned = [assigned](const std::vector<TopicPartition>&) {
      *assigned = true;
      return std::vector<TopicPartitionOffset>{};
    };
    REQUIRE((*consumer)->Subscribe({topic}, listener).ok());
    return std::move(*consumer);
  };
  auto poll_until = [](Consumer& c, const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!done() && absl::Now() < deadline) c.Poll(absl::Milliseconds(100)).IgnoreError();
    return done();
  };
  bool first_assigned = false;
  auto first = member(&first_assigned);
  REQUIRE(poll_until(*first, [&] { return first_assigned; }));
  CHECK(first->FatalError().ok());

  bool second_assigned = false;
  auto second = member(&second_assigned);
  REQUIRE(poll_until(*second, [&] { return second_assigned; }));
  REQUIRE(poll_until(*first, [&] { return !first->FatalError().ok(); }));
  const absl::Status fatal = first->FatalError();
  INFO(fatal.ToString());
  CHECK(IsFatal(fatal));
  CHECK(!IsRetriable(fatal));
  CHECK(KafkaErrorName(fatal) == "FENCED_INSTANCE_ID");
  // Sticky: the client never recovers (it must be recreated).
  first->Poll(absl::Milliseconds(200)).IgnoreError();
  CHECK(!first->FatalError().ok());
  CHECK(second->FatalError().ok());
}

TEST_CASE(
    "when a second member joins, the first gives up only the partitions moved to it and goes on "
    "consuming the others from where it was, with no revocation of them") {
  constexpr int kPartitions = 4;
  const std::string topic = NewTopic("coop", kPartitions);
  const std::string group = UniqueName("coop-group");
  struct Member {
    std::unique_ptr<Consumer> consumer;
    std::set<int> owned;
    std::vector<std::set<int>> assigned_calls;
    std::vector<std::set<int>> revoked_calls;
    std::map<int, std::vector<int64_t>> offsets;  // consumed, per partition
  };
  auto join = [&](Member& m) {
    ConsumerConfig config;
    config.client = Client();
    config.group_id = group;
    config.session_timeout = absl::Seconds(6);
    config.heartbeat_interval = absl::Milliseconds(300);
    auto consumer = Consumer::Create(config);
    REQUIRE(consumer.ok());
    m.consumer = std::move(*consumer);
    RebalanceListener listener;
    listener.on_assigned = [&m](const std::vector<TopicPartition>& tps) {
      std::set<int> added;
      for (const auto& tp : tps) added.insert(tp.partition);
      m.assigned_calls.push_back(added);
      m.owned.insert(added.begin(), added.end());
      return std::vector<TopicPartitionOffset>{};
    };
    listener.on_revoked = [&m](const std::vector<TopicPartition>& tps) {
      std::set<int> gone;
      for (const auto& tp : tps) gone.insert(tp.partition);
      m.revoked_calls.push_back(gone);
      for (int p : gone) m.owned.erase(p);
    };
    REQUIRE(m.consumer->Subscribe({topic}, listener).ok());
  };
  auto poll = [](Member& m) {
    auto batch = m.consumer->PollBatch(100, absl::Milliseconds(50));
    REQUIRE(batch.ok());
    for (const Message& msg : *batch) m.offsets[msg.partition].push_back(msg.offset);
  };
  auto producer = Producer::Create({.client = Client()});
  REQUIRE(producer.ok());
  auto produce = [&](int round) {
    for (int p = 0; p < kPartitions; ++p) {
      Record r;
      r.topic = topic;
      r.value = absl::StrCat(round);
      r.partition = p;
      REQUIRE((*producer)->Send(r).ok());
    }
  };

  Member first;
  join(first);
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (first.owned.size() < kPartitions && absl::Now() < deadline) poll(first);
  REQUIRE(first.owned.size() == kPartitions);
  produce(0);

  Member second;
  join(second);
  deadline = absl::Now() + absl::Seconds(30);
  int round = 1;
  // Both poll (records keep arriving) until the group settled: each owns some, together all.
  while (absl::Now() < deadline &&
         (second.owned.empty() || first.owned.size() + second.owned.size() != kPartitions)) {
    poll(first);
    poll(second);
    produce(round++);
  }
  REQUIRE_FALSE(second.owned.empty());
  REQUIRE(first.owned.size() + second.owned.size() == kPartitions);
  for (int i = 0; i < 10; ++i) {  // what is consumed once settled
    poll(first);
    poll(second);
  }

  // The first member was asked to give up exactly what the second got, and nothing it kept.
  std::set<int> revoked;
  for (const auto& r : first.revoked_calls) {
    CHECK_FALSE(r.empty());
    revoked.insert(r.begin(), r.end());
  }
  CHECK(revoked == second.owned);
  for (int p : first.owned) CHECK(revoked.count(p) == 0);
  // Its kept partitions were assigned once (the first call); later calls added nothing.
  REQUIRE_FALSE(first.assigned_calls.empty());
  CHECK(first.assigned_calls.front().size() == kPartitions);
  for (size_t i = 1; i < first.assigned_calls.size(); ++i) CHECK(first.assigned_calls[i].empty());
  // A kept partition was consumed on without a gap or a repeat: no rewind to a committed offset
  // (none was ever committed), which an eager reassignment would have done.
  for (int p : first.owned) {
    const std::vector<int64_t>& got = first.offsets[p];
    INFO("partition " << p);
    REQUIRE_FALSE(got.empty());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == static_cast<int64_t>(i));
  }
  first.consumer->Close();
  second.consumer->Close();
}

TEST_CASE("the broker enables the protocol features exactly-once needs") {
  auto features = ProbeBrokerFeatures(Client());
  REQUIRE(features.ok());
  for (const std::string& f : RequiredBrokerFeatures()) {
    INFO("feature " << f);
    CHECK(std::find(features->begin(), features->end(), f) != features->end());
  }
}

TEST_CASE("an unreachable broker gives a clear, retriable error within a bounded time") {
  ClientConfig dead;
  dead.bootstrap_servers = "127.0.0.1:1";
  dead.connect_timeout = absl::Seconds(2);

  absl::Time start = absl::Now();
  auto features = ProbeBrokerFeatures(dead);
  REQUIRE_FALSE(features.ok());
  CHECK(IsRetriable(features.status()));
  CHECK(features.status().message().find("127.0.0.1:1") != absl::string_view::npos);
  CHECK(absl::Now() - start < absl::Seconds(10));

  auto producer = Producer::Create({.client = dead, .delivery_timeout = absl::Seconds(2)});
  REQUIRE(producer.ok());
  start = absl::Now();
  auto report = (*producer)->Send({"sequences.nowhere", "k", "v"});
  REQUIRE_FALSE(report.ok());
  CHECK(IsRetriable(report.status()));
  CHECK(absl::Now() - start < absl::Seconds(10));

  auto admin = Admin::Create(dead);
  REQUIRE(admin.ok());
  start = absl::Now();
  auto count = (*admin)->PartitionCount("x", absl::Seconds(2));
  REQUIRE_FALSE(count.ok());
  CHECK(IsRetriable(count.status()));
  CHECK(absl::Now() - start < absl::Seconds(10));
}

TEST_CASE("EnsureTopics is idempotent and refuses a partition count mismatch") {
  auto admin = Admin::Create(Client());
  REQUIRE(admin.ok());
  std::string name = UniqueName("ensure");
  REQUIRE((*admin)->EnsureTopics({{name, 2}}, absl::Seconds(10)).ok());
  REQUIRE((*admin)->EnsureTopics({{name, 2}}, absl::Seconds(10)).ok());
  absl::Status mismatch = (*admin)->EnsureTopics({{name, 4}}, absl::Seconds(10));
  CHECK(mismatch.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(mismatch.message().find(name) != absl::string_view::npos);
  CHECK((*admin)->DeleteTopics({name}, absl::Seconds(10)).ok());
}

}  // namespace
}  // namespace sequences::kafka
