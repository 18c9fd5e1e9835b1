#include "tests/support/cluster.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "tests/support/broker.h"
#include "tests/support/process.h"

namespace sequences::testing {

PrivateCluster::PrivateCluster() : ports_(6), port_(ports_.first()), dir_(TempDir("cluster")) {}

PrivateCluster::~PrivateCluster() {
  for (int n = 1; n <= 3; ++n) KillNode(n).IgnoreError();
}

std::string PrivateCluster::bootstrap() const {
  return absl::StrCat("127.0.0.1:", port_, ",127.0.0.1:", port_ + 1, ",127.0.0.1:", port_ + 2);
}

absl::Status PrivateCluster::Script(const std::string& args) const {
  const std::string command = absl::StrCat(
      "KAFKA_CLUSTER_PORT=", port_, " KAFKA_CLUSTER_DIR=", dir_, " KAFKA_HEAP=384m ",
      "KAFKA_FRESH=0 ",  // never inherit test.sh's KAFKA_FRESH=1 (a new dir needs none)
      SEQUENCES_SOURCE_DIR, "/deploy/local/kafka-cluster.sh ", args, " >>", dir_,
      "-launcher.log 2>&1");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("kafka-cluster.sh ", args, " exited with ", rc,
                                            "; see ", dir_, "-launcher.log"));
  }
  return absl::OkStatus();
}

absl::Status PrivateCluster::Start() { return Script("start"); }
absl::Status PrivateCluster::Stop() { return Script("stop"); }
absl::Status PrivateCluster::StartNode(int n) { return Script(absl::StrCat("start-node ", n)); }
absl::Status PrivateCluster::KillNode(int n) { return Script(absl::StrCat("kill-node ", n)); }

absl::StatusOr<std::map<int, int>> PrivateCluster::Leaders(const std::string& topic) const {
  const std::string command =
      absl::StrCat("kcat -b ", bootstrap(), " -L -m 5 -t ", topic, " 2>/dev/null");
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), &pclose);
  if (pipe == nullptr) return absl::InternalError("popen kcat");
  std::map<int, int> leaders;
  char line[512];
  while (std::fgets(line, sizeof(line), pipe.get()) != nullptr) {
    int partition = 0;
    int leader = 0;
    if (std::sscanf(line, " partition %d, leader %d", &partition, &leader) == 2) {
      leaders[partition] = leader;
    }
  }
  if (leaders.empty()) return absl::UnavailableError(absl::StrCat("no leaders for ", topic));
  return leaders;
}

}  // namespace sequences::testing
