#ifndef SEQUENCES_SERVICES_SEQUENCE_API_QUERIES_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_QUERIES_H_

// The queries of the API: sequences, templates, schedule previews, enrollments and their overview,
// read from the read model. A consistency token (from a command's answer) is waited for first, so
// a caller reads its own writes; without one a query answers from the read model as it is.
//
// Page tokens are signed and bound to the caller's company and to the listing with its filters
// (tokens.h): a token from another company or another listing is INVALID_ARGUMENT.
//
// Errors: as api.h (UNAVAILABLE / DEADLINE_EXCEEDED when the read model does not reach a token).
// Thread-safety: all methods may be called concurrently.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sequences/v1/enrollment_service.pb.h"
#include "sequences/v1/sequence_service.pb.h"
#include "services/sequence-api/call_context.h"

namespace sequences::api {

class Queries {
 public:
  // REQUIRES: `ports` outlives this.
  explicit Queries(const Ports& ports) : ports_(ports) {}

  using Ctx = CallContext;
  absl::StatusOr<v1::Sequence> GetSequence(const Ctx&, const v1::GetSequenceRequest&);
  absl::StatusOr<v1::ListSequencesResponse> ListSequences(const Ctx&,
                                                          const v1::ListSequencesRequest&);
  absl::StatusOr<v1::ListSequenceTemplatesResponse> ListSequenceTemplates(
      const Ctx&, const v1::ListSequenceTemplatesRequest&);
  absl::StatusOr<v1::PreviewScheduleResponse> PreviewSchedule(const Ctx&,
                                                              const v1::PreviewScheduleRequest&);
  absl::StatusOr<v1::Enrollment> GetEnrollment(const Ctx&, const v1::GetEnrollmentRequest&);
  absl::StatusOr<v1::ListEnrollmentsResponse> ListEnrollments(const Ctx&,
                                                              const v1::ListEnrollmentsRequest&);
  absl::StatusOr<v1::EnrollmentOverview> GetEnrollmentOverview(
      const Ctx&, const v1::GetEnrollmentOverviewRequest&);
  // Per-step and per-variant counters over all time or one UTC day ("YYYY-MM-DD"; another
  // spelling is INVALID_ARGUMENT naming `day`).
  absl::StatusOr<v1::SequenceStatistics> GetSequenceStatistics(
      const Ctx&, const v1::GetSequenceStatisticsRequest&);
  // The company's sending settings in force (the defaults when never set: version 0).
  absl::StatusOr<v1::CompanySendingSettingsResponse> GetCompanySendingSettings(
      const Ctx&, const v1::GetCompanySendingSettingsRequest&);
  // An enrollment's history (every executor event of the item in the sequence), paged.
  absl::StatusOr<v1::ListEnrollmentEventsResponse> ListEnrollmentEvents(
      const Ctx&, const v1::ListEnrollmentEventsRequest&);

 private:
  const Ports& ports_;
};

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_QUERIES_H_
