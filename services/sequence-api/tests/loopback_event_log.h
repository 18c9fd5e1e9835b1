#ifndef SEQUENCES_SERVICES_SEQUENCE_API_TESTS_LOOPBACK_EVENT_LOG_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_TESTS_LOOPBACK_EVENT_LOG_H_

// The in-memory EventLog that event_log.h promises for unit tests: a log in this process that
// assigns each record the next offset of its topic/partition and feeds it at once to the read
// model (ReadModel::Apply, as the folding thread does after consuming it), so the application
// layer runs against the real read model and RocksDB without a broker.
//
// Partitions: a record's own partition if set, else a hash of its key (stable within a run).
// Latency: SetAppendLatency makes every Append take that long (real time) before the records get
// their offsets, as a broker round trip does, so concurrent callers overlap as they do against a
// broker. Faults: FailNextAppends makes the next appends fail (nothing written), as a broker that
// cannot make a write durable; Hold keeps appended records from the read model (durable but not
// folded yet) until Release; AckLateNext writes records but answers DEADLINE_EXCEEDED, as a
// broker that acknowledged them after the caller's deadline (DeliverLate).
//
// Thread-safety: thread-safe. Appends are serialized, so the read model sees one applier in
// offset order, as with its folding thread.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "services/sequence-api/event_log.h"
#include "services/sequence-api/read_model.h"

namespace sequences::api {

class LoopbackEventLog final : public EventLog {
 public:
  // `partition_counts`: topic -> number of partitions (a topic not named has one). Tells the read
  // model the same (ReadModel::StartInProcess). REQUIRES: `read_model` outlives this.
  LoopbackEventLog(ReadModel& read_model, std::map<std::string, int> partition_counts)
      : read_model_(read_model), partition_counts_(std::move(partition_counts)) {
    read_model_.StartInProcess(partition_counts_);
  }

  using EventLog::Append;
  std::vector<absl::StatusOr<LogPosition>> Append(absl::Span<const kafka::Record> records,
                                                  absl::Time /*deadline*/,
                                                  LateResult late) override {
    absl::Duration latency;
    {
      absl::MutexLock lock(&mu_);
      latency = latency_;
    }
    if (latency > absl::ZeroDuration()) absl::SleepFor(latency);
    absl::MutexLock lock(&mu_);
    std::vector<absl::StatusOr<LogPosition>> results;
    if (failures_left_ > 0) {
      --failures_left_;
      for (size_t i = 0; i < records.size(); ++i) results.push_back(failure_);
      // A DEADLINE_EXCEEDED failure is final at once: nothing was written.
      if (absl::IsDeadlineExceeded(failure_) && late) {
        for (size_t i = 0; i < records.size(); ++i) late(i, failure_);
      }
      return results;
    }
    const bool ack_late = late_acks_left_ > 0;
    if (ack_late) --late_acks_left_;
    std::vector<kafka::Message> appended;
    for (const kafka::Record& r : records) {
      kafka::Message m;
      m.topic = r.topic;
      m.partition = r.partition >= 0 ? r.partition : PartitionOf(r.topic, r.key);
      m.offset = next_offset_[{m.topic, m.partition}]++;
      m.key = r.key;
      m.value = r.value;
      m.headers = r.headers;
      results.push_back(LogPosition{m.topic, m.partition, m.offset});
      log_.push_back(m);
      appended.push_back(std::move(m));
    }
    if (ack_late) {
      late_.push_back({appended, results, std::move(late)});
      for (auto& r : results) {
        r = absl::DeadlineExceededError("acknowledged after the deadline (loopback)");
      }
    } else if (held_) {
      held_records_.insert(held_records_.end(), appended.begin(), appended.end());
    } else if (absl::Status s = read_model_.Apply(appended); !s.ok()) {
      apply_error_ = s;
    }
    return results;
  }

  void SetAppendLatency(absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    latency_ = latency;
  }
  // The next `n` calls of Append fail with `status` for every record; nothing is written.
  void FailNextAppends(int n, absl::Status status) {
    absl::MutexLock lock(&mu_);
    failures_left_ = n;
    failure_ = std::move(status);
  }
  // Appended records stay away from the read model until Release (they still get offsets).
  void Hold() {
    absl::MutexLock lock(&mu_);
    held_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
    if (held_records_.empty()) return;
    if (absl::Status s = read_model_.Apply(held_records_); !s.ok()) apply_error_ = s;
    held_records_.clear();
  }

  // The next `n` calls of Append write their records (offsets, Records) but answer
  // DEADLINE_EXCEEDED for each, as a broker whose acknowledgement came after the caller's
  // deadline: the records reach the read model only on DeliverLate, when a producer that kept
  // retrying would have them acknowledged; each record's LateResult then learns its position.
  void AckLateNext(int n) {
    absl::MutexLock lock(&mu_);
    late_acks_left_ = n;
  }
  void DeliverLate() {
    std::vector<LateAppend> late;
    {
      absl::MutexLock lock(&mu_);
      late.swap(late_);
      for (const LateAppend& a : late) {
        if (absl::Status s = read_model_.Apply(a.records); !s.ok()) apply_error_ = s;
      }
    }
    for (LateAppend& a : late) {
      if (!a.late) continue;
      for (size_t i = 0; i < a.positions.size(); ++i) a.late(i, a.positions[i]);
    }
  }

  // Every record appended so far to `topic`, in append order, that `pred` accepts.
  std::vector<kafka::Message> Records(
      const std::string& topic,
      const std::function<bool(const kafka::Message&)>& pred = nullptr) const {
    absl::MutexLock lock(&mu_);
    std::vector<kafka::Message> out;
    for (const kafka::Message& m : log_) {
      if (m.topic == topic && (pred == nullptr || pred(m))) out.push_back(m);
    }
    return out;
  }
  // The first error the read model returned from Apply (OK if none).
  absl::Status ApplyError() const {
    absl::MutexLock lock(&mu_);
    return apply_error_;
  }

 private:
  int32_t PartitionOf(const std::string& topic, const std::string& key) const {
    auto it = partition_counts_.find(topic);
    const int n = it == partition_counts_.end() ? 1 : it->second;
    return static_cast<int32_t>(absl::HashOf(key) % static_cast<size_t>(n));
  }

  ReadModel& read_model_;
  const std::map<std::string, int> partition_counts_;
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int32_t>, int64_t> next_offset_ ABSL_GUARDED_BY(mu_);
  std::vector<kafka::Message> log_ ABSL_GUARDED_BY(mu_);
  absl::Duration latency_ ABSL_GUARDED_BY(mu_);
  int failures_left_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<kafka::Message> held_records_ ABSL_GUARDED_BY(mu_);
  // One Append answered DEADLINE_EXCEEDED whose records DeliverLate hands over.
  struct LateAppend {
    std::vector<kafka::Message> records;
    std::vector<absl::StatusOr<LogPosition>> positions;
    LateResult late;
  };
  int late_acks_left_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<LateAppend> late_ ABSL_GUARDED_BY(mu_);
  absl::Status apply_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_TESTS_LOOPBACK_EVENT_LOG_H_
