#include "services/step-executor/watermarks.h"

#include <utility>

namespace sequences::executor {
namespace {

// One round: the watermarks of `partitions`, in order, until the first that fails (the others
// would fail the same way, each after its timeout).
WatermarkPoller::Marks AskRound(kafka::Consumer& consumer, const std::string& topic,
                                const std::vector<int32_t>& partitions) {
  WatermarkPoller::Marks marks;
  for (int32_t p : partitions) {
    auto w = consumer.QueryWatermarks({topic, p}, absl::Seconds(2));
    if (!w.ok()) {
      marks.ok = false;
      break;
    }
    marks.offsets[p] = *w;
  }
  return marks;
}

}  // namespace

WatermarkPoller::WatermarkPoller(std::unique_ptr<kafka::Consumer> consumer, std::string topic,
                                 Clock& clock, absl::Duration interval)
    : partitions_(std::make_shared<Partitions>()),
      probe_(
          [partitions = partitions_,
           consumer = std::shared_ptr<kafka::Consumer>(std::move(consumer)),
           topic = std::move(topic)] {
            std::vector<int32_t> ids;
            {
              absl::MutexLock lock(&partitions->mu);
              ids = partitions->ids;
            }
            return AskRound(*consumer, topic, ids);
          },
          clock, interval) {}

void WatermarkPoller::SetPartitions(std::vector<int32_t> partitions) {
  absl::MutexLock lock(&partitions_->mu);
  partitions_->ids = std::move(partitions);
}

WatermarkPoller::Marks WatermarkPoller::Latest() {
  std::optional<BackgroundProbe<Marks>::Answer> answer = probe_.Latest();
  if (!answer.has_value()) return Marks{};
  Marks marks = std::move(answer->value);
  marks.at = answer->at;
  return marks;
}

}  // namespace sequences::executor
