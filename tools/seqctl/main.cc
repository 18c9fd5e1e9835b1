// seqctl: operator commands over the log (tools/seqctl/README.md). main() only wires flags, the
// real clock and the Kafka clients; the work is in seqctl.h.
//
//   seqctl decode --topic=T                          every record of T as one JSON line
//   seqctl history --company=C --enrollment=E        an enrollment's (or item's) records, in order
//   seqctl publish-outcome --company=C --item=deal:42 --outcome=DEAL_WON --request_id=R
//   seqctl replay [step-executor replay flags]       runs step-executor replay
//   seqctl dry-run [step-executor replay flags]      runs step-executor replay --dry_run
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "libs/kafka/producer.h"
#include "libs/runtime/clock.h"
#include "libs/service/kafka_security.h"
#include "libs/service/topics.h"
#include "tools/seqctl/seqctl.h"

ABSL_FLAG(std::string, bootstrap_servers, "127.0.0.1:9092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, topic_prefix, "sequences.", "prefix of every topic name");
ABSL_FLAG(std::string, topic, "", "decode: the topic (full name, or the part after the prefix)");
ABSL_FLAG(std::string, company, "", "history, publish-outcome: the company id");
ABSL_FLAG(std::string, enrollment, "",
          "history: companies/{c}/sequences/{s}/enrollments/{deal|lead}:{item}, "
          "sequences/{s}/enrollments/{deal|lead}:{item}, or {deal|lead}:{item} (the whole item)");
ABSL_FLAG(std::string, item, "", "publish-outcome: the item, {deal|lead}:{item id}");
ABSL_FLAG(std::string, outcome, "",
          "publish-outcome: DEAL_WON, DEAL_LOST, LEAD_CONVERTED or ITEM_DELETED");
ABSL_FLAG(std::string, request_id, "",
          "publish-outcome: makes the event id; the same request id twice is one outcome");

namespace sequences {
namespace {

constexpr char kUsage[] =
    "seqctl decode|history|publish-outcome|replay|dry-run [flags]; see tools/seqctl/README.md";

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "seqctl: %s\n", s.ToString().c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// The step-executor binary: $SEQCTL_STEP_EXECUTOR, else next to this binary (an install), else
// where the build puts it, else from PATH.
std::string StepExecutor() {
  if (const char* env = std::getenv("SEQCTL_STEP_EXECUTOR"); env != nullptr && *env != '\0') {
    return env;
  }
  char self[PATH_MAX] = {0};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& candidate :
         {dir + "/step-executor", dir + "/../../services/step-executor/step-executor"}) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "step-executor";
}

// seqctl replay|dry-run ARGS -> step-executor replay [--dry_run] ARGS (this process is replaced).
int ExecReplay(int argc, char** argv, bool dry_run) {
  const std::string binary = StepExecutor();
  std::vector<std::string> args = {binary, "replay"};
  if (dry_run) args.push_back("--dry_run");
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> c_args;
  for (std::string& a : args) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  execvp(binary.c_str(), c_args.data());
  std::perror(("seqctl: cannot run " + binary).c_str());
  return 127;
}

int Main(const std::vector<char*>& args) {
  if (args.size() != 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string command = args[1];
  kafka::ClientConfig client{.bootstrap_servers = absl::GetFlag(FLAGS_bootstrap_servers),
                             .client_id = "seqctl"};
  absl::StatusOr<kafka::SecurityConfig> security = service::KafkaSecurityFromFlags();
  if (!security.ok()) return Fail(security.status());
  client.security = *security;
  const service::Topics topics = service::Topics::WithPrefix(absl::GetFlag(FLAGS_topic_prefix));
  RealClock clock;
  const seqctl::ReadOptions read{.client = client};

  if (command == "decode") {
    absl::StatusOr<std::string> topic = seqctl::ResolveTopic(topics, absl::GetFlag(FLAGS_topic));
    if (!topic.ok()) return Fail(topic.status());
    absl::Status s = seqctl::ReadToEnd(read, {*topic}, clock, [](const kafka::Message& m) {
      std::printf("%s\n", seqctl::RecordJson(m).c_str());
    });
    std::fflush(stdout);
    return s.ok() ? 0 : Fail(s);
  }
  if (command == "history") {
    absl::StatusOr<seqctl::EnrollmentRef> ref =
        seqctl::ParseEnrollment(absl::GetFlag(FLAGS_company), absl::GetFlag(FLAGS_enrollment));
    if (!ref.ok()) return Fail(ref.status());
    absl::StatusOr<std::vector<kafka::Message>> history =
        seqctl::History(read, topics, *ref, clock);
    if (!history.ok()) return Fail(history.status());
    for (const kafka::Message& m : *history) std::printf("%s\n", seqctl::RecordJson(m).c_str());
    std::fflush(stdout);
    return 0;
  }
  if (command == "publish-outcome") {
    absl::StatusOr<v1::ItemOutcomeKind> kind =
        seqctl::ParseOutcomeKind(absl::GetFlag(FLAGS_outcome));
    if (!kind.ok()) return Fail(kind.status());
    absl::StatusOr<kafka::Record> record =
        seqctl::OutcomeRecord(topics,
                              {.company_id = absl::GetFlag(FLAGS_company),
                               .item = absl::GetFlag(FLAGS_item),
                               .kind = *kind,
                               .request_id = absl::GetFlag(FLAGS_request_id)},
                              clock.Now());
    if (!record.ok()) return Fail(record.status());
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
        kafka::Producer::Create({.client = client, .delivery_timeout = absl::Seconds(15)});
    if (!producer.ok()) return Fail(producer.status());
    absl::StatusOr<kafka::DeliveryReport> report = (*producer)->Send(*record);
    if (!report.ok()) return Fail(report.status());
    std::printf("{\"topic\":\"%s\",\"partition\":%d,\"offset\":%lld,\"key\":\"%s\"}\n",
                report->topic.c_str(), report->partition, static_cast<long long>(report->offset),
                record->key.c_str());
    std::fflush(stdout);
    return 0;
  }
  std::fprintf(stderr, "seqctl: unknown command '%s'\n%s\n", command.c_str(), kUsage);
  return 2;
}

}  // namespace
}  // namespace sequences

int main(int argc, char** argv) {
  // replay and dry-run pass every argument on to step-executor unparsed.
  if (argc >= 2 && (std::string(argv[1]) == "replay" || std::string(argv[1]) == "dry-run")) {
    return sequences::ExecReplay(argc, argv, std::string(argv[1]) == "dry-run");
  }
  absl::SetProgramUsageMessage(sequences::kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  return sequences::Main(args);
}
