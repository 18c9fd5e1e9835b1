#include "libs/domain/routing.h"

#include "absl/strings/str_cat.h"
#include "libs/domain/send_limits.h"

namespace sequences::domain {
namespace {

using Scope = InputRoute::Scope;

}  // namespace

EventKind KindOf(const v1::Envelope& envelope) {
  const int n = static_cast<int>(envelope.payload_case());
  if (n == 0) return EventKind::kNone;
  if (n < 110) return EventKind::kPing;
  if (n < 200) return EventKind::kSequenceEvent;
  if (n < 300) return EventKind::kEnrollmentInput;
  if (n < 400) return EventKind::kExecutorEvent;
  return EventKind::kEffect;
}

std::string EnrollmentKey(absl::string_view item_key, absl::string_view sequence_id) {
  return absl::StrCat(item_key, "#", sequence_id);
}

InputRoute RouteInput(const v1::Envelope& input) {
  InputRoute route;
  auto one = [&](const std::string& item, const std::string& seq) {
    route.scope = Scope::kItemInSequence;
    route.item_key = item;
    route.sequence_id = seq;
  };
  auto item_or_one = [&](const std::string& item, const std::string& seq) {
    if (seq.empty()) {
      route.scope = Scope::kItem;
      route.item_key = item;
    } else {
      one(item, seq);
    }
  };
  auto target = [&](const v1::EnrollmentTarget& t) {
    if (t.has_item_in_sequence()) {
      one(t.item_in_sequence().item_key(), t.item_in_sequence().sequence_id());
    } else if (t.target_case() == v1::EnrollmentTarget::kOwnerId) {
      route.scope = Scope::kOwner;
      route.owner_id = t.owner_id();
    }
  };
  auto sequence = [&](const std::string& seq) {
    route.scope = Scope::kSequence;
    route.sequence_id = seq;
  };
  switch (input.payload_case()) {
    case v1::Envelope::kEnrollRequested:
      one(input.enroll_requested().item_key(), input.enroll_requested().sequence_id());
      break;
    case v1::Envelope::kRemoveRequested:
      one(input.remove_requested().target().item_key(),
          input.remove_requested().target().sequence_id());
      break;
    case v1::Envelope::kRetryRequested:
      one(input.retry_requested().target().item_key(),
          input.retry_requested().target().sequence_id());
      break;
    case v1::Envelope::kPauseRequested:
      target(input.pause_requested().target());
      break;
    case v1::Envelope::kResumeRequested:
      target(input.resume_requested().target());
      break;
    case v1::Envelope::kActivityCompleted:
      one(input.activity_completed().item_key(), input.activity_completed().sequence_id());
      break;
    case v1::Envelope::kMergeDataUpdated:
      item_or_one(input.merge_data_updated().item_key(), input.merge_data_updated().sequence_id());
      break;
    case v1::Envelope::kItemOutcome:
      route.scope = Scope::kItem;
      route.item_key = input.item_outcome().item_key();
      break;
    case v1::Envelope::kEmailReplied:
      item_or_one(input.email_replied().item_key(), input.email_replied().sequence_id());
      break;
    case v1::Envelope::kEmailBounced:
      item_or_one(input.email_bounced().item_key(), input.email_bounced().sequence_id());
      break;
    case v1::Envelope::kSendOutcome:
      if (input.send_outcome().to_person_stage()) {  // the sender stage's notice (min_gap.h)
        route.scope = Scope::kSender;
        route.sender_key = input.send_outcome().person_key();
        break;
      }
      one(input.send_outcome().ref().item_key(), input.send_outcome().ref().sequence_id());
      break;
    case v1::Envelope::kSendRequested: {
      const v1::SendRequested& r = input.send_requested();
      route.scope = Scope::kSender;
      route.sender_key = !r.person_key().empty() && !r.gap_cleared()
                             ? r.person_key()
                             : SenderKey(input.company_id(), r.email().sender_user_id());
      break;
    }
    case v1::Envelope::kSendCancelled:
      route.scope = Scope::kSender;
      route.sender_key =
          !input.send_cancelled().person_key().empty()
              ? input.send_cancelled().person_key()
              : SenderKey(input.company_id(), input.send_cancelled().sender_user_id());
      break;
    case v1::Envelope::kSequenceStepsReplaced:
      sequence(input.sequence_steps_replaced().sequence_id());
      break;
    case v1::Envelope::kSequenceSettingsChanged:
      sequence(input.sequence_settings_changed().sequence_id());
      break;
    case v1::Envelope::kSequenceDeleted:
      sequence(input.sequence_deleted().sequence_id());
      break;
    case v1::Envelope::kSequencePaused:
      sequence(input.sequence_paused().sequence_id());
      break;
    case v1::Envelope::kSequenceResumed:
      sequence(input.sequence_resumed().sequence_id());
      break;
    default:
      break;
  }
  return route;
}

std::optional<int64_t> RequiredSequenceVersion(const v1::Envelope& input) {
  if (input.has_enroll_requested() && input.enroll_requested().sequence_version() > 0) {
    return input.enroll_requested().sequence_version();
  }
  return std::nullopt;
}

bool SequenceReadyFor(const SequenceState& sequence, const v1::Envelope& input) {
  const std::optional<int64_t> required = RequiredSequenceVersion(input);
  return !required.has_value() || sequence.version >= *required;
}

const v1::EnrollmentRef* ExecutorEventRef(const v1::Envelope& event) {
  switch (event.payload_case()) {
    case v1::Envelope::kEnrollmentStarted:
      return &event.enrollment_started().ref();
    case v1::Envelope::kStepExecuted:
      return &event.step_executed().ref();
    case v1::Envelope::kWaitingForActivity:
      return &event.waiting_for_activity().ref();
    case v1::Envelope::kStepScheduled:
      return &event.step_scheduled().ref();
    case v1::Envelope::kEnrollmentPaused:
      return &event.enrollment_paused().ref();
    case v1::Envelope::kEnrollmentResumed:
      return &event.enrollment_resumed().ref();
    case v1::Envelope::kEnrollmentCompleted:
      return &event.enrollment_completed().ref();
    case v1::Envelope::kEnrollmentFailed:
      return &event.enrollment_failed().ref();
    case v1::Envelope::kEnrollmentRetried:
      return &event.enrollment_retried().ref();
    case v1::Envelope::kEnrollmentRemoved:
      return &event.enrollment_removed().ref();
    case v1::Envelope::kEnrollmentMergeDataUpdated:
      return &event.enrollment_merge_data_updated().ref();
    case v1::Envelope::kEmailDeferred:
      return &event.email_deferred().ref();
    case v1::Envelope::kEmailReleased:
      return &event.email_released().ref();
    case v1::Envelope::kEmailCancelled:
      return &event.email_cancelled().ref();
    default:
      return nullptr;
  }
}

std::optional<ItemInSequence> ExecutorEventTarget(const v1::Envelope& event) {
  if (event.has_enrollment_rejected()) {
    return ItemInSequence{event.enrollment_rejected().item_key(),
                          event.enrollment_rejected().sequence_id()};
  }
  const v1::EnrollmentRef* ref = ExecutorEventRef(event);
  if (ref == nullptr) return std::nullopt;
  return ItemInSequence{ref->item_key(), ref->sequence_id()};
}

std::optional<std::string> ExecutorEventKey(const v1::Envelope& event) {
  std::optional<ItemInSequence> target = ExecutorEventTarget(event);
  if (!target.has_value()) return std::nullopt;
  return EnrollmentKey(target->item_key, target->sequence_id);
}

}  // namespace sequences::domain
