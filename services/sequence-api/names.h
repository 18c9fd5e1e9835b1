#ifndef SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_
#define SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_

// Resource names, consistency tokens and page tokens of the sequence API. Pure functions.
//
//   companies/{company}
//   companies/{company}/sequences/{sequence}
//   companies/{company}/sequences/{sequence}/enrollments/{entity}:{item}
//
// Ids are 1..128 characters without '/', '#', ':' or control characters (entity is "deal" or
// "lead"); a name that breaks the pattern is INVALID_ARGUMENT naming `field`.

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
[[nodiscard]] absl::StatusOr<EnrollmentName> ParseEnrollmentName(absl::string_view name,
                                                                 absl::string_view field);
// The enrollment resource for an item key "company/entity/item" in a sequence; empty if the item
// key is malformed.
std::string EnrollmentResourceName(absl::string_view item_key, absl::string_view sequence_id);
std::string SequenceResourceName(absl::string_view company_id, absl::string_view sequence_id);
// True if `id` may be used as a resource id.
bool IsValidId(absl::string_view id);

// A position in the log: the offset of one record.
struct LogPosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool operator==(const LogPosition&) const = default;
};

// An opaque, URL-safe token for a set of positions (the highest offset per topic/partition is
// kept). Empty positions: empty token.
std::string EncodeConsistencyToken(absl::Span<const LogPosition> positions);
// INVALID_ARGUMENT (field "consistency_token") if `token` was not made by EncodeConsistencyToken.
// Empty token: no positions.
[[nodiscard]] absl::StatusOr<std::vector<LogPosition>> DecodeConsistencyToken(
    absl::string_view token);

// Page tokens: an opaque form of the last key returned, bound to the listing it came from (a
// token of another listing is INVALID_ARGUMENT on field "page_token").
std::string EncodePageToken(absl::string_view listing, absl::string_view last_key);
[[nodiscard]] absl::StatusOr<std::string> DecodePageToken(absl::string_view listing,
                                                          absl::string_view token);

// Sequence ids are derived from the company and the create request id, so a retried create names
// the same sequence: "s" + 16 hex digits.
std::string DeriveSequenceId(absl::string_view company_id, absl::string_view request_id);

}  // namespace sequences::api

#endif  // SEQUENCES_SERVICES_SEQUENCE_API_NAMES_H_
