#ifndef SEQUENCES_LIBS_KAFKA_ADMIN_H_
#define SEQUENCES_LIBS_KAFKA_ADMIN_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/types.h"

namespace sequences::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  std::map<std::string, std::string> configs;
};

// Cluster-level operations.
// Thread-safety: safe to call concurrently.
class Admin {
 public:
  static absl::StatusOr<std::unique_ptr<Admin>> Create(const ClientConfig& config);
  virtual ~Admin() = default;

  // Creates the topics that do not exist yet. An existing topic is fine if its partition count
  // equals the spec's; otherwise FailedPrecondition names the topic and both counts.
  [[nodiscard]] virtual absl::Status EnsureTopics(const std::vector<TopicSpec>& topics,
                                                  absl::Duration timeout) = 0;
  // How many brokers the cluster's metadata lists (live, registered brokers).
  virtual absl::StatusOr<int> BrokerCount(absl::Duration timeout) = 0;
  // Partition count of an existing topic; NotFound if it does not exist.
  virtual absl::StatusOr<int> PartitionCount(const std::string& topic, absl::Duration timeout) = 0;
  // Deletes topics (tests and benchmarks). Missing topics are ignored.
  [[nodiscard]] virtual absl::Status DeleteTopics(const std::vector<std::string>& topics,
                                                  absl::Duration timeout) = 0;
};

// Connects to the cluster and returns the protocol features librdkafka enabled for the broker
// (e.g. "MsgVer2", "IdempotentProducer", "BrokerGroupCoordinator"), read from librdkafka's
// `debug=feature` log. Used at service start to verify the broker speaks what we need.
absl::StatusOr<std::vector<std::string>> ProbeBrokerFeatures(const ClientConfig& config);

// The features the services require: the broker must enable all of them for exactly-once.
const std::vector<std::string>& RequiredBrokerFeatures();

}  // namespace sequences::kafka

#endif  // SEQUENCES_LIBS_KAFKA_ADMIN_H_
