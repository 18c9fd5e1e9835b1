#ifndef SEQUENCES_LIBS_DOMAIN_ENROLLMENT_H_
#define SEQUENCES_LIBS_DOMAIN_ENROLLMENT_H_

// The Enrollment aggregate: one item in one sequence, over all its enrollments in time.
//
//   decision = DecideEnrollment(state, input, sequence, now)   // an input record
//   decision = DecideStepDue(state, due_at, sequence, now)     // the timer
//   state    = EvolveEnrollment(state, executor_event)         // never fails
//
// Keys and routing (which enrollments an input addresses, how the executor calls the decider for
// one input record) are in routing.h.
//
// State is the fold of executor events only (EnrollmentStarted, StepExecuted, ...). Inputs (from
// enrollment-events and sequence-events) and timers are triggers: the decider answers with a
// Decision whose executor events the executor writes to executor-events (and folds with
// EvolveEnrollment), plus TaskCreated / EmailSend side effects for the task and email topics,
// all in one transaction.
//
// Determinism: every derived event id is a function of (input event id or timer, enrollment id,
// step id, kind), so the same input decided again against the same state yields identical events.
// Envelope headers of derived events: company_id from the enrollment's item key, occurred_at =
// now, causation_id = the input's event id (or the timer id "<enrollment_id>/<step_id>/due"),
// correlation_id = the input's correlation id (or the enrollment's request id for timers).
//
// What the decider will answer, asked before writing (CheckEnroll, PreviewEdit for the API), is in
// enrollment_preview.h.
//
// Pure: no IO, no clock reads; thread-compatible value types.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/domain/render.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

struct EnrollmentState {
  // Aggregate identity (set by the first folded event).
  std::string item_key;
  std::string sequence_id;
  std::string company_id;
  // Enrollments started so far; the current/last one has this ordinal.
  int32_t enrollment_count = 0;
  // Every enroll request id already decided for this key (started or rejected).
  std::set<std::string> request_ids;

  // ---- the current (or last) enrollment; enrollment_id empty: never enrolled ----
  std::string enrollment_id;
  v1::EnrollmentStatus status = v1::ENROLLMENT_STATUS_UNSPECIFIED;
  std::string request_id;
  std::string correlation_id;
  int64_t sequence_version = 0;
  v1::EntityKind entity_kind = v1::ENTITY_KIND_UNSPECIFIED;
  std::string owner_id;
  v1::Recipient recipient;
  std::string time_zone;  // resolved IANA name
  MergeData merge_data;
  absl::Time started_at = absl::UnixEpoch();
  // Steps executed, in order. Each step executes at most once per enrollment.
  std::vector<std::string> executed_step_ids;
  // The last email step executed and its A/B variant (empty: none), to which a reply or a bounce
  // is attributed in statistics.
  std::string last_email_step_id;
  std::string last_email_variant_id;
  // The A/B variant of every email step executed (step id -> variant id; steps without variants
  // are absent): a deferral that comes back after a later email step ran still counts at the
  // variant its own email was sent with.
  std::map<std::string, std::string> email_variant_ids;
  // Steps the enrollment is past: executed, plus steps inserted before its position.
  std::set<std::string> passed_step_ids;
  // The next step to run; empty when waiting for an activity or ended.
  std::string pending_step_id;
  // When pending_step_id is due (kept while paused; NextDueAt hides it then).
  std::optional<absl::Time> due_at;
  // The pending step's delay is measured from here (previous execution, enrollment start,
  // activity completion), plus `paused_total`, the time the delay clock stood still since then.
  // Due is never before `not_before` (e.g. the last resume).
  absl::Time anchor = absl::UnixEpoch();
  absl::Duration paused_total = absl::ZeroDuration();
  absl::Time not_before = absl::UnixEpoch();
  // Waiting for this task's completion before scheduling the next step.
  std::string waiting_task_id;
  std::string waiting_step_id;
  // Pause causes currently in force; paused_at is when the first one arrived.
  std::set<int> pause_causes;  // v1::PauseCause values
  std::optional<absl::Time> paused_at;
  // The pauses that ended since the last executed step, (paused_at, resumed at): an awaited
  // activity reported done late moves the anchor back, before some of them, and the part of each
  // after the anchor stopped the next step's delay clock too.
  std::vector<std::pair<absl::Time, absl::Time>> ended_pauses;
  // How the enrollment ended (when it did).
  v1::ExitReason exit_reason = v1::EXIT_REASON_UNSPECIFIED;
  v1::FailureReason failure_reason = v1::FAILURE_REASON_UNSPECIFIED;
  std::string failed_step_id;
  std::string missing_merge_field;
  v1::RemovalReason removal_reason = v1::REMOVAL_REASON_UNSPECIFIED;
  absl::Time ended_at = absl::UnixEpoch();
  // An automatic email waiting for its sender's send limit (EmailDeferred; cleared by
  // EmailReleased or EmailCancelled). Empty id: none waits. The enrollment goes on meanwhile
  // (send_limits.h).
  std::string deferred_email_id;
  std::string deferred_step_id;
  absl::Time deferred_until = absl::UnixEpoch();
  std::string deferred_reason;  // "send_limit"
  std::string deferred_detail;  // "sender u1: 200/day reached"
  // Every automatic email of the enrollment still waiting in its sender's queue, by email id
  // (a later step's email can wait behind an earlier one): what an early end cancels.
  std::map<std::string, v1::EmailDeferred> waiting_emails;

  // In progress or paused.
  bool IsActive() const;
};

// In progress or paused: an enrollment that still runs (or will when resumed).
bool IsActive(v1::EnrollmentStatus status);

// What one decision produced.
struct Decision {
  // Write to sequences.executor-events and fold into the state, in order.
  std::vector<v1::Envelope> executor_events;
  // Write to sequences.task-events (TaskCreated).
  std::vector<v1::Envelope> task_events;
  // Write to sequences.email-events (EmailSend).
  std::vector<v1::Envelope> email_events;
  // Write to sequences.enrollment-events keyed by the sender key, or by the person key when set
  // (internal SendCancelled for the sender or person stage, docs/send-limits.md, docs/min-gap.md).
  std::vector<v1::Envelope> sender_inputs;
  bool empty() const {
    return executor_events.empty() && task_events.empty() && email_events.empty() &&
           sender_inputs.empty();
  }
};

// Decides one input record (payloads 200-299 of the envelope, or the sequence events that concern
// enrollments: steps replaced, settings changed, deleted, paused, resumed) for one enrollment
// state. `sequence` is the executor's current state of the sequence `state` belongs to (or that an
// enroll request names; default-constructed if unknown).
//
// Outcomes (never errors for business refusals; those are events, so the log explains them):
//   enroll_requested   EnrollmentStarted carrying the first step and its due time
//                      (+ EnrollmentCompleted if the sequence has no steps; + EnrollmentPaused if
//                      the sequence is paused), or EnrollmentRejected with a reason, or nothing for
//                      a request id already seen. For sequence events, pass `sequence` already
//                      folded with them (either order works: the decider folds them again, which
//                      is a no-op for a folded version).
//   remove_requested   EnrollmentRemoved(requested) if active or failed.
//   pause/resume       EnrollmentPaused/EnrollmentResumed(cause enrollment or owner) if active.
//   retry_requested    EnrollmentRetried from the failed step if failed (then due re-aligned);
//                      the retried step renders with the merge data and recipient in force then.
//   activity_completed StepScheduled for the next step (or EnrollmentCompleted) if waiting for
//                      that task.
//   merge_data_updated EnrollmentMergeDataUpdated if active or failed and a value or the
//                      recipient changes (a failed enrollment is repaired, then retried).
//   item_outcome       EnrollmentCompleted(won/lost/converted) or EnrollmentRemoved(item deleted).
//   email_replied      EnrollmentCompleted(replied); email_bounced: EnrollmentFailed(bounced).
//   send_outcome       (internal, from the sender or person stage, docs/send-limits.md,
//                      docs/min-gap.md) EmailDeferred (with the person key when the person stage
//                      deferred it: the cancel goes there),
//                      EmailReleased or EmailCancelled for the enrollment it names, also after it
//                      ended (its last step's email may wait); nothing for another enrollment of
//                      the key. A deferral reaching an enrollment that ended other than by running
//                      all its steps also yields a SendCancelled (sender_inputs).
// Every decision that ends an enrollment other than by running all its steps (completed with
// another reason, removed, failed; also DecideStepDue's) adds a SendCancelled for the email it has
// waiting in its sender's queue (state.deferred_email_id), if any.
//   sequence_deleted   EnrollmentRemoved(sequence deleted); sequence_paused/resumed: Paused/
//                      Resumed(cause sequence); steps replaced/settings changed: StepScheduled
//                      when the pending step or its due time changes.
// A Decision that does not concern the state is empty.
// Errors: INVALID_ARGUMENT for a malformed input (dead-letter it); UNAVAILABLE if `sequence` is
// missing for an input that needs it (defer).
[[nodiscard]] absl::StatusOr<Decision> DecideEnrollment(const EnrollmentState& state,
                                                        const v1::Envelope& input,
                                                        const SequenceState& sequence,
                                                        absl::Time now);

// The timer: the due index says the enrollment's step is due at `due_at`.
// Empty decision (a no-op, not an error) when the trigger is stale: the enrollment is not in
// progress, or its due time is not `due_at`, or now < due_at.
// Otherwise checks, at fire time: sequence deleted -> EnrollmentRemoved(sequence_deleted);
// sequence paused -> EnrollmentPaused(sequence); the pending step was deleted/moved or its delay
// changed so that it is not due yet -> StepScheduled; automatic email without automated sending ->
// EnrollmentFailed(automated_sending_off); without the sender's consent -> (consent_missing);
// unfilled merge field -> (missing_merge_field, naming it); no recipient address ->
// (recipient_missing). Else StepExecuted + TaskCreated or EmailSend (+ WaitingForActivity, or
// + EnrollmentCompleted after the last step).
// Errors: UNAVAILABLE if `sequence` does not exist (the executor has not folded it yet: retry).
[[nodiscard]] absl::StatusOr<Decision> DecideStepDue(const EnrollmentState& state,
                                                     absl::Time due_at,
                                                     const SequenceState& sequence, absl::Time now);

// Folds one executor event (payloads 300-399). Other events, and events of another enrollment
// key, leave the state unchanged. Never fails.
EnrollmentState EvolveEnrollment(EnrollmentState state, const v1::Envelope& event);

// When the due index should fire this enrollment: due_at while in progress with a pending step;
// nullopt when paused, waiting for an activity, or ended.
std::optional<absl::Time> NextDueAt(const EnrollmentState& state);

// The step an enrollment that has passed `passed` runs next in `steps`: the first step after the
// last passed one (in the current order) that is not passed. -1 when none. `*newly_passed` (if not
// null) receives the ids before that position that are not passed yet (inserted before the
// enrollment's position: never run for it).
int NextStepIndex(const std::set<std::string>& passed, absl::Span<const v1::Step> steps,
                  std::vector<std::string>* newly_passed);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_ENROLLMENT_H_
