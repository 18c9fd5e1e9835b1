#ifndef SEQUENCES_LIBS_DOMAIN_UPDATES_H_
#define SEQUENCES_LIBS_DOMAIN_UPDATES_H_

// The public enrollment-updates stream (proto/sequences/v1/enrollment_updates.proto): which
// executor events are status changes a follower of enrollments is told about, and what it is
// told. Pure: the executor calls it for every executor event it writes, with the enrollment's
// state after folding that event, and writes the update in the same transaction.
//
//   EnrollmentStarted    -> ENROLLED      (status IN_PROGRESS)
//   StepExecuted         -> STEP_REACHED  (step id and index)
//   EnrollmentPaused     -> PAUSED        (the cause added; status PAUSED)
//   EnrollmentResumed    -> RESUMED       (the cause removed; IN_PROGRESS when it was the last)
//   EnrollmentCompleted  -> COMPLETED     (exit reason)
//   EnrollmentRemoved    -> REMOVED       (removal reason)
//   EnrollmentFailed     -> FAILED        (failure reason, step, missing merge field, detail)
//   EnrollmentRetried    -> RETRIED       (status IN_PROGRESS again, from the failed step)
// No update: StepScheduled and WaitingForActivity (the enrollment stays in progress),
// EnrollmentMergeDataUpdated, EnrollmentRejected (no enrollment started), every other event.

#include <optional>
#include <string>

#include "libs/domain/enrollment.h"
#include "sequences/v1/enrollment_updates.pb.h"
#include "sequences/v1/events.pb.h"

namespace sequences::domain {

// The update for `executor_event`, given `after`, the state of its enrollment key after folding
// it (EvolveEnrollment); nullopt when the event is not a status change (see above). Deterministic:
// the same event and state give the same bytes (update_id = the event's id).
std::optional<v1::EnrollmentUpdate> EnrollmentUpdateFor(const v1::Envelope& executor_event,
                                                        const EnrollmentState& after);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_UPDATES_H_
