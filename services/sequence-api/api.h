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

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "libs/runtime/clock.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/email_template_commands.h"
#include "services/sequence-api/enrollment_commands.h"
#include "services/sequence-api/event_log.h"
#include "services/sequence-api/own_writes.h"
#include "services/sequence-api/queries.h"
#include "services/sequence-api/read_model.h"
#include "services/sequence-api/rpc_status.h"
#include "services/sequence-api/sequence_commands.h"
#include "services/sequence-api/tokens.h"
#include "services/sequence-api/watch.h"

namespace sequences::api {

// The facade the transport calls: one method per RPC, each handed to the part that owns its
// concern (sequence_commands.h, enrollment_commands.h, queries.h; every mutation goes through
// own_writes.h).
class Api {
 public:
  // REQUIRES: all arguments outlive the Api.
  Api(ApiOptions options, EventLog& log, ReadModel& read_model, Clock& clock,
      const TokenSigner& signer)
      : ports_{std::move(options), log, read_model, clock, signer},
        own_writes_(ports_),
        sequences_(ports_, own_writes_),
        enrollments_(ports_, own_writes_),
        email_templates_(ports_, own_writes_),
        queries_(ports_),
        watches_(ports_) {}
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  using Ctx = CallContext;
  // The call's context with the digest of its request (own_writes.h RequestDigest), for every
  // mutation: a request id already applied is answered again only for the same RPC and fields.
  // BatchEnroll digests each item as the Enroll of that item (enrollment_commands.h).
  static Ctx Digested(const Ctx& c, absl::string_view method,
                      const google::protobuf::Message& request) {
    Ctx out = c;
    out.request_digest = RequestDigest(method, request);
    return out;
  }
  // ---- sequences
  absl::StatusOr<v1::SequenceResponse> CreateSequence(const Ctx& c,
                                                      const v1::CreateSequenceRequest& r) {
    return sequences_.Create(Digested(c, "CreateSequence", r), r);
  }
  absl::StatusOr<v1::Sequence> GetSequence(const Ctx& c, const v1::GetSequenceRequest& r) {
    return queries_.GetSequence(c, r);
  }
  absl::StatusOr<v1::ListSequencesResponse> ListSequences(const Ctx& c,
                                                          const v1::ListSequencesRequest& r) {
    return queries_.ListSequences(c, r);
  }
  absl::StatusOr<v1::SequenceResponse> UpdateSequence(const Ctx& c,
                                                      const v1::UpdateSequenceRequest& r) {
    return sequences_.Update(Digested(c, "UpdateSequence", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> DeleteSequence(const Ctx& c,
                                                      const v1::DeleteSequenceRequest& r) {
    return sequences_.Delete(Digested(c, "DeleteSequence", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> SwitchAutomatedSending(
      const Ctx& c, const v1::SwitchAutomatedSendingRequest& r) {
    return sequences_.SwitchAutomatedSending(Digested(c, "SwitchAutomatedSending", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> GrantSendingConsent(
      const Ctx& c, const v1::GrantSendingConsentRequest& r) {
    return sequences_.GrantSendingConsent(Digested(c, "GrantSendingConsent", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> RevokeSendingConsent(
      const Ctx& c, const v1::RevokeSendingConsentRequest& r) {
    return sequences_.RevokeSendingConsent(Digested(c, "RevokeSendingConsent", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> PauseSequence(const Ctx& c,
                                                     const v1::PauseSequenceRequest& r) {
    return sequences_.Pause(Digested(c, "PauseSequence", r), r);
  }
  absl::StatusOr<v1::SequenceResponse> ResumeSequence(const Ctx& c,
                                                      const v1::ResumeSequenceRequest& r) {
    return sequences_.Resume(Digested(c, "ResumeSequence", r), r);
  }
  absl::StatusOr<v1::ListSequenceTemplatesResponse> ListSequenceTemplates(
      const Ctx& c, const v1::ListSequenceTemplatesRequest& r) {
    return queries_.ListSequenceTemplates(c, r);
  }
  absl::StatusOr<v1::PreviewScheduleResponse> PreviewSchedule(const Ctx& c,
                                                              const v1::PreviewScheduleRequest& r) {
    return queries_.PreviewSchedule(c, r);
  }
  absl::StatusOr<v1::SequenceStatistics> GetSequenceStatistics(
      const Ctx& c, const v1::GetSequenceStatisticsRequest& r) {
    return queries_.GetSequenceStatistics(c, r);
  }
  absl::StatusOr<v1::CompanySendingSettingsResponse> SetCompanySendingSettings(
      const Ctx& c, const v1::SetCompanySendingSettingsRequest& r) {
    return sequences_.SetCompanySendingSettings(Digested(c, "SetCompanySendingSettings", r), r);
  }
  absl::StatusOr<v1::CompanySendingSettingsResponse> GetCompanySendingSettings(
      const Ctx& c, const v1::GetCompanySendingSettingsRequest& r) {
    return queries_.GetCompanySendingSettings(c, r);
  }
  absl::StatusOr<v1::ListEnrollmentEventsResponse> ListEnrollmentEvents(
      const Ctx& c, const v1::ListEnrollmentEventsRequest& r) {
    return queries_.ListEnrollmentEvents(c, r);
  }

  // ---- email templates of the company
  absl::StatusOr<v1::EmailTemplateResponse> CreateEmailTemplate(
      const Ctx& c, const v1::CreateEmailTemplateRequest& r) {
    return email_templates_.Create(Digested(c, "CreateEmailTemplate", r), r);
  }
  absl::StatusOr<v1::EmailTemplate> GetEmailTemplate(const Ctx& c,
                                                     const v1::GetEmailTemplateRequest& r) {
    return email_templates_.Get(c, r);
  }
  absl::StatusOr<v1::ListEmailTemplatesResponse> ListEmailTemplates(
      const Ctx& c, const v1::ListEmailTemplatesRequest& r) {
    return email_templates_.List(c, r);
  }
  absl::StatusOr<v1::EmailTemplateResponse> UpdateEmailTemplate(
      const Ctx& c, const v1::UpdateEmailTemplateRequest& r) {
    return email_templates_.Update(Digested(c, "UpdateEmailTemplate", r), r);
  }
  absl::StatusOr<v1::EmailTemplateResponse> DeleteEmailTemplate(
      const Ctx& c, const v1::DeleteEmailTemplateRequest& r) {
    return email_templates_.Delete(Digested(c, "DeleteEmailTemplate", r), r);
  }

  // ---- enrollments
  absl::StatusOr<v1::EnrollmentResponse> Enroll(const Ctx& c, const v1::EnrollRequest& r) {
    return enrollments_.Enroll(Digested(c, "Enroll", r), r);
  }
  absl::StatusOr<v1::BatchEnrollResponse> BatchEnroll(const Ctx& c,
                                                      const v1::BatchEnrollRequest& r) {
    return enrollments_.BatchEnroll(c, r);
  }
  absl::StatusOr<v1::EnrollmentResponse> RemoveEnrollment(const Ctx& c,
                                                          const v1::EnrollmentActionRequest& r) {
    return enrollments_.Remove(Digested(c, "RemoveEnrollment", r), r);
  }
  absl::StatusOr<v1::EnrollmentResponse> PauseEnrollment(const Ctx& c,
                                                         const v1::EnrollmentActionRequest& r) {
    return enrollments_.Pause(Digested(c, "PauseEnrollment", r), r);
  }
  absl::StatusOr<v1::EnrollmentResponse> ResumeEnrollment(const Ctx& c,
                                                          const v1::EnrollmentActionRequest& r) {
    return enrollments_.Resume(Digested(c, "ResumeEnrollment", r), r);
  }
  absl::StatusOr<v1::EnrollmentResponse> RetryEnrollment(const Ctx& c,
                                                         const v1::EnrollmentActionRequest& r) {
    return enrollments_.Retry(Digested(c, "RetryEnrollment", r), r);
  }
  absl::StatusOr<v1::EnrollmentResponse> ReportActivityCompleted(
      const Ctx& c, const v1::ReportActivityCompletedRequest& r) {
    return enrollments_.ReportActivityCompleted(Digested(c, "ReportActivityCompleted", r), r);
  }
  absl::StatusOr<v1::Enrollment> GetEnrollment(const Ctx& c, const v1::GetEnrollmentRequest& r) {
    return queries_.GetEnrollment(c, r);
  }
  absl::StatusOr<v1::ListEnrollmentsResponse> ListEnrollments(const Ctx& c,
                                                              const v1::ListEnrollmentsRequest& r) {
    return queries_.ListEnrollments(c, r);
  }
  absl::StatusOr<v1::EnrollmentOverview> GetEnrollmentOverview(
      const Ctx& c, const v1::GetEnrollmentOverviewRequest& r) {
    return queries_.GetEnrollmentOverview(c, r);
  }
  absl::StatusOr<v1::UserEnrollmentsResponse> PauseUserEnrollments(
      const Ctx& c, const v1::UserEnrollmentsRequest& r) {
    return enrollments_.PauseUser(Digested(c, "PauseUserEnrollments", r), r);
  }
  absl::StatusOr<v1::UserEnrollmentsResponse> ResumeUserEnrollments(
      const Ctx& c, const v1::UserEnrollmentsRequest& r) {
    return enrollments_.ResumeUser(Digested(c, "ResumeUserEnrollments", r), r);
  }
  absl::StatusOr<v1::EnrollmentResponse> UpdateEnrollmentData(
      const Ctx& c, const v1::UpdateEnrollmentDataRequest& r) {
    return enrollments_.UpdateData(Digested(c, "UpdateEnrollmentData", r), r);
  }
  absl::StatusOr<v1::ItemInputResponse> ReportItemOutcome(const Ctx& c,
                                                          const v1::ReportItemOutcomeRequest& r) {
    return enrollments_.ReportItemOutcome(Digested(c, "ReportItemOutcome", r), r);
  }
  absl::StatusOr<v1::ItemInputResponse> ReportEmailReplied(const Ctx& c,
                                                           const v1::ReportEmailEventRequest& r) {
    return enrollments_.ReportEmailReplied(Digested(c, "ReportEmailReplied", r), r);
  }
  absl::StatusOr<v1::ItemInputResponse> ReportEmailBounced(const Ctx& c,
                                                           const v1::ReportEmailEventRequest& r) {
    return enrollments_.ReportEmailBounced(Digested(c, "ReportEmailBounced", r), r);
  }
  // Server streaming: the stream to read messages from (watch.h).
  absl::StatusOr<std::unique_ptr<WatchStream>> WatchEnrollments(
      const Ctx& c, const v1::WatchEnrollmentsRequest& r) {
    return watches_.Start(c, r);
  }

 private:
  const Ports ports_;
  OwnWrites own_writes_;
  SequenceCommands sequences_;
  EnrollmentCommands enrollments_;
  EmailTemplateCommands email_templates_;
  Queries queries_;
  Watches watches_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_API_H_
