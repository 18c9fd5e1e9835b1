#include "libs/domain/schedule.h"

#include <catch2/catch.hpp>

#include "libs/domain/envelope.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

v1::Step Delay(v1::DelayUnit unit, int amount, int at_h = -1, int at_m = 0) {
  v1::Step s = ActivityStep("x", unit, amount);
  if (at_h >= 0) {
    s.mutable_at_time()->set_hours(at_h);
    s.mutable_at_time()->set_minutes(at_m);
  }
  return s;
}

Calendar Cal(const std::string& zone) {
  Calendar c;
  c.tz = Zone(zone);
  return c;
}

void AddRange(Calendar* c, v1::Weekday day, int start_h, int start_m, int end_h, int end_m) {
  v1::WindowRange* r = c->window.add_ranges();
  r->set_weekday(day);
  r->mutable_start()->set_hours(start_h);
  r->mutable_start()->set_minutes(start_m);
  r->mutable_end()->set_hours(end_h);
  r->mutable_end()->set_minutes(end_m);
}

void BusinessHours(Calendar* c, int from = 8, int to = 18) {
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    AddRange(c, static_cast<v1::Weekday>(d), from, 0, to, 0);
  }
}

// ---- the DST rule ----

TEST_CASE("New York spring forward: a nonexistent local time resolves to the jump (03:00 EDT)",
          "[schedule][dst]") {
  const absl::Time t =
      FromLocal(absl::CivilSecond(2024, 3, 10, 2, 30, 0), Zone("America/New_York"));
  CHECK(t == Utc(2024, 3, 10, 7, 0));
}

TEST_CASE("New York fall back: a repeated local time resolves to its first occurrence (EDT)",
          "[schedule][dst]") {
  const absl::Time t =
      FromLocal(absl::CivilSecond(2024, 11, 3, 1, 30, 0), Zone("America/New_York"));
  CHECK(t == Utc(2024, 11, 3, 5, 30));
}

TEST_CASE("Berlin both transitions follow the rule", "[schedule][dst]") {
  const absl::TimeZone berlin = Zone("Europe/Berlin");
  CHECK(FromLocal(absl::CivilSecond(2024, 3, 31, 2, 30, 0), berlin) == Utc(2024, 3, 31, 1, 0));
  CHECK(FromLocal(absl::CivilSecond(2024, 10, 27, 2, 30, 0), berlin) == Utc(2024, 10, 27, 0, 30));
}

TEST_CASE("Lord Howe 30-minute DST: gap 02:00-02:30 and repeat 01:30-02:00", "[schedule][dst]") {
  const absl::TimeZone lh = Zone("Australia/Lord_Howe");
  // 2024-10-06 02:00 +10:30 -> 02:30 +11:00.
  CHECK(FromLocal(absl::CivilSecond(2024, 10, 6, 2, 15, 0), lh) == Utc(2024, 10, 5, 15, 30));
  // 2024-04-07 02:00 +11:00 -> 01:30 +10:30: 01:45 occurs twice; the first is +11:00.
  CHECK(FromLocal(absl::CivilSecond(2024, 4, 7, 1, 45, 0), lh) == Utc(2024, 4, 6, 14, 45));
}

TEST_CASE("Apia skipped 2011-12-30: a time on that day resolves to the jump (31st 00:00)",
          "[schedule][dst]") {
  const absl::TimeZone apia = Zone("Pacific/Apia");
  const absl::Time t = FromLocal(absl::CivilSecond(2011, 12, 30, 10, 0, 0), apia);
  CHECK(t == FromLocal(absl::CivilSecond(2011, 12, 31, 0, 0, 0), apia));
  // One day after 2011-12-29 10:00 is a day that did not exist.
  const absl::Time anchor = FromLocal(absl::CivilSecond(2011, 12, 29, 10, 0, 0), apia);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), Cal("Pacific/Apia")) == t);
  // Calendar days count civil dates: the 29th + 2 is the 31st (only 24 hours later).
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 2), Cal("Pacific/Apia")) ==
        FromLocal(absl::CivilSecond(2011, 12, 31, 10, 0, 0), apia));
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 2), Cal("Pacific/Apia")) - anchor ==
        absl::Hours(24));
}

TEST_CASE("Apia 2020/2021 DST: gap 03:00-04:00 in September, repeat 03:00-04:00 in April",
          "[schedule][dst]") {
  const absl::TimeZone apia = Zone("Pacific/Apia");
  CHECK(FromLocal(absl::CivilSecond(2020, 9, 27, 3, 30, 0), apia) == Utc(2020, 9, 26, 14, 0));
  CHECK(FromLocal(absl::CivilSecond(2021, 4, 4, 3, 30, 0), apia) == Utc(2021, 4, 3, 13, 30));
  // A day delay across the September change is 23 hours long.
  const absl::Time anchor = Local("Pacific/Apia", 2020, 9, 26, 9);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), Cal("Pacific/Apia")) - anchor ==
        absl::Hours(23));
}

TEST_CASE("Lord Howe: a day delay across its 30-minute changes lasts 23.5 and 24.5 hours",
          "[schedule][dst]") {
  const Calendar lh = Cal("Australia/Lord_Howe");
  const absl::Time spring = Local("Australia/Lord_Howe", 2024, 10, 5, 9);
  CHECK(ApplyDelay(spring, Delay(v1::DELAY_UNIT_DAYS, 1), lh) - spring ==
        absl::Hours(23) + absl::Minutes(30));
  const absl::Time autumn = Local("Australia/Lord_Howe", 2024, 4, 6, 9);
  CHECK(ApplyDelay(autumn, Delay(v1::DELAY_UNIT_DAYS, 1), lh) - autumn ==
        absl::Hours(24) + absl::Minutes(30));
}

// ---- delays ----

TEST_CASE("A day delay keeps the local time across spring forward (23 hours in New York)",
          "[schedule]") {
  const absl::Time anchor = Local("America/New_York", 2024, 3, 9, 10);
  const absl::Time due = ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), Cal("America/New_York"));
  CHECK(due == Local("America/New_York", 2024, 3, 10, 10));
  CHECK(due - anchor == absl::Hours(23));
}

TEST_CASE("A day delay keeps the local time across fall back (25 hours in Berlin)", "[schedule]") {
  const absl::Time anchor = Local("Europe/Berlin", 2024, 10, 26, 9);
  const absl::Time due = ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), Cal("Europe/Berlin"));
  CHECK(due - anchor == absl::Hours(25));
}

TEST_CASE("An hour delay is absolute across a DST change", "[schedule]") {
  const absl::Time anchor = Local("America/New_York", 2024, 3, 10, 1, 30);
  const absl::Time due =
      ApplyDelay(anchor, Delay(v1::DELAY_UNIT_HOURS, 1), Cal("America/New_York"));
  CHECK(due - anchor == absl::Hours(1));
  CHECK(due == Local("America/New_York", 2024, 3, 10, 3, 30));
}

TEST_CASE("A day delay at 02:30 on New York's spring-forward day fires at 03:00", "[schedule]") {
  const absl::Time anchor = Local("America/New_York", 2024, 3, 9, 12);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1, 2, 30), Cal("America/New_York")) ==
        Utc(2024, 3, 10, 7, 0));
}

TEST_CASE("A minute delay with at_time takes the next occurrence of that local time",
          "[schedule]") {
  const absl::Time anchor = Local("Asia/Kolkata", 2024, 1, 31, 10);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_MINUTES, 30, 9, 30), Cal("Asia/Kolkata")) ==
        Local("Asia/Kolkata", 2024, 2, 1, 9, 30));
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_MINUTES, 30, 11, 0), Cal("Asia/Kolkata")) ==
        Local("Asia/Kolkata", 2024, 1, 31, 11, 0));
}

TEST_CASE("A zero-day delay at a time already past today means tomorrow", "[schedule]") {
  const absl::Time anchor = Local("Europe/Berlin", 2024, 6, 3, 10);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 0, 9, 30), Cal("Europe/Berlin")) ==
        Local("Europe/Berlin", 2024, 6, 4, 9, 30));
}

TEST_CASE(
    "Given an anchor in the second occurrence of New York's repeated 01:30, when the delay is 0 "
    "days, then the step is due at the anchor itself",
    "[schedule][dst]") {
  const absl::Time anchor = Utc(2021, 11, 7, 6, 30);  // 01:30 EST, the second 01:30
  const Calendar ny = Cal("America/New_York");
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 0), ny) == anchor);
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_DAYS, 0), ny) == anchor);
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_BUSINESS_DAYS, 0), ny) == anchor);
  // A window open at that hour does not move it either.
  Calendar windowed = ny;
  AddRange(&windowed, v1::WEEKDAY_SUNDAY, 0, 0, 24, 0);
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_DAYS, 0), windowed) == anchor);
  const auto preview = PreviewSchedule({Delay(v1::DELAY_UNIT_DAYS, 0)}, v1::SequenceSettings(),
                                       anchor, Zone("America/New_York"));
  REQUIRE(preview.size() == 1);
  CHECK(FromProto(preview[0].due_at()) == anchor);
}

TEST_CASE(
    "Given a Friday anchor in El Aaiun's repeated hour, when the delay is 0 business days, then "
    "the step is due at the anchor, not on Monday",
    "[schedule][dst]") {
  // 2012-07-20 (Friday) 03:00 +01 -> 02:00 +00: local 02:30 occurs at 01:30Z and at 02:30Z.
  const absl::Time anchor = Utc(2012, 7, 20, 2, 30);
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_BUSINESS_DAYS, 0), Cal("Africa/El_Aaiun")) ==
        anchor);
  // One business day keeps the local time of day (02:30, now unique) on Monday.
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_BUSINESS_DAYS, 1), Cal("Africa/El_Aaiun")) ==
        Utc(2012, 7, 23, 2, 30));
}

TEST_CASE(
    "Given a sub-second anchor, when the day delay lands in the spring-forward gap, then it is "
    "due exactly at the jump, when the local time exists, the fraction is kept",
    "[schedule][dst]") {
  const Calendar ny = Cal("America/New_York");
  // 2024-03-09 02:30:00.5 EST; 2024-03-10 02:30 does not exist, the clocks jump at 07:00Z.
  const absl::Time anchor = Utc(2024, 3, 9, 7, 30) + absl::Milliseconds(500);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), ny) == Utc(2024, 3, 10, 7, 0));
  // 10:00:00.25 EST + 1 day = 10:00:00.25 EDT.
  const absl::Time morning = Local("America/New_York", 2024, 3, 9, 10) + absl::Milliseconds(250);
  CHECK(ApplyDelay(morning, Delay(v1::DELAY_UNIT_DAYS, 1), ny) ==
        Local("America/New_York", 2024, 3, 10, 10) + absl::Milliseconds(250));
}

TEST_CASE("Kolkata month end and year end", "[schedule]") {
  const Calendar kolkata = Cal("Asia/Kolkata");
  CHECK(ApplyDelay(Local("Asia/Kolkata", 2024, 1, 31, 18), Delay(v1::DELAY_UNIT_DAYS, 1),
                   kolkata) == Local("Asia/Kolkata", 2024, 2, 1, 18));
  CHECK(ApplyDelay(Local("Asia/Kolkata", 2024, 12, 31, 23, 30), Delay(v1::DELAY_UNIT_MINUTES, 60),
                   kolkata) == Local("Asia/Kolkata", 2025, 1, 1, 0, 30));
}

TEST_CASE("Leap day: Feb 28 + 1 day is Feb 29, + 2 is Mar 1", "[schedule]") {
  const Calendar apia = Cal("Pacific/Apia");
  const absl::Time anchor = Local("Pacific/Apia", 2024, 2, 28, 9);
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 1), apia) ==
        Local("Pacific/Apia", 2024, 2, 29, 9));
  CHECK(ApplyDelay(anchor, Delay(v1::DELAY_UNIT_DAYS, 2), apia) ==
        Local("Pacific/Apia", 2024, 3, 1, 9));
}

TEST_CASE("Business days skip weekends and holidays, across a leap day and a year end",
          "[schedule]") {
  Calendar c = Cal("Europe/Berlin");
  c.holidays.insert(absl::CivilDay(2024, 2, 29));
  c.holidays.insert(absl::CivilDay(2025, 1, 1));
  // Wed Feb 28 + 1 business day: Thu 29 is a holiday -> Fri Mar 1.
  CHECK(AddBusinessDays(absl::CivilDay(2024, 2, 28), 1, c) == absl::CivilDay(2024, 3, 1));
  // Fri Mar 1 + 1 -> Mon Mar 4.
  CHECK(AddBusinessDays(absl::CivilDay(2024, 3, 1), 1, c) == absl::CivilDay(2024, 3, 4));
  // Tue Dec 31 + 1 -> Thu Jan 2 (Jan 1 holiday).
  CHECK(AddBusinessDays(absl::CivilDay(2024, 12, 31), 1, c) == absl::CivilDay(2025, 1, 2));
  // Saturday + 1 -> Monday.
  CHECK(AddBusinessDays(absl::CivilDay(2024, 6, 1), 1, c) == absl::CivilDay(2024, 6, 3));
  CHECK(ApplyDelay(Local("Europe/Berlin", 2024, 12, 31, 15), Delay(v1::DELAY_UNIT_BUSINESS_DAYS, 1),
                   c) == Local("Europe/Berlin", 2025, 1, 2, 15));
}

// ---- windows ----

TEST_CASE("Outside the send window a step moves to the next opening, holidays are skipped",
          "[schedule][window]") {
  Calendar c = Cal("Europe/Berlin");
  BusinessHours(&c);
  // Friday 19:00 -> Monday 08:00.
  CHECK(AlignToWindow(Local("Europe/Berlin", 2024, 6, 7, 19), c) ==
        Local("Europe/Berlin", 2024, 6, 10, 8));
  // Inside: unchanged.
  CHECK(AlignToWindow(Local("Europe/Berlin", 2024, 6, 7, 12), c) ==
        Local("Europe/Berlin", 2024, 6, 7, 12));
  // Early morning -> 08:00 the same day.
  CHECK(AlignToWindow(Local("Europe/Berlin", 2024, 6, 7, 6), c) ==
        Local("Europe/Berlin", 2024, 6, 7, 8));
  // Monday a holiday -> Tuesday.
  c.holidays.insert(absl::CivilDay(2024, 6, 10));
  CHECK(AlignToWindow(Local("Europe/Berlin", 2024, 6, 7, 19), c) ==
        Local("Europe/Berlin", 2024, 6, 11, 8));
}

TEST_CASE("A window opening inside the New York spring-forward gap opens at 03:00",
          "[schedule][window][dst]") {
  Calendar c = Cal("America/New_York");
  AddRange(&c, v1::WEEKDAY_SUNDAY, 2, 30, 5, 0);
  CHECK(AlignToWindow(Local("America/New_York", 2024, 3, 10, 0), c) == Utc(2024, 3, 10, 7, 0));
}

TEST_CASE("Several ranges on one day and a range ending at 24:00", "[schedule][window]") {
  Calendar c = Cal("Asia/Kolkata");
  AddRange(&c, v1::WEEKDAY_MONDAY, 14, 0, 24, 0);
  AddRange(&c, v1::WEEKDAY_MONDAY, 8, 0, 12, 0);
  CHECK(AlignToWindow(Local("Asia/Kolkata", 2024, 6, 3, 12, 30), c) ==
        Local("Asia/Kolkata", 2024, 6, 3, 14));
  CHECK(AlignToWindow(Local("Asia/Kolkata", 2024, 6, 3, 23, 59), c) ==
        Local("Asia/Kolkata", 2024, 6, 3, 23, 59));
  // Tuesday has no range: next Monday 08:00.
  CHECK(AlignToWindow(Local("Asia/Kolkata", 2024, 6, 4, 9), c) ==
        Local("Asia/Kolkata", 2024, 6, 10, 8));
}

TEST_CASE("Holidays without a window block the whole day", "[schedule][window]") {
  Calendar c = Cal("Europe/Berlin");
  c.holidays.insert(absl::CivilDay(2024, 12, 25));
  CHECK(AlignToWindow(Local("Europe/Berlin", 2024, 12, 25, 10), c) ==
        Local("Europe/Berlin", 2024, 12, 26, 0));
}

TEST_CASE(
    "Given a day that never existed (Apia 2011-12-30) between two holidays, when a step is "
    "aligned, then it opens on the first instant of a day that is not a holiday",
    "[schedule][window][dst]") {
  Calendar c = Cal("Pacific/Apia");
  c.holidays.insert(absl::CivilDay(2011, 12, 29));
  c.holidays.insert(absl::CivilDay(2011, 12, 31));
  // After the 29th (a holiday) the clocks read the 31st (a holiday too): the 30th has no instant.
  CHECK(AlignToWindow(Local("Pacific/Apia", 2011, 12, 29, 10), c) ==
        Local("Pacific/Apia", 2012, 1, 1));
}

TEST_CASE(
    "Given St. John's 1987 evening repeated across midnight, when a step falls in its second "
    "pass, then it belongs to the next day for holidays",
    "[schedule][window][dst]") {
  // 1987-10-25 00:01 -0130 -> 1987-10-24 22:01 -0330: 22:01 to 00:01 occur twice.
  const absl::Time second_pass = Utc(1987, 10, 25, 2, 31);  // 23:01 -0330, after the change
  Calendar saturday_off = Cal("America/St_Johns");
  saturday_off.holidays.insert(absl::CivilDay(1987, 10, 24));
  CHECK(AlignToWindow(second_pass, saturday_off) == second_pass);
  // ... and is blocked when that next day is a holiday: open at Monday's 00:00.
  Calendar sunday_off = Cal("America/St_Johns");
  sunday_off.holidays.insert(absl::CivilDay(1987, 10, 25));
  CHECK(AlignToWindow(second_pass, sunday_off) == Utc(1987, 10, 26, 3, 30));
}

TEST_CASE("StepDueAt applies delay, then not_before, then the window", "[schedule]") {
  Calendar c = Cal("America/New_York");
  BusinessHours(&c, 9, 17);
  const absl::Time anchor = Local("America/New_York", 2024, 11, 1, 16);  // Friday
  // 2 hours -> Fri 18:00, outside -> Mon 09:00 (after fall back on Sunday).
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_HOURS, 2), c) ==
        Local("America/New_York", 2024, 11, 4, 9));
  // not_before later than the delay wins.
  CHECK(StepDueAt(anchor, Delay(v1::DELAY_UNIT_MINUTES, 0), c,
                  Local("America/New_York", 2024, 11, 1, 16, 30)) ==
        Local("America/New_York", 2024, 11, 1, 16, 30));
}

// ---- time zones ----

TEST_CASE("Time zone: recipient, else owner, else company, else default, else UTC",
          "[schedule][tz]") {
  v1::TimeZones z;
  z.set_recipient("Asia/Kolkata");
  z.set_owner("Europe/Berlin");
  z.set_company("America/New_York");
  CHECK(ResolveTimeZone(z, "Pacific/Apia", nullptr) == "Asia/Kolkata");
  z.set_recipient("Not/AZone");
  CHECK(ResolveTimeZone(z, "Pacific/Apia", nullptr) == "Europe/Berlin");
  z.clear_owner();
  CHECK(ResolveTimeZone(z, "Pacific/Apia", nullptr) == "America/New_York");
  z.clear_company();
  absl::TimeZone tz;
  CHECK(ResolveTimeZone(z, "Pacific/Apia", &tz) == "Pacific/Apia");
  CHECK(tz.name() == "Pacific/Apia");
  CHECK(ResolveTimeZone(z, "", &tz) == "UTC");
  CHECK(IsValidTimeZoneName("Australia/Lord_Howe"));
  CHECK_FALSE(IsValidTimeZoneName("Fixed/UTC+05:00"));
  CHECK_FALSE(IsValidTimeZoneName(""));
}

TEST_CASE("Only IANA names are time zones: file paths and the database's copies are not",
          "[schedule][tz]") {
  // The time zone library loads each of these (a path, a "file:" name, a path with "..", the
  // posix/ copy, the machine's own zone): none is an IANA name, and a path makes the schedule
  // depend on the machine that computed it.
  for (const char* name :
       {"/usr/share/zoneinfo/Europe/Berlin", "/etc/localtime", "file:Europe/Berlin",
        "Europe/../Europe/Berlin", "./Europe/Berlin", "Europe//Berlin", "posix/Europe/Berlin",
        "right/Europe/Berlin", "posixrules", "localtime", "Fixed/UTC+05:00:00", "Europe/Berlin ",
        "utc", "EST5EDT,M3.2.0,M11.1.0"}) {
    INFO(name);
    CHECK_FALSE(IsValidTimeZoneName(name));
    CHECK(LoadZoneOrUtc(name).name() == "UTC");
  }
  for (const char* name : {"Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5",
                           "Etc/GMT-14", "EST5EDT", "US/Eastern", "UTC", "GMT", "Asia/Kathmandu",
                           "Pacific/Chatham", "America/Port-au-Prince"}) {
    INFO(name);
    CHECK(IsValidTimeZoneName(name));
    CHECK(LoadZoneOrUtc(name).name() == name);
  }
  // The fallback passes over a path to the next candidate.
  v1::TimeZones z;
  z.set_recipient("/usr/share/zoneinfo/Asia/Tokyo");
  z.set_owner("posix/Asia/Kolkata");
  z.set_company("Pacific/Chatham");
  CHECK(ResolveTimeZone(z, "Europe/Berlin", nullptr) == "Pacific/Chatham");
}

TEST_CASE("Schedule preview chains the steps from the start in the time zone", "[schedule]") {
  v1::SequenceSettings settings;
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r = settings.mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(9);
    r->mutable_end()->set_hours(17);
  }
  std::vector<v1::Step> steps = {ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0),
                                 ActivityStep("b", v1::DELAY_UNIT_BUSINESS_DAYS, 2),
                                 Delay(v1::DELAY_UNIT_DAYS, 1, 10, 0)};
  steps[2].set_id("c");
  const auto preview = PreviewSchedule(steps, settings, Local("Europe/Berlin", 2024, 12, 27, 20),
                                       Zone("Europe/Berlin"));  // Friday evening
  REQUIRE(preview.size() == 3);
  CHECK(preview[0].step_id() == "a");
  CHECK(FromProto(preview[0].due_at()) == Local("Europe/Berlin", 2024, 12, 30, 9));
  CHECK(FromProto(preview[1].due_at()) == Local("Europe/Berlin", 2025, 1, 1, 9));
  CHECK(FromProto(preview[2].due_at()) == Local("Europe/Berlin", 2025, 1, 2, 10));
  CHECK(preview[2].step_index() == 2);
}

}  // namespace
}  // namespace sequences::domain

namespace sequences::domain {
namespace {

TEST_CASE("a preview shows each due time on the wall clock of the zone it was computed in",
          "[schedule][preview]") {
  v1::Step step = testing::ActivityStep("call", v1::DELAY_UNIT_DAYS, 1);
  step.mutable_at_time()->set_hours(9);
  // Monday 2026-11-30 12:00 UTC; Berlin is on CET (+01:00) in winter, Los Angeles on PST.
  const absl::Time start =
      absl::FromCivil(absl::CivilSecond(2026, 11, 30, 12, 0, 0), absl::UTCTimeZone());
  std::vector<v1::ScheduledStep> berlin =
      PreviewSchedule({step}, v1::SequenceSettings(), start, testing::Zone("Europe/Berlin"));
  REQUIRE(berlin.size() == 1);
  CHECK(berlin[0].time_zone() == "Europe/Berlin");
  CHECK(berlin[0].local_due_time() == "2026-12-01T09:00:00+01:00");
  CHECK(berlin[0].local_display() == "Tue  1 Dec 2026 09:00 CET, Europe/Berlin");
  CHECK(FromProto(berlin[0].due_at()) ==
        absl::FromCivil(absl::CivilSecond(2026, 12, 1, 8, 0, 0), absl::UTCTimeZone()));
  std::vector<v1::ScheduledStep> la =
      PreviewSchedule({step}, v1::SequenceSettings(), start, testing::Zone("America/Los_Angeles"));
  CHECK(la[0].local_due_time() == "2026-12-01T09:00:00-08:00");
}

}  // namespace
}  // namespace sequences::domain
