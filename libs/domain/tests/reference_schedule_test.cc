// The real scheduler (PreviewSchedule, StepDueAt) against the reference scheduler of
// reference_schedule.h, on random sequences over every zone of the system tz database, with
// anchors weighted toward offset transitions, month and year ends and leap days, and sub-second
// anchors.
//
// SEQUENCES_REFERENCE_CASES sets the number of random cases (default 20000, about a minute on
// two cores; 1000000 for a long run). RC_PARAMS="seed=..." reproduces a run.

#include "libs/domain/tests/reference_schedule.h"

#include <rapidcheck.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/domain/envelope.h"
#include "libs/domain/schedule.h"
#include "libs/domain/tests/builders.h"

namespace sequences::domain {
namespace {

using namespace testing;

// ---- the zones of the system tz database ----

std::string ZoneDir() {
  const char* dir = std::getenv("TZDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/usr/share/zoneinfo";
}

bool IsTzif(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "TZif";
}

// Every zone file (TZif) under the zoneinfo directory, by IANA name; the posix/ and right/
// copies, posixrules and localtime are not zones of their own.
const std::vector<std::string>& AllZones() {
  static const std::vector<std::string> zones = [] {
    std::vector<std::string> out;
    const std::filesystem::path root = ZoneDir();
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().lexically_relative(root).string();
      if (it->is_directory()) {
        if (name == "posix" || name == "right") it.disable_recursion_pending();
        continue;
      }
      if (name == "posixrules" || name == "localtime" || !IsTzif(it->path())) continue;
      absl::TimeZone tz;
      if (absl::LoadTimeZone(name, &tz)) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }();
  return zones;
}

// The instants at which `tz` changes its offset in [from, to).
std::vector<absl::Time> Transitions(absl::TimeZone tz, absl::Time from, absl::Time to) {
  std::vector<absl::Time> out;
  absl::Time t = from;
  absl::TimeZone::CivilTransition tr;
  while (tz.NextTransition(t, &tr)) {
    const absl::Time at = tz.At(tr.from).trans;
    if (at >= to || at <= t) break;
    out.push_back(at);
    t = at;
  }
  return out;
}

// Offset changes of three hours or more 1970-2037 (zones that moved across the date line or
// changed region), by zone: rare in a uniform draw, so drawn on purpose.
struct Jump {
  std::string zone;
  absl::Time at;
};
const std::vector<Jump>& BigJumps();

std::string Show(absl::Time t, absl::TimeZone tz) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone()), " (",
                      absl::FormatTime("%a %Y-%m-%d %H:%M:%E*S %z", t, tz), ")");
}

int Cases() {
  int n = 20000;
  const char* env = std::getenv("SEQUENCES_REFERENCE_CASES");
  if (env != nullptr && !absl::SimpleAtoi(env, &n)) n = 20000;
  return std::max(1, n);
}

// ---- generators ----

const absl::Time kFrom = absl::FromCivil(absl::CivilDay(1970, 1, 1), absl::UTCTimeZone());
const absl::Time kTo = absl::FromCivil(absl::CivilDay(2038, 1, 1), absl::UTCTimeZone());

const std::vector<Jump>& BigJumps() {
  static const std::vector<Jump> jumps = [] {
    std::vector<Jump> out;
    for (const std::string& name : AllZones()) {
      const absl::TimeZone tz = Zone(name);
      for (absl::Time at : Transitions(tz, kFrom, kTo)) {
        const int change = tz.At(at).offset - tz.At(at - absl::Seconds(1)).offset;
        if (change >= 3 * 3600 || change <= -3 * 3600) out.push_back({name, at});
      }
    }
    return out;
  }();
  return jumps;
}

absl::Time GenAnchor(absl::TimeZone tz) {
  absl::Time t;
  const int kind = *rc::gen::inRange(0, 10);
  const absl::Time uniform =
      kFrom + absl::Seconds(*rc::gen::inRange<int64_t>(0, absl::ToInt64Seconds(kTo - kFrom)));
  absl::TimeZone::CivilTransition tr;
  if (kind < 5 && tz.NextTransition(uniform, &tr) && tz.At(tr.from).trans < kTo) {
    // Near an offset change: within hours of it, or about a day before/after (so that a day
    // delay lands in it).
    const absl::Time at = tz.At(tr.from).trans;
    const int near = *rc::gen::inRange(0, 3);
    const absl::Duration shift = near == 0   ? absl::Minutes(*rc::gen::inRange(-90, 91))
                                 : near == 1 ? absl::Hours(*rc::gen::element(-48, -24, 24, 48)) +
                                                   absl::Minutes(*rc::gen::inRange(-90, 91))
                                             : absl::Minutes(*rc::gen::inRange(-60 * 72, 60 * 72));
    t = at + shift;
  } else if (kind < 7) {
    // Month and year ends, leap days.
    const int year = *rc::gen::inRange(1971, 2037);
    const int month = *rc::gen::inRange(1, 13);
    const absl::CivilDay last = absl::CivilDay(year, month, 1) + 40;  // next month
    const absl::CivilDay end_of_month = absl::CivilDay(last.year(), last.month(), 1) - 1;
    const absl::CivilDay day = *rc::gen::element(
        end_of_month, end_of_month - 1, absl::CivilDay(year, 2, 28), absl::CivilDay(year, 2, 29),
        absl::CivilDay(year, 12, 31), absl::CivilDay(year, 1, 1));
    t = absl::FromCivil(
        absl::CivilSecond(day.year(), day.month(), day.day(), *rc::gen::inRange(0, 24),
                          *rc::gen::inRange(0, 60), *rc::gen::inRange(0, 60)),
        tz);
  } else {
    t = uniform;
  }
  switch (*rc::gen::inRange(0, 6)) {
    case 0:
    case 1:
      t += absl::Nanoseconds(*rc::gen::inRange(1, 1000000000));
      break;
    case 2:
      t += absl::Microseconds(*rc::gen::inRange(1, 1000000));
      break;
    default:
      break;
  }
  return t;
}

v1::TimeOfDay Tod(int minutes) {
  v1::TimeOfDay t;
  t.set_hours(minutes / 60);
  t.set_minutes(minutes % 60);
  return t;
}

v1::Step GenStep(int i) {
  const int unit = *rc::gen::inRange(1, 5);
  int amount = 0;
  if (*rc::gen::inRange(0, 4) != 0) {
    const bool big = *rc::gen::inRange(0, 10) == 0;
    switch (unit) {
      case v1::DELAY_UNIT_MINUTES:
        amount = *rc::gen::inRange(1, big ? 60 * 24 * 365 : 3000);
        break;
      case v1::DELAY_UNIT_HOURS:
        amount = *rc::gen::inRange(1, big ? 24 * 365 : 200);
        break;
      case v1::DELAY_UNIT_DAYS:
        amount = *rc::gen::inRange(1, big ? 365 : 40);
        break;
      default:
        amount = *rc::gen::inRange(1, big ? 260 : 30);
        break;
    }
  }
  v1::Step s = ActivityStep(absl::StrCat("s", i), static_cast<v1::DelayUnit>(unit), amount);
  if (*rc::gen::inRange(0, 5) < 2) {
    const int minute =
        *rc::gen::inRange(0, 2) == 0 ? 15 * *rc::gen::inRange(0, 4) : *rc::gen::inRange(0, 60);
    const int hour = *rc::gen::inRange(0, 3) == 0 ? *rc::gen::inRange(0, 4)  // DST hours
                                                  : *rc::gen::inRange(0, 24);
    *s.mutable_at_time() = Tod(hour * 60 + minute);
  }
  return s;
}

// Sorted distinct minute marks in [0, 1440] (edges of the ranges of one weekday).
std::vector<int> GenMarks(int count) {
  std::vector<int> marks;
  const bool night = *rc::gen::inRange(0, 4) == 0;  // edges near the usual DST hours
  for (int guard = 0; static_cast<int>(marks.size()) < count && guard < 100; ++guard) {
    const int step = *rc::gen::element(1, 15, 30, 60);
    const int m = night ? *rc::gen::inRange(0, 5 * 60 / step + 1) * step
                        : *rc::gen::inRange(0, 1440 / step + 1) * step;
    if (std::find(marks.begin(), marks.end(), m) == marks.end()) marks.push_back(m);
  }
  std::sort(marks.begin(), marks.end());
  if (marks.size() % 2 == 1) marks.pop_back();
  return marks;
}

v1::SequenceSettings GenSettings(absl::Time anchor, absl::TimeZone tz) {
  v1::SequenceSettings settings;
  if (*rc::gen::inRange(0, 2) == 0) {
    for (int day = v1::WEEKDAY_MONDAY; day <= v1::WEEKDAY_SUNDAY; ++day) {
      if (*rc::gen::inRange(0, 5) < 2) continue;
      const std::vector<int> marks = GenMarks(*rc::gen::element(2, 4));
      for (size_t i = 0; i + 1 < marks.size(); i += 2) {
        v1::WindowRange* r = settings.mutable_send_window()->add_ranges();
        r->set_weekday(static_cast<v1::Weekday>(day));
        *r->mutable_start() = Tod(marks[i]);
        *r->mutable_end() = Tod(marks[i + 1]);
      }
    }
  }
  if (*rc::gen::inRange(0, 5) < 2) {
    const absl::CivilDay first(tz.At(anchor).cs);
    std::vector<absl::CivilDay> days;
    if (*rc::gen::inRange(0, 2) == 0) {
      // A break: most days of a run from about the anchor's date.
      const absl::CivilDay from = first + *rc::gen::inRange(-1, 4);
      const int length = *rc::gen::inRange(1, 12);
      for (int i = 0; i < length; ++i) {
        if (*rc::gen::inRange(0, 7) != 0) days.push_back(from + i);
      }
    }
    const int n = *rc::gen::inRange(0, 8);
    for (int i = 0; i < n; ++i) days.push_back(first + *rc::gen::inRange(-2, 45));
    for (const absl::CivilDay day : days) {
      v1::Date* d = settings.add_holidays();
      d->set_year(static_cast<int32_t>(day.year()));
      d->set_month(day.month());
      d->set_day(day.day());
    }
  }
  return settings;
}

// ---- the reference itself, on cases worked out by hand ----

TEST_CASE("The reference resolves gaps, repeats and skipped days by the DST rule", "[reference]") {
  const absl::TimeZone ny = Zone("America/New_York");
  CHECK(reference::ResolveLocal(absl::CivilSecond(2024, 3, 10, 2, 30, 0), ny) ==
        Utc(2024, 3, 10, 7, 0));
  CHECK(reference::ResolveLocal(absl::CivilSecond(2024, 11, 3, 1, 30, 0), ny) ==
        Utc(2024, 11, 3, 5, 30));
  CHECK(reference::ResolveLocal(absl::CivilSecond(2024, 6, 1, 9, 0, 0), ny) ==
        Utc(2024, 6, 1, 13, 0));
  const absl::TimeZone lh = Zone("Australia/Lord_Howe");
  CHECK(reference::ResolveLocal(absl::CivilSecond(2024, 10, 6, 2, 15, 0), lh) ==
        Utc(2024, 10, 5, 15, 30));
  CHECK(reference::ResolveLocal(absl::CivilSecond(2024, 4, 7, 1, 45, 0), lh) ==
        Utc(2024, 4, 6, 14, 45));
  // Apia skipped 2011-12-30: any time that day is the jump to the 31st 00:00 (+14).
  CHECK(reference::ResolveLocal(absl::CivilSecond(2011, 12, 30, 10, 0, 0), Zone("Pacific/Apia")) ==
        Utc(2011, 12, 30, 10, 0));
}

TEST_CASE("The reference schedules worked examples of the README", "[reference]") {
  const absl::TimeZone ny = Zone("America/New_York");
  v1::SequenceSettings none;
  // 0 days in the second 01:30 of New York's fall back: at once.
  CHECK(reference::DueAt(Utc(2021, 11, 7, 6, 30), ActivityStep("a", v1::DELAY_UNIT_DAYS, 0), none,
                         ny) == Utc(2021, 11, 7, 6, 30));
  // A day delay into the spring-forward gap: the jump itself, without the anchor's fraction.
  CHECK(reference::DueAt(Utc(2024, 3, 9, 7, 30) + absl::Milliseconds(500),
                         ActivityStep("a", v1::DELAY_UNIT_DAYS, 1), none,
                         ny) == Utc(2024, 3, 10, 7, 0));
  // 0 days "at 09:30" issued at 10:00 means tomorrow.
  v1::Step at = ActivityStep("a", v1::DELAY_UNIT_DAYS, 0);
  at.mutable_at_time()->set_hours(9);
  at.mutable_at_time()->set_minutes(30);
  CHECK(reference::DueAt(Local("Europe/Berlin", 2024, 6, 3, 10), at, none, Zone("Europe/Berlin")) ==
        Local("Europe/Berlin", 2024, 6, 4, 9, 30));
  // Friday evening outside a 9-17 weekday window: Monday 09:00.
  v1::SequenceSettings window;
  for (int d = v1::WEEKDAY_MONDAY; d <= v1::WEEKDAY_FRIDAY; ++d) {
    v1::WindowRange* r = window.mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    r->mutable_start()->set_hours(9);
    r->mutable_end()->set_hours(17);
  }
  CHECK(reference::DueAt(Local("Europe/Berlin", 2024, 12, 27, 20),
                         ActivityStep("a", v1::DELAY_UNIT_MINUTES, 0), window,
                         Zone("Europe/Berlin")) == Local("Europe/Berlin", 2024, 12, 30, 9));
}

// ---- edge cases worked by hand: the real scheduler and the reference both give the answer ----

struct EdgeCase {
  const char* what;
  const char* zone;
  absl::Time anchor;
  v1::Step step;
  v1::SequenceSettings settings;
  absl::Time expected;
  absl::Time not_before = absl::InfinitePast();
  absl::Duration paused = absl::ZeroDuration();
};

v1::Step At(v1::Step s, int h, int m) {
  s.mutable_at_time()->set_hours(h);
  s.mutable_at_time()->set_minutes(m);
  return s;
}

v1::SequenceSettings Window(std::initializer_list<int> weekdays, int start_h, int start_m,
                            int end_h, int end_m) {
  v1::SequenceSettings settings;
  for (int d : weekdays) {
    v1::WindowRange* r = settings.mutable_send_window()->add_ranges();
    r->set_weekday(static_cast<v1::Weekday>(d));
    *r->mutable_start() = Tod(start_h * 60 + start_m);
    *r->mutable_end() = Tod(end_h * 60 + end_m);
  }
  return settings;
}

v1::SequenceSettings Holiday(v1::SequenceSettings settings, int y, int m, int d) {
  v1::Date* h = settings.add_holidays();
  h->set_year(y);
  h->set_month(m);
  h->set_day(d);
  return settings;
}

TEST_CASE("Edge cases of the time rules give the hand-worked answer, here and in the reference",
          "[reference]") {
  using U = v1::DelayUnit;
  const U kMin = v1::DELAY_UNIT_MINUTES;
  const U kHour = v1::DELAY_UNIT_HOURS;
  const U kDay = v1::DELAY_UNIT_DAYS;
  const U kBiz = v1::DELAY_UNIT_BUSINESS_DAYS;
  auto step = [](U unit, int amount) { return ActivityStep("x", unit, amount); };
  const v1::SequenceSettings none;
  const auto weekdays = {1, 2, 3, 4, 5};
  const auto every_day = {1, 2, 3, 4, 5, 6, 7};
  const std::vector<EdgeCase> cases = {
      {"Lord Howe: 1 day at 02:15 lands in the 30-minute gap: the jump, 02:30 +11",
       "Australia/Lord_Howe", Utc(2024, 10, 4, 23, 30), At(step(kDay, 1), 2, 15), none,
       Utc(2024, 10, 5, 15, 30)},
      {"Lord Howe: 0 minutes at 01:45 from the second 01:40: the second 01:45 does not count",
       "Australia/Lord_Howe", Utc(2024, 4, 6, 15, 10), At(step(kMin, 0), 1, 45), none,
       Utc(2024, 4, 7, 15, 15)},
      {"Lord Howe: 0 minutes at 01:45 from the first 01:40: the first 01:45", "Australia/Lord_Howe",
       Utc(2024, 4, 6, 14, 40), At(step(kMin, 0), 1, 45), none, Utc(2024, 4, 6, 14, 45)},
      {"Lord Howe: a window ending in the gap ends at the jump (inside just before it)",
       "Australia/Lord_Howe", Utc(2024, 10, 5, 15, 20), step(kMin, 0), Window({7}, 1, 0, 2, 15),
       Utc(2024, 10, 5, 15, 20)},
      {"Lord Howe: at the jump the window has closed: next Sunday 01:00 +11", "Australia/Lord_Howe",
       Utc(2024, 10, 5, 15, 30), step(kMin, 0), Window({7}, 1, 0, 2, 15), Utc(2024, 10, 12, 14, 0)},
      {"Kathmandu (+05:45): 1 day at 09:30, window from 09:45", "Asia/Kathmandu",
       Utc(2024, 6, 3, 4, 15), At(step(kDay, 1), 9, 30), Window(weekdays, 9, 45, 18, 0),
       Utc(2024, 6, 4, 4, 0)},
      {"Chatham: 1 day at 03:00 in the 02:45-03:45 gap: 03:45 +13:45", "Pacific/Chatham",
       Utc(2024, 9, 27, 23, 15), At(step(kDay, 1), 3, 0), none, Utc(2024, 9, 28, 14, 0)},
      {"Apia: 1 day from 2011-12-29 10:00 (-10): the skipped 30th is the jump to the 31st",
       "Pacific/Apia", Utc(2011, 12, 29, 20, 0), step(kDay, 1), none, Utc(2011, 12, 30, 10, 0)},
      {"Apia: a daily window has no instant on the skipped 30th: the 31st 09:00 (+14)",
       "Pacific/Apia", Utc(2011, 12, 30, 9, 30), step(kMin, 0), Window(every_day, 9, 0, 17, 0),
       Utc(2011, 12, 30, 19, 0)},
      {"Apia: 1 business day from Thursday 2011-12-29 counts the skipped Friday: its jump",
       "Pacific/Apia", Utc(2011, 12, 29, 20, 0), step(kBiz, 1), none, Utc(2011, 12, 30, 10, 0)},
      {"0 business days at 09:30 from Saturday 08:00: Saturday 09:30 (counting starts on the "
       "anchor's date)",
       "UTC", Utc(2024, 6, 8, 8, 0), At(step(kBiz, 0), 9, 30), none, Utc(2024, 6, 8, 9, 30)},
      {"0 business days at 09:30 from Saturday 10:00: the next business day, Monday 09:30", "UTC",
       Utc(2024, 6, 8, 10, 0), At(step(kBiz, 0), 9, 30), none, Utc(2024, 6, 10, 9, 30)},
      {"Havana: 1 day into the midnight gap: 01:00 CDT", "America/Havana", Utc(2024, 3, 9, 5, 30),
       step(kDay, 1), none, Utc(2024, 3, 10, 5, 0)},
      {"Havana: a holiday on the repeated-midnight day covers both passes", "America/Havana",
       Utc(2024, 11, 3, 5, 30), step(kMin, 0), Holiday(none, 2024, 11, 3), Utc(2024, 11, 4, 5, 0)},
      {"Santiago: a window opening at the skipped midnight opens at 01:00 -03", "America/Santiago",
       Utc(2024, 9, 8, 2, 0), step(kMin, 0), Window({7}, 0, 0, 6, 0), Utc(2024, 9, 8, 4, 0)},
      {"Santiago: 1 day at 23:30 on the repeated evening: the first 23:30 (-03)",
       "America/Santiago", Utc(2024, 4, 5, 15, 0), At(step(kDay, 1), 23, 30), none,
       Utc(2024, 4, 7, 2, 30)},
      {"Beirut: 1 day into the midnight gap: 01:00 EEST", "Asia/Beirut", Utc(2024, 3, 29, 22, 15),
       step(kDay, 1), none, Utc(2024, 3, 30, 22, 0)},
      {"New York: a window entirely inside the gap is closed that day", "America/New_York",
       Utc(2024, 3, 10, 5, 0), step(kMin, 0), Window({7}, 2, 10, 2, 40), Utc(2024, 3, 17, 6, 10)},
      {"New York: 1 day at 01:30 on the fall-back day: the first 01:30 (EDT)", "America/New_York",
       Utc(2024, 11, 2, 16, 0), At(step(kDay, 1), 1, 30), none, Utc(2024, 11, 3, 5, 30)},
      {"Berlin: a delay ending exactly at the window's end moves to the next opening",
       "Europe/Berlin", Utc(2024, 6, 7, 15, 0), step(kHour, 1), Window(weekdays, 8, 0, 18, 0),
       Utc(2024, 6, 10, 6, 0)},
      {"Berlin: a delay ending exactly at the window's start stays", "Europe/Berlin",
       Utc(2024, 6, 10, 5, 0), step(kHour, 1), Window(weekdays, 8, 0, 18, 0),
       Utc(2024, 6, 10, 6, 0)},
      {"Berlin: 3 business days across a holiday Monday and the leap day 2028-02-29",
       "Europe/Berlin", Utc(2028, 2, 24, 9, 0), step(kBiz, 3), Holiday(none, 2028, 2, 28),
       Utc(2028, 3, 1, 9, 0)},
      {"New York: 2 business days across the year end and a New Year holiday", "America/New_York",
       Utc(2026, 12, 31, 20, 0), step(kBiz, 2), Holiday(none, 2027, 1, 1), Utc(2027, 1, 5, 20, 0)},
      {"0 business days on a Saturday is immediate", "UTC", Utc(2024, 6, 8, 10, 0), step(kBiz, 0),
       none, Utc(2024, 6, 8, 10, 0)},
      {"0 days at 09:30 half a second after 09:30 means tomorrow", "UTC",
       Utc(2024, 6, 3, 9, 30) + absl::Milliseconds(500), At(step(kDay, 0), 9, 30), none,
       Utc(2024, 6, 4, 9, 30)},
      {"The largest minute delay (365 days) from a leap day", "UTC", Utc(2024, 2, 29),
       step(kMin, 60 * 24 * 365), none, Utc(2025, 2, 28)},
      {"The largest day delay (365) from a leap day keeps the local time", "Europe/Berlin",
       Utc(2024, 2, 29, 11, 0), step(kDay, 365), none, Utc(2025, 2, 28, 11, 0)},
      {"The largest business-day delay (260) is 52 weeks without holidays", "Europe/Berlin",
       Utc(2024, 1, 1, 8, 0), step(kBiz, 260), none, Utc(2024, 12, 30, 8, 0)},
      {"A pause across spring forward adds its duration to the delay's end", "America/New_York",
       Utc(2024, 3, 9, 17, 0), step(kDay, 1), none, Utc(2024, 3, 10, 18, 0),
       Utc(2024, 3, 10, 13, 0), absl::Hours(2)},
      {"A resume after the due time on a Saturday: Monday's opening (EDT by then)",
       "America/New_York", Utc(2024, 3, 8, 15, 0), step(kHour, 2), Window(weekdays, 9, 0, 17, 0),
       Utc(2024, 3, 11, 13, 0), Utc(2024, 3, 9, 15, 0), absl::Hours(1)},
  };
  for (const EdgeCase& c : cases) {
    INFO(c.what);
    const absl::TimeZone tz = Zone(c.zone);
    const absl::Time ours =
        StepDueAt(c.anchor, c.step, MakeCalendar(c.settings, tz), c.not_before, c.paused);
    const absl::Time ref =
        reference::DueAt(c.anchor, c.step, c.settings, tz, c.not_before, c.paused);
    INFO("expected " << Show(c.expected, tz) << ", StepDueAt " << Show(ours, tz) << ", reference "
                     << Show(ref, tz));
    CHECK(ours == c.expected);
    CHECK(ref == c.expected);
  }
}

// ---- the real scheduler against the reference ----

TEST_CASE("The zone list is the whole system tz database", "[reference]") {
  const std::vector<std::string>& zones = AllZones();
  INFO("zones found under " << ZoneDir() << ": " << zones.size());
  CHECK(zones.size() > 300);
  for (const char* z : {"America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
                        "Pacific/Chatham", "Africa/El_Aaiun", "Pacific/Apia", "UTC"}) {
    CHECK(std::binary_search(zones.begin(), zones.end(), std::string(z)));
  }
  // Every zone of the database is a valid name (the IANA spelling rule rejects none of them).
  for (const std::string& name : zones) {
    if (!IsValidTimeZoneName(name)) FAIL_CHECK(name << " is not a valid time zone name");
  }
}

TEST_CASE("FromLocal agrees with the reference at every offset change 1970-2037 in every zone",
          "[reference]") {
  int checked = 0;
  for (const std::string& name : AllZones()) {
    const absl::TimeZone tz = Zone(name);
    for (absl::Time at : Transitions(tz, kFrom, kTo)) {
      // Local times around the change, on both sides, in the gap or the repeat.
      const absl::CivilSecond before = tz.At(at - absl::Seconds(1)).cs;
      const absl::CivilSecond after = tz.At(at).cs;
      for (absl::CivilSecond local : {before, before + 1, after, after - 1, after + 60, before - 60,
                                      absl::CivilSecond(absl::CivilMinute(before)) + 30 * 60,
                                      absl::CivilSecond(absl::CivilMinute(after)) - 30 * 60}) {
        const absl::Time ours = FromLocal(local, tz);
        const absl::Time ref = reference::ResolveLocal(local, tz);
        if (ours != ref) {
          FAIL_CHECK(name << " " << absl::FormatCivilTime(local) << ": FromLocal " << Show(ours, tz)
                          << ", reference " << Show(ref, tz));
        }
        ++checked;
      }
    }
  }
  INFO(checked << " local times checked");
  CHECK(checked > 100000);
}

TEST_CASE("PreviewSchedule and StepDueAt agree with the reference scheduler", "[reference]") {
  const std::vector<std::string>& zones = AllZones();
  REQUIRE(!zones.empty());
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = Cases();
  rc::detail::TestMetadata metadata;
  metadata.id = "reference";
  metadata.description = "the real scheduler agrees with the reference";
  const auto result = rc::detail::checkTestable(
      [&] {
        std::string zone;
        absl::Time anchor;
        if (!BigJumps().empty() && *rc::gen::inRange(0, 20) == 0) {
          const Jump& jump = BigJumps()[static_cast<size_t>(
              *rc::gen::inRange<int>(0, static_cast<int>(BigJumps().size())))];
          zone = jump.zone;
          anchor = jump.at + absl::Minutes(*rc::gen::inRange(-60 * 50, 60 * 50));
        } else {
          zone =
              zones[static_cast<size_t>(*rc::gen::inRange<int>(0, static_cast<int>(zones.size())))];
          anchor = GenAnchor(Zone(zone));
        }
        const absl::TimeZone tz = Zone(zone);
        std::vector<v1::Step> steps;
        const int n = *rc::gen::inRange(1, 5);
        for (int i = 0; i < n; ++i) steps.push_back(GenStep(i));
        const v1::SequenceSettings settings = GenSettings(anchor, tz);
        RC_LOG() << "zone " << zone << ", start " << Show(anchor, tz) << "\nsettings "
                 << settings.ShortDebugString() << "\n";
        for (const v1::Step& s : steps) RC_LOG() << "step " << s.ShortDebugString() << "\n";

        const std::vector<v1::ScheduledStep> ours = PreviewSchedule(steps, settings, anchor, tz);
        const std::vector<absl::Time> ref = reference::Schedule(steps, settings, anchor, tz);
        RC_ASSERT(ours.size() == ref.size());
        for (size_t i = 0; i < ours.size(); ++i) {
          const absl::Time due = FromProto(ours[i].due_at());
          if (due != ref[i]) {
            RC_FAIL(absl::StrCat("step ", i, ": PreviewSchedule ", Show(due, tz), ", reference ",
                                 Show(ref[i], tz)));
          }
        }
        // The executor's function, with a not-before (e.g. a resume) around the delay's end and
        // (half the time) a paused duration, from seconds to weeks, so that the delay's end moves
        // across offset changes and window edges.
        const absl::Time not_before = anchor + absl::Minutes(*rc::gen::inRange(-600, 60 * 24 * 5));
        absl::Duration paused = absl::ZeroDuration();
        if (*rc::gen::inRange(0, 2) == 0) {
          paused = *rc::gen::inRange(0, 2) == 0
                       ? absl::Seconds(*rc::gen::inRange(1, 60 * 60 * 24 * 3))
                       : absl::Minutes(*rc::gen::inRange(1, 60 * 24 * 30)) +
                             absl::Nanoseconds(*rc::gen::inRange(0, 1000));
        }
        const absl::Time due =
            StepDueAt(anchor, steps[0], MakeCalendar(settings, tz), not_before, paused);
        const absl::Time expected =
            reference::DueAt(anchor, steps[0], settings, tz, not_before, paused);
        if (due != expected) {
          RC_FAIL(absl::StrCat("StepDueAt with not_before ", Show(not_before, tz), ", paused ",
                               absl::FormatDuration(paused), ": ", Show(due, tz), ", reference ",
                               Show(expected, tz)));
        }
      },
      metadata, params);
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  INFO(message.str());
  CHECK(result.template is<rc::detail::SuccessResult>());
}

}  // namespace
}  // namespace sequences::domain
