#include "tests/e2e/api/api_process.h"

#include <catch2/catch.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "tests/support/kafka_env.h"

namespace sequences::testing {

ApiProcess::ApiProcess(const std::string& topic_prefix, const std::string& data_dir,
                       std::vector<std::string> extra_flags) {
  // Port 0: the service binds a free port and reports it (no race with another test's pick).
  std::vector<std::string> argv = {ServiceBinary("sequence-api"),
                                   "--bootstrap_servers=" + Bootstrap(),
                                   "--topic_prefix=" + topic_prefix,
                                   "--partitions=3",
                                   "--listen=127.0.0.1:0",
                                   "--data_dir=" + data_dir,
                                   absl::StrCat("--auth_token=", kApiToken)};
  for (std::string& f : extra_flags) argv.push_back(std::move(f));
  auto process = ChildProcess::Start(argv, absl::StrCat(data_dir, ".log"));
  INFO(process.status().ToString());
  REQUIRE(process.ok());
  process_ = std::move(*process);
  const absl::StatusOr<int> port = process_->WaitForPort("serving", "port", absl::Seconds(60));
  INFO(port.status().ToString());
  REQUIRE(port.ok());
  address_ = absl::StrCat("127.0.0.1:", *port);
  channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  sequences_ = v1::SequenceService::NewStub(channel_);
  enrollments_ = v1::EnrollmentService::NewStub(channel_);
  operations_ = v1::Operations::NewStub(channel_);
}

ApiProcess::~ApiProcess() {
  if (process_ != nullptr && process_->Running()) process_->Terminate();
}

std::unique_ptr<grpc::ClientContext> CallAs(const std::string& company, const std::string& user,
                                            double deadline_seconds, const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  if (!company.empty()) ctx->AddMetadata("x-sequences-company", company);
  if (!user.empty()) ctx->AddMetadata("x-sequences-user", user);
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(deadline_seconds * 1000)));
  return ctx;
}

}  // namespace sequences::testing
