#ifndef SEQUENCES_SERVICES_SEQUENCE_API_CALL_CHECKS_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_CALL_CHECKS_H_

// Argument and tenancy checks shared by the commands and queries of the application layer.
//
// Tenancy: a name of another company's resource is NOT_FOUND, exactly as a name that does not
// exist, so a caller learns nothing of other companies. Item keys are built from the caller's
// company, never from anything the caller names.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/domain/errors.h"
#include "libs/domain/sequence.h"
#include "sequences/v1/sequence.pb.h"
#include "services/sequence-api/call_context.h"
#include "services/sequence-api/names.h"
#include "services/sequence-api/read_model.h"

namespace sequences::api {

// INVALID_ARGUMENT naming `field` unless `request_id` is a non-empty resource id.
[[nodiscard]] absl::Status CheckRequestId(const std::string& request_id, absl::string_view field);

absl::Status SequenceNotFound(const std::string& sequence_id);

// The company named by `name` ("companies/{c}"), or INVALID_ARGUMENT naming `field`; NOT_FOUND
// unless it is the caller's.
[[nodiscard]] absl::StatusOr<std::string> ParseOwnCompany(const CallContext& ctx,
                                                          const std::string& name,
                                                          absl::string_view field);
// The sequence named by `name`, or INVALID_ARGUMENT naming `field`; NOT_FOUND unless it is of the
// caller's company (whether it exists is not checked: see LoadOwnSequence).
[[nodiscard]] absl::StatusOr<SequenceName> ParseOwnSequence(const CallContext& ctx,
                                                            const std::string& name,
                                                            absl::string_view field);
// The folded sequence if it exists and is the caller's company's, else NOT_FOUND.
[[nodiscard]] absl::StatusOr<domain::SequenceState> LoadOwnSequence(ReadModel& read_model,
                                                                    const CallContext& ctx,
                                                                    const std::string& sequence_id);

// The item key of an item of the caller's company, named by `parent` ("companies/{c}"), entity
// kind and item id. NOT_FOUND for another company; violations of the entity kind and item id are
// added to `v` (fields of the request) and the key is returned anyway.
[[nodiscard]] absl::StatusOr<std::string> OwnItemKey(const CallContext& ctx,
                                                     const std::string& parent, v1::EntityKind kind,
                                                     const std::string& item_id,
                                                     domain::FieldViolations& v);

// Copy-at-save (docs/email-templates.md): fills the email steps that name an email template of
// the caller's company with its current text (domain::CopyEmailTemplatesIntoSteps against the
// read model's templates; `current_steps` are the sequence's steps before the save). Errors name
// "steps[i].email...": INVALID_ARGUMENT for an id outside the grammar or hand-written text,
// NOT_FOUND for an unknown, deleted or other company's template.
[[nodiscard]] absl::Status CopyEmailTemplates(ReadModel& read_model, const CallContext& ctx,
                                              const std::vector<v1::Step>& current_steps,
                                              google::protobuf::RepeatedPtrField<v1::Step>* steps);

// INVALID_ARGUMENT naming `field` unless `t` is a valid google.protobuf.Timestamp: nanos in
// [0, 999999999] and a time from 0001-01-01 to 9999-12-31 UTC (what the type allows, and what
// every reader of the events can represent). `latest` (if given) is the latest time allowed.
[[nodiscard]] absl::Status CheckTimestamp(const google::protobuf::Timestamp& t,
                                          absl::string_view field,
                                          std::optional<absl::Time> latest = std::nullopt);

// "deal", "lead", or "" for any other kind.
std::string EntityName(v1::EntityKind kind);

// Page sizes: INVALID_ARGUMENT for a negative size; 0 means `def`; at most `max`.
[[nodiscard]] absl::Status CheckPageSize(int page_size);
int PageSize(int requested, int def, int max);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_CALL_CHECKS_H_
