// sequence-api: the gRPC service other services call. main() only wires: flags, the real clock,
// the broker check, the server; behaviour lives in the library next to this file.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

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
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC listen address");
ABSL_FLAG(std::string, data_dir, "/tmp/sequences-api", "RocksDB read-model directory");

namespace sequences {
namespace {

int Main() {
  absl::Notification& shutdown = service::InstallShutdownSignals();
  kafka::ClientConfig kafka_client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap_servers),
                                   .client_id = "sequence-api"};
  service::Topics topics = service::Topics::WithPrefix(absl::GetFlag(FLAGS_topic_prefix));
  Log(LogLevel::kInfo, "api", "starting",
      {{"bootstrap", kafka_client.bootstrap_servers},
       {"listen", absl::GetFlag(FLAGS_listen)},
       {"data_dir", absl::GetFlag(FLAGS_data_dir)}});

  if (absl::Status s = service::CheckBroker(kafka_client); !s.ok()) {
    Log(LogLevel::kError, "api", "broker check failed", {{"error", s.ToString()}});
    return 1;
  }
  auto admin = kafka::Admin::Create(kafka_client);
  if (!admin.ok()) {
    Log(LogLevel::kError, "api", "kafka admin", {{"error", admin.status().ToString()}});
    return 1;
  }
  if (absl::Status s = service::EnsureTopics(**admin, topics, absl::GetFlag(FLAGS_partitions),
                                             absl::Seconds(30));
      !s.ok()) {
    Log(LogLevel::kError, "api", "topics", {{"error", s.ToString()}});
    return 1;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, "api", "cannot listen", {{"listen", absl::GetFlag(FLAGS_listen)}});
    return 1;
  }
  Log(LogLevel::kInfo, "api", "serving", {{"listen", absl::GetFlag(FLAGS_listen)}});

  shutdown.WaitForNotification();
  // Finish in-flight calls, refuse new ones.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  Log(LogLevel::kInfo, "api", "stopped");
  return 0;
}

}  // namespace
}  // namespace sequences

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return sequences::Main();
}
