#include "services/step-executor/watermarks.h"

namespace sequences::executor {

WatermarkPoller::WatermarkPoller(std::unique_ptr<kafka::Consumer> consumer, std::string topic,
                                 Clock& clock, absl::Duration interval)
    : state_(std::make_shared<State>()) {
  state_->consumer = std::move(consumer);
  state_->topic = std::move(topic);
  state_->clock = &clock;
  state_->interval = interval;
  thread_ = std::thread([state = state_] { Run(state); });
}

WatermarkPoller::~WatermarkPoller() {
  state_->stop.Notify();
  if (state_->done.WaitForNotificationWithTimeout(kJoinGrace)) {
    thread_.join();
  } else {
    thread_.detach();  // stuck in librdkafka; it ends (and frees State) when that returns
  }
}

void WatermarkPoller::SetPartitions(std::vector<int32_t> partitions) {
  absl::MutexLock lock(&state_->mu);
  state_->partitions = std::move(partitions);
}

WatermarkPoller::Marks WatermarkPoller::Latest() {
  absl::MutexLock lock(&state_->mu);
  return state_->latest;
}

void WatermarkPoller::Run(const std::shared_ptr<State>& state) {
  while (!state->stop.HasBeenNotified()) {
    std::vector<int32_t> partitions;
    {
      absl::MutexLock lock(&state->mu);
      partitions = state->partitions;
    }
    Marks marks;
    for (int32_t p : partitions) {
      if (state->stop.HasBeenNotified()) break;
      auto w = state->consumer->QueryWatermarks({state->topic, p}, absl::Seconds(2));
      if (!w.ok()) {
        // The others would fail the same way, each after its timeout: report at once.
        marks.ok = false;
        break;
      }
      marks.offsets[p] = *w;
    }
    if (state->stop.HasBeenNotified()) break;  // the clock may be gone if detached
    marks.at = state->clock->Now();
    {
      absl::MutexLock lock(&state->mu);
      state->latest = std::move(marks);
    }
    state->clock->SleepUntil(state->clock->Now() + state->interval, &state->stop);
  }
  state->done.Notify();
}

}  // namespace sequences::executor
