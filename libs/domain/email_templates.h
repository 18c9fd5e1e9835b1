#ifndef SEQUENCES_LIBS_DOMAIN_EMAIL_TEMPLATES_H_
#define SEQUENCES_LIBS_DOMAIN_EMAIL_TEMPLATES_H_

// Email templates of a company: a name, a subject and a body (merge fields as in an email step)
// that email steps reference by email_template_id. Not the catalog of starter sequences
// (templates.h).
//
// An aggregate like the sequence (sequence.h), on the same topic (sequence-events), key: the
// template id:
//   events = DecideEmailTemplate(state, command, now)   // refuses with a canonical status
//   state  = EvolveEmailTemplate(state, event)          // never fails
// Versions: creation = 1, each change previous + 1; event ids "<template_id>@<version>".
//
// Steps copy a template when the sequence is saved (CopyEmailTemplatesIntoSteps below): the
// executor never reads templates, so firing a step is the same on every replay whatever happens
// to the template later (docs/email-templates.md).
//
// Pure: no IO, no clock reads; thread-compatible value types.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "sequences/v1/commands.pb.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

struct EmailTemplateState {
  // False until EmailTemplateCreated was folded.
  bool exists = false;
  std::string template_id;
  std::string company_id;
  v1::EmailTemplateContent content;
  bool deleted = false;
  // Version of the last folded event (0 = none).
  int64_t version = 0;
  absl::Time created_at = absl::UnixEpoch();
  absl::Time updated_at = absl::UnixEpoch();
};

// Decides a command against the current state: the one event to append (version
// state.version + 1), or none when an update changes nothing.
// Errors:
//   INVALID_ARGUMENT  content breaks ValidateEmailTemplateContent (paths "create.subject",
//                     "update.body", ...), or no command / template id.
//   ALREADY_EXISTS    create of a template id that exists (deleted or not).
//   NOT_FOUND         update or delete of a template that does not exist, or is of another
//                     company than the command's.
//   FAILED_PRECONDITION  update or delete of a deleted template.
//   ABORTED           expected_version > 0 and != state.version.
[[nodiscard]] absl::StatusOr<std::vector<v1::Envelope>> DecideEmailTemplate(
    const EmailTemplateState& state, const v1::EmailTemplateCommand& command, absl::Time now);

// Folds one event. Other events, events of another template id (when the state has one) and
// versions <= state.version leave the state unchanged; a version gap is applied anyway.
EmailTemplateState EvolveEmailTemplate(EmailTemplateState state, const v1::Envelope& event);

// The template id and version of an email template event; false if `event` is not one.
bool GetEmailTemplateEventKey(const v1::Envelope& event, std::string* template_id,
                              int64_t* version);
inline bool IsEmailTemplateEvent(const v1::Envelope& event) {
  return GetEmailTemplateEventKey(event, nullptr, nullptr);
}

// Copy-at-save. Returns `steps` with every email step that names an email_template_id filled
// from that template: subject, body and body_is_html copied, email_template_version set to the
// template's version. Steps without a template id get email_template_version 0.
//
// `templates` holds the states the caller loaded for the ids the steps name (an id missing from
// it is unknown). `company_id` is the saving company. `current_steps` are the sequence's steps
// before this save (empty on create): a step may come back with the text it was copied with.
//
// A step with a template id must send its subject and its body each empty, or equal to the
// template's current one, or equal to the stored copy of the same step id (what GetSequence
// returned); any other text is refused, so a hand edit is never silently overwritten (clear the
// template id to keep the text as the step's own).
//
// Errors (paths relative to the steps, e.g. "steps[2].email.email_template_id"):
//   NOT_FOUND         a template id that is unknown, of another company, or deleted (with a
//                     BadRequest payload naming each such step's email_template_id).
//   INVALID_ARGUMENT  other text than above, a template with variants, or a template id outside
//                     1..128 bytes.
[[nodiscard]] absl::StatusOr<std::vector<v1::Step>> CopyEmailTemplatesIntoSteps(
    absl::Span<const v1::Step> steps, absl::Span<const v1::Step> current_steps,
    const std::map<std::string, EmailTemplateState>& templates, const std::string& company_id);

// The distinct email_template_ids the steps name, in order of first use.
std::vector<std::string> EmailTemplateIdsOf(absl::Span<const v1::Step> steps);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_EMAIL_TEMPLATES_H_
