#include "libs/service/shutdown.h"

#include <csignal>
#include <thread>

#include "libs/runtime/log.h"

namespace sequences::service {

absl::Notification& InstallShutdownSignals() {
  static auto* done = new absl::Notification();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    Log(LogLevel::kInfo, "service", "shutdown requested", {{"signal", strsignal(sig)}});
    done->Notify();
  }).detach();
  return *done;
}

}  // namespace sequences::service
