#ifndef SEQUENCES_TESTS_SUPPORT_EVENTUALLY_H_
#define SEQUENCES_TESTS_SUPPORT_EVENTUALLY_H_

// Polls a condition that another thread makes true (a probe, a fold): every millisecond of real
// time until it holds (true) or `timeout` passes (false). For unit tests whose simulated clock
// moves only when told: what they wait for here is a thread catching up, not time passing.

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sequences::testing {

template <typename Fn>
bool Eventually(Fn ready, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace sequences::testing

#endif  // SEQUENCES_TESTS_SUPPORT_EVENTUALLY_H_
