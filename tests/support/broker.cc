#include "tests/support/broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
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

// FreePort tells about one port; the controller needs the next one too.
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

}  // namespace

int FreePortBlock(int count) {
  int lo = 0;
  int hi = 0;
  const char* range = std::getenv("SEQUENCES_TEST_BROKER_PORTS");
  if (range != nullptr && std::sscanf(range, "%d-%d", &lo, &hi) == 2 && lo > 0 &&
      hi - lo >= count) {
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 200; ++attempt) {
      const int base = lo + static_cast<int>(rng() % static_cast<unsigned>(hi - lo - count + 2));
      bool free = true;
      for (int i = 0; i < count && free; ++i) free = PortFree(base + i);
      if (free) return base;
    }
    std::fprintf(stderr, "no %d free consecutive ports in %s\n", count, range);
    std::abort();
  }
  while (true) {
    const int base = FreePort();
    bool free = base + count <= 65535;
    for (int i = 1; i < count && free; ++i) free = PortFree(base + i);
    if (free) return base;
  }
}

PrivateBroker::PrivateBroker(std::string security)
    : security_(std::move(security)), port_(FreePortBlock(2)), data_dir_(TempDir("broker")) {}

PrivateBroker::~PrivateBroker() { Kill().IgnoreError(); }

std::string PrivateBroker::bootstrap() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status PrivateBroker::Script(const std::string& verb, bool fresh) {
  const std::string command = absl::StrCat(
      "KAFKA_PORT=", port_, " KAFKA_DATA_DIR=", data_dir_, " KAFKA_HEAP=512m",
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

absl::Status PrivateBroker::Kill() {
  std::ifstream f(absl::StrCat(data_dir_, "/kafka.pid"));
  pid_t pid = 0;
  if (!(f >> pid) || pid <= 0) return absl::OkStatus();  // not running
  kill(pid, SIGKILL);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Alive(pid)) {
    if (absl::Now() > deadline) return absl::DeadlineExceededError("broker survived kill -9");
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

}  // namespace sequences::testing
