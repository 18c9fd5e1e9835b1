#include "tests/bench/api_soak.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sequences/v1/enrollment_service.grpc.pb.h"
#include "sequences/v1/sequence_service.grpc.pb.h"
#include "tests/support/process.h"

namespace sequences::bench {
namespace {

constexpr char kToken[] = "soak-token";

// Resident set of `pid` in MiB (VmRSS of /proc/<pid>/status), or -1.
double RssMib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    int64_t kib = 0;
    std::string digits;
    for (char c : line) {
      if (c >= '0' && c <= '9') digits.push_back(c);
    }
    if (absl::SimpleAtoi(digits, &kib)) return kib / 1024.0;
  }
  return -1;
}

std::unique_ptr<grpc::ClientContext> Call(const std::string& company = "soak",
                                          const std::string& user = "u1") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  ctx->AddMetadata("x-sequences-company", company);
  ctx->AddMetadata("x-sequences-user", user);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

// One hostile call of kind `i % 5`: every one is refused, none writes.
void HostileCall(v1::SequenceService::Stub& sequences, v1::EnrollmentService::Stub& enrollments,
                 const std::string& sequence, int i) {
  static const std::string big(2 << 20, 'x');
  switch (i % 5) {
    case 0: {  // a 2 MiB step id, twice
      v1::CreateSequenceRequest r;
      r.set_parent("companies/soak");
      r.set_request_id(absl::StrCat("h-", i));
      r.mutable_sequence()->set_display_name("x");
      r.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
      for (int k = 0; k < 2; ++k) {
        v1::Step* s = r.mutable_sequence()->add_steps();
        s->set_id(big.substr(0, 1 << 20));
        s->mutable_activity()->set_activity_type("call");
      }
      v1::SequenceResponse resp;
      (void)sequences.CreateSequence(Call().get(), r, &resp);
      break;
    }
    case 1: {  // 100k holidays
      v1::CreateSequenceRequest r;
      r.set_parent("companies/soak");
      r.set_request_id(absl::StrCat("h-", i));
      for (int k = 0; k < 100000; ++k) {
        v1::Date* d = r.mutable_sequence()->mutable_settings()->add_holidays();
        d->set_year(2030);
        d->set_month(1);
        d->set_day(1);
      }
      v1::SequenceResponse resp;
      (void)sequences.CreateSequence(Call().get(), r, &resp);
      break;
    }
    case 2: {  // 3.5 MiB of merge data
      v1::EnrollRequest r;
      r.set_parent(sequence);
      r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
      r.mutable_item()->set_item_id("x");
      r.mutable_item()->set_request_id(absl::StrCat("h-", i));
      for (int k = 0; k < 7; ++k) {
        (*r.mutable_item()->mutable_merge_data())[absl::StrCat("f", k)] = big.substr(0, 512 << 10);
      }
      v1::EnrollmentResponse resp;
      (void)enrollments.Enroll(Call().get(), r, &resp);
      break;
    }
    case 3: {  // identity outside the grammar
      v1::ListSequencesRequest r;
      r.set_parent("companies/soak");
      v1::ListSequencesResponse resp;
      (void)sequences.ListSequences(Call("..", "a b").get(), r, &resp);
      break;
    }
    default: {  // 6,000 batch items with 1 KiB request ids
      v1::BatchEnrollRequest r;
      r.set_parent(sequence);
      for (int k = 0; k < 6000; ++k) {
        v1::EnrollItem* item = r.add_items();
        item->set_item_id(absl::StrCat(k));
        item->set_request_id(big.substr(0, 500));
      }
      v1::BatchEnrollResponse resp;
      (void)enrollments.BatchEnroll(Call().get(), r, &resp);
    }
  }
}

}  // namespace

absl::StatusOr<Figures> ApiHostileSoak(const SystemOptions& options, int rounds,
                                       int calls_per_round) {
  const std::string dir = absl::StrCat(options.work_dir, "/api-soak");
  std::filesystem::create_directories(dir);
  auto api = testing::ChildProcess::Start(
      {absl::StrCat(options.build_dir, "/services/sequence-api/sequence-api"),
       "--bootstrap_servers=" + options.bootstrap,
       absl::StrCat("--topic_prefix=bench.soak.", absl::ToUnixMillis(absl::Now()), "."),
       "--partitions=3", "--listen=127.0.0.1:0", "--data_dir=" + dir + "/data",
       absl::StrCat("--auth_token=", kToken)},
      dir + "/api.log");
  if (!api.ok()) return api.status();
  const absl::StatusOr<int> port = (*api)->WaitForPort("serving", "port", absl::Minutes(1));
  if (!port.ok()) return absl::UnavailableError("sequence-api did not start: " + (*api)->Log());
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", *port),
                                           grpc::InsecureChannelCredentials(), args);
  auto sequences = v1::SequenceService::NewStub(channel);
  auto enrollments = v1::EnrollmentService::NewStub(channel);

  // Warm-up: the service's normal working set (a sequence, a few hundred enrollments).
  v1::CreateSequenceRequest create;
  create.set_parent("companies/soak");
  create.set_request_id("soak-seq");
  create.mutable_sequence()->set_display_name("soak");
  create.mutable_sequence()->set_entity_kind(v1::ENTITY_KIND_DEAL);
  v1::Step* step = create.mutable_sequence()->add_steps();
  step->set_id("call");
  step->mutable_delay()->set_unit(v1::DELAY_UNIT_DAYS);
  step->mutable_delay()->set_amount(3);
  step->mutable_activity()->set_activity_type("call");
  step->mutable_activity()->set_subject("Call");
  step->mutable_activity()->mutable_assignee()->set_item_owner(true);
  v1::SequenceResponse created;
  grpc::Status s = sequences->CreateSequence(Call().get(), create, &created);
  if (!s.ok()) return absl::InternalError(s.error_message());
  const std::string sequence = created.sequence().name();
  for (int i = 0; i < 300; ++i) {
    v1::EnrollRequest r;
    r.set_parent(sequence);
    r.mutable_item()->set_entity_kind(v1::ENTITY_KIND_DEAL);
    r.mutable_item()->set_item_id(absl::StrCat("w", i));
    r.mutable_item()->set_request_id(absl::StrCat("w", i));
    v1::EnrollmentResponse resp;
    (void)enrollments->Enroll(Call().get(), r, &resp);
  }
  Figures f;
  f["rss_mib_after_warmup"] = RssMib((*api)->pid());
  for (int round = 1; round <= rounds; ++round) {
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&] {
        for (int i = next++; i < calls_per_round; i = next++) {
          HostileCall(*sequences, *enrollments, sequence, i);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    // Settled: after the service's memory housekeeping (--memory_trim_interval, 5 s) ran.
    absl::SleepFor(absl::Seconds(6));
    const double rss = RssMib((*api)->pid());
    if (round == 1) f["rss_mib_after_round_1"] = rss;
    f[absl::StrCat("rss_mib_round_", round)] = rss;
  }
  f["rss_mib_after_last_round"] = f[absl::StrCat("rss_mib_round_", rounds)];
  f["rounds"] = rounds;
  f["calls_per_round"] = calls_per_round;
  // Flat means the last round ends where the first did: retention, not growth.
  f["last_over_first_round"] = f["rss_mib_after_last_round"] / f["rss_mib_after_round_1"];
  f["last_round_over_warmup"] = f["rss_mib_after_last_round"] / f["rss_mib_after_warmup"];
  v1::ListSequencesRequest list;
  list.set_parent("companies/soak");
  v1::ListSequencesResponse listed;
  f["still_serving"] = sequences->ListSequences(Call().get(), list, &listed).ok() ? 1 : 0;
  (*api)->Terminate();
  return f;
}

}  // namespace sequences::bench
