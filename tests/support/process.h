#ifndef SEQUENCES_TESTS_SUPPORT_PROCESS_H_
#define SEQUENCES_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Real service processes for e2e tests: start a binary, read its log, SIGTERM or kill -9 it.
namespace sequences::testing {

class ChildProcess {
 public:
  // Starts argv[0] with the rest as arguments; stdout and stderr go to `log_path` (truncated).
  // `env` entries are added to the inherited environment.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      std::vector<std::string> argv, std::string log_path,
      std::vector<std::pair<std::string, std::string>> env = {});
  // Kills (SIGKILL) a process still running.
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  bool Running();
  // SIGTERM, then waits up to `grace`; SIGKILL after that. Returns the exit code (128+signal if
  // killed by a signal).
  int Terminate(absl::Duration grace = absl::Seconds(15));
  // kill -9 and reap.
  void Kill();
  // The whole log so far.
  std::string Log() const;
  // Waits until the log contains `needle` (true) or the process exits or time runs out (false).
  bool WaitForLog(absl::string_view needle, absl::Duration timeout);
  // The port a service bound on port 0 and reported: waits for the log line whose "msg" is `msg`
  // and reads the port at the end of its `field` ("port":"43121", "address":"127.0.0.1:43121",
  // "url":"http://127.0.0.1:43121"). NotFound when the line does not come in time or has no port.
  absl::StatusOr<int> WaitForPort(absl::string_view msg, absl::string_view field,
                                  absl::Duration timeout);

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  int Reap(bool block);
  pid_t pid_;
  std::string log_path_;
  int exit_code_ = -1;
};

// Path of a service binary built in SEQUENCES_BUILD_DIR (set by deploy/local/test.sh), e.g.
// ServiceBinary("sequence-api") -> "$SEQUENCES_BUILD_DIR/services/sequence-api/sequence-api".
std::string ServiceBinary(absl::string_view name);
// A TCP port on 127.0.0.1 that was free a moment ago. Racy (another process may take it before
// the caller binds it): start services on port 0 and ask ChildProcess::WaitForPort instead. Only
// for what cannot bind port 0 itself (a broker's listeners).
int FreePort();
// The port at the end of `field` in the first line of `log` whose "msg" is `msg` (see
// ChildProcess::WaitForPort).
absl::StatusOr<int> PortInLog(absl::string_view log, absl::string_view msg,
                              absl::string_view field);
// A fresh empty directory under the system temp dir.
std::string TempDir(absl::string_view prefix);

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_PROCESS_H_
