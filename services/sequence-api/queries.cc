#include "services/sequence-api/queries.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/domain/enrollment.h"
#include "libs/domain/enrollment_preview.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/history.h"
#include "libs/domain/schedule.h"
#include "libs/domain/send_limits.h"
#include "libs/domain/templates.h"
#include "libs/domain/validation.h"
#include "services/sequence-api/call_checks.h"
#include "services/sequence-api/rpc_status.h"

namespace sequences::api {

// ---------------------------------------------------------------- sequences

absl::StatusOr<v1::CompanySendingSettingsResponse> Queries::GetCompanySendingSettings(
    const Ctx& ctx, const v1::GetCompanySendingSettingsRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<domain::CompanySendingState> state =
      ports_.read_model.LoadCompanySending(*company);
  if (!state.ok()) return state.status();
  v1::CompanySendingSettingsResponse reply;
  *reply.mutable_settings() = domain::EffectiveSendingSettings(state->settings);
  reply.set_version(state->version);
  return reply;
}

absl::StatusOr<v1::Sequence> Queries::GetSequence(const Ctx& ctx,
                                                  const v1::GetSequenceRequest& req) {
  absl::StatusOr<SequenceName> name = ParseOwnSequence(ctx, req.name(), "name");
  if (!name.ok()) return name.status();
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<std::optional<v1::Sequence>> seq =
      ports_.read_model.GetSequence(name->sequence_id);
  if (!seq.ok()) return seq.status();
  if (!seq->has_value() || (*seq)->name() != req.name()) {
    return SequenceNotFound(name->sequence_id);
  }
  return **seq;
}

absl::StatusOr<v1::ListSequencesResponse> Queries::ListSequences(
    const Ctx& ctx, const v1::ListSequencesRequest& req) {
  absl::StatusOr<std::string> company = ParseOwnCompany(ctx, req.parent(), "parent");
  if (!company.ok()) return company.status();
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  if (req.entity_kind() != v1::ENTITY_KIND_UNSPECIFIED && EntityName(req.entity_kind()).empty()) {
    return domain::InvalidField("entity_kind", "must be DEAL or LEAD when set");
  }
  if (!req.owner_id().empty() && !IsValidUserId(req.owner_id())) {
    return domain::InvalidField("owner_id", kUserIdRule);
  }
  // The filters are part of the listing a page token is bound to.
  const std::string listing = absl::StrCat("sequences/", *company, "/", req.show_deleted(), "/",
                                           req.entity_kind(), "/", req.owner_id());
  absl::StatusOr<std::string> page_start = ports_.PageStart(ctx, listing, req.page_token());
  if (!page_start.ok()) return page_start.status();
  const std::string& after = *page_start;
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  const int limit = PageSize(req.page_size(), 50, 500);
  auto matches = [&](const v1::Sequence& s) {
    return (req.entity_kind() == v1::ENTITY_KIND_UNSPECIFIED ||
            s.entity_kind() == req.entity_kind()) &&
           (req.owner_id().empty() || s.owner_id() == req.owner_id());
  };
  // Scans in chunks until limit + 1 sequences match (one more than a page says whether another
  // page exists) or the company's sequences end.
  std::vector<v1::Sequence> matched;
  for (std::string cursor = after; static_cast<int>(matched.size()) <= limit;) {
    absl::StatusOr<std::vector<v1::Sequence>> chunk =
        ports_.read_model.ListSequences(*company, cursor, limit + 1, req.show_deleted());
    if (!chunk.ok()) return chunk.status();
    for (v1::Sequence& s : *chunk) {
      if (static_cast<int>(matched.size()) > limit) break;
      if (matches(s)) matched.push_back(s);
    }
    if (static_cast<int>(chunk->size()) < limit + 1) break;
    absl::StatusOr<SequenceName> last = ParseSequenceName(chunk->back().name(), "name");
    if (!last.ok()) return last.status();
    cursor = last->sequence_id;
  }
  v1::ListSequencesResponse out;
  for (int i = 0; i < static_cast<int>(matched.size()) && i < limit; ++i) {
    *out.add_sequences() = matched[i];
  }
  if (static_cast<int>(matched.size()) > limit) {
    absl::StatusOr<SequenceName> last = ParseSequenceName(matched[limit - 1].name(), "name");
    if (last.ok()) {
      out.set_next_page_token(ports_.signer.Sign(ctx.company_id, listing, last->sequence_id));
    }
  }
  return out;
}

absl::StatusOr<v1::ListSequenceTemplatesResponse> Queries::ListSequenceTemplates(
    const Ctx& ctx, const v1::ListSequenceTemplatesRequest& req) {
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  int start = 0;
  if (!req.page_token().empty()) {
    absl::StatusOr<std::string> t =
        ports_.signer.Verify(ctx.company_id, "templates", req.page_token(), "page_token");
    if (!t.ok()) return t.status();
    if (!absl::SimpleAtoi(*t, &start) || start < 0) {
      return domain::InvalidField("page_token", "is not a token returned by this listing");
    }
  }
  absl::Span<const v1::SequenceTemplate> all = domain::TemplateCatalog();
  const int limit = PageSize(req.page_size(), 50, 500);
  v1::ListSequenceTemplatesResponse out;
  int i = start;
  for (; i < static_cast<int>(all.size()) && i < start + limit; ++i) *out.add_templates() = all[i];
  if (i < static_cast<int>(all.size())) {
    out.set_next_page_token(ports_.signer.Sign(ctx.company_id, "templates", absl::StrCat(i)));
  }
  return out;
}

absl::StatusOr<v1::PreviewScheduleResponse> Queries::PreviewSchedule(
    const Ctx& ctx, const v1::PreviewScheduleRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), "name");
  if (!n.ok()) return n.status();
  if (req.max_impacts() < 0) return domain::InvalidField("max_impacts", "must not be negative");
  if (!req.time_zone().empty() && !domain::IsValidTimeZoneName(req.time_zone())) {
    return domain::InvalidField("time_zone", "is not an IANA time zone name");
  }
  if (req.has_start_time()) {
    if (absl::Status s = CheckTimestamp(req.start_time(), "start_time"); !s.ok()) return s;
  }
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<domain::SequenceState> state =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!state.ok()) return state.status();
  std::vector<v1::Step> steps = state->steps;
  if (req.has_proposed_steps()) {
    // Proposed steps may name email templates, as a save would copy them.
    google::protobuf::RepeatedPtrField<v1::Step> proposed = req.proposed_steps();
    if (absl::Status s = CopyEmailTemplates(ports_.read_model, ctx, state->steps, &proposed);
        !s.ok()) {
      return RemapFieldPaths(s, {{"steps", "proposed_steps"}});
    }
    steps.assign(proposed.begin(), proposed.end());
    if (absl::Status s = domain::ValidateSteps(steps); !s.ok()) {
      return RemapFieldPaths(s, {{"steps", "proposed_steps"}});
    }
  }
  const std::string tz_name = !req.time_zone().empty() ? req.time_zone()
                              : state->settings.default_time_zone().empty()
                                  ? std::string("UTC")
                                  : state->settings.default_time_zone();
  // Microseconds, as the executor decides (its `now` and every due time are whole microseconds).
  const absl::Time now = absl::FromUnixMicros(absl::ToUnixMicros(ports_.clock.Now()));
  const absl::Time start = req.has_start_time() ? domain::FromProto(req.start_time()) : now;
  v1::PreviewScheduleResponse out;
  *out.mutable_previewed_at() = domain::ToProto(now);
  for (v1::ScheduledStep& s :
       domain::PreviewSchedule(steps, state->settings, start, domain::LoadZoneOrUtc(tz_name))) {
    *out.add_schedule() = std::move(s);
  }
  if (req.has_proposed_steps()) {
    bool more = false;
    absl::StatusOr<std::vector<domain::EnrollmentState>> active =
        ports_.read_model.ActiveEnrollments(n->company_id, n->sequence_id,
                                            PageSize(req.max_impacts(), 100, 1000), &more);
    if (!active.ok()) return active.status();
    for (const domain::EnrollmentState& e : *active) {
      *out.add_impacts() = domain::PreviewEdit(e, *state, steps, now);
    }
    out.set_impacts_truncated(more);
  }
  return out;
}

// ---------------------------------------------------------------- enrollments

absl::StatusOr<v1::Enrollment> Queries::GetEnrollment(const Ctx& ctx,
                                                      const v1::GetEnrollmentRequest& req) {
  absl::StatusOr<EnrollmentName> n = ParseEnrollmentName(req.name(), "name");
  if (!n.ok()) return n.status();
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("enrollment ", req.name(), " not found"));
  if (n->company_id != ctx.company_id) return not_found;
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<std::optional<EnrollmentRecord>> rec =
      ports_.read_model.LoadEnrollment(n->ItemKey(), n->sequence_id);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return not_found;
  return (*rec)->view;
}

absl::StatusOr<v1::ListEnrollmentsResponse> Queries::ListEnrollments(
    const Ctx& ctx, const v1::ListEnrollmentsRequest& req) {
  EnrollmentFilter f;
  const std::string all_suffix = "/sequences/-";
  if (absl::EndsWith(req.parent(), all_suffix)) {
    absl::StatusOr<std::string> c = ParseOwnCompany(
        ctx, req.parent().substr(0, req.parent().size() - all_suffix.size()), "parent");
    if (!c.ok()) return c.status();
    if (req.owner_id().empty()) {
      return domain::InvalidField("owner_id", "is required when listing across sequences");
    }
    f.company_id = *c;
  } else {
    absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.parent(), "parent");
    if (!n.ok()) return n.status();
    f.company_id = n->company_id;
    f.sequence_id = n->sequence_id;
  }
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  f.status = req.status();
  f.owner_id = req.owner_id();
  f.pending_only = req.pending_only();
  const std::string listing = absl::StrCat("enrollments/", req.parent(), "/", req.status(), "/",
                                           req.owner_id(), "/", req.pending_only());
  absl::StatusOr<std::string> page_start = ports_.PageStart(ctx, listing, req.page_token());
  if (!page_start.ok()) return page_start.status();
  const std::string& after = *page_start;
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  if (!f.sequence_id.empty()) {
    absl::StatusOr<domain::SequenceState> seq =
        LoadOwnSequence(ports_.read_model, ctx, f.sequence_id);
    if (!seq.ok()) return seq.status();
  }
  const int limit = PageSize(req.page_size(), 50, 1000);
  std::string last_key;
  absl::StatusOr<std::vector<v1::Enrollment>> list =
      ports_.read_model.ListEnrollments(f, after, limit, &last_key);
  if (!list.ok()) return list.status();
  v1::ListEnrollmentsResponse out;
  for (v1::Enrollment& e : *list) *out.add_enrollments() = std::move(e);
  if (static_cast<int>(out.enrollments_size()) == limit) {
    // Another page may exist; an empty last page is possible (as the design guide allows).
    out.set_next_page_token(ports_.signer.Sign(ctx.company_id, listing, last_key));
  }
  return out;
}

absl::StatusOr<v1::EnrollmentOverview> Queries::GetEnrollmentOverview(
    const Ctx& ctx, const v1::GetEnrollmentOverviewRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.parent(), "parent");
  if (!n.ok()) return n.status();
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<domain::SequenceState> seq =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  absl::StatusOr<v1::EnrollmentOverview> o =
      ports_.read_model.Overview(n->company_id, n->sequence_id);
  if (!o.ok()) return o.status();
  o->set_sequence(req.parent());
  return o;
}

absl::StatusOr<v1::SequenceStatistics> Queries::GetSequenceStatistics(
    const Ctx& ctx, const v1::GetSequenceStatisticsRequest& req) {
  absl::StatusOr<SequenceName> n = ParseOwnSequence(ctx, req.name(), "name");
  if (!n.ok()) return n.status();
  if (!req.day().empty()) {
    absl::CivilDay day;
    if (req.day().size() != 10 || !absl::ParseCivilTime(req.day(), &day) ||
        absl::FormatCivilTime(day) != req.day()) {
      return domain::InvalidField("day", "must be a date YYYY-MM-DD (UTC), or empty for all time");
    }
  }
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<domain::SequenceState> seq =
      LoadOwnSequence(ports_.read_model, ctx, n->sequence_id);
  if (!seq.ok()) return seq.status();
  std::vector<std::string> step_order;
  for (const v1::Step& step : seq->steps) step_order.push_back(step.id());
  absl::StatusOr<v1::SequenceStatistics> stats =
      ports_.read_model.Statistics(n->sequence_id, req.day(), step_order);
  if (!stats.ok()) return stats.status();
  stats->set_sequence(req.name());
  return stats;
}

absl::StatusOr<v1::ListEnrollmentEventsResponse> Queries::ListEnrollmentEvents(
    const Ctx& ctx, const v1::ListEnrollmentEventsRequest& req) {
  absl::StatusOr<EnrollmentName> n = ParseEnrollmentName(req.name(), "name");
  if (!n.ok()) return n.status();
  const absl::Status not_found =
      absl::NotFoundError(absl::StrCat("enrollment ", req.name(), " not found"));
  if (n->company_id != ctx.company_id) return not_found;
  if (absl::Status s = CheckPageSize(req.page_size()); !s.ok()) return s;
  const std::string listing = absl::StrCat("enrollment-events/", req.name());
  int64_t after = -1;
  absl::StatusOr<std::string> page_start = ports_.PageStart(ctx, listing, req.page_token());
  if (!page_start.ok()) return page_start.status();
  if (!page_start->empty()) {
    if (!absl::SimpleAtoi(*page_start, &after)) {
      return domain::InvalidField("page_token", "is not a token returned by this listing");
    }
  }
  if (absl::Status s = ports_.WaitForConsistencyToken(ctx, req.consistency_token()); !s.ok())
    return s;
  absl::StatusOr<std::optional<EnrollmentRecord>> rec =
      ports_.read_model.LoadEnrollment(n->ItemKey(), n->sequence_id);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return not_found;
  const int limit = PageSize(req.page_size(), 50, 1000);
  absl::StatusOr<std::vector<std::pair<int64_t, v1::Envelope>>> events =
      ports_.read_model.EnrollmentEvents(n->ItemKey(), n->sequence_id, after, limit);
  if (!events.ok()) return events.status();
  v1::ListEnrollmentEventsResponse out;
  for (auto& [offset, e] : *events) {
    v1::EnrollmentEvent* out_event = out.add_events();
    *out_event->mutable_time() = e.occurred_at();
    out_event->set_description(domain::DescribeExecutorEvent(e));
    *out_event->mutable_event() = std::move(e);
  }
  if (static_cast<int>(events->size()) == limit) {
    out.set_next_page_token(
        ports_.signer.Sign(ctx.company_id, listing, absl::StrCat(events->back().first)));
  }
  return out;
}

}  // namespace sequences::api
