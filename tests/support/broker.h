#ifndef SEQUENCES_TESTS_SUPPORT_BROKER_H_
#define SEQUENCES_TESTS_SUPPORT_BROKER_H_

#include <string>

#include "absl/status/status.h"

// A private single-node Kafka broker for fault tests: started, stopped and killed with kill -9 by
// the test itself, through deploy/local/kafka.sh, on ports of its own (client port P, controller
// P+1, both free when chosen) and a data directory of its own, so the shared test broker is never
// touched. Restarts keep the data directory (same log, same group and transaction state).
//
// Thread-compatible.
namespace sequences::testing {

class PrivateBroker {
 public:
  // Chooses the ports and the data directory; starts nothing.
  PrivateBroker();
  // Kills the broker if it still runs (the data directory stays, for inspection).
  ~PrivateBroker();

  // Starts the broker and waits until it serves (kafka.sh start). `fresh` wipes the data first.
  absl::Status Start(bool fresh = false);
  // Stops it cleanly (SIGTERM, waits).
  absl::Status Stop();
  // kill -9 of the broker's JVM; returns once the process is gone.
  absl::Status Kill();

  std::string bootstrap() const;
  const std::string& data_dir() const { return data_dir_; }

 private:
  absl::Status Script(const std::string& verb, bool fresh);
  int port_;
  std::string data_dir_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_BROKER_H_
