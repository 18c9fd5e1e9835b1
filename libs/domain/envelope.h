#ifndef SEQUENCES_LIBS_DOMAIN_ENVELOPE_H_
#define SEQUENCES_LIBS_DOMAIN_ENVELOPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "sequences/v1/events.pb.h"
#include "sequences/v1/sequence.pb.h"

namespace sequences::domain {

// absl::Time <-> google.protobuf.Timestamp. InfinitePast/Future and out-of-range times clamp to
// the Timestamp range (0001-01-01 .. 9999-12-31). An unset Timestamp is the Unix epoch.
google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);
google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

// An envelope with the header fields set and no payload.
v1::Envelope MakeEnvelope(absl::string_view event_id, absl::string_view company_id,
                          absl::Time occurred_at, absl::string_view causation_id,
                          absl::string_view correlation_id);

// The payload's field name ("enrollment_started"), or "none". For logs and dead-letter headers.
std::string PayloadName(const v1::Envelope& envelope);

// An item key "company/entity/item", entity "deal" or "lead".
struct ItemKey {
  std::string company_id;
  std::string entity;  // "deal" or "lead"
  std::string item_id;
};
// INVALID_ARGUMENT (field "item_key") unless `key` has three non-empty '/'-separated parts and the
// entity is deal or lead.
[[nodiscard]] absl::StatusOr<ItemKey> ParseItemKey(absl::string_view key);
// ENTITY_KIND_DEAL for "deal", ENTITY_KIND_LEAD for "lead", else UNSPECIFIED.
v1::EntityKind EntityKindOf(const ItemKey& key);

}  // namespace sequences::domain

#endif  // SEQUENCES_LIBS_DOMAIN_ENVELOPE_H_
