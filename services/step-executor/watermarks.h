#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_

// The high watermarks of the owned input partitions, asked from the broker every interval on a
// thread of its own, so the loop never waits for them (the input lag in metrics and health).
//
// It has its own consumer that never fetches: a watermark request on a consumer that is fetching
// waits behind the fetch long-poll on the same broker connection (up to fetch.wait.max.ms per
// request), which on the loop thread cost ~75 ms per partition every second.
//
// librdkafka 2.0.2's watermark query can outlive its timeout by far while the broker is down (seen:
// > 20 s for a 2 s timeout), so the destructor does not wait for it without bound: it waits
// kJoinGrace, then leaves the thread to finish on its own (it owns what it uses).
//
// Thread-safety: all public methods are safe from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/clock.h"

namespace sequences::executor {

class WatermarkPoller {
 public:
  struct Marks {
    // Low and high watermark per partition, from the latest round.
    std::map<int32_t, kafka::WatermarkOffsets> offsets;
    // False if the latest round failed for a partition (the round stops there).
    bool ok = true;
    // When the latest round finished (InfinitePast: none yet).
    absl::Time at = absl::InfinitePast();
  };

  static constexpr absl::Duration kJoinGrace = absl::Seconds(3);

  // Starts the thread. `consumer` needs no group and is used only by this poller. `clock` must
  // outlive the process's threads (main's clock does).
  WatermarkPoller(std::unique_ptr<kafka::Consumer> consumer, std::string topic, Clock& clock,
                  absl::Duration interval);
  // Stops the thread: joins it if it ends within kJoinGrace, else detaches it.
  ~WatermarkPoller();

  // The partitions to ask about from the next round on.
  void SetPartitions(std::vector<int32_t> partitions);
  Marks Latest();

 private:
  // Shared by the object and its thread, so a detached thread never touches freed memory.
  struct State {
    std::unique_ptr<kafka::Consumer> consumer;
    std::string topic;
    Clock* clock;
    absl::Duration interval;
    absl::Notification stop;
    absl::Notification done;
    absl::Mutex mu;
    std::vector<int32_t> partitions ABSL_GUARDED_BY(mu);
    Marks latest ABSL_GUARDED_BY(mu);
  };
  static void Run(const std::shared_ptr<State>& state);

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_
