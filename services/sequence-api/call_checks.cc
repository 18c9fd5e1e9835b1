#include "services/sequence-api/call_checks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sequences::api {
namespace {

constexpr int kMaxRequestIdLength = 128;

}  // namespace

absl::Status CheckRequestId(const std::string& request_id, absl::string_view field) {
  if (request_id.empty()) return domain::InvalidField(field, "is required (idempotency key)");
  if (request_id.size() > kMaxRequestIdLength || !IsValidId(request_id)) {
    return domain::InvalidField(field, kIdRule);
  }
  return absl::OkStatus();
}

absl::Status SequenceNotFound(const std::string& sequence_id) {
  return absl::NotFoundError(absl::StrCat("sequence ", sequence_id, " not found"));
}

absl::StatusOr<std::string> ParseOwnCompany(const CallContext& ctx, const std::string& name,
                                            absl::string_view field) {
  absl::StatusOr<std::string> company = ParseCompanyName(name, field);
  if (!company.ok()) return company.status();
  if (*company != ctx.company_id) {
    return absl::NotFoundError(absl::StrCat("company ", *company, " not found"));
  }
  return company;
}

absl::StatusOr<SequenceName> ParseOwnSequence(const CallContext& ctx, const std::string& name,
                                              absl::string_view field) {
  absl::StatusOr<SequenceName> n = ParseSequenceName(name, field);
  if (!n.ok()) return n.status();
  if (n->company_id != ctx.company_id) return SequenceNotFound(n->sequence_id);
  return n;
}

absl::StatusOr<domain::SequenceState> LoadOwnSequence(ReadModel& read_model, const CallContext& ctx,
                                                      const std::string& sequence_id) {
  absl::StatusOr<domain::SequenceState> state = read_model.LoadSequenceState(sequence_id);
  if (!state.ok()) return state.status();
  if (!state->exists || state->company_id != ctx.company_id) return SequenceNotFound(sequence_id);
  return state;
}

absl::StatusOr<std::string> OwnItemKey(const CallContext& ctx, const std::string& parent,
                                       v1::EntityKind kind, const std::string& item_id,
                                       domain::FieldViolations& v) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, parent, "parent");
  if (!company.ok()) return company.status();
  const std::string entity = EntityName(kind);
  if (entity.empty()) v.Add("entity_kind", "must be DEAL or LEAD");
  if (!IsValidId(item_id)) v.Add("item_id", kIdRule);
  // Built from the caller's company, never from anything the caller names.
  return absl::StrCat(ctx.company_id, "/", entity, "/", item_id);
}

std::string EntityName(v1::EntityKind kind) {
  switch (kind) {
    case v1::ENTITY_KIND_DEAL:
      return "deal";
    case v1::ENTITY_KIND_LEAD:
      return "lead";
    default:
      return "";
  }
}

absl::Status CheckPageSize(int page_size) {
  if (page_size < 0) return domain::InvalidField("page_size", "must not be negative");
  return absl::OkStatus();
}

int PageSize(int requested, int def, int max) {
  if (requested <= 0) return def;
  return std::min(requested, max);
}

}  // namespace sequences::api
