#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_BATCH_SIZER_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_BATCH_SIZER_H_

// How many inputs (and, counted separately, due steps) the executor's next batch may take: one
// Kafka transaction per batch, so under backlog larger batches spread the transaction's round
// trips over more inputs, and under light load small batches keep a due step's wait short.
//
// The rule, applied after every committed batch (Observe):
//   - the batch took longer than the budget: limit := max(min, limit * budget / took)
//     (proportional: the next full batch should fit the budget);
//   - else the batch was full (it stopped at the limit, so more was waiting): limit doubles,
//     up to max;
//   - else (everything that was waiting fit): limit halves, but not below what the batch took,
//     nor below min.
// So the limit grows quickly while there is backlog and the machine keeps a full batch within
// the budget, never exceeds max (memory per batch is bounded), and falls back towards min when
// load is light. The limit only bounds a batch: a batch takes what is available now, up to it.
//
// Deterministic in its inputs (no clock, no randomness); the timings come from the caller. What
// the executor decides never depends on it: it only moves batch boundaries.
//
// Thread-compatible: one loop owns it.

#include "absl/time/time.h"

namespace sequences::executor {

struct BatchSizerOptions {
  int min = 500;   // the limit never falls below this (>= 1)
  int max = 5000;  // nor rises above this (>= min)
  // Longest a batch (deciding, the transaction, the state write) should take under backlog.
  absl::Duration budget = absl::Milliseconds(250);
};

class BatchSizer {
 public:
  // Starts at options.min. Values out of range are clamped (min >= 1, max >= min, budget > 0).
  explicit BatchSizer(BatchSizerOptions options);

  // Most inputs, and most due steps, the next batch may take.
  [[nodiscard]] int limit() const { return limit_; }

  // After a committed batch: `full` when it stopped at limit() (inputs or due steps were left
  // waiting), `taken` the larger of its inputs and due steps, `took` its time from the end of
  // the poll to the end of the state write.
  void Observe(bool full, int taken, absl::Duration took);

  [[nodiscard]] const BatchSizerOptions& options() const { return options_; }

 private:
  BatchSizerOptions options_;
  int limit_;
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_BATCH_SIZER_H_
