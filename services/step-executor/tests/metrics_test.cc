#include "services/step-executor/metrics.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

namespace sequences::executor {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST_CASE(
    "given fired steps, lateness, transactions and lag, when rendered for Prometheus, then "
    "each figure appears under its documented name") {
  Metrics m;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  m.AddFired({{"task", 2}, {"email", 1}}, t0);
  m.AddFired({{"task", 1}}, t0 + absl::Seconds(2));
  m.AddLateness(absl::Milliseconds(10));   // first bucket
  m.AddLateness(absl::Milliseconds(300));  // le 0.5
  m.AddLateness(absl::Seconds(60));        // beyond the last bound
  m.AddCommit();
  m.AddCommit();
  m.AddAbort("fenced");
  m.ObserveTransaction(absl::Milliseconds(3));
  m.ObserveBatch(40, 500);     // le 50
  m.ObserveBatch(3000, 1000);  // le 5000; the latest limit is what the gauge shows
  m.AddDeadLettered(4);
  m.SetRecoveryDuration(absl::Milliseconds(1500));
  m.SetPartitionLag({{0, 5}, {2, 7}});
  m.SetGauges(12, 9, 2, 0);
  m.SetStoreStats({.size_bytes = 4096,
                   .block_cache_hits = 3,
                   .block_cache_misses = 1,
                   .block_cache_hit_ratio = 0.75,
                   .memtable_bytes = 2048});
  m.SetProcessMemory({.resident_bytes = 300, .heap_allocated_bytes = 200, .heap_dirty_bytes = 50});
  m.SetHealth(true, "caught up");
  const std::string text =
      service::PrometheusText(m.Snapshot().Families("sequences.enrollment-events"));
  INFO(text);
  CHECK(Has(text, "sequences_executor_steps_fired_total{kind=\"task\"} 3"));
  CHECK(Has(text, "sequences_executor_steps_fired_total{kind=\"email\"} 1"));
  CHECK(Has(text, "sequences_executor_steps_fired_total{kind=\"none\"} 0"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_bucket{le=\"0.05\"} 1"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_bucket{le=\"0.25\"} 1"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_bucket{le=\"0.5\"} 2"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_bucket{le=\"30\"} 2"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_bucket{le=\"+Inf\"} 3"));
  CHECK(Has(text, "sequences_executor_step_lateness_seconds_count 3"));
  // 60.31, printed with every digit a double holds
  CHECK(text.find("sequences_executor_step_lateness_seconds_sum 60.3") != std::string::npos);
  CHECK(Has(text, "sequences_executor_transactions_total{result=\"commit\"} 2"));
  CHECK(Has(text, "sequences_executor_transactions_total{result=\"abort\"} 1"));
  CHECK(Has(text, "sequences_executor_transaction_duration_seconds_bucket{le=\"0.0025\"} 0"));
  CHECK(Has(text, "sequences_executor_transaction_duration_seconds_bucket{le=\"0.005\"} 1"));
  CHECK(Has(text, "sequences_executor_transaction_duration_seconds_count 1"));
  CHECK(Has(text, "sequences_executor_batch_size_bucket{le=\"50\"} 1"));
  CHECK(Has(text, "sequences_executor_batch_size_bucket{le=\"2000\"} 1"));
  CHECK(Has(text, "sequences_executor_batch_size_bucket{le=\"5000\"} 2"));
  CHECK(Has(text, "sequences_executor_batch_size_count 2"));
  CHECK(Has(text, "sequences_executor_batch_limit 1000"));
  CHECK(Has(text, "sequences_executor_dead_letters_total 4"));
  CHECK(Has(text, "sequences_executor_recovery_seconds 1.5"));
  CHECK(Has(text,
            "sequences_executor_input_lag_records{topic=\"sequences.enrollment-events\","
            "partition=\"0\"} 5"));
  CHECK(Has(text,
            "sequences_executor_input_lag_records{topic=\"sequences.enrollment-events\","
            "partition=\"2\"} 7"));
  CHECK(Has(text, "sequences_executor_due_index_depth 9"));
  CHECK(Has(text, "sequences_executor_owned_partitions 2"));
  CHECK(Has(text, "sequences_executor_rocksdb_size_bytes 4096"));
  CHECK(Has(text, "sequences_executor_rocksdb_block_cache_hit_ratio 0.75"));
  CHECK(Has(text, "sequences_executor_rocksdb_memtable_bytes 2048"));
  CHECK(Has(text, "sequences_executor_resident_memory_bytes 300"));
  CHECK(Has(text, "sequences_executor_heap_allocated_bytes 200"));
  CHECK(Has(text, "sequences_executor_heap_dirty_bytes 50"));
  CHECK(Has(text, "sequences_executor_ready 1"));
}

}  // namespace
}  // namespace sequences::executor
