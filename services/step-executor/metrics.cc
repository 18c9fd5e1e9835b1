#include "services/step-executor/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace sequences::executor {

std::string MetricsSnapshot::ToJson() const {
  std::vector<std::string> buckets;
  for (size_t i = 0; i < lateness.size(); ++i) {
    const std::string le = i < kLatenessBounds.size() ? absl::StrCat(kLatenessBounds[i]) : "inf";
    buckets.push_back(absl::StrCat("\"le_", le, "s\":", lateness[i]));
  }
  const std::string err = absl::StrReplaceAll(last_error, {{"\\", "\\\\"}, {"\"", "\\\""}});
  const std::string reason = absl::StrReplaceAll(health_reason, {{"\\", "\\\\"}, {"\"", "\\\""}});
  return absl::StrCat(
      "{\"serving\":", serving ? "true" : "false", ",\"health_reason\":\"", reason,
      "\",\"input_lag\":", input_lag, ",\"due_index_size\":", due_index_size,
      ",\"owned_partitions\":", owned_partitions, ",\"steps_fired\":", steps_fired,
      ",\"steps_fired_per_second\":", steps_fired_per_second,
      ",\"inputs_decided\":", inputs_decided, ",\"deferred_inputs\":", deferred_inputs,
      ",\"dead_lettered\":", dead_lettered, ",\"emails_deferred\":", emails_deferred,
      ",\"emails_released\":", emails_released,
      ",\"transactions_committed\":", transactions_committed,
      ",\"transactions_aborted\":", transactions_aborted, ",\"recoveries\":", recoveries,
      ",\"client_rebuilds\":", client_rebuilds, ",\"batch_limit\":", batch_limit,
      ",\"batches\":", batch_size.count, ",\"batch_size_sum\":", batch_size.sum,
      ",\"largest_batch\":", largest_batch,
      ",\"rocksdb_memory\":{\"cache_capacity\":", block_cache_capacity_bytes,
      ",\"cache_usage\":", block_cache_usage_bytes, ",\"cache_pinned\":", block_cache_pinned_bytes,
      ",\"memtables\":", memtable_bytes, ",\"table_readers\":", table_readers_bytes,
      "},\"process_memory\":{\"rss\":", process_memory.resident_bytes,
      ",\"rss_anon\":", process_memory.resident_anon_bytes,
      ",\"rss_file\":", process_memory.resident_file_bytes,
      ",\"heap_allocated\":", process_memory.heap_allocated_bytes,
      ",\"heap_active\":", process_memory.heap_active_bytes,
      ",\"heap_dirty\":", process_memory.heap_dirty_bytes,
      ",\"heap_metadata\":", process_memory.heap_metadata_bytes, "},\"lateness_seconds\":{",
      absl::StrJoin(buckets, ","), "},\"last_error\":\"", err, "\"}");
}

void Metrics::AddFired(const std::map<std::string, int>& by_kind, absl::Time now) {
  absl::MutexLock l(&mu_);
  for (const auto& [kind, n] : by_kind) {
    s_.steps_fired += n;
    s_.steps_fired_by_kind[kind] += n;
  }
  if (window_start_ == absl::InfinitePast()) {
    window_start_ = now;
    window_fired_ = s_.steps_fired;
  }
  const absl::Duration elapsed = now - window_start_;
  if (elapsed >= absl::Seconds(1)) {
    s_.steps_fired_per_second =
        static_cast<double>(s_.steps_fired - window_fired_) / absl::ToDoubleSeconds(elapsed);
    window_start_ = now;
    window_fired_ = s_.steps_fired;
  }
}

void Metrics::AddLateness(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < kLatenessBounds.size() && s > kLatenessBounds[i]) ++i;
  absl::MutexLock l(&mu_);
  ++s_.lateness[i];
  s_.lateness_sum_seconds += s;
}

void Metrics::AddInputs(int n) {
  absl::MutexLock l(&mu_);
  s_.inputs_decided += n;
}

void Metrics::AddDeadLettered(int n) {
  absl::MutexLock l(&mu_);
  s_.dead_lettered += n;
}

void Metrics::AddEmailsDeferred(int deferred, int released, int deferred_min_gap) {
  absl::MutexLock l(&mu_);
  s_.emails_deferred += deferred;
  s_.emails_deferred_min_gap += deferred_min_gap;
  s_.emails_released += released;
}

void Metrics::AddCommit() {
  absl::MutexLock l(&mu_);
  ++s_.transactions_committed;
}

void Metrics::AddAbort(const std::string& error) {
  absl::MutexLock l(&mu_);
  ++s_.transactions_aborted;
  s_.last_error = error;
}

void Metrics::AddRecovery() {
  absl::MutexLock l(&mu_);
  ++s_.recoveries;
}

void Metrics::AddClientRebuild(const std::string& error) {
  absl::MutexLock l(&mu_);
  ++s_.client_rebuilds;
  s_.last_error = error;
}

void Metrics::SetGauges(int64_t lag, int64_t due_index_size, int64_t owned, int64_t deferred) {
  absl::MutexLock l(&mu_);
  s_.input_lag = lag;
  s_.due_index_size = due_index_size;
  s_.owned_partitions = owned;
  s_.deferred_inputs = deferred;
}

void Metrics::SetHealth(bool serving, const std::string& reason) {
  absl::MutexLock l(&mu_);
  s_.serving = serving;
  s_.health_reason = reason;
}

void Metrics::SetError(const std::string& error) {
  absl::MutexLock l(&mu_);
  s_.last_error = error;
}

void Metrics::SetRecoveryDuration(absl::Duration d) {
  absl::MutexLock l(&mu_);
  s_.last_recovery_seconds = absl::ToDoubleSeconds(d);
}

void Metrics::ObserveTransaction(absl::Duration d) {
  transactions_.Observe(absl::ToDoubleSeconds(d));
}

void Metrics::ObserveBatch(int size, int next_limit) {
  batches_.Observe(size);
  absl::MutexLock l(&mu_);
  s_.batch_limit = next_limit;
  s_.largest_batch = std::max<int64_t>(s_.largest_batch, size);
}

void Metrics::SetPartitionLag(std::map<int32_t, int64_t> lag) {
  absl::MutexLock l(&mu_);
  s_.input_lag_by_partition = std::move(lag);
}

void Metrics::SetStoreStats(const store::StoreStats& stats) {
  absl::MutexLock l(&mu_);
  s_.store_size_bytes = stats.size_bytes;
  s_.block_cache_hits = stats.block_cache_hits;
  s_.block_cache_misses = stats.block_cache_misses;
  s_.block_cache_hit_ratio = stats.block_cache_hit_ratio;
  s_.block_cache_capacity_bytes = stats.block_cache_capacity_bytes;
  s_.block_cache_usage_bytes = stats.block_cache_usage_bytes;
  s_.block_cache_pinned_bytes = stats.block_cache_pinned_bytes;
  s_.memtable_bytes = stats.memtable_bytes;
  s_.table_readers_bytes = stats.table_readers_bytes;
}

void Metrics::SetProcessMemory(const ProcessMemory& memory) {
  absl::MutexLock l(&mu_);
  s_.process_memory = memory;
}

MetricsSnapshot Metrics::Snapshot() {
  service::HistogramValue transactions = transactions_.Value();
  service::HistogramValue batches = batches_.Value();
  absl::MutexLock l(&mu_);
  MetricsSnapshot out = s_;
  out.transaction_seconds = std::move(transactions);
  out.batch_size = std::move(batches);
  return out;
}

std::vector<service::MetricFamily> MetricsSnapshot::Families(const std::string& input_topic) const {
  using service::MetricFamily;
  using service::MetricKind;
  auto gauge = [](std::string name, std::string help, double v) {
    MetricFamily f{.name = std::move(name), .help = std::move(help), .kind = MetricKind::kGauge};
    f.Add({}, v);
    return f;
  };
  auto counter = [](std::string name, std::string help, double v) {
    MetricFamily f{.name = std::move(name), .help = std::move(help), .kind = MetricKind::kCounter};
    f.Add({}, v);
    return f;
  };
  std::vector<MetricFamily> out;
  out.push_back(gauge("sequences_executor_ready",
                      "1 when caught up and holding its assignment (/readyz 200), else 0",
                      serving ? 1 : 0));
  MetricFamily lag{.name = "sequences_executor_input_lag_records",
                   .help = "input records not decided yet, per owned partition",
                   .kind = MetricKind::kGauge};
  for (const auto& [p, n] : input_lag_by_partition) {
    lag.Add({{"topic", input_topic}, {"partition", std::to_string(p)}}, static_cast<double>(n));
  }
  out.push_back(std::move(lag));
  out.push_back(gauge("sequences_executor_owned_partitions",
                      "enrollment-events partitions this instance owns",
                      static_cast<double>(owned_partitions)));
  out.push_back(gauge("sequences_executor_due_index_depth",
                      "entries in the due index (RocksDB estimate)",
                      static_cast<double>(due_index_size)));
  out.push_back(gauge("sequences_executor_deferred_inputs",
                      "polled inputs waiting (e.g. for their sequence version)",
                      static_cast<double>(deferred_inputs)));
  MetricFamily fired{.name = "sequences_executor_steps_fired_total",
                     .help = "steps executed by the timer, by the effect they had",
                     .kind = MetricKind::kCounter};
  for (const char* kind : {"task", "email", "none"}) {  // every series from the start
    auto it = steps_fired_by_kind.find(kind);
    fired.Add({{"kind", kind}},
              static_cast<double>(it == steps_fired_by_kind.end() ? 0 : it->second));
  }
  out.push_back(std::move(fired));
  service::HistogramValue late;
  int64_t cumulative = 0;
  for (size_t i = 0; i < kLatenessBounds.size(); ++i) {
    cumulative += lateness[i];
    late.bounds.push_back(kLatenessBounds[i]);
    late.cumulative.push_back(static_cast<uint64_t>(cumulative));
  }
  late.count = static_cast<uint64_t>(cumulative + lateness.back());
  late.sum = lateness_sum_seconds;
  MetricFamily lateness_family{.name = "sequences_executor_step_lateness_seconds",
                               .help = "fire time minus due time of each step fired",
                               .kind = MetricKind::kHistogram};
  lateness_family.Add({}, std::move(late));
  out.push_back(std::move(lateness_family));
  out.push_back(counter("sequences_executor_inputs_decided_total", "input records decided",
                        static_cast<double>(inputs_decided)));
  MetricFamily transactions{.name = "sequences_executor_transactions_total",
                            .help = "batches written, by outcome",
                            .kind = MetricKind::kCounter};
  transactions.Add({{"result", "commit"}}, static_cast<double>(transactions_committed));
  transactions.Add({{"result", "abort"}}, static_cast<double>(transactions_aborted));
  out.push_back(std::move(transactions));
  MetricFamily durations{.name = "sequences_executor_transaction_duration_seconds",
                         .help = "time to write one batch (produce, offsets, commit)",
                         .kind = MetricKind::kHistogram};
  durations.Add({}, transaction_seconds);
  out.push_back(std::move(durations));
  MetricFamily sizes{.name = "sequences_executor_batch_size",
                     .help = "inputs or due steps (the larger) per committed batch",
                     .kind = MetricKind::kHistogram};
  sizes.Add({}, batch_size);
  out.push_back(std::move(sizes));
  out.push_back(gauge("sequences_executor_batch_limit",
                      "most inputs (and most due steps) the next batch may take",
                      static_cast<double>(batch_limit)));
  out.push_back(counter("sequences_executor_dead_letters_total",
                        "input records sent to the dead-letter topic",
                        static_cast<double>(dead_lettered)));
  out.push_back(counter("sequences_executor_emails_deferred_total",
                        "automatic emails deferred by their sender's send limit, the minimum gap "
                        "between emails to one person (or the window)",
                        static_cast<double>(emails_deferred)));
  out.push_back(counter("sequences_executor_emails_deferred_min_gap_total",
                        "of those, automatic emails deferred by the minimum gap to one person",
                        static_cast<double>(emails_deferred_min_gap)));
  out.push_back(counter("sequences_executor_emails_released_total",
                        "deferred automatic emails sent after waiting",
                        static_cast<double>(emails_released)));
  out.push_back(counter("sequences_executor_recoveries_total",
                        "recoveries run (partition assignments and uncertain transactions)",
                        static_cast<double>(recoveries)));
  out.push_back(gauge("sequences_executor_recovery_seconds", "duration of the latest recovery",
                      last_recovery_seconds));
  out.push_back(counter("sequences_executor_client_rebuilds_total",
                        "Kafka clients recreated after a fatal error",
                        static_cast<double>(client_rebuilds)));
  out.push_back(gauge("sequences_executor_rocksdb_size_bytes",
                      "state store size: SST files plus memtables",
                      static_cast<double>(store_size_bytes)));
  out.push_back(gauge("sequences_executor_rocksdb_block_cache_hit_ratio",
                      "block cache hits / lookups since start (1 before any lookup)",
                      block_cache_hit_ratio));
  out.push_back(counter("sequences_executor_rocksdb_block_cache_hits_total", "block cache hits",
                        static_cast<double>(block_cache_hits)));
  out.push_back(counter("sequences_executor_rocksdb_block_cache_misses_total", "block cache misses",
                        static_cast<double>(block_cache_misses)));
  out.push_back(gauge("sequences_executor_rocksdb_block_cache_capacity_bytes",
                      "capacity of the store's one cache (blocks and memtables)",
                      static_cast<double>(block_cache_capacity_bytes)));
  out.push_back(gauge("sequences_executor_rocksdb_block_cache_usage_bytes",
                      "bytes the cache holds: blocks, index and filter partitions, memtables",
                      static_cast<double>(block_cache_usage_bytes)));
  out.push_back(gauge("sequences_executor_rocksdb_block_cache_pinned_bytes",
                      "of the cache's usage, entries in use or pinned (not evictable)",
                      static_cast<double>(block_cache_pinned_bytes)));
  out.push_back(gauge("sequences_executor_rocksdb_memtable_bytes",
                      "memtables of every column family, active and immutable",
                      static_cast<double>(memtable_bytes)));
  out.push_back(gauge("sequences_executor_rocksdb_table_readers_bytes",
                      "open SST files' readers outside the cache",
                      static_cast<double>(table_readers_bytes)));
  out.push_back(gauge("sequences_executor_resident_memory_bytes",
                      "the process's resident set (VmRSS; 0 where unknown)",
                      static_cast<double>(process_memory.resident_bytes)));
  out.push_back(gauge("sequences_executor_heap_allocated_bytes",
                      "heap the process holds, by the allocator's count (0 where unknown)",
                      static_cast<double>(process_memory.heap_allocated_bytes)));
  out.push_back(gauge("sequences_executor_heap_dirty_bytes",
                      "freed heap pages the allocator keeps, not yet returned (0 where unknown)",
                      static_cast<double>(process_memory.heap_dirty_bytes)));
  return out;
}

}  // namespace sequences::executor
