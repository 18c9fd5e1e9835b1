#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_SINK_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_SINK_H_

// Where a decided batch goes (`--processing_guarantee`): the records it produces and the input
// offsets it moves.
//
//   exactly_once (default): one Kafka transaction per batch, records and input offsets (with the
//     consumer's group metadata, so a fenced zombie cannot commit) visible all together or not at
//     all. A crash or failure at any point fires nothing twice.
//   at_least_once: no transactions. The records go out through the idempotent acks=all producer
//     and the batch waits for every delivery report; only then are the input offsets committed
//     with the consumer. Nothing is lost; after a crash or a failed batch, records of the batch
//     that were delivered may be produced again (same deterministic event ids, so consumers
//     recognise them). Zombies are not fenced.
//
// Both feed the same loop: RocksDB is written after Write succeeded, and recovery folds
// executor-events in both modes.
//
// Thread-compatible: used by the loop thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/types.h"

namespace sequences::executor {

enum class ProcessingGuarantee { kExactlyOnce, kAtLeastOnce };

// "exactly_once" / "at_least_once".
absl::StatusOr<ProcessingGuarantee> ParseProcessingGuarantee(absl::string_view name);
absl::string_view ProcessingGuaranteeName(ProcessingGuarantee g);

class BatchSink {
 public:
  virtual ~BatchSink() = default;

  // (Re)creates the producer; called at start and whenever the sink must be replaced (after a
  // fatal error, or when Abort failed). Exactly-once: fences older producers with the same id
  // and aborts their open transaction.
  [[nodiscard]] virtual absl::Status Init() = 0;

  // Makes `records` durable and commits `offsets` (the next input offset of every owned
  // partition). OK means both happened. On error, nothing can be assumed: the caller aborts and
  // recovers from the log.
  //
  // `executor_ends` maps each executor-events partition to the offset right after the last
  // record this instance knows of there (absent: unknown). On OK it is advanced past this
  // batch's records, so it is never beyond the partition's real end; a partition whose new end
  // cannot be told is erased.
  [[nodiscard]] virtual absl::Status Write(const std::vector<kafka::Record>& records,
                                           const std::vector<kafka::TopicPartitionOffset>& offsets,
                                           const std::string& executor_topic,
                                           std::map<int32_t, int64_t>* executor_ends) = 0;

  // After a failed Write: aborts what can be aborted. An error means: call Init again.
  [[nodiscard]] virtual absl::Status Abort() = 0;
};

struct SinkOptions {
  kafka::ClientConfig client;
  // exactly_once: the transactional id and the broker-side transaction timeout.
  std::string transactional_id;
  absl::Duration transaction_timeout = absl::Seconds(10);
  // Topics the batches write to (looked up when the producer is created).
  std::vector<std::string> output_topics;
  // Timeout of each Kafka call that waits for the broker.
  absl::Duration timeout = absl::Seconds(10);
};

// `input` is the group consumer of the inputs (group metadata, offset commits); it must outlive
// the sink.
std::unique_ptr<BatchSink> NewBatchSink(ProcessingGuarantee guarantee, SinkOptions options,
                                        kafka::Consumer& input);

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_SINK_H_
