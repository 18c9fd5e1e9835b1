#include "services/sequence-api/event_log.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/status.h"
#include "libs/runtime/log.h"

namespace sequences::api {
namespace {

// Shared with the delivery callbacks, which may run after Append returned (deadline).
struct Pending {
  absl::Mutex mu;
  std::vector<std::optional<absl::StatusOr<LogPosition>>> results ABSL_GUARDED_BY(mu);
  int remaining ABSL_GUARDED_BY(mu) = 0;
  // Set when Append fixed its results: a report that comes later goes to `late`.
  bool answered ABSL_GUARDED_BY(mu) = false;
  EventLog::LateResult late;
};

absl::Status Classify(const absl::Status& s) {
  // The API's topics exist (the service made sure at start): an unknown topic or partition is a
  // broker that has not loaded them yet (seen for a few seconds after a kill -9 and restart),
  // not a missing resource of the caller's.
  if (kafka::IsRetriable(s) || absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) ||
      absl::IsNotFound(s)) {
    return absl::UnavailableError(
        absl::StrCat("the event log could not make the write durable: ", s.message()));
  }
  return s;
}

}  // namespace

std::vector<absl::StatusOr<LogPosition>> KafkaEventLog::Append(
    absl::Span<const kafka::Record> records, absl::Time deadline, LateResult late) {
  auto pending = std::make_shared<Pending>();
  pending->late = std::move(late);
  {
    absl::MutexLock lock(&pending->mu);
    pending->results.resize(records.size());
    pending->remaining = static_cast<int>(records.size());
  }
  for (size_t i = 0; i < records.size(); ++i) {
    absl::Status queued = producer_->SendAsync(records[i], [pending, i, this](
                                                               absl::StatusOr<kafka::DeliveryReport>
                                                                   report) {
      absl::StatusOr<LogPosition> result =
          report.ok() ? absl::StatusOr<LogPosition>(
                            LogPosition{report->topic, report->partition, report->offset})
                      : absl::StatusOr<LogPosition>(Classify(report.status()));
      if (result.ok()) {
        produced_.fetch_add(1);
      } else {
        errors_.fetch_add(1);
        Log(LogLevel::kWarning, "api", "produce failed", {{"error", report.status().ToString()}});
      }
      bool late_result = false;
      {
        absl::MutexLock lock(&pending->mu);
        late_result = pending->answered;
        if (!late_result) {
          pending->results[i] = result;
          --pending->remaining;
        }
      }
      // Answered DEADLINE_EXCEEDED already: the caller learns the outcome now.
      if (late_result && pending->late) pending->late(i, std::move(result));
    });
    if (!queued.ok()) {
      errors_.fetch_add(1);
      absl::MutexLock lock(&pending->mu);
      pending->results[i] = Classify(queued);
      --pending->remaining;
    }
  }
  absl::MutexLock lock(&pending->mu);
  auto done = [&pending]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending->mu) { return pending->remaining == 0; };
  pending->mu.AwaitWithDeadline(absl::Condition(&done), deadline);
  pending->answered = true;
  std::vector<absl::StatusOr<LogPosition>> out;
  out.reserve(records.size());
  for (auto& r : pending->results) {
    if (r.has_value()) {
      out.push_back(*r);
    } else {
      out.push_back(absl::DeadlineExceededError(
          "the deadline passed before the broker acknowledged the write; it may or may not be "
          "durable: retry with the same request id"));
    }
  }
  return out;
}

}  // namespace sequences::api
