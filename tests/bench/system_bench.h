#ifndef SEQUENCES_TESTS_BENCH_SYSTEM_BENCH_H_
#define SEQUENCES_TESTS_BENCH_SYSTEM_BENCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/bench/figures.h"

namespace sequences::bench {

// One named result: figures plus optional series for plots (name -> values).
struct Result {
  std::string name;
  Figures figures;
  std::map<std::string, std::vector<double>> series;
};

struct SystemOptions {
  std::string bootstrap;
  std::string build_dir;  // where services/step-executor/step-executor is
  std::string work_dir;   // data dirs and logs
  int partitions = 6;
  std::string processing_guarantee = "exactly_once";
  // Extra flags of the executor (e.g. "--min_batch=500 --max_batch=500": a fixed batch limit);
  // empty: its defaults (an adaptive batch, services/step-executor/README.md).
  std::vector<std::string> executor_flags;
  bool replay = true;  // executor-throughput: also replay its executor-events
  // Another step-executor binary (e.g. main's) whose replay of the same topic is timed too, as
  // executor-replay@baseline, alternating with this build's: before/after in one run.
  std::string replay_baseline;
  int replay_repeats = 1;  // replays per binary; the median is reported
  // Which system runs the workload: "executor" (services/step-executor), or a peer built on
  // another technology for comparison: "kafka-streams" (tests/bench/peers/kafka-streams, built by
  // its build.sh). A peer's figures are named "peer-<system>-..." instead of "executor-...", and
  // it has no replay.
  std::string system = "executor";
  std::string peers_dir = "tests/bench/peers";  // where each peer's run.sh is
};

// "executor-<what>", or "peer-<system>-<what>" for a peer.
std::string FigureName(const SystemOptions& options, const std::string& what);

// Each benchmark runs options.system (the executor unless a peer is named).
//
// Enrollments with an immediate first step, loaded before the executor starts: enrollments/s
// from enroll event in to first step committed; then the executor's peak RSS holding them, the
// time until it fires again after kill -9, and replay of its executor-events (with the raw
// consume of the same topic as baseline).
absl::StatusOr<std::vector<Result>> ExecutorThroughput(const SystemOptions& options, int64_t count);

// The throughput workload with `instances` executors in one group started together: enrollments/s
// from the first to the last first step, the median second, and the instances' CPU together.
// Named executor-scaleout@<instances>.
absl::StatusOr<std::vector<Result>> ExecutorScaleout(const SystemOptions& options, int64_t count,
                                                     int instances);

// `count` enrollments whose first step comes due at the same instant: steps fired/s until all
// are committed, and their lateness.
absl::StatusOr<std::vector<Result>> ExecutorTimerBurst(const SystemOptions& options, int64_t count);

// Enrollments arriving at `rate`/s for `seconds`, each firing one minute later: lateness (visible
// to a read_committed consumer minus due time) in steady state, after a second instance joins
// (rebalance) and after a kill -9 and restart.
absl::StatusOr<std::vector<Result>> ExecutorLateness(const SystemOptions& options, double rate,
                                                     double seconds);

// Send limits on against off, in one run (docs/send-limits.md): enrollments whose first step is
// an automatic email whose sender's daily limit is never reached (the sender stage on the path),
// against the same enrollments whose first email is a draft for review (no stage). Each side:
// executor-throughput's figures for `count` enrollments loaded before the start (to first email
// visible), then steady lateness at `rate`/s for `seconds` (emails due a minute after enrolling).
// A third side, "gap", also sets a minimum gap between emails to one person (docs/min-gap.md), so
// every email passes the person stage too (never waiting: each enrollment has its own recipient).
// Named executor-limits-{off,on,gap}-{throughput,lateness}; tests/bench/report.py pairs them.
// `instances` > 1: the throughput runs only, with that many executors in one group (CPU summed).
absl::StatusOr<std::vector<Result>> ExecutorLimits(const SystemOptions& options, int64_t count,
                                                   double rate, double seconds, int instances = 1);
// A sender whose daily limit is reached: CPU per email arriving while it holds 200 waiting
// (executor-limits-reached-small) against `count` waiting (-large), over 8 sequences.
absl::StatusOr<std::vector<Result>> ExecutorLimitsReached(const SystemOptions& options,
                                                          int64_t count);

}  // namespace sequences::bench

#endif  // SEQUENCES_TESTS_BENCH_SYSTEM_BENCH_H_
