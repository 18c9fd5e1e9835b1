#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_EXECUTOR_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_EXECUTOR_H_

// The step executor's processing loop (ARCHITECTURE.md, "Executor: exactly once").
//
// Per batch: poll enrollment-events (consumer group, cooperative incremental rebalancing) and
// sequence-events (every partition, manual assignment); decide them, the due-index entries at
// `now`, and the steps those decisions made due by `now` (Processor::FireStaged); hand the
// executor events (to the input's partition of executor-events), task and email events, dead
// letters and the input offsets to the BatchSink (sink.h: by default ONE Kafka transaction with
// the consumer's group metadata); after that, write the executor events, due-index changes and
// offsets to RocksDB in one WriteBatch.
//
// Rebalances are incremental: a member gives up only the partitions the group moves and goes on
// deciding the others throughout. The rebalance callbacks run inside the input poll at the start
// of a batch, when no transaction is open (each batch's transaction is committed or aborted
// before the next poll), so a revoked partition's last decisions are committed before its new
// owner reads its offsets.
//
// Recovery: for each partition the group adds, and after any transaction whose outcome is not
// certain, the executor first waits for the group's committed offsets to be stable, then folds
// executor-events (read_committed) from its stored offset to the end for those partitions, before
// deciding anything for them. A crash between commit and RocksDB write is repaired by that fold.
//
// Warm state: that fold is short because the store is kept close to the end of executor-events
// for every partition, owned or not. Before it joins the group, the executor folds every
// partition to the end (again while a pass still found many events: a new instance with an
// empty store catches up while the others keep deciding); while it runs, a standby consumer folds
// the partitions other members own, a bounded number of records per loop round (the store's
// state of a partition it does not own is never decided on, only folded, exactly as after a
// revocation). A partition that moves to it then needs only the events of the last moments.
//
// Fatal client errors: a consumer or producer that librdkafka declares fatal never recovers (e.g.
// the group consumer fenced as a static member after a session timeout: FENCED_INSTANCE_ID). The
// loop then destroys the group consumer and the producer, creates new ones, re-initialises the
// transactional producer (fencing any older incarnation of this transactional id and aborting its
// open transaction), subscribes again and recovers whatever the group assigns. Until it owns its
// partitions again, health says NOT_SERVING.
//
// Stop: every retry loop (init, recovery, producer re-creation, rebuild) checks the stop
// notification, and each Kafka call inside is bounded (10 s), so Run returns within about that
// after `stop` is notified, whatever the broker does.
//
// Threading: Run() is the loop and runs on the caller's thread; Snapshot() may be called from
// any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "services/step-executor/batch_sizer.h"
#include "services/step-executor/metrics.h"
#include "services/step-executor/processor.h"
#include "services/step-executor/sink.h"
#include "services/step-executor/state.h"
#include "services/step-executor/watermarks.h"

namespace sequences::executor {

struct ExecutorOptions {
  kafka::ClientConfig client;
  service::Topics topics;
  std::string group_id = "sequences.step-executor";
  // Stable per instance across restarts: the transactional id is "<group_id>.<instance_id>", so
  // a restarted instance fences its own zombie and aborts its open transaction at once.
  std::string instance_id;
  std::string data_dir;
  // Inputs, and due steps, per batch (one transaction): adaptive between batch.min and batch.max
  // (batch_sizer.h). min == max: a fixed size.
  BatchSizerOptions batch;
  // Longest wait in a poll: bounds the latency of a due step and of a batch flush.
  absl::Duration flush_interval = absl::Milliseconds(50);
  // An enroll request whose sequence version does not arrive within this time is decided anyway.
  absl::Duration defer_timeout = absl::Seconds(30);
  absl::Duration transaction_timeout = absl::Seconds(10);
  absl::Duration metrics_interval = absl::Seconds(5);
  // The group consumer's session timeout: a member silent for this long is removed by the broker
  // (and, client side, librdkafka gives up its assignment and rejoins). The broker only accepts
  // values within group.min/max.session.timeout.ms (default 6 s .. 30 min).
  absl::Duration session_timeout = absl::Seconds(10);
  // How often the group consumer heartbeats: how soon it learns of a rebalance. A partition being
  // moved is owned by nobody for about one interval (the members rejoin a second round).
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  // Fold the executor-events of partitions owned by other members (warm standby state), at most
  // this many records per loop round, and every partition before joining; 0: neither (a moved
  // partition is then folded, when assigned, from where this instance last owned it).
  int standby_records_per_round = 1000;
  ProcessingGuarantee guarantee = ProcessingGuarantee::kExactlyOnce;
  // A record for a sender or person stage whose partition this instance owns is decided in the
  // batch that writes it instead of after a trip through enrollment-events (docs/send-limits.md,
  // "Deciding in the writer's batch"). Exactly-once only: it relies on the record and its
  // decision committing together.
  bool decide_stages_in_batch = true;
  // The state store's cache and memtables (README "Memory").
  StoreMemory store_memory = {.block_cache_bytes = 64 << 20, .write_buffer_bytes = 32 << 20};
  // Most kilobytes of records each consumer prefetches and queues (librdkafka
  // queued.max.messages.kbytes); and it queues at most 2 x batch.max records (queued.min.messages).
  // librdkafka's defaults (64 MiB, 100,000 records) let a backlog take about 100 MiB of heap.
  int consumer_queue_kbytes = 8192;
  // Reads the process's memory for the metrics, once a second (main: /proc and the allocator);
  // empty: not reported.
  std::function<ProcessMemory()> process_memory;
  // Health reports serving only when the input lag is at most this.
  int64_t max_serving_lag = 1000;
};

class Executor {
 public:
  Executor(ExecutorOptions options, Clock& clock);
  ~Executor();

  // Runs until `stop` is notified. Returns an error only for what retrying cannot fix (the
  // state directory cannot be opened); broker trouble is retried, logged and shown in health.
  absl::Status Run(absl::Notification& stop);

  // Health and metrics, safe from any thread. Not serving also when the loop has not come round
  // for kLoopStall: it is blocked in a Kafka call (a commit or an init waiting for a broker that
  // went away), and the health it last wrote is stale.
  MetricsSnapshot Snapshot();
  static constexpr absl::Duration kLoopStall = absl::Seconds(5);

 private:
  struct PartitionState {
    // Next input offset to commit (everything before it is decided); -1: unknown yet.
    int64_t committed = -1;
    // Next offset the loop expects from the consumer (older redeliveries are dropped).
    int64_t next_expected = -1;
    // Polled inputs not decided yet, in offset order (head deferred when waiting for a sequence).
    std::vector<kafka::Message> queue;
    absl::Time head_since = absl::InfinitePast();
  };

  absl::Status Setup();
  // The memory limits of a consumer's queues (options_), unless `client` already sets them.
  void SetQueueLimits(kafka::ClientConfig& client) const;
  // Creates the group consumer of the inputs and the sink (whose producer uses its group
  // metadata). Replaces existing ones.
  absl::Status CreateGroupClients();
  // Initialises the sink's producer, positions the sequence-events consumer and subscribes the
  // group consumer, retrying broker trouble until `stop`. False: stopped first.
  bool JoinGroup();
  // After a fatal consumer or producer error: forgets every owned partition, destroys both group
  // clients, creates new ones and joins again (JoinGroup). False: stopped first.
  bool RebuildGroupClients(const absl::Status& why);
  // The group consumer's fatal error, or OK. (A fatal producer error is returned by the sink's
  // Write, and Resync re-creates the producer.)
  absl::Status ClientFatalError() { return input_->FatalError(); }
  bool Stopping() const { return stop_ != nullptr && stop_->HasBeenNotified(); }
  // Sleeps for `d` on the clock, waking early on stop.
  void Pause(absl::Duration d);
  absl::Status AssignSequenceConsumer();
  // Rebalance callbacks (incremental: only the partitions added or taken away).
  std::vector<kafka::TopicPartitionOffset> OnAssigned(
      const std::vector<kafka::TopicPartition>& tps);
  void OnRevoked(const std::vector<kafka::TopicPartition>& tps);
  // Forgets every owned partition (the group consumer is being replaced).
  void ForgetPartitions();
  // Waits for stable committed offsets, folds executor-events to the end for `partitions`.
  absl::Status Recover(const std::vector<int32_t>& partitions);
  // Folds executor-events of `partitions` from the stored offsets to the end into the store.
  // `owned`: they are this instance's (their ends are remembered for the sink), and the end is
  // the partition's high watermark: a read_committed read stops at the last stable offset, which a
  // transaction left open by a dead instance holds back, hiding records committed after it (the
  // previous owner's last decisions); the fold waits until the broker ends that transaction.
  // `folded`: how many events were folded (optional).
  absl::Status FoldExecutorEvents(const std::vector<int32_t>& partitions, bool owned = true,
                                  int64_t* folded = nullptr);
  // Folds one executor-events record into `overlay` and moves its stored offset past it.
  absl::Status FoldRecord(Overlay& overlay, const kafka::Message& m, int64_t* folded,
                          int64_t* undecodable);
  // Before joining: folds every partition to the end, in passes, until a pass finds few events.
  absl::Status WarmUp();
  // Points the standby consumer at the partitions not owned, from their stored offsets.
  void UpdateStandby();
  // Folds up to `max` records the standby consumer has ready (never waits).
  absl::Status FoldStandby(int max);
  // After a failed or uncertain batch: abort it (re-initialise the sink if that fails or
  // `reinit_sink`), re-run recovery, rewind both consumers and drop every undecided input.
  void Resync(bool reinit_sink, absl::string_view why);
  void RewindConsumers();
  // One batch. Returns false when there was nothing to do.
  absl::StatusOr<bool> RunBatch(absl::Duration wait);
  absl::Status CommitBatch(BatchOutput& out, const std::map<int32_t, int64_t>& new_committed);
  absl::Duration WaitBudget();
  // Lag and health from the latest watermarks (never waits for the broker).
  void UpdateLag();
  bool Owned(int32_t p) const { return partitions_.count(p) > 0; }

  ExecutorOptions options_;
  Clock& clock_;
  Metrics metrics_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Processor> processor_;
  std::unique_ptr<Overlay> overlay_;
  std::unique_ptr<kafka::Consumer> input_;      // group member over enrollment-events
  std::unique_ptr<kafka::Consumer> sequences_;  // all of sequence-events, manual assignment
  std::unique_ptr<kafka::Consumer> changelog_;  // executor-events, read_committed, for recovery
  // Never fetches: asks executor-events' high watermarks (read_uncommitted, so the real end and
  // not the last stable offset a read_committed client is told).
  std::unique_ptr<kafka::Consumer> changelog_ends_;
  std::unique_ptr<kafka::Consumer> standby_;  // executor-events of partitions owned by others
  std::set<int32_t> standby_parts_;           // the standby consumer's assignment
  int executor_partitions_ = 0;               // partitions of executor-events
  std::unique_ptr<BatchSink> sink_;
  std::unique_ptr<WatermarkPoller> input_marks_;  // owned enrollment-events partitions

  std::map<int32_t, PartitionState> partitions_;  // owned enrollment-events partitions
  // Per owned executor-events partition: an offset at or before its end and after every record
  // folded into the store (set by recovery, advanced by the sink; absent: unknown).
  std::map<int32_t, int64_t> executor_ends_;
  std::map<int32_t, int64_t> sequence_positions_;  // next sequence-events offset per partition
  int sequence_partitions_ = 0;
  int input_partitions_ = 0;  // of enrollment-events (0: not known yet)
  DuePosition scan_from_;
  BatchSizer sizer_;                    // how many inputs and due steps the next batch may take
  std::optional<absl::Time> next_due_;  // cached; nullopt: recompute
  bool next_due_known_ = false;
  bool recovery_failed_ = false;
  // When the loop last came round (unix micros; 0: not yet). Read by Snapshot on other threads.
  std::atomic<int64_t> loop_beat_micros_{0};
  // Notified to stop Run (set by Run; null before).
  absl::Notification* stop_ = nullptr;
  // True from an assignment of the group (possibly empty: more members than partitions) until it
  // loses every partition it held or its clients are rebuilt: the instance is a member that holds
  // what it was given.
  bool member_ = false;
  // The error of the latest failed input poll, cleared by the next successful one.
  std::string consume_error_;
  absl::Time last_lag_update_ = absl::InfinitePast();
  absl::Time last_metrics_log_ = absl::InfinitePast();
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_EXECUTOR_H_
