#ifndef SEQUENCES_LIBS_DOMAIN_STATS_H_
#define SEQUENCES_LIBS_DOMAIN_STATS_H_

// Per-step statistics of a sequence: which counters one event moves.
//
// Statistics are a projection of the log (the API's read model folds them, so a rebuild from the
// topics yields the same numbers). This file decides, for one event, which counters move and at
// which step and A/B variant; the caller adds them up per sequence, step, variant and UTC day.
//
//   counter          moved by                                          attributed to
//   kEnrolled        EnrollmentStarted                                 the sequence
//   kReached         StepExecuted (once per enrollment and step)      that step (+ variant)
//   kTaskCreated     StepExecuted of an activity step                  that step
//   kTaskCompleted   ActivityCompleted input naming a task we created  the task's step
//   kEmailDrafted    StepExecuted of a draft email step                that step (+ variant)
//   kEmailSent       StepExecuted of an automatic email step           that step (+ variant)
//   kFailed          EnrollmentFailed (reason; every failure, so one   its step (a bounce: the
//                    retried and failed again counts twice)            last email step + variant)
//   kReplied         EnrollmentCompleted(replied)                      the last email step run
//   kBounced         EnrollmentFailed(bounced)                         the last email step run
//   kExited          EnrollmentCompleted / EnrollmentRemoved (reason)  the sequence
//   kDeferred        EmailDeferred (once per email)                    that step (+ variant)
//
// An event that does not change the enrollment (another enrollment's, a duplicate) moves nothing,
// so a redelivered record cannot count twice. Pure; thread-compatible.

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/domain/enrollment.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {

enum class StatCounter {
  kEnrolled,
  kReached,
  kTaskCreated,
  kTaskCompleted,
  kEmailDrafted,
  kEmailSent,
  kFailed,
  kReplied,
  kBounced,
  kExited,
  kDeferred,
};

struct StatIncrement {
  StatCounter counter;
  // Empty: the sequence as a whole.
  std::string step_id;
  // The A/B variant, when the step had variants.
  std::string variant_id;
  // kFailed: the FailureReason name; kExited: the ExitReason or RemovalReason name.
  std::string reason;
  // When it happened (the event's time): the day it counts in.
  absl::Time at;
  friend bool operator==(const StatIncrement&, const StatIncrement&) = default;
};

// The counters executor event `event` moves, given the key's state `before` it was folded.
std::vector<StatIncrement> StatIncrementsOf(const EnrollmentState& before,
                                            const v1::Envelope& event);

// An ActivityCompleted input: the task-completed increment at the step the task id names
// ("<enrollment_id>/<step_id>/task", as the executor writes it), or nullopt if the input is not an
// activity completion or its task id is not one of ours for this item and sequence. The caller
// counts each task id once.
std::optional<StatIncrement> TaskCompletedIncrement(const v1::Envelope& input);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_STATS_H_
