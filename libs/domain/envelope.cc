#include "libs/domain/envelope.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_split.h"
#include "libs/domain/errors.h"

namespace sequences::domain {
namespace {

// Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

}  // namespace

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  if (t <= absl::FromUnixSeconds(kMinSeconds)) {
    ts.set_seconds(kMinSeconds);
    return ts;
  }
  if (t >= absl::FromUnixSeconds(kMaxSeconds + 1)) {
    ts.set_seconds(kMaxSeconds);
    ts.set_nanos(999999999);
    return ts;
  }
  const int64_t seconds = absl::ToUnixSeconds(t);  // floors
  const absl::Duration rest = t - absl::FromUnixSeconds(seconds);
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rest)));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  absl::Duration rem;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &rem);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(rem)));
  return out;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

v1::Envelope MakeEnvelope(absl::string_view event_id, absl::string_view company_id,
                          absl::Time occurred_at, absl::string_view causation_id,
                          absl::string_view correlation_id) {
  v1::Envelope e;
  e.set_event_id(std::string(event_id));
  e.set_company_id(std::string(company_id));
  *e.mutable_occurred_at() = ToProto(occurred_at);
  e.set_causation_id(std::string(causation_id));
  e.set_correlation_id(std::string(correlation_id));
  return e;
}

std::string PayloadName(const v1::Envelope& envelope) {
  const google::protobuf::OneofDescriptor* oneof =
      v1::Envelope::descriptor()->FindOneofByName("payload");
  const google::protobuf::FieldDescriptor* field =
      envelope.GetReflection()->GetOneofFieldDescriptor(envelope, oneof);
  return field == nullptr ? "none" : field->name();
}

absl::StatusOr<ItemKey> ParseItemKey(absl::string_view key) {
  std::vector<absl::string_view> parts = absl::StrSplit(key, '/');
  if (parts.size() != 3 ||
      std::any_of(parts.begin(), parts.end(), [](absl::string_view p) { return p.empty(); })) {
    return InvalidField("item_key", "must be \"company/entity/item\" with three non-empty parts");
  }
  if (parts[1] != "deal" && parts[1] != "lead") {
    return InvalidField("item_key", "entity must be \"deal\" or \"lead\"");
  }
  return ItemKey{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
}

v1::EntityKind EntityKindOf(const ItemKey& key) {
  if (key.entity == "deal") return v1::ENTITY_KIND_DEAL;
  if (key.entity == "lead") return v1::ENTITY_KIND_LEAD;
  return v1::ENTITY_KIND_UNSPECIFIED;
}

}  // namespace sequences::domain
