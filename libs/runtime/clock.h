#ifndef SEQUENCES_LIBS_RUNTIME_CLOCK_H_
#define SEQUENCES_LIBS_RUNTIME_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace sequences {

// The only way code outside main() learns the time. Drivers (the executor loop, the API's command
// handlers) take a Clock&; main() makes the RealClock; tests make a SimulatedClock and move it.
//
// Thread-safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // The current time.
  virtual absl::Time Now() = 0;
  // Blocks until Now() >= deadline, or until `wakeup` (if not null) is notified, whichever is
  // first. Returns true if the deadline was reached. REQUIRES: `wakeup` outlives the call.
  virtual bool SleepUntil(absl::Time deadline, absl::Notification* wakeup) = 0;
};

// Wall-clock time. Only main() and adapters construct one.
class RealClock final : public Clock {
 public:
  absl::Time Now() override;
  bool SleepUntil(absl::Time deadline, absl::Notification* wakeup) override;
};

// A clock that moves only when told. Sleepers wake when Advance/Set passes their deadline.
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(absl::Time start) : now_(start) {}
  absl::Time Now() override;
  bool SleepUntil(absl::Time deadline, absl::Notification* wakeup) override;
  void Advance(absl::Duration d);
  void Set(absl::Time t);

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_CLOCK_H_
