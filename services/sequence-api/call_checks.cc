#include "services/sequence-api/call_checks.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/email_templates.h"

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

absl::Status CheckTimestamp(const google::protobuf::Timestamp& t, absl::string_view field,
                            std::optional<absl::Time> latest) {
  // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of google.protobuf.Timestamp.
  constexpr int64_t kMinSeconds = -62135596800;
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.nanos() < 0 || t.nanos() > 999999999) {
    return domain::InvalidField(field, "nanos must be from 0 to 999,999,999");
  }
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds) {
    return domain::InvalidField(field, "must be a time from 0001-01-01 to 9999-12-31 UTC");
  }
  if (latest.has_value() &&
      absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()) > *latest) {
    return domain::InvalidField(
        field, absl::StrCat("must not be later than ", absl::FormatTime(*latest), " (now)"));
  }
  return absl::OkStatus();
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

absl::Status CopyEmailTemplates(ReadModel& read_model, const CallContext& ctx,
                                const std::vector<v1::Step>& current_steps,
                                google::protobuf::RepeatedPtrField<v1::Step>* steps) {
  const std::vector<v1::Step> in(steps->begin(), steps->end());
  const std::vector<std::string> ids = domain::EmailTemplateIdsOf(in);
  if (ids.empty()) {
    for (v1::Step& step : *steps) {
      if (step.has_email()) step.mutable_email()->set_email_template_version(0);
    }
    return absl::OkStatus();
  }
  // An id outside the grammar names nothing a caller could have been given: refused up front.
  domain::FieldViolations bad_ids;
  for (int i = 0; i < steps->size(); ++i) {
    const v1::Step& step = steps->Get(i);
    if (step.has_email() && !step.email().email_template_id().empty() &&
        !IsValidId(step.email().email_template_id())) {
      bad_ids.Add(absl::StrCat("steps[", i, "].email.email_template_id"), kIdRule);
    }
  }
  if (!bad_ids.empty()) return bad_ids.ToStatus("invalid email template id");
  std::map<std::string, domain::EmailTemplateState> templates;
  for (const std::string& id : ids) {
    absl::StatusOr<domain::EmailTemplateState> t = read_model.LoadEmailTemplateState(id);
    if (!t.ok()) return t.status();
    templates.emplace(id, std::move(*t));
  }
  absl::StatusOr<std::vector<v1::Step>> copied =
      domain::CopyEmailTemplatesIntoSteps(in, current_steps, templates, ctx.company_id);
  if (!copied.ok()) return copied.status();
  steps->Clear();
  for (v1::Step& step : *copied) *steps->Add() = std::move(step);
  return absl::OkStatus();
}

}  // namespace sequences::api
