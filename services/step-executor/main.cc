// step-executor: consumes enrollment and sequence events, fires due steps exactly once. main() only
// wires: flags, the real clock, the broker check, the health server; behaviour lives in the
// library next to this file.
//
//   step-executor [flags]                      run the executor
//   step-executor replay --from=beginning|<RFC3339> --data_dir=DIR [--dry_run]
//                                              rebuild DIR from the log, print the digest (JSON)
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "libs/kafka/admin.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/log.h"
#include "libs/service/broker_check.h"
#include "libs/service/http_server.h"
#include "libs/service/kafka_security.h"
#include "libs/service/shutdown.h"
#include "libs/service/testing_clock.h"
#include "libs/service/topics.h"
#include "services/step-executor/executor.h"
#include "services/step-executor/replay.h"

ABSL_FLAG(std::string, bootstrap_servers, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, topic_prefix, "sequences.", "prefix of every topic name");
ABSL_FLAG(int, partitions, 6, "partitions of each topic when this service creates them");
ABSL_FLAG(std::string, group_id, "sequences.step-executor", "consumer group of the executors");
ABSL_FLAG(std::string, instance_id, "",
          "stable id of this instance (transactional id = <group_id>.<instance_id>); "
          "default: the host name");
ABSL_FLAG(std::string, data_dir, "/tmp/sequences-executor", "RocksDB state directory");
ABSL_FLAG(int, health_port, -1,
          "gRPC health service port (-1: no server; 0: any free port, reported in the log)");
ABSL_FLAG(std::string, health_address, "127.0.0.1",
          "address the health server binds (loopback by default; 0.0.0.0 for every interface)");
ABSL_FLAG(int, http_port, -1,
          "HTTP port of /metrics (Prometheus), /healthz and /readyz (-1: no HTTP server; 0: any "
          "free port, reported in the log)");
ABSL_FLAG(std::string, http_address, "127.0.0.1",
          "address the HTTP server binds (loopback by default; 0.0.0.0 for every interface)");
ABSL_FLAG(absl::Duration, session_timeout, absl::Seconds(10),
          "consumer group session timeout (the broker accepts 6s..30m by default)");
ABSL_FLAG(int, standby_records, 1000,
          "executor-events records of partitions other instances own folded per loop round, "
          "and a fold of every partition before joining (warm state for a partition that moves "
          "here); 0: neither (a moved partition is folded when assigned)");
ABSL_FLAG(int, max_batch, 5000,
          "ceiling of the adaptive batch: most inputs and most due steps decided per transaction "
          "(memory per batch grows with it)");
ABSL_FLAG(int, min_batch, 500,
          "floor of the adaptive batch limit (a batch takes what is waiting, up to the limit); "
          "min_batch = max_batch: a fixed limit");
ABSL_FLAG(absl::Duration, batch_budget, absl::Milliseconds(250),
          "the adaptive batch limit grows under backlog only while a batch (decide, commit, "
          "state write) takes at most this; a slower batch shrinks it in proportion");
ABSL_FLAG(absl::Duration, flush_interval, absl::Milliseconds(50),
          "longest wait before a batch is flushed / a due step is looked at");
ABSL_FLAG(absl::Duration, defer_timeout, absl::Seconds(30),
          "an enroll request waiting for its sequence version is decided anyway after this");
ABSL_FLAG(absl::Duration, transaction_timeout, absl::Seconds(10),
          "broker-side timeout of an open transaction (bounds how long a dead instance's open "
          "transaction blocks its partitions for the next owner)");
ABSL_FLAG(absl::Duration, metrics_interval, absl::Seconds(5), "period of the metrics log line");
ABSL_FLAG(std::string, processing_guarantee, "exactly_once",
          "exactly_once (one Kafka transaction per batch) or at_least_once (no transactions: "
          "records acknowledged, then input offsets committed; duplicates possible after a "
          "crash, nothing lost)");
ABSL_FLAG(bool, decide_stages_in_batch, true,
          "decide a send request or notice for a sender or person stage this instance owns in "
          "the batch that writes it, instead of after a trip through enrollment-events "
          "(docs/send-limits.md); exactly_once only");
ABSL_FLAG(std::string, testing_clock_file, "",
          "E2E TESTS ONLY, never in a deployment: run on the wall clock plus the offset written "
          "in this file, so a test moves time forward instead of waiting for step delays "
          "(libs/service/testing_clock.h); logs a warning at start");
// Memory (README "Memory"): the budgets below, plus the batch, the producer and the code.
ABSL_FLAG(int, state_cache_mb, 64,
          "RocksDB block cache of the state store (data, index and filter blocks), MiB");
ABSL_FLAG(int, state_write_buffer_mb, 32,
          "RocksDB memtables of the state store, all column families together, MiB (charged to "
          "the same cache as the blocks)");
ABSL_FLAG(int, consumer_queue_kb, 8192,
          "most KiB of records each Kafka consumer prefetches ahead of the loop (librdkafka "
          "queued.max.messages.kbytes; it also queues at most 2 x --max_batch records)");
ABSL_FLAG(absl::Duration, memory_trim_interval, absl::Seconds(5),
          "period of a purge of every jemalloc arena, which returns freed heap memory to the "
          "system (0: never; jemalloc also returns it on its own after about a second)");
// replay
ABSL_FLAG(std::string, from, "beginning", "replay: 'beginning' or an RFC3339 timestamp");
ABSL_FLAG(int, fold_threads, 2,
          "replay: threads folding executor events in parallel (a dry run folds on one)");
ABSL_FLAG(int, staged_keys, 32768,
          "replay: keys the folders keep in memory together (a write-back cache); a folder "
          "holding its share writes the least recently used quarter");
ABSL_FLAG(bool, dry_run, false,
          "replay: also decide again from the inputs at the recorded times and report differences");

#include "libs/runtime/heap.h"

namespace sequences {
namespace {

// The process's resident set (/proc/self/status) and jemalloc's view of the heap, for the
// metrics (README "Memory"). Zero where unknown (another allocator, no /proc).
executor::ProcessMemory ReadProcessMemory() {
  executor::ProcessMemory m;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    int64_t* field = nullptr;
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      field = &m.resident_bytes;
    } else if (absl::ConsumePrefix(&rest, "RssAnon:")) {
      field = &m.resident_anon_bytes;
    } else if (absl::ConsumePrefix(&rest, "RssFile:")) {
      field = &m.resident_file_bytes;
    }
    int64_t kb = 0;
    if (field != nullptr && absl::ConsumeSuffix(&rest, "kB") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) {
      *field = kb * 1024;
    }
  }
#ifdef SEQUENCES_JEMALLOC
  // The statistics are a snapshot taken when the epoch advances.
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  mallctl("epoch", &epoch, &len, &epoch, len);
  auto stat = [](const char* name) -> int64_t {
    size_t v = 0;
    size_t n = sizeof(v);
    return mallctl(name, &v, &n, nullptr, 0) == 0 ? static_cast<int64_t>(v) : 0;
  };
  m.heap_allocated_bytes = stat("stats.allocated");
  m.heap_active_bytes = stat("stats.active");
  m.heap_metadata_bytes = stat("stats.metadata");
  // Pages of every arena (MALLCTL_ARENAS_ALL) freed and kept: dirty, and muzzy (advised lazily).
  const int64_t page = stat("arenas.page");
  m.heap_dirty_bytes = page * (stat("stats.arenas.4096.pdirty") + stat("stats.arenas.4096.pmuzzy"));
#endif
  return m;
}

constexpr char kLog[] = "executor";

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "executor";
  return buf;
}

int Replay(const kafka::ClientConfig& client, const service::Topics& topics) {
  // A replay is a batch job whose write batches (a folder's evicted keys, megabytes each) and
  // memtables (flushed, then allocated again) come and go all the time. With glibc's allocator
  // (sanitizer builds) the batches were fresh mmaps faulted in page by page each time: keep them
  // in the heap. jemalloc returned freed pages after its decay time (a second), and the next
  // batch or memtable faulted them in again (page faults were a tenth of a replay's CPU): a
  // replay, which ends soon, keeps them.
#ifdef SEQUENCES_JEMALLOC
  {
    unsigned arenas = 0;
    size_t len = sizeof(arenas);
    ssize_t never = -1;
    mallctl("arenas.dirty_decay_ms", nullptr, nullptr, &never, sizeof(never));
    if (mallctl("arenas.narenas", &arenas, &len, nullptr, 0) == 0) {
      for (unsigned i = 0; i < arenas; ++i) {
        const std::string name = absl::StrCat("arena.", i, ".dirty_decay_ms");
        mallctl(name.c_str(), nullptr, nullptr, &never, sizeof(never));
      }
    }
  }
#else
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
  executor::ReplayOptions options;
  options.client = client;
  options.topics = topics;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.dry_run = absl::GetFlag(FLAGS_dry_run);
  options.fold_threads = absl::GetFlag(FLAGS_fold_threads);
  options.staged_keys = absl::GetFlag(FLAGS_staged_keys);
  const std::string from = absl::GetFlag(FLAGS_from);
  if (from != "beginning") {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, from, &t, &err)) {
      std::fprintf(stderr, "--from: %s: %s\n", from.c_str(), err.c_str());
      return 2;
    }
    options.from = t;
  }
  auto result = executor::Replay(options);
  if (!result.ok()) {
    Log(LogLevel::kError, kLog, "replay failed", {{"error", result.status().ToString()}});
    return 1;
  }
  std::printf("%s\n", result->ToJson().c_str());
  std::fflush(stdout);
  if (options.dry_run && result->decisions_differing > 0) return 3;
  // The rebuilt state may lack what could not be decoded (each record was logged).
  if (result->executor_events_undecodable > 0) return 4;
  return 0;
}

int Main(const std::vector<char*>& args) {
  absl::Notification& shutdown = service::InstallShutdownSignals();
  kafka::ClientConfig kafka_client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap_servers),
                                   .client_id = "step-executor"};
  absl::StatusOr<kafka::SecurityConfig> kafka_security = service::KafkaSecurityFromFlags();
  if (!kafka_security.ok()) {
    std::fprintf(stderr, "%s\n", kafka_security.status().ToString().c_str());
    return 2;
  }
  kafka_client.security = *kafka_security;
  service::Topics topics = service::Topics::WithPrefix(absl::GetFlag(FLAGS_topic_prefix));
  const bool replay = args.size() > 1 && std::string(args[1]) == "replay";
  auto guarantee = executor::ParseProcessingGuarantee(absl::GetFlag(FLAGS_processing_guarantee));
  if (!guarantee.ok()) {
    std::fprintf(stderr, "--processing_guarantee: %s\n",
                 std::string(guarantee.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Clock>> clock_or =
      service::MakeClock(absl::GetFlag(FLAGS_testing_clock_file), kLog);
  if (!clock_or.ok()) {
    Log(LogLevel::kError, kLog, "--testing_clock_file", {{"error", clock_or.status().ToString()}});
    return 2;
  }
  Clock& clock = **clock_or;

  // Operations HTTP (/metrics, /healthz, /readyz) from the start, so a probe sees the process
  // alive while it checks the broker; ready only once the executor runs and is caught up. The
  // server is stopped before the executor is destroyed (below).
  std::atomic<executor::Executor*> running{nullptr};
  std::unique_ptr<service::HttpServer> http;
  const std::string input_topic = topics.enrollment_events;
  if (const int port = absl::GetFlag(FLAGS_http_port); port != -1 && !replay) {
    auto started = service::HttpServer::Start(
        {.address = absl::GetFlag(FLAGS_http_address),
         .port = port,
         .metrics =
             [&running, &input_topic] {
               executor::Executor* exec = running.load();
               executor::MetricsSnapshot m =
                   exec != nullptr ? exec->Snapshot() : executor::MetricsSnapshot();
               return service::PrometheusText(m.Families(input_topic));
             },
         .ready = [&running]() -> absl::Status {
           executor::Executor* exec = running.load();
           if (exec == nullptr) return absl::UnavailableError("starting");
           executor::MetricsSnapshot m = exec->Snapshot();
           if (m.serving) return absl::OkStatus();
           return absl::UnavailableError(m.health_reason);
         }});
    if (!started.ok()) {
      Log(LogLevel::kError, kLog, "--http_port: cannot start the HTTP server",
          {{"error", started.status().ToString()}});
      return 1;
    }
    http = std::move(*started);
    Log(LogLevel::kInfo, kLog, "http server listening",
        {{"url", http->url()}, {"endpoints", "/metrics /healthz /readyz"}});
  }

  std::string instance = absl::GetFlag(FLAGS_instance_id);
  if (instance.empty()) instance = HostName();
  Log(LogLevel::kInfo, kLog, "starting",
      {{"bootstrap", kafka_client.bootstrap_servers},
       {"kafka_security", kafka::SecurityProtocolName(kafka_client.security.protocol)},
       {"kafka_user", kafka_client.security.sasl_username},
       {"group", absl::GetFlag(FLAGS_group_id)},
       {"instance", instance},
       {"mode", replay ? "replay" : "run"},
       {"data_dir", absl::GetFlag(FLAGS_data_dir)}});
  if (absl::Status s = service::CheckBroker(kafka_client); !s.ok()) {
    Log(LogLevel::kError, kLog, "broker check failed", {{"error", s.ToString()}});
    return 1;
  }
  if (replay) return Replay(kafka_client, topics);  // reads only: never creates topics
  auto admin = kafka::Admin::Create(kafka_client);
  if (!admin.ok()) {
    Log(LogLevel::kError, kLog, "kafka admin", {{"error", admin.status().ToString()}});
    return 1;
  }
  if (absl::Status s = service::EnsureTopics(**admin, topics, absl::GetFlag(FLAGS_partitions),
                                             absl::Seconds(30));
      !s.ok()) {
    Log(LogLevel::kError, kLog, "topics", {{"error", s.ToString()}});
    return 1;
  }

  executor::ExecutorOptions options;
  options.client = kafka_client;
  options.topics = topics;
  options.group_id = absl::GetFlag(FLAGS_group_id);
  options.instance_id = instance;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.batch = {.min = absl::GetFlag(FLAGS_min_batch),
                   .max = absl::GetFlag(FLAGS_max_batch),
                   .budget = absl::GetFlag(FLAGS_batch_budget)};
  options.flush_interval = absl::GetFlag(FLAGS_flush_interval);
  options.defer_timeout = absl::GetFlag(FLAGS_defer_timeout);
  options.transaction_timeout = absl::GetFlag(FLAGS_transaction_timeout);
  options.metrics_interval = absl::GetFlag(FLAGS_metrics_interval);
  options.session_timeout = absl::GetFlag(FLAGS_session_timeout);
  options.standby_records_per_round = std::max(0, absl::GetFlag(FLAGS_standby_records));
  options.guarantee = *guarantee;
  options.decide_stages_in_batch = absl::GetFlag(FLAGS_decide_stages_in_batch);
  options.store_memory = {
      .block_cache_bytes = int64_t{absl::GetFlag(FLAGS_state_cache_mb)} << 20,
      .write_buffer_bytes = int64_t{absl::GetFlag(FLAGS_state_write_buffer_mb)} << 20};
  options.consumer_queue_kbytes = absl::GetFlag(FLAGS_consumer_queue_kb);
  options.process_memory = ReadProcessMemory;
  executor::Executor exec(options, clock);

  // Freed heap memory (evicted blocks, consumed records, flushed memtables) goes back to the
  // system instead of staying in the process's arenas.
  absl::Notification stop_trim;
  std::thread trim_thread;
  if (const absl::Duration every = absl::GetFlag(FLAGS_memory_trim_interval);
      every > absl::ZeroDuration()) {
    trim_thread = std::thread([&stop_trim, every] {
      while (!stop_trim.WaitForNotificationWithTimeout(every)) PurgeHeap();
    });
  }

  // Health: the standard grpc.health.v1 service, SERVING only when the executor is caught up.
  // The server's only registered service (it outlives the server). gRPC adds the default health
  // service at Start, after ServerBuilder has refused a server without any synchronous or
  // callback method ("At least one of the completion queues must be frequently polled"); an
  // empty callback generic service (it answers UNIMPLEMENTED) gives it one.
  grpc::CallbackGenericService no_methods;
  std::unique_ptr<grpc::Server> server;
  absl::Notification stop_health;
  std::thread health_thread;
  if (const int port = absl::GetFlag(FLAGS_health_port); port != -1) {
    if (port < 0 || port > 65535) {
      Log(LogLevel::kError, kLog, "--health_port: must be -1 (off), 0 (any free port) or a port",
          {{"health_port", port}});
      return 2;
    }
    std::string host = absl::GetFlag(FLAGS_health_address);
    if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
    const std::string address = absl::StrCat(host, ":", port);  // IPv6 literals in brackets
    grpc::EnableDefaultHealthCheckService(true);
    // Reflection describes grpc.health.v1.Health (its descriptor is linked in from
    // sequences::health_proto), so grpcurl checks health without a proto file.
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    int bound = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound);
    builder.RegisterCallbackGenericService(&no_methods);
    server = builder.BuildAndStart();
    if (server == nullptr || bound == 0) {
      Log(LogLevel::kError, kLog,
          "--health_port: cannot start the gRPC health server (port taken or not allowed?)",
          {{"address", address}});
      return 1;
    }
    server->GetHealthCheckService()->SetServingStatus(false);
    health_thread = std::thread([&] {
      bool last = false;
      while (!stop_health.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
        const bool serving = exec.Snapshot().serving;
        if (serving != last) {
          server->GetHealthCheckService()->SetServingStatus(serving);
          last = serving;
        }
      }
    });
    // The bound address: with --health_port=0 the port the system chose.
    Log(LogLevel::kInfo, kLog, "health server listening",
        {{"address", absl::StrCat(host, ":", bound)}});
  }

  running.store(&exec);
  Log(LogLevel::kInfo, kLog, "ready");
  absl::Status status = exec.Run(shutdown);
  if (trim_thread.joinable()) {
    stop_trim.Notify();
    trim_thread.join();
  }
  http.reset();  // its callbacks read `exec`
  running.store(nullptr);
  if (server != nullptr) {
    stop_health.Notify();
    health_thread.join();
    // Ends open Watch streams, then waits (bounded) for calls in flight.
    server->GetHealthCheckService()->Shutdown();
    server->Shutdown(absl::ToChronoTime(clock.Now() + absl::Seconds(2)));
  }
  if (!status.ok()) {
    Log(LogLevel::kError, kLog, "executor failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sequences

// The allocator is jemalloc (linked in, CMakeLists.txt): glibc's malloc/free was about a quarter
// of the deciding thread's CPU (tests/bench/README.md, "Enroll to first step: jemalloc"). Read by
// jemalloc at its first allocation:
// - two arenas instead of four per core (as with glibc's M_ARENA_MAX before): librdkafka's
//   threads allocate the records the loop frees, RocksDB's the blocks its readers free, and each
//   arena keeps its own free pages;
// - freed pages go back to the system after about a second (dirty_decay_ms), at once after that
//   (muzzy_decay_ms 0), so the resident set follows what is in use (README "Memory").
#ifdef SEQUENCES_JEMALLOC
extern "C" {
// NOLINTNEXTLINE: the name jemalloc looks for.
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
#endif

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  return sequences::Main(args);
}
