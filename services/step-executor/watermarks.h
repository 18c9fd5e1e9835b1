#ifndef SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_
#define SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_

// The high watermarks of the owned input partitions, asked from the broker every interval on a
// thread of its own, so the loop never waits for them (the input lag in metrics and health).
//
// It has its own consumer that never fetches: a watermark request on a consumer that is fetching
// waits behind the fetch long-poll on the same broker connection (up to fetch.wait.max.ms per
// request), which on the loop thread cost ~75 ms per partition every second.
//
// The rounds run on a BackgroundProbe (libs/runtime/background_probe.h): a round stuck in
// librdkafka while the broker is down never holds the loop or the destructor.
//
// Thread-safety: all public methods are safe from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/kafka/consumer.h"
#include "libs/runtime/background_probe.h"
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

  // Starts the thread. `consumer` needs no group and is used only by this poller. `clock` must
  // outlive the process's threads (main's clock does).
  WatermarkPoller(std::unique_ptr<kafka::Consumer> consumer, std::string topic, Clock& clock,
                  absl::Duration interval);

  // The partitions to ask about from the next round on.
  void SetPartitions(std::vector<int32_t> partitions);
  Marks Latest();

 private:
  // The partitions to ask about, shared with the probe's question (which may outlive this object).
  struct Partitions {
    absl::Mutex mu;
    std::vector<int32_t> ids ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Partitions> partitions_;
  BackgroundProbe<Marks> probe_;
};

}  // namespace sequences::executor

#endif  // SEQUENCES_SERVICES_STEP_EXECUTOR_WATERMARKS_H_
