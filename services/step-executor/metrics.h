#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_

// Counters and gauges of the executor, and its health. The loop writes them; the health server
// and the periodic metrics log line read snapshots.
//
// Thread-safety: every method is safe to call from any thread.

#include <array>
#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sequences::executor {

// Upper bounds (seconds) of the lateness histogram buckets; a last bucket takes the rest.
inline constexpr std::array<double, 8> kLatenessBounds = {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 30};

struct MetricsSnapshot {
  bool serving = false;
  std::string health_reason = "starting";
  int64_t input_lag = 0;
  int64_t due_index_size = 0;
  int64_t owned_partitions = 0;
  int64_t steps_fired = 0;
  double steps_fired_per_second = 0;
  int64_t inputs_decided = 0;
  int64_t deferred_inputs = 0;
  int64_t dead_lettered = 0;
  int64_t transactions_committed = 0;
  int64_t transactions_aborted = 0;
  int64_t recoveries = 0;
  // Times the group consumer and producer were destroyed and recreated after a fatal error.
  int64_t client_rebuilds = 0;
  std::array<int64_t, kLatenessBounds.size() + 1> lateness{};
  std::string last_error;

  // One JSON object (the metrics log line and the Metrics text).
  std::string ToJson() const;
};

class Metrics {
 public:
  void AddFired(int n, absl::Time now);
  void AddLateness(absl::Duration d);
  void AddInputs(int n);
  void AddDeadLettered(int n);
  void AddCommit();
  void AddAbort(const std::string& error);
  void AddRecovery();
  void AddClientRebuild(const std::string& error);
  void SetGauges(int64_t lag, int64_t due_index_size, int64_t owned, int64_t deferred);
  void SetHealth(bool serving, const std::string& reason);
  void SetError(const std::string& error);
  MetricsSnapshot Snapshot();

 private:
  absl::Mutex mu_;
  MetricsSnapshot s_ ABSL_GUARDED_BY(mu_);
  // Fired count and time at the start of the current rate window.
  int64_t window_fired_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_METRICS_H_
