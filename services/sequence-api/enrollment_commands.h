#ifndef SEQUENCES_SERVICES_SEQUENCE_API_ENROLLMENT_COMMANDS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_ENROLLMENT_COMMANDS_H_

// The enrollment commands of the API: enroll (one item or a batch), the actions on one enrollment
// (remove, pause, resume, retry, activity completed, merge data), the user-wide pause and resume,
// and the inputs about an item (CRM outcomes, email replies and bounces). Each is checked against
// the read model with the domain's rules (domain::CheckEnroll, the enrollment's status), appended
// to enrollment-events keyed by the item (one mutation, own_writes.h), and answered once durable
// with the enrollment as the executor's decision will leave it (the executor decides it, and may
// still reject it if another input about the enrollment arrives first).
//
// Errors: as api.h; a batch answers every item on its own (results[i].status), the call fails only
// for what concerns the whole batch (parent, size, the sequence).
// Thread-safety: all methods may be called concurrently.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/timestamp.pb.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/events.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/own_writes.h"

namespace sequences::api {

class EnrollmentCommands {
 public:
  // REQUIRES: both outlive this.
  EnrollmentCommands(const Ports& ports, OwnWrites& own_writes)
      : ports_(ports), own_writes_(own_writes) {}

  using Ctx = CallContext;
  absl::StatusOr<v1::EnrollmentResponse> Enroll(const Ctx&, const v1::EnrollRequest&);
  absl::StatusOr<v1::BatchEnrollResponse> BatchEnroll(const Ctx&, const v1::BatchEnrollRequest&);
  absl::StatusOr<v1::EnrollmentResponse> Remove(const Ctx&, const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> Pause(const Ctx&, const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> Resume(const Ctx&, const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> Retry(const Ctx&, const v1::EnrollmentActionRequest&);
  absl::StatusOr<v1::EnrollmentResponse> ReportActivityCompleted(
      const Ctx&, const v1::ReportActivityCompletedRequest&);
  absl::StatusOr<v1::EnrollmentResponse> UpdateData(const Ctx&,
                                                    const v1::UpdateEnrollmentDataRequest&);
  // Every enrollment the user owns in the caller's company (one record per partition of
  // enrollment-events, so every executor instance sees it).
  absl::StatusOr<v1::UserEnrollmentsResponse> PauseUser(const Ctx&,
                                                        const v1::UserEnrollmentsRequest&);
  absl::StatusOr<v1::UserEnrollmentsResponse> ResumeUser(const Ctx&,
                                                         const v1::UserEnrollmentsRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportItemOutcome(const Ctx&,
                                                          const v1::ReportItemOutcomeRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportEmailReplied(const Ctx&,
                                                           const v1::ReportEmailEventRequest&);
  absl::StatusOr<v1::ItemInputResponse> ReportEmailBounced(const Ctx&,
                                                           const v1::ReportEmailEventRequest&);

 private:
  enum class Action { kRemove, kPause, kResume, kRetry, kActivityCompleted, kUpdateData };
  // One action on a named enrollment of the caller's company.
  absl::StatusOr<v1::EnrollmentResponse> RunAction(
      const Ctx& ctx, Action action, const std::string& name, const std::string& request_id,
      const std::string& note, const std::string& task_id,
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

  // Appends one input about an item to enrollment-events, keyed by the item (publisher contract).
  absl::StatusOr<std::vector<LogPosition>> AppendInput(OwnWrites::Mutation& m,
                                                       const std::string& item_key,
                                                       const v1::Envelope& input);

  const Ports& ports_;
  OwnWrites& own_writes_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_ENROLLMENT_COMMANDS_H_
