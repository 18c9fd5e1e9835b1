#include "libs/domain/validation.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/errors.h"
#include "libs/domain/render.h"
#include "libs/domain/schedule.h"
#include "libs/domain/variants.h"

namespace sequences::domain {
namespace {

bool ValidStepId(const std::string& id) {
  if (id.empty() || id.size() > static_cast<size_t>(kMaxStepIdLength)) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool ValidTimeOfDay(const v1::TimeOfDay& t, bool allow_24) {
  if (allow_24 && t.hours() == 24 && t.minutes() == 0) return true;
  return t.hours() >= 0 && t.hours() <= 23 && t.minutes() >= 0 && t.minutes() <= 59;
}

bool UserChoiceSet(const v1::UserChoice& u) {
  return (u.choice_case() == v1::UserChoice::kUserId && !u.user_id().empty()) ||
         (u.choice_case() == v1::UserChoice::kItemOwner && u.item_owner());
}

void CheckMergeText(const std::string& path, const std::string& text, FieldViolations* v) {
  absl::StatusOr<std::vector<MergeField>> fields = ParseMergeFields(text, path);
  if (!fields.ok()) v->AddAllFrom("", fields.status());
}

// An email's subject and body (of the step, or of one of its variants, or of an email template
// when `path` is empty) at `path`.
void CheckEmailText(const std::string& path, const std::string& subject, const std::string& body,
                    FieldViolations* v) {
  const std::string pre = path.empty() ? "" : path + ".";
  if (subject.empty()) v->Add(pre + "subject", "is required");
  if (subject.size() > static_cast<size_t>(kMaxSubjectLength)) {
    v->Add(pre + "subject", absl::StrCat("must be at most ", kMaxSubjectLength, " bytes"));
  }
  if (body.empty()) v->Add(pre + "body", "is required");
  if (body.size() > static_cast<size_t>(kMaxBodyLength)) {
    v->Add(pre + "body", absl::StrCat("must be at most ", kMaxBodyLength, " bytes"));
  }
  CheckMergeText(pre + "subject", subject, v);
  CheckMergeText(pre + "body", body, v);
}

void CheckDelay(const std::string& path, const v1::Delay& delay, FieldViolations* v) {
  int max = 0;
  const char* unit = "";
  switch (delay.unit()) {
    case v1::DELAY_UNIT_MINUTES:
      max = kMaxDelayMinutes;
      unit = "minutes";
      break;
    case v1::DELAY_UNIT_HOURS:
      max = kMaxDelayHours;
      unit = "hours";
      break;
    case v1::DELAY_UNIT_DAYS:
      max = kMaxDelayDays;
      unit = "days";
      break;
    case v1::DELAY_UNIT_BUSINESS_DAYS:
      max = kMaxDelayBusinessDays;
      unit = "business days";
      break;
    default:
      v->Add(absl::StrCat(path, ".unit"), "must be minutes, hours, days or business days");
      return;
  }
  if (delay.amount() < 0 || delay.amount() > max) {
    v->Add(absl::StrCat(path, ".amount"), absl::StrCat("must be between 0 and ", max, " ", unit));
  }
}

void CheckStep(const std::string& path, const v1::Step& step, FieldViolations* v) {
  if (!ValidStepId(step.id())) {
    v->Add(absl::StrCat(path, ".id"),
           absl::StrCat("must be 1 to ", kMaxStepIdLength, " characters of [A-Za-z0-9_-]"));
  }
  CheckDelay(absl::StrCat(path, ".delay"), step.delay(), v);
  if (step.has_at_time() && !ValidTimeOfDay(step.at_time(), false)) {
    v->Add(absl::StrCat(path, ".at_time"), "must be a time of day between 00:00 and 23:59");
  }
  switch (step.action_case()) {
    case v1::Step::kActivity: {
      const v1::ActivityStep& a = step.activity();
      const std::string p = absl::StrCat(path, ".activity");
      if (a.activity_type().empty()) v->Add(p + ".activity_type", "is required");
      if (a.subject().empty()) v->Add(p + ".subject", "is required");
      if (a.subject().size() > static_cast<size_t>(kMaxSubjectLength)) {
        v->Add(p + ".subject", absl::StrCat("must be at most ", kMaxSubjectLength, " bytes"));
      }
      if (!UserChoiceSet(a.assignee()))
        v->Add(p + ".assignee", "must name a user or the item owner");
      if (a.has_due_time() && !ValidTimeOfDay(a.due_time(), false)) {
        v->Add(p + ".due_time", "must be a time of day between 00:00 and 23:59");
      }
      break;
    }
    case v1::Step::kEmail: {
      const v1::EmailStep& e = step.email();
      const std::string p = absl::StrCat(path, ".email");
      if (!UserChoiceSet(e.sender())) v->Add(p + ".sender", "must name a user or the item owner");
      if (e.variants().empty()) {
        CheckEmailText(p, e.subject(), e.body(), v);
        break;
      }
      if (e.variants_size() < kMinEmailVariants || e.variants_size() > kMaxEmailVariants) {
        v->Add(p + ".variants", absl::StrCat("an A/B test has ", kMinEmailVariants, " to ",
                                             kMaxEmailVariants, " variants"));
      }
      if (!e.subject().empty()) {
        v->Add(p + ".subject", "must be empty when the step has variants (each has its own)");
      }
      if (!e.body().empty()) {
        v->Add(p + ".body", "must be empty when the step has variants (each has its own)");
      }
      std::set<std::string> variant_ids;
      for (int i = 0; i < e.variants_size(); ++i) {
        const v1::EmailVariant& variant = e.variants(i);
        const std::string vp = absl::StrCat(p, ".variants[", i, "]");
        if (variant.id().empty() ||
            variant.id().size() > static_cast<size_t>(kMaxVariantIdLength) ||
            !ValidStepId(variant.id())) {
          v->Add(vp + ".id", absl::StrCat("must be 1 to ", kMaxVariantIdLength,
                                          " characters of [A-Za-z0-9_-]"));
        } else if (!variant_ids.insert(variant.id()).second) {
          v->Add(vp + ".id", absl::StrCat("duplicate variant id \"", variant.id(), "\""));
        }
        if (variant.weight() < 1 || variant.weight() > kMaxVariantWeight) {
          v->Add(vp + ".weight", absl::StrCat("must be between 1 and ", kMaxVariantWeight));
        }
        CheckEmailText(vp, variant.subject(), variant.body(), v);
      }
      break;
    }
    default:
      v->Add(absl::StrCat(path, ".action"), "must be an activity or an email step");
  }
}

void CheckSteps(absl::string_view prefix, absl::Span<const v1::Step> steps, FieldViolations* v) {
  if (steps.size() > static_cast<size_t>(kMaxSteps)) {
    v->Add(prefix, absl::StrCat("at most ", kMaxSteps, " steps"));
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string path = absl::StrCat(prefix, "[", i, "]");
    CheckStep(path, steps[i], v);
    if (!steps[i].id().empty() && !ids.insert(steps[i].id()).second) {
      v->Add(path + ".id", absl::StrCat("duplicate step id \"", steps[i].id(), "\""));
    }
  }
}

void CheckSettings(absl::string_view prefix, const v1::SequenceSettings& s, FieldViolations* v) {
  if (!s.default_time_zone().empty() && !IsValidTimeZoneName(s.default_time_zone())) {
    v->Add(absl::StrCat(prefix, ".default_time_zone"), "must be an IANA time zone name");
  }
  std::vector<std::vector<std::pair<int, int>>> by_day(8);
  for (int i = 0; i < s.send_window().ranges_size(); ++i) {
    const v1::WindowRange& r = s.send_window().ranges(i);
    const std::string p = absl::StrCat(prefix, ".send_window.ranges[", i, "]");
    bool ok = true;
    if (r.weekday() < v1::WEEKDAY_MONDAY || r.weekday() > v1::WEEKDAY_SUNDAY) {
      v->Add(p + ".weekday", "must be a weekday");
      ok = false;
    }
    if (!ValidTimeOfDay(r.start(), false)) {
      v->Add(p + ".start", "must be a time of day between 00:00 and 23:59");
      ok = false;
    }
    if (!ValidTimeOfDay(r.end(), true)) {
      v->Add(p + ".end", "must be a time of day between 00:01 and 24:00");
      ok = false;
    }
    if (!ok) continue;
    const int start = r.start().hours() * 60 + r.start().minutes();
    const int end = r.end().hours() * 60 + r.end().minutes();
    if (start >= end) {
      v->Add(p + ".end", "must be after start");
      continue;
    }
    for (const auto& [s2, e2] : by_day[r.weekday()]) {
      if (start < e2 && s2 < end) {
        v->Add(p, "overlaps another range of the same weekday");
        break;
      }
    }
    by_day[r.weekday()].emplace_back(start, end);
  }
  if (s.holidays_size() > kMaxHolidays) {
    v->Add(absl::StrCat(prefix, ".holidays"), absl::StrCat("at most ", kMaxHolidays, " holidays"));
  }
  for (int i = 0; i < s.holidays_size(); ++i) {
    const v1::Date& d = s.holidays(i);
    const absl::CivilDay day(d.year(), d.month(), d.day());
    if (d.year() < 1970 || d.year() > 9999 || day.year() != d.year() || day.month() != d.month() ||
        day.day() != d.day()) {
      v->Add(absl::StrCat(prefix, ".holidays[", i, "]"), "must be a valid date");
    }
  }
}

}  // namespace

absl::Status ValidateSteps(absl::Span<const v1::Step> steps) {
  FieldViolations v;
  CheckSteps("steps", steps, &v);
  return v.ToStatus("invalid steps");
}

absl::Status ValidateSettings(const v1::SequenceSettings& settings) {
  FieldViolations v;
  CheckSettings("settings", settings, &v);
  return v.ToStatus("invalid settings");
}

absl::Status ValidateSequenceDefinition(absl::string_view name, v1::EntityKind entity_kind,
                                        absl::Span<const v1::Step> steps,
                                        const v1::SequenceSettings& settings) {
  FieldViolations v;
  if (name.empty() || name.size() > static_cast<size_t>(kMaxNameLength)) {
    v.Add("name", absl::StrCat("must be 1 to ", kMaxNameLength, " bytes"));
  }
  if (entity_kind != v1::ENTITY_KIND_DEAL && entity_kind != v1::ENTITY_KIND_LEAD) {
    v.Add("entity_kind", "must be deal or lead");
  }
  CheckSteps("steps", steps, &v);
  CheckSettings("settings", settings, &v);
  return v.ToStatus("invalid sequence");
}

absl::Status ValidateEmailTemplateContent(const v1::EmailTemplateContent& content) {
  FieldViolations v;
  if (content.name().empty() || content.name().size() > static_cast<size_t>(kMaxNameLength)) {
    v.Add("name", absl::StrCat("must be 1 to ", kMaxNameLength, " bytes"));
  }
  // The same rules as a step's email text.
  CheckEmailText("", content.subject(), content.body(), &v);
  return v.ToStatus("invalid email template");
}

absl::Status ValidateEnrollRequested(const v1::EnrollRequested& r) {
  FieldViolations v;
  if (r.request_id().empty()) v.Add("request_id", "is required");
  if (r.sequence_id().empty()) v.Add("sequence_id", "is required");
  if (r.owner_id().empty()) v.Add("owner_id", "is required");
  absl::StatusOr<ItemKey> key = ParseItemKey(r.item_key());
  if (!key.ok()) {
    v.AddAllFrom("", key.status());
  } else if (r.entity_kind() != v1::ENTITY_KIND_UNSPECIFIED &&
             r.entity_kind() != EntityKindOf(*key)) {
    v.Add("entity_kind", "must match the entity of item_key");
  }
  const std::pair<const char*, const std::string*> zones[] = {
      {"time_zones.recipient", &r.time_zones().recipient()},
      {"time_zones.owner", &r.time_zones().owner()},
      {"time_zones.company", &r.time_zones().company()}};
  for (const auto& [path, name] : zones) {
    if (!name->empty() && !IsValidTimeZoneName(*name))
      v.Add(path, "must be an IANA time zone name");
  }
  return v.ToStatus("invalid enroll request");
}

absl::Status CheckEnrollmentComplete(const v1::EnrollRequested& r,
                                     absl::Span<const v1::Step> steps) {
  FieldViolations v;
  bool recipient_reported = false;
  std::set<std::string> fields_reported;
  const MergeData data(r.merge_data().begin(), r.merge_data().end());
  for (const v1::Step& step : steps) {
    if (!step.has_email()) continue;
    const v1::EmailStep& email = step.email();
    if (r.recipient().email().empty() && !recipient_reported) {
      recipient_reported = true;
      v.Add("recipient.email", absl::StrCat("is required: email step ", step.id(),
                                            " fails with recipient_missing without it"));
    }
    if (!email.send_automatically()) continue;  // a draft is reviewed: unfilled fields show
    std::vector<const std::string*> texts = {&email.subject(), &email.body()};
    for (const v1::EmailVariant& variant : email.variants()) {  // any variant may be drawn
      texts.push_back(&variant.subject());
      texts.push_back(&variant.body());
    }
    for (const std::string* text : texts) {
      absl::StatusOr<Rendered> rendered = Render(*text, data, Escape::kNone);
      if (!rendered.ok()) continue;  // ValidateSteps refused it when the sequence was saved
      for (const std::string& field : rendered->missing_fields) {
        if (!fields_reported.insert(field).second) continue;
        v.Add(absl::StrCat("merge_data[\"", field, "\"]"),
              absl::StrCat("is required: automatic email step ", step.id(),
                           " uses it without a fallback and fails with missing_merge_field"));
      }
    }
  }
  return v.ToStatus("the enrollment is certain to fail at a step");
}

}  // namespace sequences::domain
