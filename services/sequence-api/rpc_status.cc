#include "services/sequence-api/rpc_status.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/errors.h"

namespace sequences::api {

google::rpc::Status ToRpcStatus(const absl::Status& s) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(s.code()));
  out.set_message(std::string(s.message()));
  for (const char* type_url : {domain::kBadRequestTypeUrl, kRetryInfoTypeUrl}) {
    absl::optional<absl::Cord> detail = s.GetPayload(type_url);
    if (!detail.has_value()) continue;
    google::protobuf::Any* any = out.add_details();
    any->set_type_url(type_url);
    any->set_value(std::string(*detail));
  }
  return out;
}

absl::Status RemapFieldPaths(const absl::Status& status,
                             const std::vector<std::pair<std::string, std::string>>& map) {
  std::vector<domain::FieldViolation> violations = domain::GetFieldViolations(status);
  if (violations.empty()) return status;
  domain::FieldViolations out;
  for (const domain::FieldViolation& v : violations) {
    std::string field = v.field;
    for (const auto& [from, to] : map) {
      if (field == from) {
        field = to;
        break;
      }
      if (from.empty()) {
        field = absl::StrCat(to, field[0] == '[' ? "" : ".", field);
        break;
      }
      if (absl::StartsWith(field, from) &&
          (field[from.size()] == '.' || field[from.size()] == '[')) {
        field = absl::StrCat(to, field.substr(from.size()));
        break;
      }
    }
    out.Add(field, v.description);
  }
  absl::Status remapped = out.ToStatus("invalid argument");
  if (absl::IsInvalidArgument(status)) return remapped;
  absl::Status r(status.code(), status.message());
  r.SetPayload(domain::kBadRequestTypeUrl, *remapped.GetPayload(domain::kBadRequestTypeUrl));
  return r;
}

}  // namespace sequences::api
