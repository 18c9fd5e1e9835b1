#ifndef SEQUENCES_TESTS_SUPPORT_CLUSTER_H_
#define SEQUENCES_TESTS_SUPPORT_CLUSTER_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/broker.h"

// A private three-node KRaft cluster for fault tests (deploy/local/kafka-cluster.sh): six ports
// of its own (reserved: PortBlock in tests/support/broker.h), fresh storage, nodes killed with
// kill -9 and restarted on their data by the test.
//
// Thread-compatible.
namespace sequences::testing {

class PrivateCluster {
 public:
  // Chooses the ports and the data directory; starts nothing.
  PrivateCluster();
  // kill -9 of every node still running (the data stays, for inspection).
  ~PrivateCluster();

  // Starts all three nodes on fresh storage and waits until each serves and sees the others.
  absl::Status Start();
  // Stops every node cleanly.
  absl::Status Stop();
  // Node n (1..3): start again on its data and wait until it serves; kill -9.
  absl::Status StartNode(int n);
  absl::Status KillNode(int n);

  // "127.0.0.1:P,127.0.0.1:P+1,127.0.0.1:P+2".
  std::string bootstrap() const;
  // The leader node of each partition of `topic`, from the cluster's metadata (kcat -L).
  absl::StatusOr<std::map<int, int>> Leaders(const std::string& topic) const;

 private:
  absl::Status Script(const std::string& args) const;
  PortBlock ports_;
  int port_;
  std::string dir_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_CLUSTER_H_
