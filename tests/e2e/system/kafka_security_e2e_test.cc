// Both services over a broker that only speaks SASL_SSL (tier e2e): TLS with the broker's own CA
// and SCRAM-SHA-512 logins, as deploy/local/kafka.sh sets it up with KAFKA_SECURITY=SASL_SSL on a
// private port with fresh storage. A sequence is created and a deal enrolled through the API, the
// executor fires the step, and the effect is read back over SASL_SSL; clients with a wrong
// password, without TLS, or without the broker's CA are refused.
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/kafka/security.h"
#include "tests/e2e/api/api_process.h"
#include "tests/e2e/system/system_harness.h"
#include "tests/support/broker.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"
#include "tests/support/topic_reader.h"

namespace sequences::testing {
namespace {

// The flags that put a service on `broker` as the user "sequences" (password from a file).
std::vector<std::string> SecureFlags(const PrivateBroker& broker,
                                     const std::string& password_file) {
  return {
      "--bootstrap_servers=" + broker.bootstrap(),   "--kafka_security_protocol=SASL_SSL",
      "--kafka_sasl_mechanism=SCRAM-SHA-512",        "--kafka_sasl_username=sequences",
      "--kafka_sasl_password_file=" + password_file, "--kafka_ssl_ca_location=" + broker.ca_file()};
}

// Starts sequence-api with `flags` and expects it to give up at its broker check: a non-zero exit
// within `within`, its log naming `reason`.
struct Refusal {
  std::string what;
  std::unique_ptr<ChildProcess> process;
  std::string reason;
};

Refusal StartRefused(const std::string& what, const std::string& dir,
                     std::vector<std::string> flags, const std::string& reason) {
  std::vector<std::string> argv = {ServiceBinary("sequence-api"), "--listen=127.0.0.1:0",
                                   "--data_dir=" + dir + "/" + what,
                                   absl::StrCat("--auth_token=", kApiToken)};
  for (std::string& f : flags) argv.push_back(std::move(f));
  auto process = ChildProcess::Start(argv, absl::StrCat(dir, "/", what, ".log"));
  INFO(process.status().ToString());
  REQUIRE(process.ok());
  return {what, std::move(*process), reason};
}

TEST_CASE(
    "Given a broker that accepts only SASL_SSL with SCRAM logins, both services run over it end "
    "to end (a deal enrolled through the API gets its step fired exactly once), and a service "
    "with a wrong password, without TLS, or not trusting the broker's CA is refused at start") {
  PrivateBroker broker("SASL_SSL");
  REQUIRE(broker.Start(/*fresh=*/true).ok());
  const std::string dir = TempDir("kafka-security");
  std::ofstream(dir + "/wrong.password") << "not-the-password\n";

  // The refusals run side by side: each is bounded by the broker check's connect timeout.
  std::vector<Refusal> refusals;
  {
    std::vector<std::string> wrong = SecureFlags(broker, dir + "/wrong.password");
    refusals.push_back(StartRefused("wrong-password", dir, wrong, "invalid credentials"));
    refusals.push_back(StartRefused("plaintext", dir, {"--bootstrap_servers=" + broker.bootstrap()},
                                    "broker check failed"));
    std::vector<std::string> untrusted = SecureFlags(broker, broker.password_file());
    untrusted.pop_back();  // no --kafka_ssl_ca_location: the system's CAs do not know this one
    refusals.push_back(StartRefused("untrusted-ca", dir, untrusted, "certificate verify failed"));
  }

  const std::string prefix = UniqueName("secure") + ".";
  const service::Topics topics = service::Topics::WithPrefix(prefix);
  std::vector<std::string> api_flags = SecureFlags(broker, broker.password_file());
  ApiProcess api(prefix, dir + "/api", api_flags);
  CHECK(api.process().Log().find("\"kafka_security\":\"SASL_SSL\"") != std::string::npos);

  // The executor takes its password from the environment instead of a file.
  std::vector<std::string> argv = {
      ServiceBinary("step-executor"),          "--topic_prefix=" + prefix,
      "--group_id=" + UniqueName("executors"), "--instance_id=" + UniqueName("executor"),
      "--data_dir=" + dir + "/executor",       absl::StrCat("--partitions=", kPartitions)};
  for (std::string& f : SecureFlags(broker, "")) {
    if (f.rfind("--kafka_sasl_password_file=", 0) != 0) argv.push_back(f);
  }
  std::ifstream password_in(broker.password_file());
  std::string password;
  std::getline(password_in, password);
  REQUIRE_FALSE(password.empty());
  auto executor = ChildProcess::Start(argv, dir + "/executor.log",
                                      {{"SEQUENCES_KAFKA_SASL_PASSWORD", password}});
  REQUIRE(executor.ok());
  {
    const bool running = (*executor)->WaitForLog("\"msg\":\"running\"", absl::Seconds(60));
    INFO((*executor)->Log());
    REQUIRE(running);
  }

  const std::string sequence = CreateSequence(api, "create-secure", {ActivityStep("call", 0)});
  BatchEnroll(api, sequence, {{"s1", "rep-1"}});
  // What the task service would read, as the same SCRAM user over TLS.
  kafka::ClientConfig client{.bootstrap_servers = broker.bootstrap()};
  client.security = {.protocol = kafka::SecurityProtocol::kSaslSsl,
                     .sasl_mechanism = "SCRAM-SHA-512",
                     .sasl_username = "sequences",
                     .sasl_password = password,
                     .ssl_ca_location = broker.ca_file()};
  TopicReader reader({topics.task_events}, kPartitions, client);
  reader.PollUntil([&] { return !reader.seen().empty(); }, absl::Seconds(30));
  reader.Poll(absl::Seconds(1));  // a duplicate would show up now
  std::vector<v1::Envelope> tasks;
  for (const Seen& s : reader.seen()) {
    REQUIRE(s.decoded);
    tasks.push_back(s.event);
  }
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].task_created().step_id() == "call");
  CHECK(tasks[0].task_created().assignee_user_id() == "rep-1");
  // The read model folds the executor's events over SASL_SSL too.
  const v1::EnrollmentOverview overview = WaitForOverview(
      api, sequence, [](const v1::EnrollmentOverview& o) { return o.completed() == 1; });
  CHECK(overview.completed() == 1);

  for (Refusal& r : refusals) {
    INFO(r.what);
    const int code = r.process->Terminate(absl::Seconds(30));
    INFO(r.process->Log());
    CHECK(r.process->Log().find("broker check failed") != std::string::npos);
    CHECK(r.process->Log().find(r.reason) != std::string::npos);
    CHECK(code == 1);
  }
  CHECK((*executor)->Terminate() == 0);
  CHECK(api.process().Terminate() == 0);
  REQUIRE(broker.Stop().ok());
}

}  // namespace
}  // namespace sequences::testing
