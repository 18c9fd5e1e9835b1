#ifndef SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_

// Resource names, consistency tokens and page tokens of the sequence API. Pure functions.
//
//   companies/{company}
//   companies/{company}/sequences/{sequence}
//   companies/{company}/sequences/{sequence}/enrollments/{entity}:{item}
//   companies/{company}/items/{entity}:{item}      (request records of item-wide inputs only)
//   companies/{company}/emailTemplates/{template}
//
// Identifier grammar (enforced at the edge, before anything is written; docs: README.md):
//   company id   1..64 bytes of [A-Za-z0-9._-], starting with a letter or digit
//   user id      1..128 bytes of [A-Za-z0-9._@+-], starting with a letter or digit
//   resource id  1..128 bytes of [A-Za-z0-9._~@+=-], starting with a letter, digit or '_'
//                (sequence ids, item ids, request ids)
// Entity is "deal" or "lead". A name that breaks its pattern is INVALID_ARGUMENT naming `field`.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace sequences::api {

struct SequenceName {
  std::string company_id;
  std::string sequence_id;
};

struct EmailTemplateName {
  std::string company_id;
  std::string template_id;
};

struct EnrollmentName {
  std::string company_id;
  std::string sequence_id;
  std::string entity;  // "deal" or "lead"
  std::string item_id;
  // "company/entity/item".
  std::string ItemKey() const;
};

[[nodiscard]] absl::StatusOr<std::string> ParseCompanyName(absl::string_view name,
                                                           absl::string_view field);
[[nodiscard]] absl::StatusOr<SequenceName> ParseSequenceName(absl::string_view name,
                                                             absl::string_view field);
[[nodiscard]] absl::StatusOr<EmailTemplateName> ParseEmailTemplateName(absl::string_view name,
                                                                       absl::string_view field);
[[nodiscard]] absl::StatusOr<EnrollmentName> ParseEnrollmentName(absl::string_view name,
                                                                 absl::string_view field);
// The enrollment resource for an item key "company/entity/item" in a sequence; empty if the item
// key is malformed.
std::string EnrollmentResourceName(absl::string_view item_key, absl::string_view sequence_id);
std::string SequenceResourceName(absl::string_view company_id, absl::string_view sequence_id);
std::string EmailTemplateResourceName(absl::string_view company_id, absl::string_view template_id);
// "companies/{c}/sendingSettings".
std::string CompanySendingSettingsResourceName(absl::string_view company_id);
// "companies/{company}/items/{entity}:{item}": an item across its sequences (what an item-wide
// input such as an outcome names, for request ids); empty if the item key is malformed.
std::string ItemResourceName(absl::string_view item_key);
// The grammar above.
bool IsValidId(absl::string_view id);
bool IsValidCompanyId(absl::string_view id);
bool IsValidUserId(absl::string_view id);
// The rule of each grammar, for error messages.
inline constexpr char kIdRule[] =
    "must be 1..128 characters of [A-Za-z0-9._~@+=-] starting with a letter, digit or '_'";
inline constexpr char kCompanyIdRule[] =
    "must be 1..64 characters of [A-Za-z0-9._-] starting with a letter or digit";
inline constexpr char kUserIdRule[] =
    "must be 1..128 characters of [A-Za-z0-9._@+-] starting with a letter or digit";

// A position in the log: the offset of one record.
struct LogPosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool operator==(const LogPosition&) const = default;
};

// A compact, URL-safe text for a set of positions (the highest offset per topic/partition is
// kept). Empty positions: empty text. Not a token a caller may see: the API signs it (tokens.h).
std::string EncodePositions(absl::Span<const LogPosition> positions);
// INVALID_ARGUMENT (field "consistency_token") if `text` was not made by EncodePositions.
// Empty text: no positions.
[[nodiscard]] absl::StatusOr<std::vector<LogPosition>> DecodePositions(absl::string_view text);

// Sequence ids are derived from the company and the create request id, so a retried create names
// the same sequence: "s" + 16 hex digits.
std::string DeriveSequenceId(absl::string_view company_id, absl::string_view request_id);
// Email template ids likewise: "t" + 16 hex digits.
std::string DeriveEmailTemplateId(absl::string_view company_id, absl::string_view request_id);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_
