// step-executor: consumes enrollment and sequence events, fires due steps exactly once. main() only
// wires: flags, the real clock, the broker check; behaviour lives in the library next to this file.
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "libs/kafka/admin.h"
#include "libs/runtime/log.h"
#include "libs/service/broker_check.h"
#include "libs/service/shutdown.h"
#include "libs/service/topics.h"

ABSL_FLAG(std::string, bootstrap_servers, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, topic_prefix, "sequences.", "prefix of every topic name");
ABSL_FLAG(int, partitions, 6, "partitions of each topic when this service creates them");
ABSL_FLAG(std::string, group_id, "sequences.step-executor", "consumer group of the executors");
ABSL_FLAG(std::string, data_dir, "/tmp/sequences-executor", "RocksDB state directory");

namespace sequences {
namespace {

int Main() {
  absl::Notification& shutdown = service::InstallShutdownSignals();
  kafka::ClientConfig kafka_client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap_servers),
                                   .client_id = "step-executor"};
  service::Topics topics = service::Topics::WithPrefix(absl::GetFlag(FLAGS_topic_prefix));
  Log(LogLevel::kInfo, "executor", "starting",
      {{"bootstrap", kafka_client.bootstrap_servers},
       {"group", absl::GetFlag(FLAGS_group_id)},
       {"data_dir", absl::GetFlag(FLAGS_data_dir)}});
  if (absl::Status s = service::CheckBroker(kafka_client); !s.ok()) {
    Log(LogLevel::kError, "executor", "broker check failed", {{"error", s.ToString()}});
    return 1;
  }
  auto admin = kafka::Admin::Create(kafka_client);
  if (!admin.ok()) {
    Log(LogLevel::kError, "executor", "kafka admin", {{"error", admin.status().ToString()}});
    return 1;
  }
  if (absl::Status s = service::EnsureTopics(**admin, topics, absl::GetFlag(FLAGS_partitions),
                                             absl::Seconds(30));
      !s.ok()) {
    Log(LogLevel::kError, "executor", "topics", {{"error", s.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "executor", "ready");
  shutdown.WaitForNotification();
  Log(LogLevel::kInfo, "executor", "stopped");
  return 0;
}

}  // namespace
}  // namespace sequences

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return sequences::Main();
}
