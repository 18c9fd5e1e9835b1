// Baselines measured in the same run as the system's figures (tests/bench/README.md): what Kafka
// alone does for the same shape of work on this machine.
#include "tests/bench/kafka_baselines.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"

namespace sequences::bench {

namespace {

kafka::ClientConfig Client(const std::string& bootstrap, const std::string& id) {
  return {.bootstrap_servers = bootstrap, .client_id = id};
}

}  // namespace

absl::StatusOr<Figures> Load(const std::string& bootstrap,
                             const std::vector<kafka::Record>& records) {
  auto producer = kafka::Producer::Create(
      {.client = Client(bootstrap, "bench-load"), .linger = absl::Milliseconds(5)});
  if (!producer.ok()) return producer.status();
  absl::Time start = absl::Now();
  constexpr size_t kChunk = 20000;
  for (size_t at = 0; at < records.size(); at += kChunk) {
    size_t n = std::min(kChunk, records.size() - at);
    for (auto& r : (*producer)->SendAll(absl::MakeConstSpan(records.data() + at, n))) {
      if (!r.ok()) return r.status();
    }
  }
  absl::Duration took = absl::Now() - start;
  return Figures{{"records", static_cast<double>(records.size())},
                 {"seconds", absl::ToDoubleSeconds(took)},
                 {"records_per_s", records.size() / std::max(1e-9, absl::ToDoubleSeconds(took))}};
}

absl::StatusOr<Figures> PassThrough(const std::string& bootstrap, const std::string& input,
                                    const std::string& output, int64_t count, int batch_max,
                                    absl::Duration flush) {
  kafka::ConsumerConfig cc{
      .client = Client(bootstrap, "bench-passthrough"),
      .group_id = absl::StrCat("bench.passthrough.", absl::ToUnixNanos(absl::Now()))};
  auto consumer = kafka::Consumer::Create(cc);
  if (!consumer.ok()) return consumer.status();
  if (auto s = (*consumer)->Subscribe({input}, {}); !s.ok()) return s;
  auto txn = kafka::TransactionalProducer::Create(
      {.client = Client(bootstrap, "bench-passthrough"),
       .transactional_id = absl::StrCat("bench.passthrough.", absl::ToUnixNanos(absl::Now())),
       .output_topics = {output}});  // as the executor does: no metadata wait in the first batch
  if (!txn.ok()) return txn.status();
  if (auto s = (*txn)->Init(absl::Seconds(30)); !s.ok()) return s;

  int64_t done = 0;
  int64_t transactions = 0;
  std::optional<absl::Time> first;
  absl::Time deadline = absl::Now() + absl::Minutes(10);
  while (done < count && absl::Now() < deadline) {
    auto batch = (*consumer)->PollBatch(batch_max, flush);
    if (!batch.ok()) return batch.status();
    if (batch->empty()) continue;
    if (!first) first = absl::Now();
    if (auto s = (*txn)->Begin(); !s.ok()) return s;
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (const kafka::Message& m : *batch) {
      if (auto s = (*txn)->Produce({output, m.key, m.value}); !s.ok()) return s;
      next[{m.topic, m.partition}] = m.offset + 1;
    }
    std::vector<kafka::TopicPartitionOffset> offsets;
    for (const auto& [tp, off] : next) offsets.push_back({tp.first, tp.second, off});
    if (auto s = (*txn)->SendOffsets(offsets, (*consumer)->GroupMetadata(), absl::Seconds(30));
        !s.ok()) {
      return s;
    }
    if (auto s = (*txn)->Commit(absl::Seconds(30)); !s.ok()) return s;
    done += static_cast<int64_t>(batch->size());
    ++transactions;
  }
  absl::Duration took = absl::Now() - first.value_or(absl::Now());
  (*consumer)->Close();
  if (done < count) return absl::DeadlineExceededError("pass-through did not finish in 10 min");
  return Figures{{"records", static_cast<double>(done)},
                 {"transactions", static_cast<double>(transactions)},
                 {"seconds", absl::ToDoubleSeconds(took)},
                 {"records_per_s", done / std::max(1e-9, absl::ToDoubleSeconds(took))}};
}

absl::StatusOr<Figures> RawConsume(const std::string& bootstrap, const std::string& topic) {
  auto consumer =
      kafka::Consumer::Create({.client = Client(bootstrap, "bench-raw"), .partition_eof = true});
  if (!consumer.ok()) return consumer.status();
  auto partitions = (*consumer)->PartitionCount(topic, absl::Seconds(10));
  if (!partitions.ok()) return partitions.status();
  std::vector<kafka::TopicPartitionOffset> assignment;
  for (int p = 0; p < *partitions; ++p) assignment.push_back({topic, p, kafka::kOffsetBeginning});
  if (auto s = (*consumer)->Assign(assignment); !s.ok()) return s;
  std::set<int> at_end;
  int64_t n = 0;
  absl::Time start = absl::Now();
  while (static_cast<int>(at_end.size()) < *partitions) {
    auto batch = (*consumer)->PollBatch(10000, absl::Seconds(1));
    if (!batch.ok()) return batch.status();
    for (const auto& m : *batch) {
      if (m.eof) {
        at_end.insert(m.partition);
      } else {
        ++n;
      }
    }
    if (absl::Now() - start > absl::Minutes(10)) return absl::DeadlineExceededError("raw consume");
  }
  absl::Duration took = absl::Now() - start;
  return Figures{{"records", static_cast<double>(n)},
                 {"seconds", absl::ToDoubleSeconds(took)},
                 {"records_per_s", n / std::max(1e-9, absl::ToDoubleSeconds(took))}};
}

absl::StatusOr<Figures> ProduceAtRate(const std::string& bootstrap,
                                      const std::vector<kafka::Record>& records, double rate) {
  auto producer = kafka::Producer::Create(
      {.client = Client(bootstrap, "bench-rate"), .linger = absl::Milliseconds(1)});
  if (!producer.ok()) return producer.status();
  Histogram latency;
  absl::Mutex mu;
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> pending{0};
  absl::Time start = absl::Now();
  for (size_t i = 0; i < records.size(); ++i) {
    // Open loop: record i is due at start + i/rate, whatever happened before.
    absl::Time due = start + absl::Seconds(static_cast<double>(i) / rate);
    absl::Time now = absl::Now();
    if (due > now) absl::SleepFor(due - now);
    absl::Time sent = absl::Now();
    ++pending;
    auto status =
        (*producer)->SendAsync(records[i], [&, sent](absl::StatusOr<kafka::DeliveryReport> r) {
          if (!r.ok()) ++failed;
          absl::MutexLock lock(&mu);
          latency.Add(absl::Now() - sent);
          --pending;
        });
    if (!status.ok()) {
      ++failed;
      --pending;
    }
  }
  while (pending.load() > 0) absl::SleepFor(absl::Milliseconds(5));
  absl::MutexLock lock(&mu);
  Figures f = latency.Summary("latency_ms");
  f["rate_per_s"] = rate;
  f["records"] = static_cast<double>(records.size());
  f["failed"] = static_cast<double>(failed.load());
  return f;
}

absl::StatusOr<Figures> ProduceBatch(const std::string& bootstrap,
                                     const std::vector<kafka::Record>& records, int repeats) {
  auto producer = kafka::Producer::Create({.client = Client(bootstrap, "bench-batch")});
  if (!producer.ok()) return producer.status();
  Histogram latency;
  for (int i = 0; i < repeats; ++i) {
    absl::Time start = absl::Now();
    for (auto& r : (*producer)->SendAll(records)) {
      if (!r.ok()) return r.status();
    }
    latency.Add(absl::Now() - start);
  }
  Figures f = latency.Summary("latency_ms");
  f["batch"] = static_cast<double>(records.size());
  return f;
}

}  // namespace sequences::bench
