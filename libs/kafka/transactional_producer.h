#ifndef SEQUENCES_LIBS_KAFKA_TRANSACTIONAL_PRODUCER_H_
#define SEQUENCES_LIBS_KAFKA_TRANSACTIONAL_PRODUCER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/types.h"

namespace sequences::kafka {

struct TransactionalProducerConfig {
  ClientConfig client;
  // Stable across restarts of the same logical producer: a new producer with the same id fences
  // the old one (whose open transaction is aborted).
  std::string transactional_id;
  // The broker aborts a transaction left open longer than this.
  absl::Duration transaction_timeout = absl::Seconds(60);
  absl::Duration linger = absl::Milliseconds(2);
  // Topics this producer will write to. Init fetches their metadata and keeps them known, so the
  // first transaction does not wait for librdkafka's periodic lookup of topics it has not seen
  // (up to a second per topic).
  std::vector<std::string> output_topics;
};

// A transactional producer: records produced between Begin and Commit, and the consumer offsets
// sent with them, become visible to read_committed consumers all together or not at all.
//
// Errors: Aborted means "abort the transaction and retry the batch" (IsRetriable is true);
// FailedPrecondition with IsFatal means fenced or fatal: destroy this producer and create a new
// one (after which re-reading state is required). Unavailable/DeadlineExceeded: retry the call.
//
// Thread-safety: use from one thread.
class TransactionalProducer {
 public:
  static absl::StatusOr<std::unique_ptr<TransactionalProducer>> Create(
      const TransactionalProducerConfig& config);
  virtual ~TransactionalProducer() = default;

  // Registers the transactional id with the broker, fencing older producers with the same id and
  // completing or aborting their open transaction, and looks up the output topics. Call once
  // before the first Begin.
  [[nodiscard]] virtual absl::Status Init(absl::Duration timeout) = 0;
  [[nodiscard]] virtual absl::Status Begin() = 0;
  // Queues a record in the current transaction. Delivery failures surface at Commit.
  [[nodiscard]] virtual absl::Status Produce(const Record& record) = 0;
  // Adds consumer offsets (next offset to read) to the transaction: they become the group's
  // committed offsets if and only if the transaction commits.
  [[nodiscard]] virtual absl::Status SendOffsets(const std::vector<TopicPartitionOffset>& offsets,
                                                 const ConsumerGroupMetadata& group,
                                                 absl::Duration timeout) = 0;
  // Waits until the records queued so far reached the broker (still uncommitted).
  [[nodiscard]] virtual absl::Status Flush(absl::Duration timeout) = 0;
  // Flushes and commits. On error the transaction must be aborted (unless fatal).
  [[nodiscard]] virtual absl::Status Commit(absl::Duration timeout) = 0;
  [[nodiscard]] virtual absl::Status Abort(absl::Duration timeout) = 0;
};

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_TRANSACTIONAL_PRODUCER_H_
