#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_REPLAY_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_REPLAY_H_

// Replay for operators: rebuild the executor's state directory from the log, emitting nothing.
//
//   state = fold(sequence-events) + fold(executor-events), every partition, read_committed,
//   from the beginning (or from the first record at or after `from`) to the current end.
//
// The digest is StateStore::Digest: a live instance that owns every partition and has applied
// the same log positions logs the same digest (at shutdown, "stopped" line).
//
// Dry run (determinism check): additionally reads enrollment-events, and for every recorded
// decision (consecutive executor events of one enrollment with one causation id) decides again
// with the domain, from the state before it, at the recorded time (the events' occurred_at),
// against the sequence as of that time (sequence events whose record timestamp is not later),
// and counts the decisions whose events differ from the recorded ones.
//
// The directory is written without RocksDB's write-ahead log and made durable (memtables flushed
// to synced files) before Replay returns OK; a replay that fails or is killed leaves a partial
// state, like any interrupted rebuild.
//
// Thread-compatible; blocks until the end of the log is reached (starts `fold_threads` threads).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/kafka/types.h"
#include "libs/service/topics.h"

namespace sequences::executor {

struct ReplayOptions {
  kafka::ClientConfig client;
  service::Topics topics;
  // Destroyed and rebuilt.
  std::string data_dir;
  // nullopt: from the beginning.
  std::optional<absl::Time> from;
  bool dry_run = false;
  // Threads folding executor events (each key on one of them, its events in log order); a dry
  // run folds on the reading thread.
  int fold_threads = 2;
  // Enrollment keys the folders keep staged in memory together, each folder its share (at least
  // 4): a write-back cache. A folder holding its share writes the least recently used quarter
  // and forgets them; a key folded again later is read back. Any value rebuilds the same state;
  // the larger, the fewer keys are written twice (and the more memory: about 1.3 KiB a key).
  int staged_keys = 32768;
  absl::Duration timeout = absl::Minutes(10);
};

struct ReplayResult {
  std::string digest;
  int64_t enrollments = 0;
  int64_t sequences = 0;
  int64_t executor_events = 0;
  int64_t sequence_events = 0;
  // Records skipped because they do not decode (or, for executor-events, decode to no executor
  // event this version knows). Each is also logged with its partition and offset. Undecodable
  // executor events mean the rebuilt state may lack something: exit code 4.
  int64_t executor_events_undecodable = 0;
  int64_t sequence_events_undecodable = 0;
  int64_t inputs_undecodable = 0;  // dry run: enrollment-events
  // End offsets reached, per partition.
  std::map<int32_t, int64_t> executor_end;
  std::map<int32_t, int64_t> sequence_end;
  // Dry run only.
  int64_t decisions_checked = 0;
  int64_t decisions_differing = 0;
  int64_t decisions_unchecked = 0;       // cause not found in the log read
  std::vector<std::string> differences;  // first few, human-readable

  std::string ToJson() const;
};

absl::StatusOr<ReplayResult> Replay(const ReplayOptions& options);

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_REPLAY_H_
