#ifndef SEQUENCES_LIBS_KAFKA_CONSUMER_H_
#define SEQUENCES_LIBS_KAFKA_CONSUMER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/types.h"

namespace sequences::kafka {

// The consumer group's identity and generation, handed to a transactional producer so the broker
// can fence a zombie that lost its partitions (KIP-447). Opaque; copyable.
class ConsumerGroupMetadata {
 public:
  // Defined inside libs/kafka only.
  struct Handle;

  ConsumerGroupMetadata() = default;
  explicit ConsumerGroupMetadata(std::shared_ptr<const Handle> handle)
      : handle_(std::move(handle)) {}
  bool empty() const { return handle_ == nullptr; }
  const Handle* handle() const { return handle_.get(); }

 private:
  std::shared_ptr<const Handle> handle_;
};

struct ConsumerConfig {
  ClientConfig client;
  // Needed for Subscribe, Commit and group metadata; may be empty for a consumer that only uses
  // Assign and never commits.
  std::string group_id;
  // read_committed (default): only records of committed transactions are returned.
  bool read_committed = true;
  // Where to start when the group has no committed offset: "earliest" (default) or "latest".
  std::string auto_offset_reset = "earliest";
  // Deliver an eof Message when a partition's end is reached (for read_committed: the last stable
  // offset). Used to "read to the end" on recovery.
  bool partition_eof = false;
  // Group session timeout and maximum time between polls before the member is evicted.
  absl::Duration session_timeout = absl::Seconds(10);
  absl::Duration max_poll_interval = absl::Seconds(300);
  // How often the member tells the coordinator it is alive, and so how soon it learns that the
  // group rebalances (a join, a member leaving). Zero: a quarter of the session timeout.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
};

// Called on the polling thread, inside Poll (or Close), when the group assigns or revokes
// partitions. Rebalancing is cooperative (incremental, the `cooperative-sticky` assignor):
// `on_assigned` names only the partitions added to the assignment (possibly none: it is called
// once per completed rebalance), `on_revoked` only those taken away (never an empty list); the
// others stay assigned and are consumed on from where they were, with no callback. A member that
// lost its assignment (session timeout, a rebalance error) gets `on_revoked` for all of it.
// After `on_assigned` returns, consumption of the added partitions starts at the group's
// committed offsets, or at the offsets the callback returned for the partitions it wants to
// position itself (kOffsetStored for "committed").
struct RebalanceListener {
  std::function<std::vector<TopicPartitionOffset>(const std::vector<TopicPartition>&)> on_assigned;
  std::function<void(const std::vector<TopicPartition>&)> on_revoked;
};

// A consumer with manual offset management (auto commit off).
//
// Thread-safety: one thread polls; Close may be called from that thread only. Other methods may be
// called from the polling thread (including inside rebalance callbacks).
class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ConsumerConfig& config);
  virtual ~Consumer() = default;

  // Joins the group and subscribes; partitions arrive through the listener during Poll.
  [[nodiscard]] virtual absl::Status Subscribe(const std::vector<std::string>& topics,
                                               RebalanceListener listener) = 0;
  // Replaces the assignment with exactly these partitions, starting at the given offsets.
  [[nodiscard]] virtual absl::Status Assign(
      const std::vector<TopicPartitionOffset>& partitions) = 0;
  // The current assignment.
  virtual std::vector<TopicPartition> Assignment() = 0;

  // Waits up to `timeout` for one message. nullopt on timeout. Consumer errors that are only
  // informational (broker reconnecting) are logged, not returned; errors that need attention are.
  virtual absl::StatusOr<std::optional<Message>> Poll(absl::Duration timeout) = 0;
  // Returns up to `max` messages: waits up to `timeout` for the first, then takes what is
  // immediately available.
  virtual absl::StatusOr<std::vector<Message>> PollBatch(int max, absl::Duration timeout) = 0;

  // Synchronously commits these offsets (next offset to read) for the group.
  [[nodiscard]] virtual absl::Status Commit(const std::vector<TopicPartitionOffset>& offsets) = 0;
  // The group's committed offsets for these partitions (kOffsetStored-free: a partition without a
  // committed offset reports -1001, librdkafka's INVALID).
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartition>& partitions, absl::Duration timeout) = 0;
  // The offset after the last message this consumer returned for each partition, and after any
  // transaction markers that follow it (librdkafka's position; ≥ v1.4): the end a caught-up
  // read_committed consumer has reached, where the offset it commits (last record + 1) stops
  // short of a trailing marker. -1001 (INVALID) for a partition nothing was returned from.
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> Position(
      const std::vector<TopicPartition>& partitions) = 0;
  // Moves the read position of an assigned partition.
  [[nodiscard]] virtual absl::Status Seek(const TopicPartitionOffset& to,
                                          absl::Duration timeout) = 0;
  // Low and high watermark, asked from the broker.
  virtual absl::StatusOr<WatermarkOffsets> QueryWatermarks(const TopicPartition& tp,
                                                           absl::Duration timeout) = 0;
  // The offsets of the first records whose timestamp is >= `at` (kOffsetEnd if none).
  virtual absl::StatusOr<std::vector<TopicPartitionOffset>> OffsetsForTime(
      const std::vector<TopicPartition>& partitions, absl::Time at, absl::Duration timeout) = 0;
  // Number of partitions of `topic` (from metadata).
  virtual absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) = 0;

  // For TransactionalProducer::SendOffsetsToTransaction. REQUIRES: group_id set.
  virtual ConsumerGroupMetadata GroupMetadata() = 0;

  // OK while the client is usable. Otherwise the fatal error librdkafka raised (for a consumer:
  // a static member fenced by another member with the same group.instance.id, FENCED_INSTANCE_ID):
  // it stays set, the client never recovers (polls fail or return nothing), and it must be
  // destroyed and recreated.
  // Cheap (no broker round trip); safe from the polling thread.
  virtual absl::Status FatalError() = 0;

  // Leaves the group (revoking partitions through the listener). Idempotent.
  virtual void Close() = 0;
};

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_CONSUMER_H_
