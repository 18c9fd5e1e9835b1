#include "services/step-executor/metrics.h"

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
      ",\"dead_lettered\":", dead_lettered, ",\"transactions_committed\":", transactions_committed,
      ",\"transactions_aborted\":", transactions_aborted, ",\"recoveries\":", recoveries,
      ",\"client_rebuilds\":", client_rebuilds, ",\"lateness_seconds\":{",
      absl::StrJoin(buckets, ","), "},\"last_error\":\"", err, "\"}");
}

void Metrics::AddFired(int n, absl::Time now) {
  absl::MutexLock l(&mu_);
  s_.steps_fired += n;
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
}

void Metrics::AddInputs(int n) {
  absl::MutexLock l(&mu_);
  s_.inputs_decided += n;
}

void Metrics::AddDeadLettered(int n) {
  absl::MutexLock l(&mu_);
  s_.dead_lettered += n;
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

MetricsSnapshot Metrics::Snapshot() {
  absl::MutexLock l(&mu_);
  return s_;
}

}  // namespace sequences::executor
