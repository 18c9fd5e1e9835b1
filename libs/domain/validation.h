#ifndef SEQUENCES_LIBS_DOMAIN_VALIDATION_H_
#define SEQUENCES_LIBS_DOMAIN_VALIDATION_H_

// Validation of sequence definitions and enroll requests. Every function returns OK or
// INVALID_ARGUMENT carrying a google.rpc.BadRequest (errors.h) whose field paths are relative to
// the validated message, e.g. "steps[2].delay.amount", "settings.send_window.ranges[0].end".

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/enrollment_inputs.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// Limits.
inline constexpr int kMaxNameLength = 200;
inline constexpr int kMaxSteps = 50;
inline constexpr int kMaxStepIdLength = 64;
inline constexpr int kMaxSubjectLength = 998;  // RFC 5322 line limit
inline constexpr int kMaxBodyLength = 100000;
inline constexpr int kMaxDelayMinutes = 60 * 24 * 365;
inline constexpr int kMaxDelayHours = 24 * 365;
inline constexpr int kMaxDelayDays = 365;
inline constexpr int kMaxDelayBusinessDays = 260;
inline constexpr int kMaxHolidays = 1000;

// Steps: 0..kMaxSteps; ids 1..64 chars of [A-Za-z0-9_-] and unique; delay unit set and amount
// within the unit's limit; at_time/due_time valid; activity: type, subject and assignee set;
// email: sender, subject and body set, merge fields parse. Paths "steps[i]....".
[[nodiscard]] absl::Status ValidateSteps(absl::Span<const v1::Step> steps);

// default_time_zone empty or a valid IANA name; window ranges with a weekday, start < end, end <=
// 24:00, no overlap on a weekday; holidays valid dates. Paths "settings....".
[[nodiscard]] absl::Status ValidateSettings(const v1::SequenceSettings& settings);

// A whole definition: name 1..kMaxNameLength (path "name"), entity kind set ("entity_kind"),
// steps and settings as above. All violations are reported together.
[[nodiscard]] absl::Status ValidateSequenceDefinition(absl::string_view name,
                                                      v1::EntityKind entity_kind,
                                                      absl::Span<const v1::Step> steps,
                                                      const v1::SequenceSettings& settings);

// An email template's content: name 1..kMaxNameLength ("name"); subject and body exactly as an
// email step's (required, size limits, merge fields parse: "subject", "body").
[[nodiscard]] absl::Status ValidateEmailTemplateContent(const v1::EmailTemplateContent& content);

// request_id, sequence_id set; item_key "company/entity/item" with entity deal|lead and, when
// entity_kind is set, matching it; owner_id set; time zone names empty or valid.
[[nodiscard]] absl::Status ValidateEnrollRequested(const v1::EnrollRequested& request);

// What an enrollment of `request` into a sequence with `steps` is certain to fail on, as the
// sequence and the request stand (the executor's fire-time checks, ahead of time):
//   - an email step (draft or automatic) and no recipient address: path "recipient.email";
//   - an automatic email whose subject or body needs a merge field that `merge_data` lacks (or
//     holds empty) and no fallback covers: path "merge_data[\"<field>\"]".
// Each violation names the first step that needs it. OK when none; else INVALID_ARGUMENT with a
// BadRequest listing all of them. The API refuses such an Enroll unless the caller says it will
// supply the data later (EnrollItem.allow_incomplete); records published straight to Kafka are
// not checked here and fail at the step, as documented for the executor.
[[nodiscard]] absl::Status CheckEnrollmentComplete(const v1::EnrollRequested& request,
                                                   absl::Span<const v1::Step> steps);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_VALIDATION_H_
