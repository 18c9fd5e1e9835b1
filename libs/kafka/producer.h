#ifndef SEQUENCES_LIBS_KAFKA_PRODUCER_H_
#define SEQUENCES_LIBS_KAFKA_PRODUCER_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "libs/kafka/types.h"

namespace sequences::kafka {

struct ProducerConfig {
  ClientConfig client;
  // Upper bound on the time from Send to its report (librdkafka's message.timeout.ms). A record
  // not acknowledged by then is reported as failed (Unavailable, retriable) and was NOT written.
  absl::Duration delivery_timeout = absl::Seconds(30);
  // How long the producer waits to batch records (linger.ms).
  absl::Duration linger = absl::Milliseconds(2);
};

// An idempotent producer with acks=all: every reported delivery was acknowledged by all in-sync
// replicas, in order, without duplicates from internal retries.
//
// Thread-safety: all methods are safe to call concurrently. Callbacks run on the producer's
// internal thread; they must not block.
// Lifetime: destroying the producer waits up to `delivery_timeout` for outstanding records; their
// callbacks still run (with an error if they could not be delivered).
class Producer {
 public:
  using DeliveryCallback = std::function<void(absl::StatusOr<DeliveryReport>)>;

  // Fails with InvalidArgument for a bad configuration. Does not wait for the broker.
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const ProducerConfig& config);
  virtual ~Producer() = default;

  // Queues `record`; `done` is called exactly once, after the broker acknowledged it (OK with its
  // offset) or after it definitely failed. Returns an error (and never calls `done`) if the record
  // could not be queued (unknown topic, too large, local queue full).
  [[nodiscard]] virtual absl::Status SendAsync(const Record& record, DeliveryCallback done) = 0;

  // Sends one record and waits for its report.
  [[nodiscard]] virtual absl::StatusOr<DeliveryReport> Send(const Record& record) = 0;

  // Sends all records and waits for every report; results are in the order of `records`. Records
  // are independent: some may succeed while others fail.
  virtual std::vector<absl::StatusOr<DeliveryReport>> SendAll(absl::Span<const Record> records) = 0;

  // Number of records queued or in flight.
  virtual int OutstandingCount() = 0;

  // OK while the producer is usable. Otherwise the fatal error librdkafka raised (an idempotent
  // producer that lost its sequence state, e.g. OUT_OF_ORDER_SEQUENCE_NUMBER or an unknown producer
  // id after a broker lost data): every later send fails, so the producer must be recreated.
  virtual absl::Status FatalError() = 0;
};

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_PRODUCER_H_
