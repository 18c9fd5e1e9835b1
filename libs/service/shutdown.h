#ifndef SEQUENCES_LIBS_SERVICE_SHUTDOWN_H_
#define SEQUENCES_LIBS_SERVICE_SHUTDOWN_H_

#include "absl/synchronization/notification.h"

namespace sequences::service {

// Blocks SIGTERM and SIGINT in the calling thread (call first thing in main, before any thread is
// started, so every thread inherits the mask) and starts a thread that notifies the returned
// notification when one of them arrives. The process then shuts down in order instead of dying.
absl::Notification& InstallShutdownSignals();

}  // namespace sequences::service

#endif  // SEQUENCES_LIBS_SERVICE_SHUTDOWN_H_
