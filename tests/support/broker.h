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

// The first of `count` consecutive TCP ports on 127.0.0.1 that were all free a moment ago. With
// SEQUENCES_TEST_BROKER_PORTS=<lo>-<hi> set, the block lies in that range (for machines where
// test brokers must keep to agreed ports); otherwise anywhere.
int FreePortBlock(int count);

class PrivateBroker {
 public:
  // Chooses the ports and the data directory; starts nothing. `security` is kafka.sh's
  // KAFKA_SECURITY: "PLAINTEXT", or "SASL_SSL" (TLS with a CA of its own, SCRAM-SHA-512 logins).
  explicit PrivateBroker(std::string security = "PLAINTEXT");
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
  // With SASL_SSL, after the first Start: the CA that signed the broker's certificate, and the
  // file holding the password of the client user "sequences".
  std::string ca_file() const { return data_dir_ + "/security/ca.pem"; }
  std::string password_file() const { return data_dir_ + "/security/sequences.password"; }

 private:
  absl::Status Script(const std::string& verb, bool fresh);
  std::string security_;
  int port_;
  std::string data_dir_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_BROKER_H_
