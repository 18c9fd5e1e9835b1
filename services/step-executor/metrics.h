#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_

// Counters and gauges of the executor, and its health. The loop writes them; the health server
// and the periodic metrics log line read snapshots.
//
// Thread-safety: every method is safe to call from any thread.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/service/metrics_text.h"
#include "libs/store/store.h"

namespace sequences::executor {

// Upper bounds (seconds) of the lateness histogram buckets; a last bucket takes the rest.
inline constexpr std::array<double, 8> kLatenessBounds = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30};
// Upper bounds (seconds) of the transaction duration histogram.
inline constexpr std::array<double, 12> kTransactionBounds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
// Upper bounds of the batch size histogram (inputs or due steps per committed batch).
inline constexpr std::array<double, 11> kBatchSizeBounds = {1,    10,   50,   100,   250,  500,
                                                            1000, 2000, 5000, 10000, 20000};

// The process's resident memory and the allocator's view of its heap (bytes; 0 where unknown),
// from main(): /proc/self/status and jemalloc's statistics (README "Memory").
struct ProcessMemory {
  int64_t resident_bytes = 0;       // VmRSS
  int64_t resident_anon_bytes = 0;  // RssAnon: heap, stacks, anonymous mappings
  int64_t resident_file_bytes = 0;  // RssFile: pages of the binary and its shared libraries
  // The allocator: bytes the program holds (allocated); pages those sit on (active: active -
  // allocated is fragmentation); freed pages kept for reuse and not yet returned (dirty); its own
  // bookkeeping (metadata).
  int64_t heap_allocated_bytes = 0;
  int64_t heap_active_bytes = 0;
  int64_t heap_dirty_bytes = 0;
  int64_t heap_metadata_bytes = 0;
};

struct MetricsSnapshot {
  bool serving = false;
  std::string health_reason = "starting";
  int64_t input_lag = 0;
  // input_lag per owned enrollment-events partition (partitions whose end is not known yet are
  // missing).
  std::map<int32_t, int64_t> input_lag_by_partition;
  int64_t due_index_size = 0;
  int64_t owned_partitions = 0;
  int64_t steps_fired = 0;
  // steps_fired by effect: "task", "email", "none".
  std::map<std::string, int64_t> steps_fired_by_kind;
  double steps_fired_per_second = 0;
  int64_t inputs_decided = 0;
  int64_t deferred_inputs = 0;
  int64_t dead_lettered = 0;
  // Automatic emails the sender stage deferred (send limit or window), and released after waiting.
  int64_t emails_deferred = 0;
  int64_t emails_deferred_min_gap = 0;  // of emails_deferred (docs/min-gap.md)
  int64_t emails_released = 0;
  int64_t transactions_committed = 0;
  int64_t transactions_aborted = 0;
  int64_t recoveries = 0;
  // Duration of the latest completed recovery (0: none yet).
  double last_recovery_seconds = 0;
  // Duration of each transaction (the sink's write: produce, offsets, commit), whatever its
  // outcome.
  service::HistogramValue transaction_seconds;
  // Size of each committed batch: the larger of its inputs and its due steps (batch_sizer.h).
  service::HistogramValue batch_size;
  // The adaptive limit the next batch may take (BatchSizer::limit).
  int64_t batch_limit = 0;
  // The largest committed batch so far (same measure as batch_size).
  int64_t largest_batch = 0;
  // The state store (libs/store StoreStats).
  int64_t store_size_bytes = 0;
  int64_t block_cache_hits = 0;
  int64_t block_cache_misses = 0;
  double block_cache_hit_ratio = 1;
  // The store's memory by RocksDB's accounting (StoreStats): cache capacity, usage and pinned
  // part, memtables (charged to the cache), table readers outside the cache.
  int64_t block_cache_capacity_bytes = 0;
  int64_t block_cache_usage_bytes = 0;
  int64_t block_cache_pinned_bytes = 0;
  int64_t memtable_bytes = 0;
  int64_t table_readers_bytes = 0;
  ProcessMemory process_memory;
  // Times the group consumer and producer were destroyed and recreated after a fatal error.
  int64_t client_rebuilds = 0;
  std::array<int64_t, kLatenessBounds.size() + 1> lateness{};
  double lateness_sum_seconds = 0;
  std::string last_error;

  // One JSON object (the metrics log line and the Metrics text).
  std::string ToJson() const;
  // The Prometheus metric families (docs/metrics.md); `input_topic` labels the lag.
  std::vector<service::MetricFamily> Families(const std::string& input_topic) const;
};

class Metrics {
 public:
  // Steps fired by one batch, by kind (BatchOutput::steps_fired_by_kind).
  void AddFired(const std::map<std::string, int>& by_kind, absl::Time now);
  void AddLateness(absl::Duration d);
  void AddInputs(int n);
  void AddDeadLettered(int n);
  void AddEmailsDeferred(int deferred, int released, int deferred_min_gap = 0);
  void AddCommit();
  void AddAbort(const std::string& error);
  void AddRecovery();
  void SetRecoveryDuration(absl::Duration d);
  void ObserveTransaction(absl::Duration d);
  // After a committed batch of `size` (the larger of inputs and due steps); `next_limit`: what
  // the next batch may take.
  void ObserveBatch(int size, int next_limit);
  void SetPartitionLag(std::map<int32_t, int64_t> lag);
  void SetStoreStats(const store::StoreStats& stats);
  void SetProcessMemory(const ProcessMemory& memory);
  void AddClientRebuild(const std::string& error);
  void SetGauges(int64_t lag, int64_t due_index_size, int64_t owned, int64_t deferred);
  void SetHealth(bool serving, const std::string& reason);
  void SetError(const std::string& error);
  MetricsSnapshot Snapshot();

 private:
  absl::Mutex mu_;
  MetricsSnapshot s_ ABSL_GUARDED_BY(mu_);
  service::Histogram transactions_{{kTransactionBounds.begin(), kTransactionBounds.end()}};
  service::Histogram batches_{{kBatchSizeBounds.begin(), kBatchSizeBounds.end()}};
  // Fired count and time at the start of the current rate window.
  int64_t window_fired_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_
