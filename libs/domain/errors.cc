#include "libs/domain/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "google/rpc/error_details.pb.h"

namespace sequences::domain {

namespace {

// At most `max` bytes of `s`, cut at a UTF-8 character boundary, marked when cut.
std::string Bounded(absl::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(s.substr(0, end), "...");
}

}  // namespace

void FieldViolations::Add(absl::string_view field, absl::string_view description) {
  if (violations_.size() > kMaxViolations) return;
  if (violations_.size() == kMaxViolations) {
    violations_.push_back({"", "more violations were not listed"});
    return;
  }
  violations_.push_back(
      {Bounded(field, kMaxFieldPathBytes), Bounded(description, kMaxDescriptionBytes)});
}

void FieldViolations::AddAllFrom(absl::string_view prefix, const absl::Status& status) {
  for (const FieldViolation& v : GetFieldViolations(status)) {
    if (prefix.empty()) {
      Add(v.field, v.description);
    } else if (v.field.empty() || v.field[0] == '[') {
      Add(absl::StrCat(prefix, v.field), v.description);
    } else {
      Add(absl::StrCat(prefix, ".", v.field), v.description);
    }
  }
}

absl::Status FieldViolations::ToStatus(absl::string_view message) const {
  if (violations_.empty()) return absl::OkStatus();
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& v : violations_) {
    google::rpc::BadRequest::FieldViolation* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
  }
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat(message, ": ", violations_[0].field, ": ", violations_[0].description,
                   violations_.size() > 1 ? absl::StrCat(" (and ", violations_.size() - 1, " more)")
                                          : std::string()));
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad_request.SerializeAsString()));
  return status;
}

absl::Status InvalidField(absl::string_view field, absl::string_view description) {
  FieldViolations v;
  v.Add(field, description);
  return v.ToStatus("invalid argument");
}

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  absl::optional<absl::Cord> payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload.has_value()) return out;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return out;
  for (const auto& fv : bad_request.field_violations()) {
    out.push_back({fv.field(), fv.description()});
  }
  return out;
}

}  // namespace sequences::domain
