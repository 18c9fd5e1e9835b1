#include "tests/support/broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/process.h"

namespace sequences::testing {
namespace {

constexpr char kLockDir[] = "/tmp/sequences-test-ports";

// Whether a listening socket could bind `port` on 127.0.0.1 now.
bool PortFree(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

// Alive and not a zombie (the JVM is re-parented when kafka.sh exits; its reaper may be slow).
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

// Takes the machine-wide lock of `port` (see PortBlock); -1 when another holder has it.
// Close-on-exec: the broker started through system() must not inherit (and so keep) the lock.
int LockPort(int port) {
  const std::string path = absl::StrCat(kLockDir, "/", port, ".lock");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

PortBlock::PortBlock(int count) {
  int lo = 20000;
  int hi = 28999;
  const char* range = std::getenv("SEQUENCES_TEST_BROKER_PORTS");
  if (range != nullptr && (std::sscanf(range, "%d-%d", &lo, &hi) != 2 || lo <= 0 || hi > 65535 ||
                           hi - lo + 1 < count)) {
    std::fprintf(stderr, "SEQUENCES_TEST_BROKER_PORTS=%s is not <lo>-<hi> with room for %d\n",
                 range, count);
    std::abort();
  }
  mkdir(kLockDir, 0777);
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int base = lo + static_cast<int>(rng() % static_cast<unsigned>(hi - lo - count + 2));
    std::vector<int> fds;
    bool ok = true;
    for (int i = 0; i < count && ok; ++i) {
      const int fd = LockPort(base + i);
      ok = fd >= 0;
      if (ok) fds.push_back(fd);
      ok = ok && PortFree(base + i);
    }
    if (ok) {
      first_ = base;
      lock_fds_ = std::move(fds);
      return;
    }
    for (int fd : fds) close(fd);  // closing the descriptor drops its lock
  }
  std::fprintf(stderr, "no %d free consecutive ports in %d-%d\n", count, lo, hi);
  std::abort();
}

PortBlock::~PortBlock() {
  for (int fd : lock_fds_) close(fd);
}

PortBlock::PortBlock(PortBlock&& other) noexcept
    : first_(other.first_), lock_fds_(std::move(other.lock_fds_)) {
  other.lock_fds_.clear();
}

PrivateBroker::PrivateBroker(std::string security)
    : security_(std::move(security)), ports_(2), data_dir_(TempDir("broker")) {}

PrivateBroker::~PrivateBroker() { Kill().IgnoreError(); }

std::string PrivateBroker::bootstrap() const { return absl::StrCat("127.0.0.1:", ports_.first()); }

absl::Status PrivateBroker::Script(const std::string& verb, bool fresh) {
  const std::string command = absl::StrCat(
      "KAFKA_PORT=", ports_.first(), " KAFKA_DATA_DIR=", data_dir_, " KAFKA_HEAP=512m",
      // Restarted after kill -9, the broker cannot register with its controller until the dead
      // incarnation's session has ended (9 s by default, 12-16 s to serve in all): a short one
      // lets the restarted broker serve in seconds.
      " KAFKA_BROKER_SESSION_MS=3000",
      // JVM starts are most of a restart: the class archive when there is one (a stop here never
      // takes the extra time of making it), and no optimizing compiler for a broker that serves
      // a few thousand records for a minute (about a third less CPU to start).
      " KAFKA_CDS=use KAFKA_JVM_FLAGS=-XX:TieredStopAtLevel=1",
      // KAFKA_FRESH always explicit: deploy/local/test.sh exports KAFKA_FRESH=1 for its own broker,
      // and a restart that inherited it would wipe this broker's log.
      " KAFKA_SECURITY=", security_, " KAFKA_FRESH=", fresh ? "1" : "0", " ", SEQUENCES_SOURCE_DIR,
      "/deploy/local/kafka.sh ", verb, " >>", data_dir_, "-launcher.log 2>&1");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("kafka.sh ", verb, " exited with ", rc, "; see ", data_dir_, "-launcher.log"));
  }
  return absl::OkStatus();
}

absl::Status PrivateBroker::Start(bool fresh) { return Script("start", fresh); }

absl::Status PrivateBroker::Stop() { return Script("stop", false); }

namespace {

// The broker's JVM (kafka.sh's pid file), or 0 when none was started.
pid_t BrokerPid(const std::string& data_dir) {
  std::ifstream f(absl::StrCat(data_dir, "/kafka.pid"));
  pid_t pid = 0;
  if (!(f >> pid) || pid <= 0) return 0;
  return pid;
}

}  // namespace

absl::Status PrivateBroker::Signal(int signal) {
  const pid_t pid = BrokerPid(data_dir_);
  if (pid == 0 || !Alive(pid)) return absl::FailedPreconditionError("the broker is not running");
  if (kill(pid, signal) != 0) return absl::InternalError("kill(2) of the broker failed");
  return absl::OkStatus();
}

absl::Status PrivateBroker::Freeze() { return Signal(SIGSTOP); }

absl::Status PrivateBroker::Thaw() { return Signal(SIGCONT); }

absl::Status PrivateBroker::Kill() {
  const pid_t pid = BrokerPid(data_dir_);
  if (pid == 0) return absl::OkStatus();  // not running
  kill(pid, SIGKILL);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Alive(pid)) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("broker survived kill -9");
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

}  // namespace sequences::testing
