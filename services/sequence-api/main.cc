// sequence-api: the gRPC service other services call. main() only wires: flags, the real clock,
// the broker check, the read model, the producer, the server; behaviour lives in the library next
// to this file (README.md).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/log.h"
#include "libs/service/broker_check.h"
#include "libs/service/http_server.h"
#include "libs/service/kafka_security.h"
#include "libs/service/shutdown.h"
#include "libs/service/topics.h"
#include "services/sequence-api/api.h"
#include "services/sequence-api/event_log.h"
#include "services/sequence-api/grpc_services.h"
#include "services/sequence-api/ops.h"
#include "services/sequence-api/read_model.h"
#include "services/sequence-api/tokens.h"

ABSL_FLAG(std::string, bootstrap_servers, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, topic_prefix, "sequences.", "prefix of every topic name");
ABSL_FLAG(int, partitions, 6, "partitions of each topic when this service creates them");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC listen address");
ABSL_FLAG(std::string, data_dir, "/tmp/sequences-api", "RocksDB read-model directory");
ABSL_FLAG(int, http_port, -1,
          "HTTP port of /metrics (Prometheus), /healthz and /readyz (-1: no HTTP server; 0: any "
          "free port, reported in the log)");
ABSL_FLAG(std::string, http_address, "127.0.0.1",
          "address the HTTP server binds (loopback by default; 0.0.0.0 for every interface)");
ABSL_FLAG(std::string, auth_token, "",
          "shared secret callers send as 'authorization: Bearer <token>' (default: the "
          "environment variable SEQUENCES_API_TOKEN; required)");
ABSL_FLAG(int, delivery_timeout_ms, 10000,
          "how long the producer tries to make a write durable before the call fails UNAVAILABLE");
ABSL_FLAG(int, produce_linger_ms, 0,
          "how long the producer waits to batch a write with others (linger.ms): every call waits "
          "this long before its write is sent; with 0 a write goes out as soon as the producer's "
          "thread is free, and writes queued meanwhile still share a request");
ABSL_FLAG(std::string, producer_bootstrap_servers, "",
          "bootstrap servers of the producer only (default: --bootstrap_servers); lets tests run "
          "a writer that cannot reach the broker while the read model can");
ABSL_FLAG(int, max_call_seconds, 30, "deadline applied to calls that set none (and upper bound)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server: serve gRPC over TLS (default: plaintext, for "
          "loopback only)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require every client to present a certificate signed by it (mutual "
          "TLS); the certificate's identity is logged with each call");
ABSL_FLAG(absl::Duration, memory_trim_interval, absl::Seconds(5),
          "how often freed heap memory is returned to the system (0: never)");
ABSL_FLAG(int, max_calls_per_company, 32,
          "calls of one company that run at once (the rest queue in its lane); isolates callers");
ABSL_FLAG(int, max_request_bytes, 4 << 20, "largest request message accepted (gRPC)");
ABSL_FLAG(std::string, token_keys, "",
          "keys that sign page and consistency tokens, 'id:secret[,id:secret...]' (the first "
          "signs, all verify; default: the environment variable SEQUENCES_TOKEN_KEYS, else a key "
          "derived from the auth token)");

ABSL_FLAG(int, read_model_fold_nice, 10,
          "added to the nice value of the read model's folding thread (0..19): on busy cores the "
          "threads that answer calls run first, folding takes the idle CPU");

ABSL_FLAG(int64_t, watch_history, 100000,
          "WatchEnrollments: executor-events records per partition whose status changes a resume "
          "token can still be resumed from (older: FAILED_PRECONDITION, start a new watch)");

#include "libs/runtime/heap.h"

namespace sequences {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Plaintext, TLS, or mutual TLS, from the flags.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials() {
  const std::string cert_path = absl::GetFlag(FLAGS_tls_cert);
  const std::string ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert_path.empty()) {
    if (!ca_path.empty()) return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert");
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadFile(cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(absl::GetFlag(FLAGS_tls_key));
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      ca_path.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                      : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!ca_path.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(ca_path);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

int Main() {
  absl::Notification& shutdown = service::InstallShutdownSignals();
  RealClock clock;
  kafka::ClientConfig kafka_client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap_servers),
                                   .client_id = "sequence-api"};
  absl::StatusOr<kafka::SecurityConfig> kafka_security = service::KafkaSecurityFromFlags();
  if (!kafka_security.ok()) {
    Log(LogLevel::kError, "api", "kafka security", {{"error", kafka_security.status().ToString()}});
    return 2;
  }
  kafka_client.security = *kafka_security;
  service::Topics topics = service::Topics::WithPrefix(absl::GetFlag(FLAGS_topic_prefix));
  std::string token = absl::GetFlag(FLAGS_auth_token);
  if (token.empty() && std::getenv("SEQUENCES_API_TOKEN") != nullptr) {
    token = std::getenv("SEQUENCES_API_TOKEN");
  }
  if (token.empty()) {
    Log(LogLevel::kError, "api",
        "no auth token: set SEQUENCES_API_TOKEN or --auth_token (callers send it as "
        "'authorization: Bearer <token>')");
    return 2;
  }
  Log(LogLevel::kInfo, "api", "starting",
      {{"bootstrap", kafka_client.bootstrap_servers},
       {"kafka_security", kafka::SecurityProtocolName(kafka_client.security.protocol)},
       {"kafka_user", kafka_client.security.sasl_username},
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

  // The read model: open (an empty directory rebuilds from the log) and catch up before serving.
  auto read_model = api::ReadModel::Open(
      {.data_dir = absl::GetFlag(FLAGS_data_dir),
       .kafka = kafka_client,
       .topics = topics,
       .watch_history = std::max<int64_t>(1, absl::GetFlag(FLAGS_watch_history)),
       .fold_nice = std::clamp(absl::GetFlag(FLAGS_read_model_fold_nice), 0, 19)});
  if (!read_model.ok()) {
    Log(LogLevel::kError, "api", "read model", {{"error", read_model.status().ToString()}});
    return 1;
  }
  if (absl::Status s = (*read_model)->Start(); !s.ok()) {
    Log(LogLevel::kError, "api", "read model start", {{"error", s.ToString()}});
    return 1;
  }
  // Operations HTTP (/metrics, /healthz, /readyz) while the read model catches up: alive, not
  // ready. Stopped before the transport whose metrics it reads (below).
  auto watermarks = kafka::Consumer::Create({.client = kafka_client});
  if (!watermarks.ok()) {
    Log(LogLevel::kError, "api", "kafka consumer", {{"error", watermarks.status().ToString()}});
    return 1;
  }
  api::Ops ops({.topics = topics}, **read_model,
               api::BrokerQuestion(std::move(*admin), std::move(*watermarks), topics), clock);
  std::unique_ptr<service::HttpServer> http;
  if (const int port = absl::GetFlag(FLAGS_http_port); port != -1) {
    auto started = service::HttpServer::Start({.address = absl::GetFlag(FLAGS_http_address),
                                               .port = port,
                                               .metrics = [&ops] { return ops.PrometheusText(); },
                                               .ready = [&ops] { return ops.Ready(); }});
    if (!started.ok()) {
      Log(LogLevel::kError, "api", "--http_port: cannot start the HTTP server",
          {{"error", started.status().ToString()}});
      return 1;
    }
    http = std::move(*started);
    Log(LogLevel::kInfo, "api", "http server listening",
        {{"url", http->url()}, {"endpoints", "/metrics /healthz /readyz"}});
  }
  while (!(*read_model)->WaitCaughtUp(clock.Now() + absl::Seconds(1))) {
    if (shutdown.HasBeenNotified()) return 0;
    Log(LogLevel::kInfo, "api", "read model catching up");
  }
  Log(LogLevel::kInfo, "api", "read model caught up",
      {{"records", (*read_model)->folded_records()}});

  kafka::ClientConfig producer_client = kafka_client;
  if (!absl::GetFlag(FLAGS_producer_bootstrap_servers).empty()) {
    producer_client.bootstrap_servers = absl::GetFlag(FLAGS_producer_bootstrap_servers);
  }
  auto producer = kafka::Producer::Create(
      {.client = producer_client,
       .delivery_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_delivery_timeout_ms)),
       .linger = absl::Milliseconds(absl::GetFlag(FLAGS_produce_linger_ms))});
  if (!producer.ok()) {
    Log(LogLevel::kError, "api", "producer", {{"error", producer.status().ToString()}});
    return 1;
  }
  api::KafkaEventLog event_log(std::move(*producer));
  std::string token_keys = absl::GetFlag(FLAGS_token_keys);
  if (token_keys.empty() && std::getenv("SEQUENCES_TOKEN_KEYS") != nullptr) {
    token_keys = std::getenv("SEQUENCES_TOKEN_KEYS");
  }
  std::vector<api::TokenKey> keys = {api::TokenSigner::DeriveKey(token)};
  if (!token_keys.empty()) {
    absl::StatusOr<std::vector<api::TokenKey>> parsed = api::TokenSigner::ParseKeys(token_keys);
    if (!parsed.ok()) {
      Log(LogLevel::kError, "api", "token keys", {{"error", parsed.status().ToString()}});
      return 2;
    }
    keys = std::move(*parsed);
  }
  const api::TokenSigner signer(std::move(keys));
  api::Api application({.topics = topics}, event_log, **read_model, clock, signer);
  api::Transport transport(
      {.auth_token = token,
       .max_call_duration = absl::Seconds(absl::GetFlag(FLAGS_max_call_seconds)),
       .max_running_calls_per_company = absl::GetFlag(FLAGS_max_calls_per_company),
       .produce_errors = [&event_log] { return event_log.errors(); },
       .produced_records = [&event_log] { return event_log.produced(); }},
      application, **read_model, clock);

  grpc::EnableDefaultHealthCheckService(true);
  // Reflection also describes grpc.health.v1.Health (sequences::health_proto is linked in), so
  // grpcurl checks health without a proto file.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_request_bytes));
  int port = 0;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentials();
  if (!credentials.ok()) {
    Log(LogLevel::kError, "api", "tls", {{"error", credentials.status().ToString()}});
    return 2;
  }
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), *credentials, &port);
  transport.RegisterWith(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    Log(LogLevel::kError, "api", "--listen: cannot serve gRPC (port taken or not allowed?)",
        {{"listen", absl::GetFlag(FLAGS_listen)}});
    return 1;
  }
  Log(LogLevel::kInfo, "api", "serving",
      {{"listen", absl::GetFlag(FLAGS_listen)},
       {"port", port},
       {"transport", absl::GetFlag(FLAGS_tls_cert).empty()        ? "plaintext"
                     : absl::GetFlag(FLAGS_tls_client_ca).empty() ? "tls"
                                                                  : "mutual-tls"}});

  ops.SetServing(&transport);
  // Housekeeping, once a second until SIGTERM: health tells the truth (NOT_SERVING while the
  // broker does not answer a metadata request or its answer is stale, ops.h, so a load balancer
  // sends calls elsewhere), a fatal producer error ends the process (exit 3, for its supervisor)
  // instead of leaving it up and unable to write, and freed memory goes back to the system.
  const absl::Duration trim_every = absl::GetFlag(FLAGS_memory_trim_interval);
  absl::Time last_trim = clock.Now();
  bool serving = true;
  int exit_code = 0;
  while (!shutdown.WaitForNotificationWithTimeout(absl::Seconds(1))) {
    if (absl::Status fatal = event_log.FatalError(); !fatal.ok()) {
      Log(LogLevel::kError, "api", "fatal producer error: exiting for a restart",
          {{"error", fatal.ToString()}});
      exit_code = 3;
      break;
    }
    const bool reachable = ops.Refresh();
    if (reachable != serving) {
      serving = reachable;
      server->GetHealthCheckService()->SetServingStatus(serving);
      Log(serving ? LogLevel::kInfo : LogLevel::kWarning, "api",
          serving ? "broker reachable again: serving" : "broker unreachable: not serving");
    }
    if (trim_every > absl::ZeroDuration() && clock.Now() - last_trim >= trim_every) {
      PurgeHeap();
      last_trim = clock.Now();
    }
  }
  Log(LogLevel::kInfo, "api", "shutting down");
  ops.SetServing(nullptr);
  http.reset();
  // End the watch streams (UNAVAILABLE: their callers resume elsewhere from their last token),
  // refuse new calls, finish in-flight ones (each bounded by its deadline), then stop folding.
  (*read_model)->watch_hub().Close();
  server->GetHealthCheckService()->Shutdown();
  server->Shutdown(absl::ToChronoTime(clock.Now() + absl::Seconds(10)));
  (*read_model)->Stop();
  Log(LogLevel::kInfo, "api", "stopped");
  return exit_code;
}

}  // namespace
}  // namespace sequences

// jemalloc (CMakeLists.txt) replaces malloc and free: glibc's took about a third of the CPU of a
// BatchEnroll and of the fold of its events (tests/bench/README.md, issue 17). Large requests (a
// 4 MiB message, 100k repeated elements) are allocated and freed by many handler threads; freed
// pages go back to the system after about a second (dirty_decay_ms), at once after that
// (muzzy_decay_ms 0), and the periodic purge (--memory_trim_interval) returns the rest
// (tests/bench: api-hostile-soak). Four arenas, as glibc's M_ARENA_MAX was: each arena keeps its
// own free pages.
#ifdef SEQUENCES_JEMALLOC
extern "C" {
// NOLINTNEXTLINE: the name jemalloc looks for.
const char* malloc_conf = "narenas:4,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) {
#ifndef SEQUENCES_JEMALLOC
  // Sanitizer builds (glibc's allocator): few arenas and a fixed mmap threshold (glibc raises it
  // after every large free, keeping later large buffers on the heap) let freed memory go back
  // to the system; the periodic malloc_trim returns what fragmentation would keep.
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  absl::ParseCommandLine(argc, argv);
  return sequences::Main();
}
