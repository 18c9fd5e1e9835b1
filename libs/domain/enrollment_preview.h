#ifndef SEQUENCES_LIBS_DOMAIN_ENROLLMENT_PREVIEW_H_
#define SEQUENCES_LIBS_DOMAIN_ENROLLMENT_PREVIEW_H_

// What the enrollment decider (enrollment.h) will answer, asked before anything is written: for
// the API, which refuses an enroll the executor would reject and previews an edit of the steps.
// Implemented next to the decider (enrollment.cc) from the same rules, so the two cannot drift.
//
// Pure: no IO, no clock reads.

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// Before appending an enroll request: the answer the executor will give, given the
// read model's state of that key and the sequence.
//   OK                 will start (or the request id was already decided: idempotent).
//   NOT_FOUND          sequence does not exist.
//   FAILED_PRECONDITION sequence deleted; wrong entity kind; re-enrollment not allowed.
//   ALREADY_EXISTS     the item has an active enrollment in the sequence.
//   INVALID_ARGUMENT   malformed request (BadRequest payload).
[[nodiscard]] absl::Status CheckEnroll(const EnrollmentState& state,
                                       const v1::EnrollRequested& request,
                                       const SequenceState& sequence);

// What replacing the sequence's steps with `new_steps` would do to this enrollment (a preview). For
// an enrollment that is not active, returns only its id. The pending step and due time after the
// edit are what DecideEnrollment does with the SequenceStepsReplaced event at `now` (for a paused
// enrollment: followed by resuming every pause cause at `now`). An enrollment waiting for an
// activity keeps waiting: no pending step after; its `upcoming` steps assume the activity is
// completed at `now`, and `completes` means it completes when it is.
v1::EditImpact PreviewEdit(const EnrollmentState& state, const SequenceState& sequence,
                           absl::Span<const v1::Step> new_steps, absl::Time now);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_ENROLLMENT_PREVIEW_H_
