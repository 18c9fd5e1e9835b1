// What the broker's flush settings cost an acknowledged write (docs/durability.md): an idempotent
// acks=all producer, as the API uses, against whatever broker --bootstrap names.
//
//   kafka-durability-bench --bootstrap=127.0.0.1:45092 --topic=t --sequential=2000
//   --pipelined=50000
//
// "sequential": one record at a time, each waiting for its acknowledgement (an API call's write):
// latency p50/p99 and writes per second. "pipelined": all records queued at once, then every
// acknowledgement awaited: records per second. Prints one JSON line. Creates the topic (1
// partition, replication as the cluster allows) if it does not exist.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"

ABSL_FLAG(std::string, bootstrap, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, topic, "bench.durability", "topic to write (created with 1 partition)");
ABSL_FLAG(int, sequential, 2000, "records written one at a time");
ABSL_FLAG(int, pipelined, 50000, "records written all at once");
ABSL_FLAG(int, value_bytes, 300, "size of each record's value (an enrollment event is ~300 B)");

namespace sequences {
namespace {

int Main() {
  kafka::ClientConfig client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap)};
  auto admin = kafka::Admin::Create(client);
  if (!admin.ok()) return std::fprintf(stderr, "%s\n", admin.status().ToString().c_str()), 1;
  auto brokers = (*admin)->BrokerCount(absl::Seconds(10));
  if (!brokers.ok()) return std::fprintf(stderr, "%s\n", brokers.status().ToString().c_str()), 1;
  const std::string topic = absl::GetFlag(FLAGS_topic);
  if (absl::Status s = (*admin)->EnsureTopics(
          {{.name = topic, .partitions = 1, .replication_factor = std::min(*brokers, 3)}},
          absl::Seconds(30));
      !s.ok()) {
    return std::fprintf(stderr, "%s\n", s.ToString().c_str()), 1;
  }
  auto producer = kafka::Producer::Create({.client = client, .linger = absl::ZeroDuration()});
  if (!producer.ok()) return std::fprintf(stderr, "%s\n", producer.status().ToString().c_str()), 1;
  const std::string value(absl::GetFlag(FLAGS_value_bytes), 'x');
  auto record = [&](int i) {
    return kafka::Record{.topic = topic, .key = absl::StrCat("k", i % 1000), .value = value};
  };
  // Warm up: connections, producer id, metadata.
  for (int i = 0; i < 50; ++i) {
    if (!(*producer)->Send(record(i)).ok()) return std::fprintf(stderr, "warm-up failed\n"), 1;
  }

  const int n = absl::GetFlag(FLAGS_sequential);
  std::vector<double> ms;
  ms.reserve(n);
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    const absl::Time start = absl::Now();
    if (!(*producer)->Send(record(i)).ok()) return std::fprintf(stderr, "send failed\n"), 1;
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  const double seq_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  std::sort(ms.begin(), ms.end());

  const int m = absl::GetFlag(FLAGS_pipelined);
  std::vector<kafka::Record> batch;
  batch.reserve(m);
  for (int i = 0; i < m; ++i) batch.push_back(record(i));
  const absl::Time t1 = absl::Now();
  for (const auto& r : (*producer)->SendAll(batch)) {
    if (!r.ok()) return std::fprintf(stderr, "%s\n", r.status().ToString().c_str()), 1;
  }
  const double pipe_seconds = absl::ToDoubleSeconds(absl::Now() - t1);

  std::printf(
      "{\"brokers\":%d,\"sequential_writes_per_s\":%.0f,\"sequential_p50_ms\":%.2f,"
      "\"sequential_p99_ms\":%.2f,\"pipelined_records_per_s\":%.0f}\n",
      *brokers, n / seq_seconds, ms[ms.size() / 2], ms[ms.size() * 99 / 100], m / pipe_seconds);
  return 0;
}

}  // namespace
}  // namespace sequences

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return sequences::Main();
}
