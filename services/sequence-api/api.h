#ifndef SEQUENCES_SERVICES_SEQUENCE_API_API_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_API_H_

// The application layer of the sequence API: one method per RPC, free of gRPC types. The gRPC
// handlers (grpc_services.h) authenticate, call these, and map the absl::Status to a gRPC status.
//
// Commands are checked with the domain against the read model, appended to the event log, and
// answered only once the log acknowledged them (an OK answer means durable). Queries read the
// read model, after waiting for a consistency token if one is passed.
//
// Idempotency: every mutation carries a request id. A request id the read model has already seen
// for the same resource is answered with the current resource and the first write's token,
// without writing again. Commands on one sequence (or one item in a sequence), and commands that
// carry the same request id, are serialized in this process, and each first waits until the read
// model has applied this process's earlier writes about them, so it decides on fresh state: 50
// concurrent retries of one call write once.
//
// Tokens handed out (page, consistency) are signed and bound to the caller's company (tokens.h).
//
// Errors (canonical codes): INVALID_ARGUMENT with google.rpc.BadRequest payload (field paths of
// the API request), NOT_FOUND (also for resources of another company), ALREADY_EXISTS,
// FAILED_PRECONDITION, ABORTED (expected_version mismatch), PERMISSION_DENIED, UNAVAILABLE (the
// write is not durable, or the read model is behind), DEADLINE_EXCEEDED.
//
// Thread-safety: all methods may be called concurrently.

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/rpc/status.pb.h"
#include "libs/runtime/clock.h"
#include "libs/service/topics.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/event_log.h"
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
};

struct ApiOptions {
  service::Topics topics;
  // Longest wait for the read model (consistency token, fresh state) within a call's deadline.
  absl::Duration max_read_wait = absl::Seconds(10);
  int max_batch_enroll = 5000;
  // Largest event the API appends (below the broker's default message.max.bytes of 1 MB).
  size_t max_record_bytes = 900 * 1024;
};

class Api {
 public:
  // REQUIRES: all arguments outlive the Api.
  Api(ApiOptions options, EventLog& log, ReadModel& read_model, Clock& clock,
      const TokenSigner& signer)
      : options_(std::move(options)),
        log_(log),
        read_model_(read_model),
        clock_(clock),
        signer_(signer) {}

  using Ctx = CallContext;
  absl::StatusOr<v1::SequenceResponse> CreateSequence(const Ctx&, const v1::CreateSequenceRequest&);
  absl::StatusOr<v1::Sequence> GetSequence(const Ctx&, const v1::GetSequenceRequest&);
  absl::StatusOr<v1::ListSequencesResponse> ListSequences(const Ctx&,
                                                          const v1::ListSequencesRequest&);
  absl::StatusOr<v1::SequenceResponse> UpdateSequence(const Ctx&, const v1::UpdateSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> DeleteSequence(const Ctx&, const v1::DeleteSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> SwitchAutomatedSending(
      const Ctx&, const v1::SwitchAutomatedSendingRequest&);
  absl::StatusOr<v1::SequenceResponse> GrantSendingConsent(const Ctx&,
                                                           const v1::GrantSendingConsentRequest&);
  absl::StatusOr<v1::SequenceResponse> RevokeSendingConsent(const Ctx&,
                                                            const v1::RevokeSendingConsentRequest&);
  absl::StatusOr<v1::SequenceResponse> PauseSequence(const Ctx&, const v1::PauseSequenceRequest&);
  absl::StatusOr<v1::SequenceResponse> ResumeSequence(const Ctx&, const v1::ResumeSequenceRequest&);
  absl::StatusOr<v1::ListSequenceTemplatesResponse> ListSequenceTemplates(
      const Ctx&, const v1::ListSequenceTemplatesRequest&);
  absl::StatusOr<v1::PreviewScheduleResponse> PreviewSchedule(const Ctx&,
                                                              const v1::PreviewScheduleRequest&);

  absl::StatusOr<v1::EnrollmentResponse> Enroll(const Ctx&, const v1::EnrollRequest&);
  absl::StatusOr<v1::BatchEnrollResponse> BatchEnroll(const Ctx&, const v1::BatchEnrollRequest&);
  absl::StatusOr<v1::EnrollmentResponse> RemoveEnrollment(const Ctx&,
                                                          const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> PauseEnrollment(const Ctx&,
                                                         const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> ResumeEnrollment(const Ctx&,
                                                          const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> RetryEnrollment(const Ctx&,
                                                         const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> ReportActivityCompleted(
      const Ctx&, const v1::ReportActivityCompletedRequest&);
  absl::StatusOr<v1::Enrollment> GetEnrollment(const Ctx&, const v1::GetEnrollmentRequest&);
  absl::StatusOr<v1::ListEnrollmentsResponse> ListEnrollments(const Ctx&,
                                                              const v1::ListEnrollmentsRequest&);
  absl::StatusOr<v1::EnrollmentOverview> GetEnrollmentOverview(
      const Ctx&, const v1::GetEnrollmentOverviewRequest&);
  absl::StatusOr<v1::UserEnrollmentsResponse> PauseUserEnrollments(
      const Ctx&, const v1::UserEnrollmentsRequest&);
  absl::StatusOr<v1::UserEnrollmentsResponse> ResumeUserEnrollments(
      const Ctx&, const v1::UserEnrollmentsRequest&);
  absl::StatusOr<v1::EnrollmentResponse> UpdateEnrollmentData(
      const Ctx&, const v1::UpdateEnrollmentDataRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportItemOutcome(const Ctx&,
                                                          const v1::ReportItemOutcomeRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportEmailReplied(const Ctx&,
                                                           const v1::ReportEmailEventRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportEmailBounced(const Ctx&,
                                                           const v1::ReportEmailEventRequest&);

 private:
  enum class EnrollmentAction { kRemove, kPause, kResume, kRetry, kActivityCompleted, kUpdateData };

  // Fills what a command takes from the current state, under the sequence's lock.
  using CompleteCommands =
      std::function<void(const domain::SequenceState&, std::vector<v1::SequenceCommand>&)>;
  // Runs one sequence command (create included) and answers with the sequence after it.
  absl::StatusOr<v1::SequenceResponse> RunSequenceCommands(
      const Ctx& ctx, const std::string& resource_field, const std::string& sequence_id,
      const std::string& request_id, std::vector<v1::SequenceCommand> commands,
      const std::vector<std::pair<std::string, std::string>>& path_map,
      const CompleteCommands& complete = {});
  absl::StatusOr<v1::EnrollmentResponse> RunEnrollmentAction(
      const Ctx& ctx, EnrollmentAction action, const std::string& name,
      const std::string& request_id, const std::string& note, const std::string& task_id,
      const google::protobuf::Timestamp* complete_time,
      const v1::UpdateEnrollmentDataRequest* data = nullptr);
  absl::StatusOr<v1::UserEnrollmentsResponse> UserEnrollments(const Ctx& ctx, bool pause,
                                                              const v1::UserEnrollmentsRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportEmailEvent(const Ctx& ctx, bool bounced,
                                                         const v1::ReportEmailEventRequest& req);
  // Appends one input about an item of the caller's company (`input` carries only the payload),
  // keyed by the item, idempotent by request id: for every enrollment of the item when
  // `sequence_id` is empty, else for its enrollment in that sequence (NOT_FOUND unless the
  // sequence is the caller's).
  absl::StatusOr<v1::ItemInputResponse> AppendItemInput(const Ctx& ctx, const std::string& item_key,
                                                        const std::string& sequence_id,
                                                        const std::string& request_id,
                                                        const v1::Envelope& input);

  // The sequence of the caller's company, or NOT_FOUND.
  // One enrollment key as a mutation sees it. REQUIRES: the key's stripe is held. Waits for this
  // process's own writes about the key and its sequence, then loads the key's record; if
  // `request_id` was already decided, `repeated` is the answer to give again (nothing is written).
  // `request_id_field` names the field for the "used for another request" refusal.
  struct EnrollmentLookup {
    std::optional<EnrollmentRecord> record;
    std::optional<v1::EnrollmentResponse> repeated;
  };
  absl::StatusOr<EnrollmentLookup> LookupEnrollmentForMutation(const Ctx& ctx,
                                                               const std::string& item_key,
                                                               const std::string& sequence_id,
                                                               const std::string& request_id,
                                                               const std::string& resource,
                                                               const std::string& request_id_field);
  absl::StatusOr<domain::SequenceState> LoadOwnSequence(const Ctx& ctx,
                                                        const std::string& sequence_id);
  // Waits for a consistency token (queries).
  absl::Status WaitForToken(const Ctx& ctx, const std::string& token);
  // Waits until the read model has applied this process's latest writes to these consistency
  // keys (a sequence id, an enrollment key, a user resource): a decision about a key sees every
  // earlier write this process made about it, without waiting for unrelated writes.
  absl::Status WaitForOwnWrites(const Ctx& ctx, const std::vector<std::string>& keys);
  // Remembers that this process wrote `position` about `key`.
  void NoteOwnWriteLocked(const std::string& key, const LogPosition& position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(own_mu_);
  // Appends each record (refusing one larger than max_record_bytes, or one readers could not
  // decode, before anything is written), remembering each written position under the consistency
  // keys of its record. Results in record order.
  std::vector<absl::StatusOr<LogPosition>> AppendEach(
      const Ctx& ctx, const std::vector<kafka::Record>& records,
      const std::vector<std::vector<std::string>>& keys_of_record);
  // AppendEach with the same keys for every record; the first error if any record failed.
  absl::StatusOr<std::vector<LogPosition>> Append(const Ctx& ctx,
                                                  const std::vector<std::string>& keys,
                                                  const std::vector<kafka::Record>& records);
  absl::Time ReadDeadline(const Ctx& ctx);
  // OK if the read model kept these appended sequence events (records[i] is events[i]) as their
  // versions; ABORTED if another writer's events of the same versions came first (the caller got
  // no OK, so nothing acknowledged is lost); UNAVAILABLE if the read model did not confirm in time.
  absl::Status CheckAppendsWon(const Ctx& ctx, const std::string& sequence_id,
                               const std::vector<v1::Envelope>& events,
                               const std::vector<kafka::Record>& records,
                               const std::vector<LogPosition>& positions);
  // The consistency key of a request id: a mutation locks and waits for it as for its resource,
  // so one request id used by concurrent calls (for the same or different resources) is decided
  // once.
  static std::string RequestKey(const Ctx& ctx, const std::string& request_id);
  // A signed consistency token for the caller's company (empty for no positions).
  std::string ConsistencyToken(const Ctx& ctx, absl::Span<const LogPosition> positions) const;
  std::string ConsistencyToken(const Ctx& ctx, const RequestRecord& seen) const;

  // Holds the stripes of a set of consistency keys for one mutation (taken in stripe order).
  class StripeLocks {
   public:
    StripeLocks(Api& api, const std::vector<std::string>& keys);
    ~StripeLocks();
    StripeLocks(const StripeLocks&) = delete;
    StripeLocks& operator=(const StripeLocks&) = delete;

   private:
    std::vector<absl::Mutex*> locked_;
  };

  const ApiOptions options_;
  EventLog& log_;
  ReadModel& read_model_;
  Clock& clock_;
  const TokenSigner& signer_;

  std::array<absl::Mutex, 64> stripes_;
  absl::Mutex own_mu_;
  // Latest positions this process wrote per consistency key (one per topic/partition). Entries the
  // read model has applied are pruned when the map grows.
  absl::flat_hash_map<std::string, std::vector<LogPosition>> own_writes_ ABSL_GUARDED_BY(own_mu_);
};

// Type URL of the google.rpc.RetryInfo payload a RESOURCE_EXHAUSTED status may carry.
inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

// The one mapping of an absl::Status to the rich error model: code, message, and the
// google.rpc.BadRequest / RetryInfo payloads as details (gRPC trailers, batch item results).
google::rpc::Status ToRpcStatus(const absl::Status& status);

// Field-violation paths of `status` rewritten by the first matching (from-prefix, to-prefix).
absl::Status RemapFieldPaths(const absl::Status& status,
                             const std::vector<std::pair<std::string, std::string>>& map);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_API_H_
