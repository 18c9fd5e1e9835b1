#include "libs/domain/validation.h"

#include <catch2/catch.hpp>

#include "libs/domain/errors.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

std::vector<std::string> Fields(const absl::Status& st) {
  std::vector<std::string> out;
  for (const FieldViolation& v : GetFieldViolations(st)) out.push_back(v.field);
  return out;
}

TEST_CASE("A well-formed definition is valid", "[validation]") {
  v1::SequenceSettings settings;
  settings.set_default_time_zone("Australia/Lord_Howe");
  CHECK(ValidateSequenceDefinition("Name", v1::ENTITY_KIND_LEAD,
                                   {ActivityStep("a", v1::DELAY_UNIT_DAYS, 1),
                                    EmailStep("b", v1::DELAY_UNIT_BUSINESS_DAYS, 2, true)},
                                   settings)
            .ok());
}

TEST_CASE("Delays out of range name the amount, a missing unit names the unit", "[validation]") {
  std::vector<v1::Step> steps = {ActivityStep("a", v1::DELAY_UNIT_DAYS, 366),
                                 ActivityStep("b", v1::DELAY_UNIT_MINUTES, -1),
                                 ActivityStep("c", v1::DELAY_UNIT_UNSPECIFIED, 1),
                                 ActivityStep("d", v1::DELAY_UNIT_BUSINESS_DAYS, 261)};
  CHECK(Fields(ValidateSteps(steps)) ==
        std::vector<std::string>{"steps[0].delay.amount", "steps[1].delay.amount",
                                 "steps[2].delay.unit", "steps[3].delay.amount"});
}

TEST_CASE("Step ids must be well-formed and unique", "[validation]") {
  std::vector<v1::Step> steps = {
      ActivityStep("a", v1::DELAY_UNIT_DAYS, 1), ActivityStep("a", v1::DELAY_UNIT_DAYS, 1),
      ActivityStep("bad id", v1::DELAY_UNIT_DAYS, 1), ActivityStep("", v1::DELAY_UNIT_DAYS, 1)};
  CHECK(Fields(ValidateSteps(steps)) ==
        std::vector<std::string>{"steps[1].id", "steps[2].id", "steps[3].id"});
}

TEST_CASE("Activity and email steps need their fields, merge syntax must parse", "[validation]") {
  v1::Step a = ActivityStep("a", v1::DELAY_UNIT_DAYS, 1);
  a.mutable_activity()->clear_subject();
  a.mutable_activity()->clear_assignee();
  a.mutable_activity()->mutable_due_time()->set_hours(25);
  v1::Step e = EmailStep("e", v1::DELAY_UNIT_DAYS, 1, true, "Hi {{ name", "");
  e.mutable_email()->clear_sender();
  v1::Step none;
  none.set_id("n");
  none.mutable_delay()->set_unit(v1::DELAY_UNIT_DAYS);
  none.mutable_at_time()->set_minutes(60);
  CHECK(Fields(ValidateSteps({a, e, none})) ==
        std::vector<std::string>{"steps[0].activity.subject", "steps[0].activity.assignee",
                                 "steps[0].activity.due_time", "steps[1].email.sender",
                                 "steps[1].email.body", "steps[1].email.subject",
                                 "steps[2].at_time", "steps[2].action"});
}

TEST_CASE("Too many steps is refused", "[validation]") {
  std::vector<v1::Step> steps;
  for (int i = 0; i <= kMaxSteps; ++i) {
    steps.push_back(ActivityStep(absl::StrCat("s", i), v1::DELAY_UNIT_DAYS, 1));
  }
  CHECK(Fields(ValidateSteps(steps)) == std::vector<std::string>{"steps"});
}

TEST_CASE("Settings: time zone, window sanity, holidays", "[validation]") {
  v1::SequenceSettings s;
  s.set_default_time_zone("Europe/Berlinn");
  auto add = [&](v1::Weekday d, int sh, int eh, int em = 0) {
    v1::WindowRange* r = s.mutable_send_window()->add_ranges();
    r->set_weekday(d);
    r->mutable_start()->set_hours(sh);
    r->mutable_end()->set_hours(eh);
    r->mutable_end()->set_minutes(em);
  };
  add(v1::WEEKDAY_MONDAY, 8, 12);
  add(v1::WEEKDAY_MONDAY, 11, 14);     // overlaps
  add(v1::WEEKDAY_TUESDAY, 10, 9);     // end before start
  add(v1::WEEKDAY_UNSPECIFIED, 8, 9);  // no weekday
  add(v1::WEEKDAY_FRIDAY, 8, 24, 30);  // end past 24:00
  add(v1::WEEKDAY_SUNDAY, 0, 24);      // fine
  v1::Date* d = s.add_holidays();
  d->set_year(2023);
  d->set_month(2);
  d->set_day(29);  // not a leap year
  v1::Date* ok = s.add_holidays();
  ok->set_year(2024);
  ok->set_month(2);
  ok->set_day(29);
  CHECK(Fields(ValidateSettings(s)) ==
        std::vector<std::string>{"settings.default_time_zone", "settings.send_window.ranges[1]",
                                 "settings.send_window.ranges[2].end",
                                 "settings.send_window.ranges[3].weekday",
                                 "settings.send_window.ranges[4].end", "settings.holidays[0]"});
}

TEST_CASE("Name and entity kind are required", "[validation]") {
  CHECK(Fields(ValidateSequenceDefinition("", v1::ENTITY_KIND_UNSPECIFIED, {}, {})) ==
        std::vector<std::string>{"name", "entity_kind"});
  CHECK(Fields(ValidateSequenceDefinition(std::string(kMaxNameLength + 1, 'x'),
                                          v1::ENTITY_KIND_DEAL, {}, {})) ==
        std::vector<std::string>{"name"});
}

TEST_CASE("Enroll requests: ids, item key, entity match and time zones", "[validation]") {
  v1::EnrollRequested r = Enroll().enroll_requested();
  CHECK(ValidateEnrollRequested(r).ok());
  r.set_item_key("c1/person/1");
  r.set_entity_kind(v1::ENTITY_KIND_DEAL);
  r.mutable_time_zones()->set_owner("Nowhere/City");
  r.clear_request_id();
  CHECK(Fields(ValidateEnrollRequested(r)) ==
        std::vector<std::string>{"request_id", "item_key", "time_zones.owner"});
  r = Enroll().enroll_requested();
  r.set_entity_kind(v1::ENTITY_KIND_LEAD);
  CHECK(Fields(ValidateEnrollRequested(r)) == std::vector<std::string>{"entity_kind"});
  r.set_item_key("c1//1");
  CHECK(Fields(ValidateEnrollRequested(r)) == std::vector<std::string>{"item_key"});
}

TEST_CASE(
    "Given a sequence with an email step, when the item has no recipient, then the enroll "
    "is certain to fail and names recipient.email once",
    "[validation][completeness]") {
  v1::EnrollRequested r;
  (*r.mutable_merge_data())["person.first_name"] = "Ada";
  const std::vector<v1::Step> steps = {ActivityStep("call", v1::DELAY_UNIT_DAYS, 1),
                                       EmailStep("draft", v1::DELAY_UNIT_DAYS, 1, false),
                                       EmailStep("auto", v1::DELAY_UNIT_DAYS, 1, true)};
  const absl::Status st = CheckEnrollmentComplete(r, steps);
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(Fields(st) == std::vector<std::string>{"recipient.email"});
  CHECK(GetFieldViolations(st)[0].description.find("draft") != std::string::npos);

  r.mutable_recipient()->set_email("ada@example.com");
  CHECK(CheckEnrollmentComplete(r, steps).ok());
  CHECK(
      CheckEnrollmentComplete(v1::EnrollRequested(), {ActivityStep("call", v1::DELAY_UNIT_DAYS, 1)})
          .ok());
}

TEST_CASE(
    "Given automatic emails, when merge data lacks a field no fallback covers, then each "
    "missing field is named once, drafts, fallbacks and filled fields are not",
    "[validation][completeness]") {
  v1::EnrollRequested r;
  r.mutable_recipient()->set_email("ada@example.com");
  (*r.mutable_merge_data())["deal.title"] = "Big deal";
  (*r.mutable_merge_data())["person.title"] = "";  // empty counts as missing, as at fire time
  const std::vector<v1::Step> steps = {
      EmailStep("draft", v1::DELAY_UNIT_DAYS, 1, false, "About {{person.last_name}}", "x"),
      EmailStep("auto-1", v1::DELAY_UNIT_DAYS, 1, true, "{{deal.title}} for {{person.first_name}}",
                "Dear {{person.title}} {{company.name | \"friend\"}}"),
      EmailStep("auto-2", v1::DELAY_UNIT_DAYS, 1, true, "Again {{person.first_name}}", "Hi")};
  const absl::Status st = CheckEnrollmentComplete(r, steps);
  CHECK(Fields(st) == std::vector<std::string>{"merge_data[\"person.first_name\"]",
                                               "merge_data[\"person.title\"]"});
  CHECK(GetFieldViolations(st)[0].description.find("auto-1") != std::string::npos);

  (*r.mutable_merge_data())["person.first_name"] = "Ada";
  (*r.mutable_merge_data())["person.title"] = "Dr";
  CHECK(CheckEnrollmentComplete(r, steps).ok());
}

}  // namespace
}  // namespace sequences::domain
