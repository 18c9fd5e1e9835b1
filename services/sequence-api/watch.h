#ifndef SEQUENCES_SERVICES_SEQUENCE_API_WATCH_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_WATCH_H_

// WatchEnrollments, the application part: checks the request (one filter, the caller's company),
// verifies a resume token, subscribes to the read model's watch hub, and serves each message:
// first the retained changes after the token (the read model's change log), then the live ones.
//
// Resume tokens are signed (tokens.h) for the caller's company and the purpose
// "watch/<parent>/<filter>", so a token of another company or another filter is INVALID_ARGUMENT
// naming resume_token. The body is a WatchCursor: per executor-events partition, the next offset
// not delivered. A message's token is the cursor just after its change, so a resumed watch
// delivers every later change exactly once (changes before the cursor are skipped whether they
// come from the change log or the hub). Changes the change log no longer retains are
// FAILED_PRECONDITION (read_model.h: watch_history).
//
// Errors of Start: INVALID_ARGUMENT (no filter, two filters, malformed fields, a bad token),
// NOT_FOUND (another company, a sequence that does not exist), FAILED_PRECONDITION (token too old),
// RESOURCE_EXHAUSTED (the company has ApiOptions::max_watches_per_company watches open).
// A stream ends with UNAVAILABLE (server shutting down) or RESOURCE_EXHAUSTED (the watcher fell
// more than the queue capacity behind).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/watch_hub.h"

namespace sequences::api {

// One open watch. Thread-compatible (one reader at a time); the subscription's waker may fire on
// any thread. Lifetime: destroying it unsubscribes.
class WatchStream {
 public:
  WatchStream(const Ports& ports, std::string company_id, std::string purpose, WatchCursor cursor,
              std::vector<WatchChange> backlog, std::shared_ptr<WatchSubscription> subscription);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // The next message when one is ready, nullopt when none is yet (the subscription's waker fires
  // when one arrives), or the status that ends the stream (UNAVAILABLE, RESOURCE_EXHAUSTED).
  absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> TryNext();
  // Blocks until a message, the end, or `deadline` (nullopt) — for callers with a thread to spare.
  absl::StatusOr<std::optional<v1::WatchEnrollmentsResponse>> Next(absl::Time deadline);
  WatchSubscription& subscription() { return *subscription_; }

 private:
  std::optional<v1::WatchEnrollmentsResponse> Deliver(WatchChange change);

  const Ports& ports_;
  const std::string company_id_;
  const std::string purpose_;
  WatchCursor cursor_;
  std::vector<WatchChange> backlog_;
  size_t backlog_next_ = 0;
  std::shared_ptr<WatchSubscription> subscription_;
};

class Watches {
 public:
  // REQUIRES: `ports` outlives this and every stream it starts.
  explicit Watches(const Ports& ports) : ports_(ports) {}
  absl::StatusOr<std::unique_ptr<WatchStream>> Start(const CallContext& ctx,
                                                     const v1::WatchEnrollmentsRequest& req);

 private:
  const Ports& ports_;
};

// The signed body of a resume token, and back (INVALID_ARGUMENT naming resume_token).
std::string EncodeWatchCursor(const WatchCursor& cursor);
[[nodiscard]] absl::StatusOr<WatchCursor> DecodeWatchCursor(absl::string_view text);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_WATCH_H_
