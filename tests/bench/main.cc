// sequences-bench: one benchmark per invocation, figures as one JSON line prefixed "RESULT ".
// tests/bench/run.sh runs them all side by side and writes the results file; see
// tests/bench/README.md.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/kafka/admin.h"
#include "sequences/v1/events.pb.h"
#include "tests/bench/api_client.h"
#include "tests/bench/api_soak.h"
#include "tests/bench/kafka_baselines.h"
#include "tests/bench/system_bench.h"

ABSL_FLAG(std::string, bootstrap, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, prefix, "bench.", "topic prefix");
ABSL_FLAG(int64_t, count, 100000, "records / enrollments");
ABSL_FLAG(int, partitions, 6, "partitions of the bench topics");
ABSL_FLAG(int, batch_max, 2000, "records per transaction at most");
ABSL_FLAG(int, flush_ms, 50, "flush interval of the transactional loop");
ABSL_FLAG(double, rate, 1000, "records per second (open loop)");
ABSL_FLAG(double, seconds, 10, "duration of a fixed-rate run");
ABSL_FLAG(int, batch, 1000, "batch size");
ABSL_FLAG(int, repeats, 20, "repetitions");
ABSL_FLAG(std::string, topic, "", "topic to read (kafka-raw-consume)");
ABSL_FLAG(std::string, build_dir, "build", "build directory with the service binaries");
ABSL_FLAG(std::string, work_dir, "/tmp/sequences-bench", "data directories and logs of services");
ABSL_FLAG(std::string, processing_guarantee, "exactly_once", "executor mode");
ABSL_FLAG(std::string, name_suffix, "", "appended to the names of this run's results");
ABSL_FLAG(bool, replay, true, "executor-throughput: also time a replay of its executor-events");
ABSL_FLAG(std::string, replay_baseline, "",
          "executor-throughput: another step-executor binary whose replay is timed too "
          "(executor-replay@baseline), alternating with this build's");
ABSL_FLAG(int, instances, 1, "executor-scaleout: executors in the group");
ABSL_FLAG(int, replay_repeats, 1, "executor-throughput: replays per binary (median reported)");
ABSL_FLAG(std::string, system, "executor",
          "executor-* benchmarks: the system under test, executor or kafka-streams (the peer in "
          "tests/bench/peers/kafka-streams; its figures are named peer-kafka-streams-*)");
ABSL_FLAG(std::vector<std::string>, executor_flags, {},
          "extra flags of the executor, comma-separated (e.g. --min_batch=500,--max_batch=500)");
ABSL_FLAG(std::string, api, "", "api-batch-enroll-native: the sequence-api's host:port");
ABSL_FLAG(std::string, api_parent, "", "api-batch-enroll-native: the sequence to enroll into");
ABSL_FLAG(std::string, api_token, "bench-token", "api-batch-enroll-native: the bearer token");
ABSL_FLAG(std::string, api_company, "bench", "api-batch-enroll-native: the caller's company");
ABSL_FLAG(std::string, item_tag, "n", "api-batch-enroll-native: prefix of the item ids");
ABSL_FLAG(std::string, peers_dir, "tests/bench/peers", "where the peers' run.sh scripts are");

namespace sequences::bench {
namespace {

// Records shaped like the enroll events the automation engine publishes.
std::vector<kafka::Record> EnrollRecords(const std::string& topic, int64_t n) {
  std::vector<kafka::Record> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    v1::Envelope e;
    std::string item = absl::StrCat("bench/deal/", i);
    e.set_event_id(absl::StrCat("enroll-", i));
    e.set_company_id("bench");
    e.set_correlation_id(absl::StrCat("req-", i));
    auto* r = e.mutable_enroll_requested();
    r->set_request_id(absl::StrCat("req-", i));
    r->set_sequence_id("bench-seq");
    r->set_sequence_version(1);
    r->set_item_key(item);
    r->set_entity_kind(v1::ENTITY_KIND_DEAL);
    r->set_owner_id("u1");
    r->mutable_recipient()->set_email(absl::StrCat("p", i, "@example.com"));
    r->mutable_recipient()->set_name("Ada Lovelace");
    r->mutable_time_zones()->set_recipient("Europe/Berlin");
    (*r->mutable_merge_data())["person.first_name"] = "Ada";
    out.push_back({topic, item, e.SerializeAsString()});
  }
  return out;
}

absl::Status Topics(const std::vector<std::string>& names) {
  auto admin = kafka::Admin::Create({.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap)});
  if (!admin.ok()) return admin.status();
  std::vector<kafka::TopicSpec> specs;
  for (const auto& n : names) specs.push_back({n, absl::GetFlag(FLAGS_partitions)});
  return (*admin)->EnsureTopics(specs, absl::Seconds(30));
}

void PrintResults(const std::string& name, const absl::StatusOr<std::vector<Result>>& results) {
  if (!results.ok()) {
    std::printf("ERROR %s %s\n", name.c_str(), results.status().ToString().c_str());
    return;
  }
  for (const Result& r : *results) {
    std::string series;
    for (const auto& [k, values] : r.series) {
      if (!series.empty()) series += ",";
      absl::StrAppend(&series, "\"", k, "\":[", absl::StrJoin(values, ","), "]");
    }
    const std::string result_name = r.name + absl::GetFlag(FLAGS_name_suffix);
    std::printf("RESULT {\"name\":\"%s\",\"figures\":%s,\"series\":{%s}}\n", result_name.c_str(),
                ToJson(r.figures).c_str(), series.c_str());
  }
  std::fflush(stdout);
}

void Print(const std::string& name, const absl::StatusOr<Figures>& f) {
  if (!f.ok()) {
    std::printf("ERROR %s %s\n", name.c_str(), f.status().ToString().c_str());
    return;
  }
  const std::string result_name = name + absl::GetFlag(FLAGS_name_suffix);
  std::printf("RESULT {\"name\":\"%s\",\"figures\":%s}\n", result_name.c_str(), ToJson(*f).c_str());
  std::fflush(stdout);
}

int Run(const std::string& cmd) {
  const std::string bootstrap = absl::GetFlag(FLAGS_bootstrap);
  const std::string prefix =
      absl::StrCat(absl::GetFlag(FLAGS_prefix), cmd, ".", absl::ToUnixMillis(absl::Now()), ".");
  if (cmd == "kafka-passthrough") {
    std::string in = prefix + "in", out = prefix + "out";
    if (auto s = Topics({in, out}); !s.ok()) return Print(cmd, s), 1;
    auto records = EnrollRecords(in, absl::GetFlag(FLAGS_count));
    Print("kafka-load", Load(bootstrap, records));
    auto f =
        PassThrough(bootstrap, in, out, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_batch_max),
                    absl::Milliseconds(absl::GetFlag(FLAGS_flush_ms)));
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  }
  if (cmd == "kafka-raw-consume") {
    auto f = RawConsume(bootstrap, absl::GetFlag(FLAGS_topic));
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  }
  if (cmd == "kafka-produce-rate") {
    std::string t = prefix + "rate";
    if (auto s = Topics({t}); !s.ok()) return Print(cmd, s), 1;
    double rate = absl::GetFlag(FLAGS_rate);
    auto records = EnrollRecords(t, static_cast<int64_t>(rate * absl::GetFlag(FLAGS_seconds)));
    auto f = ProduceAtRate(bootstrap, records, rate);
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  }
  if (cmd == "kafka-produce-batch") {
    std::string t = prefix + "batch";
    if (auto s = Topics({t}); !s.ok()) return Print(cmd, s), 1;
    auto f = ProduceBatch(bootstrap, EnrollRecords(t, absl::GetFlag(FLAGS_batch)),
                          absl::GetFlag(FLAGS_repeats));
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  }
  if (cmd == "api-batch-enroll-native") {
    auto f = ApiBatchEnroll({.address = absl::GetFlag(FLAGS_api),
                             .token = absl::GetFlag(FLAGS_api_token),
                             .company = absl::GetFlag(FLAGS_api_company),
                             .user = "u1"},
                            absl::GetFlag(FLAGS_api_parent), absl::GetFlag(FLAGS_batch),
                            absl::GetFlag(FLAGS_repeats), absl::GetFlag(FLAGS_item_tag));
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  }
  SystemOptions system{.bootstrap = bootstrap,
                       .build_dir = absl::GetFlag(FLAGS_build_dir),
                       .work_dir = absl::GetFlag(FLAGS_work_dir),
                       .partitions = absl::GetFlag(FLAGS_partitions),
                       .processing_guarantee = absl::GetFlag(FLAGS_processing_guarantee),
                       .executor_flags = absl::GetFlag(FLAGS_executor_flags),
                       .replay = absl::GetFlag(FLAGS_replay),
                       .replay_baseline = absl::GetFlag(FLAGS_replay_baseline),
                       .replay_repeats = absl::GetFlag(FLAGS_replay_repeats),
                       .system = absl::GetFlag(FLAGS_system),
                       .peers_dir = absl::GetFlag(FLAGS_peers_dir)};
  absl::StatusOr<std::vector<Result>> results = absl::InvalidArgumentError("unknown benchmark");
  if (cmd == "executor-throughput") {
    results = ExecutorThroughput(system, absl::GetFlag(FLAGS_count));
  } else if (cmd == "executor-scaleout") {
    results = ExecutorScaleout(system, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_instances));
  } else if (cmd == "executor-timer-burst") {
    results = ExecutorTimerBurst(system, absl::GetFlag(FLAGS_count));
  } else if (cmd == "api-hostile-soak") {
    auto f = ApiHostileSoak(system, absl::GetFlag(FLAGS_repeats), absl::GetFlag(FLAGS_batch));
    Print(cmd, f);
    return f.ok() ? 0 : 1;
  } else if (cmd == "executor-limits") {
    results = ExecutorLimits(system, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_rate),
                             absl::GetFlag(FLAGS_seconds), absl::GetFlag(FLAGS_instances));
  } else if (cmd == "executor-limits-reached") {
    results = ExecutorLimitsReached(system, absl::GetFlag(FLAGS_count));
  } else if (cmd == "executor-lateness") {
    results = ExecutorLateness(system, absl::GetFlag(FLAGS_rate), absl::GetFlag(FLAGS_seconds));
  } else {
    std::fprintf(stderr, "unknown benchmark %s\n", cmd.c_str());
    return 2;
  }
  PrintResults(cmd, results);
  return results.ok() ? 0 : 1;
}

}  // namespace
}  // namespace sequences::bench

int main(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr,
                 "usage: sequences-bench <kafka-passthrough|kafka-raw-consume|kafka-produce-rate|"
                 "kafka-produce-batch|executor-throughput|executor-scaleout|executor-timer-burst|"
                 "executor-lateness|executor-limits|executor-limits-reached|api-hostile-soak|"
                 "api-batch-enroll-native> "
                 "[--flags]\n");
    return 2;
  }
  return sequences::bench::Run(args[1]);
}
