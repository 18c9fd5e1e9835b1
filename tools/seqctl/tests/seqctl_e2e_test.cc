// The seqctl binary as an operator runs it, against the live broker: flags, JSON lines on stdout,
// exit codes, and the replay wrapper handing over to step-executor.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/kafka/admin.h"
#include "libs/service/topics.h"
#include "tests/support/kafka_env.h"
#include "tests/support/process.h"

namespace sequences::testing {
namespace {

struct Run {
  int exit_code = -1;
  std::vector<std::string> json_lines;  // JSON objects printed, log lines ({"ts":...) aside
  std::string output;                   // everything it printed
};

// Runs build/tools/seqctl/seqctl with `args` to its end (at most a minute).
Run Seqctl(const std::vector<std::string>& args) {
  const char* build = std::getenv("SEQUENCES_BUILD_DIR");
  REQUIRE(build != nullptr);
  std::vector<std::string> argv = {absl::StrCat(build, "/tools/seqctl/seqctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = TempDir("seqctl-e2e") + "/out.log";
  auto child = ChildProcess::Start(argv, log);
  REQUIRE(child.ok());
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  while ((*child)->Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  Run run;
  run.exit_code = (*child)->Terminate();
  run.output = (*child)->Log();
  for (absl::string_view line : absl::StrSplit(run.output, '\n')) {
    if (absl::StartsWith(line, "{") && !absl::StartsWith(line, "{\"ts\":")) {
      run.json_lines.emplace_back(line);
    }
  }
  return run;
}

TEST_CASE(
    "Given our topics, when an operator publishes an outcome with seqctl, then decode and "
    "history show it under the item's key, and a wrong outcome exits 2 writing nothing") {
  const std::string prefix = UniqueName("seqctl-e2e") + ".";
  auto admin = kafka::Admin::Create({.bootstrap_servers = Bootstrap()});
  REQUIRE(admin.ok());
  REQUIRE(service::EnsureTopics(**admin, service::Topics::WithPrefix(prefix), 3, absl::Seconds(30))
              .ok());
  const std::vector<std::string> kafka = {"--bootstrap_servers=" + Bootstrap(),
                                          "--topic_prefix=" + prefix};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), kafka.begin(), kafka.end());
    return args;
  };

  Run published = Seqctl(with({"publish-outcome", "--company=acme", "--item=deal:42",
                               "--outcome=DEAL_WON", "--request_id=crm-1"}));
  INFO(published.output);
  REQUIRE(published.exit_code == 0);
  REQUIRE(published.json_lines.size() == 1);
  CHECK(absl::StrContains(published.json_lines[0], "\"key\":\"acme/deal/42\""));

  Run refused = Seqctl(with({"publish-outcome", "--company=acme", "--item=lead:42",
                             "--outcome=DEAL_WON", "--request_id=crm-2"}));
  CHECK(refused.exit_code == 2);
  CHECK(refused.json_lines.empty());

  Run decoded = Seqctl(with({"decode", "--topic=enrollment-events"}));
  INFO(decoded.output);
  REQUIRE(decoded.exit_code == 0);
  REQUIRE(decoded.json_lines.size() == 1);  // the refused outcome was never written
  CHECK(absl::StrContains(decoded.json_lines[0], "\"key\":\"acme/deal/42\""));
  CHECK(absl::StrContains(decoded.json_lines[0], "\"kind\":\"ITEM_OUTCOME_KIND_DEAL_WON\""));
  CHECK(absl::StrContains(decoded.json_lines[0],
                          "\"event_id\":\"seqctl/item_outcome/acme/deal/42/crm-1\""));

  Run history = Seqctl(with({"history", "--company=acme",
                             "--enrollment=companies/acme/sequences/s1/enrollments/deal:42"}));
  REQUIRE(history.exit_code == 0);
  CHECK(history.json_lines.size() == 1);  // an item-wide outcome belongs to every enrollment
  Run other = Seqctl(with({"history", "--company=acme", "--enrollment=deal:43"}));
  REQUIRE(other.exit_code == 0);
  CHECK(other.json_lines.empty());

  Run unknown_topic = Seqctl(with({"decode", "--topic=no-such-topic"}));
  CHECK(unknown_topic.exit_code == 2);
}

TEST_CASE(
    "Given our topics, when an operator runs seqctl dry-run or replay, then step-executor's "
    "replay runs with those arguments and its JSON and exit code come back") {
  const std::string prefix = UniqueName("seqctl-e2e") + ".";
  auto admin = kafka::Admin::Create({.bootstrap_servers = Bootstrap()});
  REQUIRE(admin.ok());
  REQUIRE(service::EnsureTopics(**admin, service::Topics::WithPrefix(prefix), 3, absl::Seconds(30))
              .ok());
  Run run = Seqctl({"dry-run", "--bootstrap_servers=" + Bootstrap(), "--topic_prefix=" + prefix,
                    "--from=beginning", "--data_dir=" + TempDir("seqctl-replay") + "/state"});
  INFO(run.output);
  CHECK(run.exit_code == 0);
  REQUIRE(run.json_lines.size() == 1);
  CHECK(absl::StrContains(run.json_lines[0], "\"digest\":"));
  CHECK(absl::StrContains(run.json_lines[0], "\"decisions_differing\":0"));

  // step-executor's exit code comes back unchanged (2: a bad --from).
  Run bad = Seqctl({"replay", "--bootstrap_servers=" + Bootstrap(), "--topic_prefix=" + prefix,
                    "--from=yesterday", "--data_dir=" + TempDir("seqctl-replay") + "/state"});
  INFO(bad.output);
  CHECK(bad.exit_code == 2);
  CHECK(absl::StrContains(bad.output, "--from: yesterday"));
}

}  // namespace
}  // namespace sequences::testing
