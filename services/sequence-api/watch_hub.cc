#include "services/sequence-api/watch_hub.h"

#include <algorithm>
#include <utility>

namespace sequences::api {

bool WatchFilter::Matches(const v1::EnrollmentUpdate& u) const {
  if (u.company_id() != company_id) return false;
  if (!sequence_id.empty()) return u.ref().sequence_id() == sequence_id;
  if (!item_key.empty()) return u.ref().item_key() == item_key;
  if (!owner_id.empty()) return u.owner_id() == owner_id;
  return false;
}

std::optional<WatchChange> WatchSubscription::TryPop() {
  absl::MutexLock lock(&mu_);
  if (queue_.empty()) return std::nullopt;
  WatchChange c = std::move(queue_.front());
  queue_.pop_front();
  return c;
}

WatchSubscription::End WatchSubscription::end() {
  absl::MutexLock lock(&mu_);
  return end_;
}

bool WatchSubscription::Wait(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || end_ != End::kNone;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
}

void WatchSubscription::SetWaker(std::function<void()> wake) {
  absl::MutexLock lock(&waker_mu_);
  waker_ = std::move(wake);
}

void WatchSubscription::ClearWaker() {
  absl::MutexLock lock(&waker_mu_);  // waits for a running call (Wake holds the lock)
  waker_ = nullptr;
}

void WatchSubscription::Wake() {
  absl::MutexLock lock(&waker_mu_);
  if (waker_) waker_();
}

bool WatchSubscription::Offer(const WatchChange& change) {
  absl::MutexLock lock(&mu_);
  if (end_ != End::kNone) return false;
  if (queue_.size() >= capacity_) {
    // Too slow: drop what is queued and end; the watcher resumes from its last token.
    queue_.clear();
    end_ = End::kOverflow;
    return false;
  }
  queue_.push_back(change);
  return true;
}

void WatchSubscription::Finish(End why) {
  absl::MutexLock lock(&mu_);
  if (end_ != End::kNone) return;
  queue_.clear();
  end_ = why;
}

std::shared_ptr<WatchSubscription> WatchHub::Subscribe(WatchFilter filter, size_t capacity,
                                                       WatchCursor* published) {
  auto sub = std::make_shared<WatchSubscription>(std::move(filter), std::max<size_t>(capacity, 1));
  absl::MutexLock lock(&mu_);
  *published = published_;
  if (closed_) {
    sub->Finish(WatchSubscription::End::kClosed);
  } else {
    subscriptions_.push_back(sub);
  }
  return sub;
}

void WatchHub::Unsubscribe(const std::shared_ptr<WatchSubscription>& subscription) {
  absl::MutexLock lock(&mu_);
  subscriptions_.erase(std::remove(subscriptions_.begin(), subscriptions_.end(), subscription),
                       subscriptions_.end());
}

void WatchHub::Publish(const std::vector<WatchChange>& changes, const WatchCursor& reached) {
  std::vector<std::shared_ptr<WatchSubscription>> woken;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [partition, next] : reached) {
      int64_t& p = published_[partition];
      p = std::max(p, next);
    }
    if (changes.empty()) return;
    std::vector<std::shared_ptr<WatchSubscription>> kept;
    for (std::shared_ptr<WatchSubscription>& sub : subscriptions_) {
      bool offered = false;
      bool open = true;
      for (const WatchChange& c : changes) {
        if (!sub->filter().Matches(c.update)) continue;
        offered = true;
        if (!sub->Offer(c)) {
          open = false;
          break;
        }
      }
      if (offered) woken.push_back(sub);
      // An overflowed subscription gets nothing more: leave it out.
      if (open) kept.push_back(std::move(sub));
    }
    subscriptions_ = std::move(kept);
  }
  for (const std::shared_ptr<WatchSubscription>& sub : woken) sub->Wake();
}

void WatchHub::Seed(const WatchCursor& reached) {
  absl::MutexLock lock(&mu_);
  for (const auto& [partition, next] : reached) {
    int64_t& p = published_[partition];
    p = std::max(p, next);
  }
}

void WatchHub::Close() {
  std::vector<std::shared_ptr<WatchSubscription>> ended;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    ended.swap(subscriptions_);
  }
  for (const std::shared_ptr<WatchSubscription>& sub : ended) {
    sub->Finish(WatchSubscription::End::kClosed);
    sub->Wake();
  }
}

size_t WatchHub::subscribers() {
  absl::MutexLock lock(&mu_);
  return subscriptions_.size();
}

size_t WatchHub::subscribers(const std::string& company_id) {
  absl::MutexLock lock(&mu_);
  return static_cast<size_t>(std::count_if(subscriptions_.begin(), subscriptions_.end(),
                                           [&](const std::shared_ptr<WatchSubscription>& s) {
                                             return s->filter().company_id == company_id;
                                           }));
}

}  // namespace sequences::api
