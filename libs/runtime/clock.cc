#include "libs/runtime/clock.h"

#include <algorithm>

#include "absl/synchronization/notification.h"

namespace sequences {

absl::Time RealClock::Now() { return absl::Now(); }

bool RealClock::SleepUntil(absl::Time deadline, absl::Notification* wakeup) {
  if (wakeup == nullptr) {
    absl::SleepFor(deadline - absl::Now());
    return true;
  }
  return !wakeup->WaitForNotificationWithDeadline(deadline);
}

absl::Time SimulatedClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool SimulatedClock::SleepUntil(absl::Time deadline, absl::Notification* wakeup) {
  // Wait in small real-time slices: simulated time moves from another thread, and a wakeup
  // notification cannot be waited on together with the mutex condition.
  struct Reached {
    const absl::Time* now;
    absl::Time deadline;
    static bool Check(Reached* r) { return *r->now >= r->deadline; }
  };
  Reached reached{&now_, deadline};
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&Reached::Check, &reached), absl::Milliseconds(5))) {
        return true;
      }
    }
    if (wakeup != nullptr && wakeup->HasBeenNotified()) return false;
  }
}

void SimulatedClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

void SimulatedClock::Set(absl::Time t) {
  absl::MutexLock lock(&mu_);
  now_ = std::max(now_, t);
}

}  // namespace sequences
