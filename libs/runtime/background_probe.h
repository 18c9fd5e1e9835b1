#ifndef SEQUENCES_LIBS_RUNTIME_BACKGROUND_PROBE_H_
#define SEQUENCES_LIBS_RUNTIME_BACKGROUND_PROBE_H_

// Asks a slow question (of a broker, say) every `interval` on a thread of its own and keeps the
// latest answer with the time it was given. A loop that must keep its own pace (health, metrics,
// deciding) reads Latest() and never waits for the question; it tells an answer that has gone
// stale (the question is stuck) from a fresh one by the answer's time.
//
// Why: librdkafka 2.0.2's metadata and watermark requests can outlive their timeout by far while a
// broker is down or frozen (seen: > 20 s for a 2 s timeout). Asked on the loop's thread, such a
// request froze the API's health at SERVING through a whole broker outage.
//
// The destructor does not wait for a stuck question without bound: it waits `join_grace`, then
// leaves the thread to finish on its own. So the question must own what it uses (capture
// shared_ptrs, not references to the caller's objects); the clock must outlive the process's
// threads (main's clock does).
//
// Thread-safety: Latest() is safe from any thread; the question runs on the probe's thread only.

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/runtime/clock.h"

namespace sequences {

template <typename T>
class BackgroundProbe {
 public:
  struct Answer {
    T value;
    absl::Time at;  // when the question was answered (the clock's time)
  };

  static constexpr absl::Duration kJoinGrace = absl::Seconds(3);

  // Starts the thread; the first question is asked at once, then one `interval` after each answer.
  BackgroundProbe(std::function<T()> question, Clock& clock, absl::Duration interval,
                  absl::Duration join_grace = kJoinGrace)
      : state_(std::make_shared<State>(std::move(question), clock, interval)),
        join_grace_(join_grace) {
    thread_ = std::thread([state = state_] { Run(state); });
  }
  // Stops the thread: joins it if it ends within `join_grace`, else detaches it.
  ~BackgroundProbe() {
    state_->stop.Notify();
    if (state_->done.WaitForNotificationWithTimeout(join_grace_)) {
      thread_.join();
    } else {
      thread_.detach();  // stuck in the question; it ends (and frees State) when that returns
    }
  }
  BackgroundProbe(const BackgroundProbe&) = delete;
  BackgroundProbe& operator=(const BackgroundProbe&) = delete;

  // The latest answer; nullopt until the first one.
  std::optional<Answer> Latest() {
    absl::MutexLock lock(&state_->mu);
    return state_->latest;
  }

 private:
  // Shared by the object and its thread, so a detached thread never touches freed memory.
  struct State {
    State(std::function<T()> q, Clock& c, absl::Duration i)
        : question(std::move(q)), clock(&c), interval(i) {}
    std::function<T()> question;
    Clock* clock;
    absl::Duration interval;
    absl::Notification stop;
    absl::Notification done;
    absl::Mutex mu;
    std::optional<Answer> latest ABSL_GUARDED_BY(mu);
  };

  static void Run(const std::shared_ptr<State>& state) {
    while (!state->stop.HasBeenNotified()) {
      T value = state->question();
      if (state->stop.HasBeenNotified()) break;  // the clock may be gone if detached
      const absl::Time at = state->clock->Now();
      {
        absl::MutexLock lock(&state->mu);
        state->latest = Answer{std::move(value), at};
      }
      state->clock->SleepUntil(at + state->interval, &state->stop);
    }
    state->done.Notify();
  }

  std::shared_ptr<State> state_;
  absl::Duration join_grace_;
  std::thread thread_;
};

}  // namespace sequences

#endif  // SEQUENCES_LIBS_RUNTIME_BACKGROUND_PROBE_H_
