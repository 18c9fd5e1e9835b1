#include "libs/domain/history.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "libs/domain/envelope.h"

namespace sequences::domain {
namespace {

// "FAILURE_REASON_CONSENT_MISSING" -> "consent_missing".
std::string Reason(const std::string& enum_name, absl::string_view prefix) {
  std::string s = enum_name;
  if (absl::StartsWith(s, prefix)) s = s.substr(prefix.size());
  return absl::AsciiStrToLower(s);
}

std::string At(const google::protobuf::Timestamp& t) { return HistoryTime(FromProto(t)); }

std::string By(const std::string& user) { return user.empty() ? "" : absl::StrCat(" by ", user); }

}  // namespace

std::string HistoryTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string DescribeExecutorEvent(const v1::Envelope& e) {
  switch (e.payload_case()) {
    case v1::Envelope::kEnrollmentStarted: {
      const v1::EnrollmentStarted& p = e.enrollment_started();
      std::string s = absl::StrCat("enrolled (sequence version ", p.sequence_version(),
                                   ", time zone ", p.time_zone(), ")", By(p.requested_by()));
      if (!p.first_step_id().empty()) {
        absl::StrAppend(&s, "; first step ", p.first_step_id(), " due ", At(p.first_due_at()));
      }
      return s;
    }
    case v1::Envelope::kEnrollmentRejected: {
      const v1::EnrollmentRejected& p = e.enrollment_rejected();
      return absl::StrCat("enroll request ", p.request_id(), " rejected: ",
                          Reason(v1::RejectionReason_Name(p.reason()), "REJECTION_REASON_"),
                          p.detail().empty() ? "" : absl::StrCat(" (", p.detail(), ")"));
    }
    case v1::Envelope::kStepExecuted: {
      const v1::StepExecuted& p = e.step_executed();
      std::string s = absl::StrCat("step ", p.step_id(), " ran (due ", At(p.due_at()), ")");
      if (absl::EndsWith(p.effect_id(), "/task")) absl::StrAppend(&s, ": task created");
      if (p.email_mode() == v1::EMAIL_MODE_AUTOMATIC) absl::StrAppend(&s, ": email sent");
      if (p.email_mode() == v1::EMAIL_MODE_DRAFT_FOR_REVIEW) absl::StrAppend(&s, ": draft created");
      if (!p.variant_id().empty()) absl::StrAppend(&s, " (variant ", p.variant_id(), ")");
      if (!p.passed_step_ids().empty()) {
        absl::StrAppend(&s, "; passed without running: ", absl::StrJoin(p.passed_step_ids(), ", "));
      }
      if (!p.next_step_id().empty()) {
        absl::StrAppend(&s, "; next step ", p.next_step_id(), " due ", At(p.next_due_at()));
      }
      return s;
    }
    case v1::Envelope::kWaitingForActivity:
      return absl::StrCat("waiting for task ", e.waiting_for_activity().task_id(),
                          " to be completed before the next step");
    case v1::Envelope::kStepScheduled: {
      const v1::StepScheduled& p = e.step_scheduled();
      return absl::StrCat("step ", p.step_id(), " scheduled for ", At(p.due_at()),
                          " (the sequence or the enrollment changed)");
    }
    case v1::Envelope::kEnrollmentPaused: {
      const v1::EnrollmentPaused& p = e.enrollment_paused();
      return absl::StrCat("paused by ", Reason(v1::PauseCause_Name(p.cause()), "PAUSE_CAUSE_"),
                          By(p.paused_by()), " at ", At(p.paused_at()));
    }
    case v1::Envelope::kEnrollmentResumed: {
      const v1::EnrollmentResumed& p = e.enrollment_resumed();
      std::string s = absl::StrCat(
          "resumed (", Reason(v1::PauseCause_Name(p.cause()), "PAUSE_CAUSE_"), ")",
          By(p.resumed_by()), " after ", absl::FormatDuration(FromProtoDuration(p.paused_for())));
      if (!p.next_step_id().empty()) {
        absl::StrAppend(&s, "; next step ", p.next_step_id(), " due ", At(p.next_due_at()));
      }
      return s;
    }
    case v1::Envelope::kEnrollmentCompleted:
      return absl::StrCat(
          "completed: ",
          Reason(v1::ExitReason_Name(e.enrollment_completed().exit_reason()), "EXIT_REASON_"));
    case v1::Envelope::kEnrollmentFailed: {
      const v1::EnrollmentFailed& p = e.enrollment_failed();
      std::string s =
          absl::StrCat("failed", p.step_id().empty() ? "" : " at step ", p.step_id(), ": ",
                       Reason(v1::FailureReason_Name(p.reason()), "FAILURE_REASON_"));
      if (!p.missing_merge_field().empty()) absl::StrAppend(&s, " ", p.missing_merge_field());
      if (!p.detail().empty()) absl::StrAppend(&s, " (", p.detail(), ")");
      return s;
    }
    case v1::Envelope::kEnrollmentRetried:
      return absl::StrCat("retried from step ", e.enrollment_retried().step_id(),
                          By(e.enrollment_retried().requested_by()), ", due ",
                          At(e.enrollment_retried().due_at()));
    case v1::Envelope::kEnrollmentRemoved:
      return absl::StrCat(
          "removed: ",
          Reason(v1::RemovalReason_Name(e.enrollment_removed().reason()), "REMOVAL_REASON_"),
          By(e.enrollment_removed().removed_by()));
    case v1::Envelope::kEmailDeferred: {
      const v1::EmailDeferred& p = e.email_deferred();
      std::string s = absl::StrCat("email of step ", p.step_id(), " deferred: ", p.reason());
      if (!p.detail().empty())
        absl::StrAppend(&s, " (", p.detail(), " at ", At(e.occurred_at()), ")");
      absl::StrAppend(&s, "; sends at ", At(p.deferred_until()), " at the earliest");
      return s;
    }
    case v1::Envelope::kEmailReleased:
      return absl::StrCat("email of step ", e.email_released().step_id(), " sent at ",
                          At(e.email_released().sent_at()), " (it was deferred)");
    case v1::Envelope::kEmailCancelled: {
      const v1::EmailCancelled& p = e.email_cancelled();
      if (p.reason().empty()) {
        return absl::StrCat("queued email of step ", p.step_id(), " cancelled: enrollment ended");
      }
      return absl::StrCat("queued email of step ", p.step_id(), " withheld at sending (",
                          p.reason(), "): ", p.detail());
    }
    case v1::Envelope::kEnrollmentMergeDataUpdated: {
      const v1::EnrollmentMergeDataUpdated& p = e.enrollment_merge_data_updated();
      std::string s = "merge data updated";
      if (p.merge_data_size() > 0) {
        std::vector<std::string> keys;
        for (const auto& [k, v] : p.merge_data()) keys.push_back(k);
        std::sort(keys.begin(), keys.end());
        absl::StrAppend(&s, ": ", absl::StrJoin(keys, ", "));
      }
      if (p.has_recipient()) absl::StrAppend(&s, "; new recipient");
      return s;
    }
    default: {
      const google::protobuf::FieldDescriptor* f =
          v1::Envelope::descriptor()->FindFieldByNumber(static_cast<int>(e.payload_case()));
      return f != nullptr ? f->name() : "unknown";
    }
  }
}

}  // namespace sequences::domain
