#include "libs/service/topics.h"

namespace sequences::service {

Topics Topics::WithPrefix(const std::string& prefix) {
  return {
      .sequence_events = prefix + "sequence-events",
      .enrollment_events = prefix + "enrollment-events",
      .executor_events = prefix + "executor-events",
      .task_events = prefix + "task-events",
      .email_events = prefix + "email-events",
      .dead_letter = prefix + "dead-letter",
  };
}

std::vector<std::string> Topics::All() const {
  return {sequence_events, enrollment_events, executor_events,
          task_events,     email_events,      dead_letter};
}

absl::Status EnsureTopics(kafka::Admin& admin, const Topics& topics, int partitions,
                          absl::Duration timeout) {
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& name : topics.All()) {
    specs.push_back({.name = name, .partitions = partitions, .replication_factor = 1});
  }
  return admin.EnsureTopics(specs, timeout);
}

}  // namespace sequences::service
