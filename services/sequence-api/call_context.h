#ifndef SEQUENCES_SERVICES_SEQUENCE_API_CALL_CONTEXT_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_CALL_CONTEXT_H_

// What every part of the application layer (sequence commands, enrollment commands, queries, own
// writes) shares: who calls, the options, and the ports it works through (the event log it
// appends to, the read model it decides on, the clock, the token signer).

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "services/sequence-api/event_log.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/read_model.h"
#include "services/sequence-api/tokens.h"

namespace sequences::api {

// Who calls, and until when.
struct CallContext {
  std::string company_id;
  std::string user_id;
  // The calling service's certificate identity under mutual TLS, else empty (logged).
  std::string peer_identity;
  absl::Time deadline = absl::InfiniteFuture();
  // Of a mutation: RequestDigest (own_writes.h) of its RPC and request, stamped on the events it
  // writes; a request id seen with another digest is refused. Empty: not compared.
  std::string request_digest;
};

struct ApiOptions {
  service::Topics topics;
  // Longest wait for the read model (consistency token, fresh state) within a call's deadline.
  absl::Duration max_read_wait = absl::Seconds(10);
  int max_batch_enroll = 5000;
  // Largest event the API appends (below the broker's default message.max.bytes of 1 MB).
  size_t max_record_bytes = 900 * 1024;
  // WatchEnrollments: changes queued per watch before a watcher that reads too slowly is ended
  // (RESOURCE_EXHAUSTED; it resumes from its last token).
  size_t watch_queue_capacity = 1000;
  // Open watches of one company at once; one more is RESOURCE_EXHAUSTED.
  size_t max_watches_per_company = 100;
};

// The options and ports of one Api. REQUIRES: the referenced objects outlive it.
// Thread-safety: const methods may be called concurrently (the ports are thread-safe).
struct Ports {
  ApiOptions options;
  EventLog& log;
  ReadModel& read_model;
  Clock& clock;
  const TokenSigner& signer;

  // How long a call waits for the read model: its deadline, or max_read_wait from now if sooner.
  absl::Time ReadDeadline(const CallContext& ctx) const;
  // A signed consistency token for the caller's company (empty for no positions).
  std::string ConsistencyToken(const CallContext& ctx,
                               absl::Span<const LogPosition> positions) const;
  // The token of a request already applied (its recorded positions); empty if they do not decode.
  std::string ConsistencyToken(const CallContext& ctx, const RequestRecord& seen) const;
  // Waits until the read model reached a consistency token of the caller's company (empty: OK at
  // once). A token of another company or not signed here is refused; DEADLINE_EXCEEDED when the
  // call's deadline passes first, UNAVAILABLE when max_read_wait does.
  absl::Status WaitForConsistencyToken(const CallContext& ctx, const std::string& token) const;
  // Where a page of `listing` starts: "" without a token, else what the caller's company's signed
  // `token` of that listing says (a token of another company or listing: INVALID_ARGUMENT naming
  // page_token).
  absl::StatusOr<std::string> PageStart(const CallContext& ctx, const std::string& listing,
                                        const std::string& token) const;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_CALL_CONTEXT_H_
