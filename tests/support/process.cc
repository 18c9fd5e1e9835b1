#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/kafka_env.h"

namespace sequences::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    std::vector<std::string> argv, std::string log_path,
    std::vector<std::pair<std::string, std::string>> env) {
  if (argv.empty()) return absl::InvalidArgumentError("argv: empty");
  if (access(argv[0].c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("binary ", argv[0], " is not executable"));
  }
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    // Undo a blocked-signal mask inherited from the test process.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, std::move(log_path)));
}

ChildProcess::~ChildProcess() {
  if (Running()) Kill();
}

int ChildProcess::Reap(bool block) {
  if (exit_code_ >= 0) return exit_code_;
  int status = 0;
  pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return exit_code_;
}

bool ChildProcess::Running() { return Reap(false) < 0; }

int ChildProcess::Terminate(absl::Duration grace) {
  if (!Running()) return exit_code_;
  kill(pid_, SIGTERM);
  absl::Time deadline = absl::Now() + grace;
  while (Running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  if (Running()) Kill();
  return exit_code_;
}

void ChildProcess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  Reap(true);
}

std::string ChildProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ChildProcess::WaitForLog(absl::string_view needle, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Log(), needle)) return true;
    if (!Running()) return absl::StrContains(Log(), needle);
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

absl::StatusOr<int> ChildProcess::WaitForPort(absl::string_view msg, absl::string_view field,
                                              absl::Duration timeout) {
  if (!WaitForLog(absl::StrCat("\"msg\":\"", msg, "\""), timeout)) {
    return absl::NotFoundError(absl::StrCat("no \"", msg, "\" line in the log:\n", Log()));
  }
  return PortInLog(Log(), msg, field);
}

absl::StatusOr<int> PortInLog(absl::string_view log, absl::string_view msg,
                              absl::string_view field) {
  const size_t at = log.find(absl::StrCat("\"msg\":\"", msg, "\""));
  if (at == absl::string_view::npos) {
    return absl::NotFoundError(absl::StrCat("no \"", msg, "\" line in the log"));
  }
  const size_t bol = log.rfind('\n', at);
  const absl::string_view line =
      log.substr(bol == absl::string_view::npos ? 0 : bol + 1,
                 log.find('\n', at) - (bol == absl::string_view::npos ? 0 : bol + 1));
  const std::string key = absl::StrCat("\"", field, "\":\"");
  const size_t v = line.find(key);
  const size_t end = v == absl::string_view::npos ? v : line.find('"', v + key.size());
  if (end == absl::string_view::npos) {
    return absl::NotFoundError(absl::StrCat("no \"", field, "\" in: ", line));
  }
  absl::string_view value = line.substr(v + key.size(), end - v - key.size());
  if (const size_t colon = value.rfind(':'); colon != absl::string_view::npos) {
    value.remove_prefix(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(value, &port) || port <= 0 || port > 65535) {
    return absl::NotFoundError(absl::StrCat("no port in \"", field, "\" of: ", line));
  }
  return port;
}

std::string ServiceBinary(absl::string_view name) {
  const char* dir = std::getenv("SEQUENCES_BUILD_DIR");
  std::string build = dir != nullptr ? dir : "build";
  return absl::StrCat(build, "/services/", name, "/", name);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string TempDir(absl::string_view prefix) {
  std::filesystem::path p =
      std::filesystem::temp_directory_path() / UniqueName(std::string(prefix));
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace sequences::testing
