#include "libs/domain/stats.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/routing.h"

namespace sequences::domain {
namespace {

bool Executed(const EnrollmentState& s, const std::string& step_id) {
  return std::find(s.executed_step_ids.begin(), s.executed_step_ids.end(), step_id) !=
         s.executed_step_ids.end();
}

}  // namespace

std::vector<StatIncrement> StatIncrementsOf(const EnrollmentState& before,
                                            const v1::Envelope& event) {
  std::vector<StatIncrement> out;
  const absl::Time at = FromProto(event.occurred_at());
  if (event.has_enrollment_started()) {
    const v1::EnrollmentStarted& p = event.enrollment_started();
    if (p.ref().enrollment_id() == before.enrollment_id) return out;  // a duplicate
    out.push_back({StatCounter::kEnrolled, "", "", "", at});
    return out;
  }
  const v1::EnrollmentRef* ref = ExecutorEventRef(event);
  if (ref == nullptr || before.enrollment_id.empty() ||
      ref->enrollment_id() != before.enrollment_id) {
    return out;  // not about the current enrollment: the fold ignores it too
  }
  switch (event.payload_case()) {
    case v1::Envelope::kStepExecuted: {
      const v1::StepExecuted& p = event.step_executed();
      if (Executed(before, p.step_id())) return out;  // each step runs once per enrollment
      out.push_back({StatCounter::kReached, p.step_id(), p.variant_id(), "", at});
      switch (p.email_mode()) {
        case v1::EMAIL_MODE_AUTOMATIC:
          out.push_back({StatCounter::kEmailSent, p.step_id(), p.variant_id(), "", at});
          break;
        case v1::EMAIL_MODE_DRAFT_FOR_REVIEW:
          out.push_back({StatCounter::kEmailDrafted, p.step_id(), p.variant_id(), "", at});
          break;
        default:
          if (absl::EndsWith(p.effect_id(), "/task")) {
            out.push_back({StatCounter::kTaskCreated, p.step_id(), "", "", at});
          }
      }
      return out;
    }
    case v1::Envelope::kEmailDeferred: {
      const v1::EmailDeferred& p = event.email_deferred();
      // Once per email: one still waiting was counted when it first waited. It may be deferred
      // again (the person stage's gap, then its sender's limit) after another email of the
      // enrollment waited, so the latest deferral alone does not tell.
      if (p.email_id() == before.deferred_email_id || before.waiting_emails.count(p.email_id()) > 0)
        return out;
      // Its own step's variant: a later email step may have run before the deferral came back.
      auto variant = before.email_variant_ids.find(p.step_id());
      out.push_back({StatCounter::kDeferred, p.step_id(),
                     variant == before.email_variant_ids.end() ? "" : variant->second, "", at});
      return out;
    }
    case v1::Envelope::kEnrollmentFailed: {
      if (!before.IsActive()) return out;
      const v1::EnrollmentFailed& p = event.enrollment_failed();
      const std::string reason = v1::FailureReason_Name(p.reason());
      if (p.reason() == v1::FAILURE_REASON_BOUNCED) {
        // The mailer's bounce is about the last email sent, wherever the enrollment stands now.
        out.push_back({StatCounter::kBounced, before.last_email_step_id,
                       before.last_email_variant_id, "", at});
        out.push_back({StatCounter::kFailed, before.last_email_step_id,
                       before.last_email_variant_id, reason, at});
        return out;
      }
      out.push_back({StatCounter::kFailed, p.step_id(), "", reason, at});
      return out;
    }
    case v1::Envelope::kEnrollmentCompleted: {
      if (!before.IsActive()) return out;
      const v1::EnrollmentCompleted& p = event.enrollment_completed();
      if (p.exit_reason() == v1::EXIT_REASON_REPLIED && !before.last_email_step_id.empty()) {
        out.push_back({StatCounter::kReplied, before.last_email_step_id,
                       before.last_email_variant_id, "", at});
      }
      out.push_back({StatCounter::kExited, "", "", v1::ExitReason_Name(p.exit_reason()), at});
      return out;
    }
    case v1::Envelope::kEnrollmentRemoved: {
      if (before.status == v1::ENROLLMENT_STATUS_REMOVED) return out;
      const v1::EnrollmentRemoved& p = event.enrollment_removed();
      out.push_back({StatCounter::kExited, "", "", v1::RemovalReason_Name(p.reason()), at});
      return out;
    }
    default:
      return out;
  }
}

std::optional<StatIncrement> TaskCompletedIncrement(const v1::Envelope& input) {
  if (!input.has_activity_completed()) return std::nullopt;
  const v1::ActivityCompleted& p = input.activity_completed();
  if (p.step_id().empty() || p.enrollment_id().empty() ||
      !absl::StartsWith(p.enrollment_id(),
                        absl::StrCat(EnrollmentKey(p.item_key(), p.sequence_id()), "#")) ||
      p.task_id() != absl::StrCat(p.enrollment_id(), "/", p.step_id(), "/task")) {
    return std::nullopt;
  }
  const absl::Time at =
      p.has_completed_at() ? FromProto(p.completed_at()) : FromProto(input.occurred_at());
  return StatIncrement{StatCounter::kTaskCompleted, p.step_id(), "", "", at};
}

}  // namespace sequences::domain
