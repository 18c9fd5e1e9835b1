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
// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();
// A fresh empty directory under the system temp dir.
std::string TempDir(absl::string_view prefix);

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_PROCESS_H_
