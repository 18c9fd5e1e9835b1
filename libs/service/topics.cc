#include "libs/service/topics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/runtime/log.h"

namespace sequences::service {

Topics Topics::WithPrefix(const std::string& prefix) {
  return {
      .sequence_events = prefix + "sequence-events",
      .enrollment_events = prefix + "enrollment-events",
      .executor_events = prefix + "executor-events",
      .task_events = prefix + "task-events",
      .email_events = prefix + "email-events",
      .dead_letter = prefix + "dead-letter",
      .enrollment_updates = prefix + "enrollment-updates",
  };
}

std::vector<std::string> Topics::All() const {
  return {sequence_events, enrollment_events, executor_events,   task_events,
          email_events,    dead_letter,       enrollment_updates};
}

Replication ReplicationFor(int brokers) {
  const int factor = std::clamp(brokers, 1, 3);
  return {.factor = factor, .min_insync_replicas = factor == 3 ? 2 : 1};
}

absl::Status EnsureTopics(kafka::Admin& admin, const Topics& topics, int partitions,
                          absl::Duration timeout) {
  absl::StatusOr<int> brokers = admin.BrokerCount(timeout);
  if (!brokers.ok()) return brokers.status();
  const Replication replication = ReplicationFor(*brokers);
  Log(LogLevel::kInfo, "service", "topics",
      {{"brokers", *brokers},
       {"replication_factor", replication.factor},
       {"min_insync_replicas", replication.min_insync_replicas}});
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& name : topics.All()) {
    specs.push_back(
        {.name = name,
         .partitions = partitions,
         .replication_factor = replication.factor,
         .configs = {{"min.insync.replicas", absl::StrCat(replication.min_insync_replicas)}}});
  }
  return admin.EnsureTopics(specs, timeout);
}

}  // namespace sequences::service
