#ifndef SEQUENCES_SERVICES_SEQUENCE_API_EVENT_LOG_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_EVENT_LOG_H_

// Where the API appends events: a port with one Kafka implementation (idempotent producer,
// acks=all) and in-memory fakes in unit tests.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/types.h"
#include "services/sequence-api/names.h"

namespace sequences::api {

class EventLog {
 public:
  // The final result of a record that Append answered DEADLINE_EXCEEDED: its position once the
  // broker acknowledged it after all, or why it was not written.
  using LateResult = std::function<void(size_t index, absl::StatusOr<LogPosition> result)>;

  virtual ~EventLog() = default;
  // Appends every record and waits until each is acknowledged by the broker or `deadline`
  // passes. Results are in record order: the record's position, or
  //   UNAVAILABLE        the broker did not make it durable (retry with the same request id);
  //   DEADLINE_EXCEEDED  no answer before the deadline: the record may or may not be written
  //                      (retry with the same request id);
  //   INVALID_ARGUMENT / INTERNAL  the record was refused (too large, unknown topic, ...).
  // An OK result is durable (acks=all). `late` (may be empty) is called exactly once for each
  // record answered DEADLINE_EXCEEDED, with `index` into `records`, when its final result is
  // known: from any thread, possibly before Append returned, possibly after the caller is gone
  // (capture shared state only). Thread-safe.
  virtual std::vector<absl::StatusOr<LogPosition>> Append(absl::Span<const kafka::Record> records,
                                                          absl::Time deadline, LateResult late) = 0;
  // Append without interest in late results.
  std::vector<absl::StatusOr<LogPosition>> Append(absl::Span<const kafka::Record> records,
                                                  absl::Time deadline) {
    return Append(records, deadline, nullptr);
  }
};

// The Kafka implementation. Counts records and errors for the metrics.
class KafkaEventLog final : public EventLog {
 public:
  explicit KafkaEventLog(std::unique_ptr<kafka::Producer> producer)
      : producer_(std::move(producer)) {}
  using EventLog::Append;
  // A record not acknowledged by `deadline` stays with the producer, which keeps trying until its
  // delivery timeout; `late` learns the outcome from the delivery report.
  std::vector<absl::StatusOr<LogPosition>> Append(absl::Span<const kafka::Record> records,
                                                  absl::Time deadline, LateResult late) override;
  int64_t produced() const { return produced_.load(); }
  int64_t errors() const { return errors_.load(); }
  // The producer's fatal error (OK while it is usable): after one, no write can succeed.
  absl::Status FatalError() { return producer_->FatalError(); }

 private:
  // Declared before the producer: its destructor runs the last delivery callbacks.
  std::atomic<int64_t> produced_{0};
  std::atomic<int64_t> errors_{0};
  std::unique_ptr<kafka::Producer> producer_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_EVENT_LOG_H_
