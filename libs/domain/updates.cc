#include "libs/domain/updates.h"

#include "libs/domain/routing.h"

namespace sequences::domain {

std::optional<v1::EnrollmentUpdate> EnrollmentUpdateFor(const v1::Envelope& event,
                                                        const EnrollmentState& after) {
  v1::EnrollmentUpdate u;
  switch (event.payload_case()) {
    case v1::Envelope::kEnrollmentStarted:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_ENROLLED);
      break;
    case v1::Envelope::kStepExecuted:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_STEP_REACHED);
      u.set_step_id(event.step_executed().step_id());
      u.set_step_index(event.step_executed().step_index());
      break;
    case v1::Envelope::kEnrollmentPaused:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_PAUSED);
      u.set_pause_cause(event.enrollment_paused().cause());
      break;
    case v1::Envelope::kEnrollmentResumed:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_RESUMED);
      u.set_pause_cause(event.enrollment_resumed().cause());
      break;
    case v1::Envelope::kEnrollmentCompleted:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_COMPLETED);
      u.set_exit_reason(event.enrollment_completed().exit_reason());
      break;
    case v1::Envelope::kEnrollmentRemoved:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_REMOVED);
      u.set_removal_reason(event.enrollment_removed().reason());
      break;
    case v1::Envelope::kEnrollmentFailed: {
      const v1::EnrollmentFailed& f = event.enrollment_failed();
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_FAILED);
      u.set_failure_reason(f.reason());
      u.set_step_id(f.step_id());
      u.set_missing_merge_field(f.missing_merge_field());
      u.set_detail(f.detail());
      break;
    }
    case v1::Envelope::kEnrollmentRetried:
      u.set_kind(v1::ENROLLMENT_UPDATE_KIND_RETRIED);
      u.set_step_id(event.enrollment_retried().step_id());
      break;
    default:
      return std::nullopt;
  }
  const v1::EnrollmentRef* ref = ExecutorEventRef(event);
  if (ref == nullptr) return std::nullopt;
  u.set_update_id(event.event_id());
  u.set_company_id(event.company_id());
  *u.mutable_ref() = *ref;
  u.set_status(after.status);
  *u.mutable_occurred_at() = event.occurred_at();
  u.set_causation_id(event.causation_id());
  u.set_correlation_id(event.correlation_id());
  u.set_owner_id(after.owner_id);
  if (u.kind() == v1::ENROLLMENT_UPDATE_KIND_PAUSED ||
      u.kind() == v1::ENROLLMENT_UPDATE_KIND_RESUMED) {
    for (int cause : after.pause_causes) u.add_pause_causes(static_cast<v1::PauseCause>(cause));
  }
  return u;
}

}  // namespace sequences::domain
