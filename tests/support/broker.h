#ifndef SEQUENCES_TESTS_SUPPORT_BROKER_H_
#define SEQUENCES_TESTS_SUPPORT_BROKER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

// A private single-node Kafka broker for fault tests: started, stopped and killed with kill -9 by
// the test itself, through deploy/local/kafka.sh, on ports of its own (client port P, controller
// P+1, reserved: see PortBlock) and a data directory of its own, so the shared test broker is never
// touched. Restarts keep the data directory (same log, same group and transaction state).
//
// Thread-compatible.
namespace sequences::testing {

// `count` consecutive TCP ports on 127.0.0.1, free when chosen and reserved for this object's
// lifetime, so a broker that is down between a kill and its restart finds them still free while
// other tests run alongside (ctest -j2):
//   - they lie outside the kernel's ephemeral range (32768-60999 on Linux), so no port-0 bind of a
//     service and no outgoing connection gets them: by default in 20000-28999, or in
//     SEQUENCES_TEST_BROKER_PORTS=<lo>-<hi> (for machines where test brokers keep to agreed ports);
//   - each port is held with flock(2) on /tmp/sequences-test-ports/<port>.lock, which every
//     PortBlock of every process on the machine honours; the kernel drops the lock when the
//     process dies, so a crashed test leaves nothing to clean up.
// Move-only.
class PortBlock {
 public:
  explicit PortBlock(int count);
  ~PortBlock();
  PortBlock(PortBlock&& other) noexcept;
  PortBlock& operator=(PortBlock&&) = delete;
  PortBlock(const PortBlock&) = delete;
  PortBlock& operator=(const PortBlock&) = delete;

  // The first port of the block.
  int first() const { return first_; }

 private:
  int first_ = 0;
  std::vector<int> lock_fds_;
};

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
  // SIGSTOP of the broker's JVM: its connections stay open and nothing answers (a hung broker, a
  // long pause, a silent network). Thaw (SIGCONT) resumes it; a frozen broker can still be killed.
  absl::Status Freeze();
  absl::Status Thaw();

  std::string bootstrap() const;
  const std::string& data_dir() const { return data_dir_; }
  // With SASL_SSL, after the first Start: the CA that signed the broker's certificate, and the
  // file holding the password of the client user "sequences".
  std::string ca_file() const { return data_dir_ + "/security/ca.pem"; }
  std::string password_file() const { return data_dir_ + "/security/sequences.password"; }

 private:
  absl::Status Script(const std::string& verb, bool fresh);
  absl::Status Signal(int signal);
  std::string security_;
  PortBlock ports_;
  std::string data_dir_;
};

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_BROKER_H_
