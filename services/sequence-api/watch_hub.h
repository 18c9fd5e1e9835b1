#ifndef SEQUENCES_SERVICES_SEQUENCE_API_WATCH_HUB_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_WATCH_HUB_H_

// The in-process hub behind WatchEnrollments: the read model publishes the enrollment status
// changes of every batch it folds (after the batch is in the store); each watcher holds a
// subscription with a bounded queue of the changes its filter matches.
//
// Positions: a change is identified by the executor-events record it was folded from (partition,
// offset). A WatchCursor holds, per executor-events partition, the next offset a watcher has not
// seen; records of one enrollment are on one partition, so per-partition order is the order of
// each enrollment's changes.
//
// Never blocks the publisher: Publish appends to each matching queue under short mutexes; a queue
// already holding `capacity` changes is dropped and its subscription ends (overflow), so a slow
// watcher costs bounded memory and resumes from its last token. Wakers run on the publishing
// thread after the hub's lock is released: they must only schedule work (no IO, no waiting).
//
// Thread-safety: every method may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sequences/v1/enrollment_updates.pb.h"

namespace sequences::api {

// Per executor-events partition: the next offset not yet seen (a partition not named: 0).
using WatchCursor = std::map<int32_t, int64_t>;

// Which changes a watcher follows: those of `company_id` and exactly one of the others.
struct WatchFilter {
  std::string company_id;
  std::string sequence_id;
  std::string item_key;  // "company/entity/item"
  std::string owner_id;
  bool Matches(const v1::EnrollmentUpdate& update) const;
};

// One status change and where it was folded from.
struct WatchChange {
  int32_t partition = 0;
  int64_t offset = 0;
  v1::EnrollmentUpdate update;
};

// One watcher's queue. Created by WatchHub::Subscribe.
class WatchSubscription {
 public:
  enum class End {
    kNone,      // open
    kOverflow,  // the queue overflowed: its changes were dropped
    kClosed,    // the hub closed (server shutdown)
  };
  WatchSubscription(WatchFilter filter, size_t capacity)
      : filter_(std::move(filter)), capacity_(capacity) {}

  const WatchFilter& filter() const { return filter_; }
  // The oldest queued change, or nullopt when the queue is empty (or the subscription ended).
  std::optional<WatchChange> TryPop();
  // Why the subscription ended; kNone while it is open.
  End end();
  // Waits until a change is queued or the subscription ends (true), or until `deadline`.
  bool Wait(absl::Time deadline);
  // `wake` is called (on the publishing thread) whenever a change is queued or the subscription
  // ends. ClearWaker returns once no call of it runs any more, and it is not called again.
  void SetWaker(std::function<void()> wake);
  void ClearWaker();

 private:
  friend class WatchHub;
  // Queues `change` (the hub's Publish); false when the subscription ended (or ends now).
  bool Offer(const WatchChange& change);
  void Finish(End why);
  void Wake();

  const WatchFilter filter_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<WatchChange> queue_ ABSL_GUARDED_BY(mu_);
  End end_ ABSL_GUARDED_BY(mu_) = End::kNone;
  absl::Mutex waker_mu_;
  std::function<void()> waker_ ABSL_GUARDED_BY(waker_mu_);
};

class WatchHub {
 public:
  WatchHub() = default;
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Registers a watcher. *published receives the positions published so far: every change at or
  // after them reaches the subscription; every change before them is in the read model's store.
  // After Close, the subscription is returned already ended (kClosed).
  std::shared_ptr<WatchSubscription> Subscribe(WatchFilter filter, size_t capacity,
                                               WatchCursor* published);
  void Unsubscribe(const std::shared_ptr<WatchSubscription>& subscription);
  // The read model, after a batch is durable in its store: the batch's changes in fold order and
  // the positions the batch reached (next offsets).
  void Publish(const std::vector<WatchChange>& changes, const WatchCursor& reached);
  // Positions already in the store when the hub starts (the read model's applied offsets).
  void Seed(const WatchCursor& reached);
  // Ends every subscription (kClosed) and refuses new ones: the server is shutting down.
  void Close();
  size_t subscribers();
  // Open subscriptions of one company.
  size_t subscribers(const std::string& company_id);

 private:
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  WatchCursor published_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<WatchSubscription>> subscriptions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_WATCH_HUB_H_
