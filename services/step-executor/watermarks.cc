#include "services/step-executor/watermarks.h"

namespace sequences::executor {

WatermarkPoller::WatermarkPoller(std::unique_ptr<kafka::Consumer> consumer, std::string topic,
                                 Clock& clock, absl::Duration interval)
    : consumer_(std::move(consumer)),
      topic_(std::move(topic)),
      clock_(clock),
      interval_(interval),
      thread_([this] { Run(); }) {}

WatermarkPoller::~WatermarkPoller() {
  stop_.Notify();
  thread_.join();
}

void WatermarkPoller::SetPartitions(std::vector<int32_t> partitions) {
  absl::MutexLock lock(&mu_);
  partitions_ = std::move(partitions);
}

WatermarkPoller::Marks WatermarkPoller::Latest() {
  absl::MutexLock lock(&mu_);
  return latest_;
}

void WatermarkPoller::Run() {
  while (!stop_.HasBeenNotified()) {
    std::vector<int32_t> partitions;
    {
      absl::MutexLock lock(&mu_);
      partitions = partitions_;
    }
    Marks marks;
    for (int32_t p : partitions) {
      auto w = consumer_->QueryWatermarks({topic_, p}, absl::Seconds(2));
      if (!w.ok()) {
        // The others would fail the same way, each after its timeout: report at once.
        marks.ok = false;
        break;
      }
      marks.offsets[p] = *w;
    }
    marks.at = clock_.Now();
    {
      absl::MutexLock lock(&mu_);
      latest_ = std::move(marks);
    }
    clock_.SleepUntil(clock_.Now() + interval_, &stop_);
  }
}

}  // namespace sequences::executor
