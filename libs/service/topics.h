#ifndef SEQUENCES_LIBS_SERVICE_TOPICS_H_
#define SEQUENCES_LIBS_SERVICE_TOPICS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/kafka/admin.h"

namespace sequences::service {

// The topics of the system (ARCHITECTURE.md, "Topics"). Names share a prefix, "sequences." by
// default, so several environments can share one cluster.
struct Topics {
  std::string sequence_events;
  std::string enrollment_events;
  std::string executor_events;
  std::string task_events;
  std::string email_events;
  std::string dead_letter;
  // Public: one EnrollmentUpdate per enrollment status change, keyed by enrollment key
  // (proto/sequences/v1/enrollment_updates.proto).
  std::string enrollment_updates;

  static Topics WithPrefix(const std::string& prefix);
  std::vector<std::string> All() const;
};

// Replication that fits a cluster of `brokers` brokers: factor min(3, brokers), and
// min.insync.replicas 2 when the factor is 3 (an acks=all write then survives the loss of any one
// broker, and a partition refuses writes rather than keep them on one copy), else 1.
struct Replication {
  int factor = 1;
  int min_insync_replicas = 1;
};
Replication ReplicationFor(int brokers);

// Creates the topics that do not exist, replicated as ReplicationFor(the brokers the cluster's
// metadata lists now) says: start the services for the first time with the whole cluster up.
// enrollment-events and executor-events get `partitions` partitions (they MUST be equal: the
// executor's changelog partition is its input partition); task, email and dead-letter topics too
// (keyed by item) and enrollment-updates (keyed by enrollment); sequence-events gets `partitions`
// as well (every executor reads all of it).
// FailedPrecondition if an existing topic has another count.
absl::Status EnsureTopics(kafka::Admin& admin, const Topics& topics, int partitions,
                          absl::Duration timeout);

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_TOPICS_H_
